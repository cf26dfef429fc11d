//! Everything `orchestrate` does with git, through git2 (never a `git` subprocess): stream
//! names, worktrees, base commits, merge-back previews, merges, cleaning, `.git/info/exclude`
//! and `.worktreeinclude`. Synchronous; each caller opens its own [`repo::Repo`].

pub mod base;
pub mod beneath;
pub mod checkout;
pub mod clean;
pub mod error;
pub mod exclude;
pub mod fill;
pub mod include;
pub mod index_lock;
pub mod info;
pub mod merge;
pub mod occupants;
pub mod preview;
pub mod radar;
pub mod recheck;
pub mod repo;
pub mod rescue;
pub mod scratch;
pub mod workspaces;
pub mod worktree;

pub use crate::names::StreamNames;
pub use error::GitError;
/// A commit id, as the rest of the program passes it around (git2's type, named here so that
/// git2 itself stays inside `git/`).
pub use git2::Oid;
pub use info::{RepoInfo, is_valid_ref_name};
pub use preview::{MergeBackPlan, MergePreview, StreamMerge, hints};
pub use workspaces::WorktreeWorkspaces;

use crate::project::Project;

pub use crate::workspace::Progress;

/// When a long step reports its progress: once it has lasted `quiet`, then once a second.
pub(crate) struct Ticker {
    started: std::time::Instant,
    next: std::time::Duration,
}

impl Ticker {
    /// A step slower than this shows its progress.
    pub(crate) const QUIET: std::time::Duration = std::time::Duration::from_secs(1);

    pub(crate) fn new(quiet: std::time::Duration) -> Self {
        Self {
            started: std::time::Instant::now(),
            next: quiet,
        }
    }

    /// Whether to report now.
    pub(crate) fn due(&mut self) -> bool {
        let due = self.started.elapsed() >= self.next;
        if due {
            self.next = self.started.elapsed() + std::time::Duration::from_secs(1);
        }
        due
    }
}

/// What `status` shows of a stream's branch: its name, recorded base, and commits since.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BranchFacts {
    pub branch: String,
    pub base: Option<String>,
    /// Commits on the branch since its base (not to be confused with commits ahead of the
    /// merge-back target, which the merge-back preview shows).
    pub commits_since_base: Option<usize>,
}

/// [`BranchFacts`] of every recorded stream worktree, by stream id: one repository open, so
/// `status` stays fast on large plans. A branch deleted since (`clean --branches`) is left out.
pub fn branch_facts(
    project: &Project,
    records: &[crate::state::WorktreeRecord],
) -> Result<std::collections::HashMap<String, BranchFacts>, GitError> {
    let mut out = std::collections::HashMap::new();
    if records.is_empty() {
        return Ok(out);
    }
    let repo = repo::Repo::open(&project.root)?;
    for rec in records {
        let Some(tip) = repo.branch_tip(&rec.branch)? else {
            continue;
        };
        let base = rec
            .base
            .as_deref()
            .and_then(|b| git2::Oid::from_str(b).ok());
        let since = match base {
            Some(base) if repo.inner.find_commit(base).is_ok() => {
                Some(repo.commits_ahead(base, tip)?)
            }
            _ => None,
        };
        out.insert(
            rec.stream.clone(),
            BranchFacts {
                branch: rec.branch.clone(),
                base: rec.base.clone(),
                commits_since_base: since,
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

/// What `.worktreeinclude` would copy into a new worktree of `project` (for `start --dry-run`).
pub fn planned_includes(project: &Project) -> Result<include::Planned, GitError> {
    include::planned(&repo::Repo::open(&project.root)?)
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
    let repo = repo::Repo::open_in_memory(&project.root)?;
    let run = base::current_run_base(project, &repo)?;
    let (base, blocked) = match base::resolve(&repo, stream, &run)? {
        base::Base::Commit { how, .. } if how.starts_with("merge") => (how, false),
        base::Base::Commit { oid, how } => (format!("{how} ({})", repo::short(oid)), false),
        base::Base::Conflict {
            branches, paths, ..
        } => (
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
