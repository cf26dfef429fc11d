//! Merge-back preview: for each stream branch, in dependency order, whether it merges cleanly
//! into the target *with the earlier streams already merged*, computed entirely in memory.
//!
//! The merges are made with `merge_commits` on a repository handle whose object database writes
//! to an in-memory (mempack) backend, so a preview adds no objects to `.git` and touches no
//! checkout, index or ref. The result is a pure data model ([`MergeBackPlan`]) that `ui` renders.

use git2::Oid;
use serde::Serialize;

use super::error::{GitError, Result};
use super::repo::{Repo, conflict_paths};
use super::workspaces::MAIN_STREAM;
use crate::cmdline::quote;
use crate::config::Config;
use crate::graph::{Stream, StreamGraph};
use crate::names::StreamNames;
use crate::project::Project;
use crate::state::StateStore;

/// What merging one stream's branch would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MergePreview {
    Clean,
    Conflicts {
        paths: Vec<String>,
    },
    /// The target already contains the branch.
    AlreadyMerged,
    /// The stream is not complete and its branch has no commit the target lacks: it has no
    /// work of its own yet (a failed or stopped stream whose worker committed nothing), which
    /// is not the same as merged.
    NoCommits,
    /// The stream's tasks are not complete; not part of the merge.
    Incomplete,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamMerge {
    pub stream: String,
    pub name: String,
    pub branch: String,
    /// Commits on the branch that the target does not have.
    pub commits_ahead: usize,
    pub preview: MergePreview,
}

/// Everything the merge-back hints show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MergeBackPlan {
    pub target: String,
    /// Stream branches in dependency order.
    pub streams: Vec<StreamMerge>,
    /// The exact commands that would perform the merges.
    pub commands: Vec<String>,
}

impl MergeBackPlan {
    /// Streams a merge would bring in (complete, not yet merged).
    pub fn to_merge(&self) -> impl Iterator<Item = &StreamMerge> {
        self.streams.iter().filter(|s| {
            matches!(
                s.preview,
                MergePreview::Clean | MergePreview::Conflicts { .. }
            )
        })
    }

    pub fn first_conflict(&self) -> Option<&StreamMerge> {
        self.streams
            .iter()
            .find(|s| matches!(s.preview, MergePreview::Conflicts { .. }))
    }
}

/// The commit message of a stream's merge.
pub fn merge_message(stream: &str, name: &str) -> String {
    format!("Merge stream {stream}: {name}")
}

/// The branch merge-back targets: `into`, else the one recorded when `start` ran, else the
/// config's `target_branch`, else the branch the project root has checked out.
pub fn target_branch(project: &Project, repo: &Repo, into: Option<&str>) -> Result<String> {
    if let Some(b) = into {
        return Ok(b.to_string());
    }
    if let Some(store) = StateStore::open_existing(&project.state_db())?
        && let Some(t) = store.run()?.and_then(|r| r.target_branch)
    {
        return Ok(t);
    }
    if let Some(t) = Config::load(project).ok().and_then(|c| c.target_branch) {
        return Ok(t);
    }
    repo.current_branch().ok_or_else(|| GitError::NoBranch {
        path: repo.path.clone(),
    })
}

/// Merge-back hints for the streams of `graph` that have a branch: one call for `start` and
/// `status`. `into` overrides the target branch.
pub fn hints(project: &Project, graph: &StreamGraph, into: Option<&str>) -> Result<MergeBackPlan> {
    let repo = Repo::open(&project.root)?;
    let target = target_branch(project, &repo, into)?;
    let streams: Vec<&Stream> = graph.streams().iter().collect();
    plan(&repo, &target, &streams, |s| s.record.counts.is_complete())
}

/// Previews merging `streams` (in the given, dependency, order) into `target`.
pub fn plan(
    repo: &Repo,
    target: &str,
    streams: &[&Stream],
    is_complete: impl Fn(&Stream) -> bool,
) -> Result<MergeBackPlan> {
    // A handle of our own whose object database writes to memory: the caller's `repo` must
    // keep writing to disk (a merge made through it after a preview must persist).
    let repo = &Repo::open_in_memory(&repo.path)?;
    let start = repo.require_tip(target)?;
    let mut current = start;
    let mut out = Vec::new();
    for stream in streams {
        if stream.id() == MAIN_STREAM {
            continue;
        }
        let names = StreamNames::new(stream.id());
        let branch = names.branch();
        let Some(tip) = repo.branch_tip(&branch)? else {
            continue;
        };
        let commits_ahead = repo.commits_ahead(start, tip)?;
        let preview = if repo.contains(current, tip)? {
            if is_complete(stream) {
                MergePreview::AlreadyMerged
            } else {
                MergePreview::NoCommits
            }
        } else if !is_complete(stream) {
            MergePreview::Incomplete
        } else {
            match merge_in_memory(repo, current, tip, target, &branch, stream)? {
                Ok(merged) => {
                    current = merged;
                    MergePreview::Clean
                }
                Err(paths) => MergePreview::Conflicts { paths },
            }
        };
        out.push(StreamMerge {
            stream: stream.id().into(),
            name: stream.record.name.clone(),
            branch,
            commits_ahead,
            preview,
        });
    }
    let mut plan = MergeBackPlan {
        target: target.into(),
        streams: out,
        commands: Vec::new(),
    };
    plan.commands = commands(&plan);
    Ok(plan)
}

/// Merges `tip` into `ours` as a merge commit (not referenced by any ref); `Err(paths)` on
/// conflicts. Where the objects go depends on the repository's object database.
pub fn merge_in_memory(
    repo: &Repo,
    ours: Oid,
    tip: Oid,
    target: &str,
    branch: &str,
    stream: &Stream,
) -> Result<std::result::Result<Oid, Vec<String>>> {
    let err = |source| GitError::Merge {
        ours: target.into(),
        theirs: branch.into(),
        source,
    };
    let our_commit = repo.commit(ours)?;
    let their_commit = repo.commit(tip)?;
    let mut index = repo
        .inner
        .merge_commits(&our_commit, &their_commit, None)
        .map_err(err)?;
    if index.has_conflicts() {
        return Ok(Err(conflict_paths(&index)));
    }
    let tree = repo
        .inner
        .find_tree(index.write_tree_to(&repo.inner).map_err(err)?)
        .map_err(err)?;
    let sig = repo.signature();
    let message = merge_message(stream.id(), &stream.record.name);
    let oid = repo
        .inner
        .commit(
            None,
            &sig,
            &sig,
            &message,
            &tree,
            &[&our_commit, &their_commit],
        )
        .map_err(|source| GitError::Commit {
            branch: target.into(),
            source,
        })?;
    Ok(Ok(oid))
}

fn commands(plan: &MergeBackPlan) -> Vec<String> {
    let merges: Vec<String> = plan
        .to_merge()
        .map(|s| {
            format!(
                "git merge --no-ff -m {} {}",
                quote(&merge_message(&s.stream, &s.name)),
                quote(&s.branch)
            )
        })
        .collect();
    if merges.is_empty() {
        return merges;
    }
    let mut out = vec![format!("git switch {}", quote(&plan.target))];
    out.extend(merges);
    out
}
