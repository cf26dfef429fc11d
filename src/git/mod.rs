//! Everything `orchestrate` does with git, through git2 (never a `git` subprocess): stream
//! names, worktrees, base commits, merge-back previews, merges, cleaning, `.git/info/exclude`
//! and `.worktreeinclude`. Synchronous; each caller opens its own [`repo::Repo`].

pub mod base;
pub mod clean;
pub mod error;
pub mod exclude;
pub mod include;
pub mod merge;
pub mod names;
pub mod preview;
pub mod records;
pub mod repo;
pub mod workspaces;
pub mod worktree;

pub use error::GitError;
pub use names::StreamNames;
pub use preview::{MergeBackPlan, MergePreview, StreamMerge, hints};
pub use workspaces::WorktreeWorkspaces;

use crate::project::Project;

/// Commits on `branch` since `base` (hex commit id): status's "commits ahead of base".
/// `None` when the branch or base cannot be found.
pub fn commits_ahead(
    project: &Project,
    base: &str,
    branch: &str,
) -> Result<Option<usize>, GitError> {
    let repo = repo::Repo::open(&project.root)?;
    let Ok(base) = git2::Oid::from_str(base) else {
        return Ok(None);
    };
    let Some(tip) = repo.branch_tip(branch)? else {
        return Ok(None);
    };
    if repo.inner.find_commit(base).is_err() {
        return Ok(None);
    }
    repo.commits_ahead(base, tip).map(Some)
}

/// A stream's recorded branch and base, for `status`.
pub fn recorded_stream(
    project: &Project,
    stream: &str,
) -> Result<Option<records::StreamRecord>, GitError> {
    match records::Records::open_existing(project)? {
        Some(r) => r.stream(stream),
        None => Ok(None),
    }
}
