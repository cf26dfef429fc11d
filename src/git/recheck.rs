//! Re-checking a durable verdict against the repository: is its cause still there? A base
//! conflict is gone once the stream's branch exists (merged by hand) or its dependencies'
//! branches now merge cleanly; a dirty finish once the worktree is clean; a worker that left
//! its branch once the worktree is back on it; a folder in the way once it is gone; an
//! unrelated branch once it is gone or shares history; an orphaned worktree once git knows it
//! again (or its folder is gone).
//!
//! [`discover`] finds what needs attention without any verdict recorded yet: stream worktrees
//! whose admin folder was deleted behind our back.

use super::error::Result;
use super::repo::Repo;
use super::{base, worktree};
use crate::graph::{Stream, StreamGraph};
use crate::model::{Attention, Block, Verdict};
use crate::names::StreamNames;
use crate::project::Project;

/// Whether `verdict` still holds for `stream`.
pub fn still_holds(project: &Project, stream: &Stream, verdict: &Verdict) -> Result<bool> {
    match verdict {
        // Git cannot tell: these hold until the user (or the clock, for a park) says so.
        Verdict::Failed { .. }
        | Verdict::Stopped
        | Verdict::Parked { .. }
        | Verdict::VerifyFailed { .. } => Ok(true),
        Verdict::Blocked { block } => block_holds(project, stream, block),
        Verdict::Attention { attention } => attention_holds(attention),
    }
}

fn block_holds(project: &Project, stream: &Stream, block: &Block) -> Result<bool> {
    let repo = Repo::open(&project.root)?;
    let names = StreamNames::new(stream.id());
    match block {
        Block::BaseConflict { tips, .. } => {
            if repo.branch_tip(&names.branch())?.is_some() {
                return Ok(false);
            }
            let run = base::current_run_base(project, &repo)?;
            let now: Vec<String> = base::dependency_tips(&repo, stream, &run)?
                .into_iter()
                .map(|(_, tip)| tip.to_string())
                .collect();
            if &now == tips {
                return Ok(true);
            }
            // The dependencies moved: try the merge again, in memory.
            Ok(base::probe(&repo, stream, &run)?.is_some())
        }
        Block::UnrelatedBranch { branch, base, .. } => {
            let (Some(tip), Ok(base)) = (repo.branch_tip(branch)?, git2::Oid::from_str(base))
            else {
                return Ok(false);
            };
            Ok(!base::related(&repo, tip, base)?)
        }
        Block::WorktreeInTheWay { path, .. } => {
            let ours = worktree::list(&repo)?.into_iter().any(|w| {
                w.valid
                    && worktree::same_path(&w.path, path)
                    && w.branch.as_deref() == Some(names.branch_ref().as_str())
            });
            Ok(path.exists() && !ours)
        }
        Block::CheckedOutElsewhere { branch, .. } => {
            let full = format!("refs/heads/{branch}");
            let in_root = repo.current_branch().as_deref() == Some(branch.as_str());
            let in_other = worktree::list(&repo)?.into_iter().any(|w| {
                w.branch.as_deref() == Some(full.as_str())
                    && !w.path.starts_with(project.worktrees_dir())
            });
            Ok(in_root || in_other)
        }
    }
}

fn attention_holds(attention: &Attention) -> Result<bool> {
    match attention {
        Attention::DirtyFinish { dir, .. } => {
            if !dir.exists() {
                return Ok(false);
            }
            Ok(!Repo::open(dir)?.dirty_files()?.is_empty())
        }
        Attention::LeftBranch { dir, branch, .. } => {
            if !dir.exists() {
                return Ok(false);
            }
            Ok(Repo::open(dir)?.current_branch().as_deref() != Some(branch.as_str()))
        }
        Attention::Orphaned { dir, .. } => Ok(worktree::orphaned_admin(dir).is_some()),
    }
}

/// Streams of `graph` whose worktree folder is still there while git's record of it is gone,
/// with the verdict to record: their dependents must not start without what is in them.
pub fn discover(project: &Project, graph: &StreamGraph) -> Vec<(String, Verdict)> {
    let Ok(repo) = Repo::open(&project.root) else {
        return Vec::new();
    };
    worktree::orphans(&repo, &project.worktrees_dir())
        .into_iter()
        .filter_map(|o| {
            let stream = graph
                .streams()
                .iter()
                .find(|s| StreamNames::new(s.id()).slug == o.slug)?;
            Some((
                stream.id().to_string(),
                Verdict::Attention {
                    attention: Attention::Orphaned {
                        dir: o.dir,
                        admin: o.admin,
                    },
                },
            ))
        })
        .collect()
}
