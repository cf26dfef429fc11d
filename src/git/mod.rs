//! Everything `orchestrate` does with git, through git2 (never a `git` subprocess): stream
//! names, worktrees, base commits, merge-back previews, merges, cleaning, `.git/info/exclude`
//! and `.worktreeinclude`. Synchronous; each caller opens its own [`repo::Repo`].

pub mod base;
pub mod clean;
pub mod error;
pub mod exclude;
pub mod include;
pub mod merge;
pub mod preview;
pub mod records;
pub mod repo;
pub mod workspaces;
pub mod worktree;

pub use error::GitError;
pub use crate::names::StreamNames;
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

/// What `status` shows of a stream's branch: its name, recorded base, and commits since.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BranchStatus {
    pub branch: String,
    pub base: Option<String>,
    pub commits_ahead_of_base: Option<usize>,
}

/// One call for `status`: the stream's branch with its base and commits ahead of it, when the
/// stream has (had) a worktree; `None` otherwise.
pub fn branch_status(project: &Project, stream: &str) -> Result<Option<BranchStatus>, GitError> {
    let Some(rec) = recorded_stream(project, stream)? else {
        return Ok(None);
    };
    let ahead = match &rec.base {
        Some(base) => commits_ahead(project, base, &rec.branch)?,
        None => None,
    };
    Ok(Some(BranchStatus {
        branch: rec.branch,
        base: rec.base,
        commits_ahead_of_base: ahead,
    }))
}

/// [`branch_status`] of every stream with a recorded branch, by stream id: one read of the
/// records and one repository open, so `status` stays fast on large plans. Empty when
/// `start --worktrees` never ran here.
pub fn branch_statuses(
    project: &Project,
) -> Result<std::collections::HashMap<String, BranchStatus>, GitError> {
    let Some(records) = records::Records::open_existing(project)? else {
        return Ok(Default::default());
    };
    let recorded = records.streams()?;
    if recorded.is_empty() {
        return Ok(Default::default());
    }
    let repo = repo::Repo::open(&project.root)?;
    let mut out = std::collections::HashMap::new();
    for rec in recorded {
        let tip = repo.branch_tip(&rec.branch)?;
        let base = rec
            .base
            .as_deref()
            .and_then(|b| git2::Oid::from_str(b).ok());
        let ahead = match (base, tip) {
            (Some(base), Some(tip)) if repo.inner.find_commit(base).is_ok() => {
                Some(repo.commits_ahead(base, tip)?)
            }
            _ => None,
        };
        out.insert(
            rec.stream,
            BranchStatus {
                branch: rec.branch,
                base: rec.base,
                commits_ahead_of_base: ahead,
            },
        );
    }
    Ok(out)
}

/// Where a stream would run and on what, if it started now (for `start --dry-run`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlannedPlacement {
    pub dir: std::path::PathBuf,
    pub branch: Option<String>,
    /// "reuse existing branch", "HEAD of main (1a2b3c4d5e)", "merge of …", or the conflict.
    pub base: String,
    /// Merging the dependency branches would conflict: the stream would be blocked.
    pub blocked: bool,
}

/// Computes [`PlannedPlacement`] without changing anything: a base merge is made in an
/// in-memory object database and thrown away.
pub fn plan_placement(
    project: &Project,
    stream: &crate::graph::Stream,
) -> Result<PlannedPlacement, GitError> {
    if stream.id() == workspaces::MAIN_STREAM {
        return Ok(PlannedPlacement {
            dir: project.root.clone(),
            branch: None,
            base: "the project root".into(),
            blocked: false,
        });
    }
    let names = StreamNames::new(stream.id());
    let repo = repo::Repo::open(&project.root)?;
    let dir = project.root.join(names.worktree_rel());
    let branch = names.branch();
    if let Some(tip) = repo.branch_tip(&branch)? {
        return Ok(PlannedPlacement {
            dir,
            branch: Some(branch),
            base: format!("reuse existing branch (tip {})", repo::short(tip)),
            blocked: false,
        });
    }
    // Dependencies that have not run yet have no branch: the base is decided when they
    // complete, so say that instead of describing today's HEAD.
    let pending: Vec<String> = stream
        .dependencies
        .iter()
        .filter(|d| d.as_str() != workspaces::MAIN_STREAM)
        .map(|d| StreamNames::new(d).branch())
        .filter(|b| matches!(repo.branch_tip(b), Ok(None)))
        .collect();
    if !pending.is_empty() {
        let base = match stream.dependencies.as_slice() {
            [_] => format!("the tip of {} once it completes", pending[0]),
            deps => format!(
                "a merge of {} once they complete",
                deps.iter()
                    .map(|d| StreamNames::new(d).branch())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        return Ok(PlannedPlacement {
            dir,
            branch: Some(branch),
            base,
            blocked: false,
        });
    }
    let odb = repo.inner.odb().map_err(|source| GitError::Open {
        path: repo.path.clone(),
        source,
    })?;
    let _mempack = odb
        .add_new_mempack_backend(1000)
        .map_err(|source| GitError::Open {
            path: repo.path.clone(),
            source,
        })?;
    let (base, blocked) = match base::resolve(&repo, stream)? {
        base::Base::Commit { how, .. } if how.starts_with("merge") => (how, false),
        base::Base::Commit { oid, how } => (format!("{how} ({})", repo::short(oid)), false),
        base::Base::Conflict { branches, paths } => (
            format!(
                "blocked: merging {} conflicts in {}",
                branches.join(" and "),
                error::summarize(&paths)
            ),
            true,
        ),
    };
    Ok(PlannedPlacement {
        dir,
        branch: Some(branch),
        base,
        blocked,
    })
}
