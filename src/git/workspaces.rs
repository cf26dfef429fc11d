//! [`WorktreeWorkspaces`]: the worktree implementation of the scheduler's [`Workspaces`] seam.
//!
//! `prepare` gives a stream its branch (created on its dependencies' work, or reused as it is)
//! and worktree (created, reused or repaired), copies `.worktreeinclude` files and has
//! `post_create` run ([`crate::worker::post_create`]); `worker_started` locks the worktree
//! naming the stream and pid; `worker_finished` unlocks it and commits what the worker left uncommitted
//! (`auto_commit`) or reports it dirty. The `main` stream always runs in the project root.

use std::path::{Path, PathBuf};

use super::base::{self, Base, RunBase};
use super::error::GitError;
use super::repo::{Repo, short};
use super::worktree::{self, Ensured};
use super::{exclude, include};
use crate::config::Config;
use crate::graph::{Stream, StreamGraph};
use crate::model::{Attention, Block};
use crate::names::StreamNames;
use crate::project::Project;
use crate::state::{StateStore, WorktreeRecord};
use crate::worker::post_create;
use crate::workspace::{Finished, Placement, PrepareFailure, Progress, ProgressSink, Workspaces};

/// The stream that always works in the project root.
pub const MAIN_STREAM: &str = "main";

pub struct WorktreeWorkspaces {
    project: Project,
    config: Config,
    /// Told how far a long checkout or include copy has come.
    progress: Option<ProgressSink>,
    /// The run's base, decided when this `start` prepares its first stream.
    run: Option<RunBase>,
}

impl WorktreeWorkspaces {
    /// Makes sure `.git/info/exclude` hides our folders; refuses a repository without a commit
    /// (there is nothing to branch from).
    pub fn new(project: Project, config: Config) -> Result<Self, GitError> {
        let repo = Repo::open(&project.root)?;
        if repo
            .inner
            .head()
            .is_err_and(|e| e.code() == git2::ErrorCode::UnbornBranch)
        {
            return Err(GitError::NoCommit { path: repo.path });
        }
        exclude::ensure(&repo.inner)?;
        Ok(Self {
            project,
            config,
            progress: None,
            run: None,
        })
    }

    /// `stream`'s progress, for the sink if there is one.
    fn progress_of<'s>(&'s self, stream: &'s str) -> impl Fn(Progress) + 's {
        move |p| {
            if let Some(sink) = &self.progress {
                sink(stream, p);
            }
        }
    }

    fn root_placement(&self, notes: Vec<String>) -> Placement {
        Placement {
            dir: self.project.root.clone(),
            branch: None,
            base: None,
            notes,
        }
    }

    fn run_base(&mut self, repo: &Repo, graph: &StreamGraph) -> Result<RunBase, GitError> {
        if let Some(run) = &self.run {
            return Ok(run.clone());
        }
        let run = base::run_base(
            &self.project,
            repo,
            graph,
            self.config.target_branch.as_deref(),
        )?;
        self.run = Some(run.clone());
        Ok(run)
    }

    fn try_prepare(
        &mut self,
        stream: &Stream,
        graph: &StreamGraph,
    ) -> Result<Placement, PrepareFailure> {
        let repo = Repo::open(&self.project.root).map_err(failed)?;
        exclude::ensure(&repo.inner).map_err(failed)?;
        let run = self.run_base(&repo, graph).map_err(failed)?;
        let names = StreamNames::new(stream.id());
        let path = self.project.root.join(names.worktree_rel());
        let records = StateStore::open(&self.project.state_db()).map_err(|e| failed(e.into()))?;
        let mut notes = Vec::new();
        if names.sanitised() {
            notes.push(format!(
                "stream `{}` uses branch {} and folder {}",
                stream.id(),
                names.branch(),
                names.worktree_rel().display()
            ));
        }
        let base = branch_base(&repo, &records, stream, &names, &run, &mut notes)?;
        let progress = self.progress_of(stream.id());
        let ensured = worktree::ensure(&repo, &names, &path, &progress).map_err(|e| match e {
            GitError::WorktreeInTheWay { path, branch } => {
                PrepareFailure::Blocked(Block::WorktreeInTheWay { path, branch })
            }
            GitError::CheckedOutElsewhere { branch, path } => {
                PrepareFailure::Blocked(Block::CheckedOutElsewhere { branch, path })
            }
            other => failed(other),
        })?;
        match ensured {
            Ensured::Reused => notes.push(format!("worktree {} reused", path.display())),
            Ensured::Repaired => notes.push(format!(
                "worktree {} was stale (folder deleted); pruned and added again",
                path.display()
            )),
            Ensured::Finished => notes.push(format!(
                "worktree {} was left incomplete (its checkout was cut short); it was finished \
                 and checked before use",
                path.display()
            )),
            Ensured::Created => {}
        }
        records
            .upsert_worktree(&WorktreeRecord {
                stream: stream.id().into(),
                slug: names.slug.clone(),
                branch: names.branch(),
                worktree: path.clone(),
                base: Some(base.clone()),
                created_at: String::new(),
            })
            .map_err(|e| failed(e.into()))?;
        if ensured != Ensured::Reused {
            self.complete(&repo, stream, &names, &path, &mut notes)?;
        }
        Ok(Placement {
            dir: path,
            branch: Some(names.branch()),
            base: Some(base),
            notes,
        })
    }

    /// Finishes a new (or finished) worktree: includes, `post_create`, the submodule note;
    /// then declares it complete, so that it may be handed to a worker.
    fn complete(
        &self,
        repo: &Repo,
        stream: &Stream,
        names: &StreamNames,
        path: &Path,
        notes: &mut Vec<String>,
    ) -> Result<(), PrepareFailure> {
        let progress = self.progress_of(stream.id());
        let copied = include::copy_included(repo, path, self.config.include_copy, &progress)
            .map_err(failed)?;
        notes.extend(include::notes(&copied));
        if let Some(note) = submodule_note(path).map_err(failed)? {
            notes.push(note);
        }
        if let Some(cmd) = &self.config.post_create {
            let cmd = &crate::worker::sandbox::wrap_post_create(
                &self.config,
                &self.project,
                stream.id(),
                path,
                cmd,
            )?;
            let run = post_create::Run {
                project_root: &self.project.root,
                stream: stream.id(),
                dir: path,
                branch: &names.branch(),
                log: &crate::worker::log_path(&self.project.logs_dir(), stream.id()),
                limit: self.config.post_create_timeout,
            };
            post_create::run(cmd, &run).map_err(|e| failed(e.into()))?;
        }
        worktree::mark_complete(repo, names).map_err(failed)
    }
}

fn failed(e: GitError) -> PrepareFailure {
    PrepareFailure::Failed {
        detail: describe(&e),
    }
}

/// The stream's branch: reused as it is when it exists (refused when it shares no history
/// with the run's base), else created on its dependencies' work. Returns the base (hex).
fn branch_base(
    repo: &Repo,
    records: &StateStore,
    stream: &Stream,
    names: &StreamNames,
    run: &RunBase,
    notes: &mut Vec<String>,
) -> Result<String, PrepareFailure> {
    let branch = names.branch();
    if let Some(tip) = repo.branch_tip(&branch).map_err(failed)? {
        if !base::related(repo, tip, run.commit).map_err(failed)? {
            return Err(PrepareFailure::Blocked(Block::UnrelatedBranch {
                branch,
                base: run.commit.to_string(),
                target: run.target.clone(),
            }));
        }
        let missing = base::missing_dependency_tips(repo, stream, tip, run).map_err(failed)?;
        if !missing.is_empty() {
            notes.push(format!(
                "branch {branch} from an earlier run is reused as it is; it does not contain \
                 the current tip of {}",
                missing.join(", ")
            ));
        }
        let recorded = records
            .worktree(stream.id())
            .map_err(|e| failed(e.into()))?;
        return Ok(recorded
            .and_then(|r| r.base)
            .unwrap_or_else(|| tip.to_string()));
    }
    match base::resolve(repo, stream, run).map_err(failed)? {
        Base::Commit { oid, how } => {
            worktree::create_branch(repo, names, oid).map_err(failed)?;
            notes.push(format!("branch {branch} created on {} ({how})", short(oid)));
            Ok(oid.to_string())
        }
        Base::Conflict {
            branches,
            paths,
            tips,
        } => Err(PrepareFailure::Blocked(Block::BaseConflict {
            branches,
            paths,
            tips,
        })),
    }
}

/// Submodules are not checked out in stream worktrees: say which are left empty.
fn submodule_note(path: &Path) -> Result<Option<String>, GitError> {
    let repo = Repo::open(path)?;
    let Ok(subs) = repo.inner.submodules() else {
        return Ok(None);
    };
    let paths: Vec<String> = subs
        .iter()
        .map(|s| s.path().display().to_string())
        .collect();
    if paths.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!(
        "submodules are not checked out in stream worktrees; left empty: {} (run `git submodule \
         update --init` in the worktree, or in `post_create`, if the stream needs them)",
        paths.join(", ")
    )))
}

impl Workspaces for WorktreeWorkspaces {
    fn set_progress(&mut self, sink: ProgressSink) {
        self.progress = Some(sink);
    }

    fn prepare(
        &mut self,
        stream: &Stream,
        graph: &StreamGraph,
    ) -> Result<Placement, PrepareFailure> {
        if stream.id() == MAIN_STREAM {
            return Ok(
                self.root_placement(vec!["the `main` stream runs in the project root".into()])
            );
        }
        self.try_prepare(stream, graph)
    }

    fn worker_started(&mut self, stream: &str, placement: &Placement, pid: u32) {
        if placement.branch.is_none() {
            return;
        }
        let result = Repo::open(&self.project.root).and_then(|repo| {
            worktree::lock(&repo, &placement.dir, &worktree::lock_reason(stream, pid))
        });
        if let Err(e) = result {
            tracing::warn!("stream {stream}: {}", describe(&e));
        }
    }

    fn holder(&self, stream: &Stream) -> Option<crate::proc::Found> {
        if stream.id() == MAIN_STREAM {
            return None;
        }
        let names = StreamNames::new(stream.id());
        let path = self.project.root.join(names.worktree_rel());
        let repo = Repo::open(&self.project.root).ok()?;
        let held = worktree::list(&repo)
            .ok()?
            .into_iter()
            .find(|w| worktree::same_path(&w.path, &path))?;
        let leader = held.lock_holder()?;
        Some(crate::proc::Found {
            stream: stream.id().to_string(),
            pid: leader.pid,
            leader,
            record: None,
            attempt: 0,
            log: None,
            dir: path,
            branch: Some(names.branch()),
        })
    }

    fn worker_finished(&mut self, stream: &str, placement: &Placement) -> Finished {
        let mut finished = Finished::default();
        let Some(branch) = &placement.branch else {
            return finished;
        };
        let unlocked =
            Repo::open(&self.project.root).and_then(|repo| worktree::unlock(&repo, &placement.dir));
        if let Err(e) = unlocked {
            finished.notes.push(describe(&e));
        }
        let includes = include::Includes::load(&self.project.root);
        let result = includes.and_then(|includes| {
            leftovers(
                &placement.dir,
                stream,
                branch,
                self.config.auto_commit,
                includes.as_ref(),
            )
        });
        match result {
            Ok(Leftovers::None) => {}
            Ok(Leftovers::Committed { files, commit }) => {
                finished.notes.push(format!(
                    "committed {files} file(s) the worker left uncommitted on {branch} ({})",
                    short(commit)
                ));
            }
            Ok(Leftovers::Attention(attention)) => finished.attention = Some(attention),
            Err(e) => {
                finished.notes.push(describe(&e));
                finished.attention = Some(Attention::DirtyFinish {
                    dir: placement.dir.clone(),
                    files: Vec::new(),
                });
            }
        }
        finished
    }
}

enum Leftovers {
    None,
    Committed { files: usize, commit: git2::Oid },
    Attention(Attention),
}

/// Commits everything uncommitted (respecting ignores) in the worktree at `dir`, if allowed and
/// only on the stream's own branch: a worktree whose HEAD is elsewhere (detached, another
/// branch) is left as it is and needs a person, since its work is not on the branch that
/// dependents start from. A file `.worktreeinclude` selects is never committed, even if the
/// worker un-ignored or staged it: it is a copy of the root's local configuration.
fn leftovers(
    dir: &Path,
    stream: &str,
    branch: &str,
    auto_commit: bool,
    includes: Option<&include::Includes>,
) -> Result<Leftovers, GitError> {
    if let Some(admin) = worktree::orphaned_admin(dir) {
        return Ok(Leftovers::Attention(Attention::Orphaned {
            dir: dir.to_path_buf(),
            admin,
        }));
    }
    let repo = Repo::open(dir)?;
    let head_branch = repo.current_branch();
    if head_branch.as_deref() != Some(branch) {
        return Ok(Leftovers::Attention(Attention::LeftBranch {
            dir: dir.to_path_buf(),
            branch: branch.to_string(),
            head_branch,
            head: repo
                .head_commit()
                .map(|c| c.id().to_string())
                .unwrap_or_default(),
        }));
    }
    let covered = |p: &Path| includes.is_some_and(|i| i.covers(p));
    let dirty: Vec<String> = repo
        .dirty_files()?
        .into_iter()
        .map(|f| f.path)
        .filter(|p| !covered(Path::new(p.trim_end_matches('/'))))
        .collect();
    if dirty.is_empty() {
        return Ok(Leftovers::None);
    }
    if !auto_commit {
        return Ok(Leftovers::Attention(Attention::DirtyFinish {
            dir: dir.to_path_buf(),
            files: dirty,
        }));
    }
    let tree = stage_all_but_includes(&repo, branch, &covered)?;
    let err = |source| GitError::Commit {
        branch: branch.into(),
        source,
    };
    let parent = repo.head_commit()?;
    if tree.id() == parent.tree_id() {
        return Ok(Leftovers::None);
    }
    let sig = repo.signature();
    let message = format!(
        "orchestrate: commit work left uncommitted by stream {stream}'s worker\n\n\
         Made automatically by orchestrate (auto_commit) when the worker exited.\n"
    );
    // libgit2 moves HEAD only if it still points at `parent`: compare-and-swap.
    let commit = repo
        .inner
        .commit(Some("HEAD"), &sig, &sig, &message, &tree, &[&parent])
        .map_err(err)?;
    Ok(Leftovers::Committed {
        files: dirty.len(),
        commit,
    })
}

/// Stages every change (respecting ignores) except paths `covered` by `.worktreeinclude`,
/// which are also taken out of the index if the worker staged them; returns the tree.
fn stage_all_but_includes<'r>(
    repo: &'r Repo,
    branch: &str,
    covered: &dyn Fn(&Path) -> bool,
) -> Result<git2::Tree<'r>, GitError> {
    let err = |source| GitError::Commit {
        branch: branch.into(),
        source,
    };
    let skip = |path: &Path, _: &[u8]| i32::from(covered(path));
    let mut index = repo.inner.index().map_err(err)?;
    index
        .add_all(
            ["*"],
            git2::IndexAddOption::DEFAULT,
            Some(&mut |p, m| skip(p, m)),
        )
        .map_err(err)?;
    index
        .update_all(["*"], Some(&mut |p, m| skip(p, m)))
        .map_err(err)?;
    let head_tree = repo.head_commit()?.tree().map_err(err)?;
    let staged: Vec<PathBuf> = index
        .iter()
        .map(|e| PathBuf::from(String::from_utf8_lossy(&e.path).into_owned()))
        .filter(|p| covered(p) && head_tree.get_path(p).is_err())
        .collect();
    for path in staged {
        index.remove_path(&path).map_err(err)?;
    }
    index.write().map_err(err)?;
    let tree = index.write_tree().map_err(err)?;
    repo.inner.find_tree(tree).map_err(err)
}

/// An error and its hint as one line, for reasons shown in `status`.
fn describe(e: &GitError) -> String {
    use crate::error::Diagnostic;
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    if let Some(hint) = e.hint() {
        text.push_str(&format!(" (hint: {hint})"));
    }
    text
}
