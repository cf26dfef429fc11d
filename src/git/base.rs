//! The commit a stream's new branch starts from, resolved when the stream starts:
//! no dependencies → the run's base; one → that dependency's branch tip; several → a merge of
//! their tips made in memory and committed (the commit is only referenced by the new branch).
//! A conflicting merge yields the conflicting paths and no commit.
//!
//! The run's base (promise 8 of PRODUCT.md) is the target branch and its commit when the run
//! began, recorded in the state store by the first `start` that needs it: the user switching
//! the main checkout to another branch, or committing on it, during a run changes no stream's
//! base. A run is *new* when a `start` finds no run recorded, or finds every stream that the
//! recorded run prepared (every stream with a worktree record) complete, cancelled, gone from
//! the task database or removed by `clean`; a `start` decides this once, when it prepares its
//! first stream, and keeps its answer.

use git2::Oid;

use super::error::{GitError, Result};
use super::repo::{Repo, conflict_paths};
use crate::graph::{Stream, StreamGraph};
use crate::names::StreamNames;
use crate::project::Project;
use crate::state::StateStore;

/// Where the streams of a run without dependencies start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunBase {
    /// The branch merge-back targets (`None` when the run began on a detached HEAD).
    pub target: Option<String>,
    pub commit: Oid,
    /// Recorded in the state store (else: HEAD now, for a preview before any run).
    pub recorded: bool,
}

impl RunBase {
    fn how(&self) -> String {
        let on = self.target.as_deref().unwrap_or("HEAD");
        if self.recorded {
            format!("the run's base: {on} when the run began")
        } else {
            format!("HEAD of {on}")
        }
    }
}

/// The run's base for a `start` about to prepare streams of `graph`: the recorded one while
/// the run goes on, else a new one (the target branch's tip now: `target` if configured, else
/// the branch the project root has checked out), recorded.
pub fn run_base(
    project: &Project,
    repo: &Repo,
    graph: &StreamGraph,
    target: Option<&str>,
) -> Result<RunBase> {
    let store = StateStore::open(&project.state_db())?;
    if let Some(base) = recorded(&store, repo)?
        && run_goes_on(&store, graph)?
    {
        return Ok(base);
    }
    let target = target.map(str::to_string).or_else(|| repo.current_branch());
    let commit = match &target {
        Some(t) => match repo.branch_tip(t)? {
            Some(tip) => tip,
            None => repo.head_commit()?.id(),
        },
        None => repo.head_commit()?.id(),
    };
    store.set_run(target.as_deref(), Some(&commit.to_string()))?;
    Ok(RunBase {
        target,
        commit,
        recorded: true,
    })
}

/// The recorded run base if there is one (and its commit still exists), else HEAD now: for
/// previews and re-checks, which record nothing.
pub fn current_run_base(project: &Project, repo: &Repo) -> Result<RunBase> {
    if let Some(store) = StateStore::open_existing(&project.state_db())?
        && let Some(base) = recorded(&store, repo)?
    {
        return Ok(base);
    }
    Ok(RunBase {
        target: repo.current_branch(),
        commit: repo.head_commit()?.id(),
        recorded: false,
    })
}

fn recorded(store: &StateStore, repo: &Repo) -> Result<Option<RunBase>> {
    let Some(run) = store.run()? else {
        return Ok(None);
    };
    let commit = run
        .base_commit
        .as_deref()
        .and_then(|c| Oid::from_str(c).ok())
        .filter(|c| repo.inner.find_commit(*c).is_ok());
    Ok(commit.map(|commit| RunBase {
        target: run.target_branch,
        commit,
        recorded: true,
    }))
}

/// Some stream the recorded run prepared is still unfinished.
fn run_goes_on(store: &StateStore, graph: &StreamGraph) -> Result<bool> {
    Ok(store.worktrees()?.iter().any(|r| {
        graph.get(&r.stream).is_some_and(|s| {
            let counts = s.record.counts;
            !counts.is_complete() && !counts.is_cancelled()
        })
    }))
}

/// Where a stream's dependencies' work is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    Commit {
        oid: Oid,
        /// How it was chosen, for the user ("HEAD of main", "tip of stream/A", "merge of …").
        how: String,
    },
    /// Merging the dependency branches conflicts in these paths.
    Conflict {
        branches: Vec<String>,
        paths: Vec<String>,
        /// The tips the merge was tried on (hex), in dependency order.
        tips: Vec<String>,
    },
}

/// The tips of `stream`'s dependencies: `(branch, tip)`. A dependency without a branch (the
/// `main` stream, or one that ran in the shared checkout) contributes the run's base. With
/// `strict_files`, the complete streams it waited for over shared files count as dependencies
/// (their work is what the shared files must build on).
pub fn dependency_tips(repo: &Repo, stream: &Stream, run: &RunBase) -> Result<Vec<(String, Oid)>> {
    let mut tips = Vec::new();
    let claimed = stream
        .claim_waits
        .iter()
        .filter(|c| c.complete)
        .map(|c| &c.stream);
    for dep in stream.dependencies.iter().chain(claimed) {
        let branch = StreamNames::new(dep).branch();
        match repo.branch_tip(&branch)? {
            Some(tip) => tips.push((branch, tip)),
            None => tips.push((
                run.target.clone().unwrap_or_else(|| "HEAD".into()),
                run.commit,
            )),
        }
    }
    Ok(tips)
}

/// Resolves the base for a stream whose branch does not exist yet.
pub fn resolve(repo: &Repo, stream: &Stream, run: &RunBase) -> Result<Base> {
    let tips = dependency_tips(repo, stream, run)?;
    match tips.as_slice() {
        [] => Ok(Base::Commit {
            oid: run.commit,
            how: run.how(),
        }),
        [(branch, tip)] => Ok(Base::Commit {
            oid: *tip,
            how: format!("tip of {branch}"),
        }),
        many => merge_tips(repo, stream.id(), many),
    }
}

/// Merges the tips one by one; each merge is a real commit object, referenced only by the
/// stream's branch once the caller creates it.
fn merge_tips(repo: &Repo, stream: &str, tips: &[(String, Oid)]) -> Result<Base> {
    let branches: Vec<String> = tips.iter().map(|(b, _)| b.clone()).collect();
    let (first_branch, mut current) = tips[0].clone();
    let mut merged = vec![first_branch];
    for (branch, tip) in &tips[1..] {
        merged.push(branch.clone());
        if repo.contains(current, *tip)? {
            continue;
        }
        if repo.contains(*tip, current)? {
            current = *tip;
            continue;
        }
        let ours = repo.commit(current)?;
        let theirs = repo.commit(*tip)?;
        let merge_err = |source| GitError::Merge {
            ours: merged[..merged.len() - 1].join(" + "),
            theirs: branch.clone(),
            source,
        };
        let mut index = repo
            .inner
            .merge_commits(&ours, &theirs, None)
            .map_err(merge_err)?;
        if index.has_conflicts() {
            return Ok(Base::Conflict {
                branches,
                paths: conflict_paths(&index),
                tips: tips.iter().map(|(_, t)| t.to_string()).collect(),
            });
        }
        let tree_id = index.write_tree_to(&repo.inner).map_err(merge_err)?;
        let tree = repo.inner.find_tree(tree_id).map_err(merge_err)?;
        let sig = repo.signature();
        let message = format!(
            "orchestrate: base of stream {stream}: merge {}\n\nMade by orchestrate so that {stream} starts from all of its dependencies' work.\n",
            merged.join(", ")
        );
        current = repo
            .inner
            .commit(None, &sig, &sig, &message, &tree, &[&ours, &theirs])
            .map_err(|source| GitError::Commit {
                branch: StreamNames::new(stream).branch(),
                source,
            })?;
    }
    Ok(Base::Commit {
        oid: current,
        how: format!("merge of {}", branches.join(", ")),
    })
}

/// Resolves the base in memory (nothing is written to `.git`) and returns the conflict, if
/// merging the dependencies' branches conflicts.
pub fn probe(repo: &Repo, stream: &Stream, run: &RunBase) -> Result<Option<Base>> {
    let repo = Repo::open_in_memory(&repo.path)?;
    Ok(match resolve(&repo, stream, run)? {
        conflict @ Base::Conflict { .. } => Some(conflict),
        Base::Commit { .. } => None,
    })
}

/// Dependency branches whose current tip the (reused) branch `tip` does not contain.
pub fn missing_dependency_tips(
    repo: &Repo,
    stream: &Stream,
    tip: Oid,
    run: &RunBase,
) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    for (branch, dep_tip) in dependency_tips(repo, stream, run)? {
        if !repo.contains(tip, dep_tip)? {
            missing.push(branch);
        }
    }
    Ok(missing)
}

/// Whether `branch`'s tip shares history with `base`: a branch that does not (another
/// project's, an orphan branch) cannot be merged back with `git merge`.
pub fn related(repo: &Repo, tip: Oid, base: Oid) -> Result<bool> {
    match repo.inner.merge_base(tip, base) {
        Ok(_) => Ok(true),
        Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(false),
        Err(source) => Err(GitError::Compare {
            from: base.to_string(),
            to: tip.to_string(),
            source,
        }),
    }
}
