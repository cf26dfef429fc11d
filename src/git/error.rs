//! `GitError`: every git operation `orchestrate` performs, named, with the path, branch or
//! stream it concerned and the libgit2 error as its source.

use std::path::PathBuf;

use crate::error::Diagnostic;
use crate::exit_codes;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot open the git repository at {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: git2::Error,
    },
    #[error("cannot read HEAD of {path}")]
    Head {
        path: PathBuf,
        #[source]
        source: git2::Error,
    },
    #[error("{path} has no branch checked out (detached HEAD or unborn branch)")]
    NoBranch { path: PathBuf },
    #[error("{path} has no commit yet: there is nothing to branch stream worktrees from")]
    NoCommit { path: PathBuf },
    #[error("cannot read branch `{branch}`")]
    ReadBranch {
        branch: String,
        #[source]
        source: git2::Error,
    },
    #[error("branch `{branch}` does not exist")]
    MissingBranch { branch: String },
    #[error("cannot create branch `{branch}`")]
    CreateBranch {
        branch: String,
        #[source]
        source: git2::Error,
    },
    #[error("`{branch}` moved from {expected} to {found} meanwhile; it was left as it is")]
    Moved {
        branch: String,
        expected: String,
        found: String,
    },
    #[error("cannot delete branch `{branch}`")]
    DeleteBranch {
        branch: String,
        #[source]
        source: git2::Error,
    },
    #[error("cannot compare `{from}` with `{to}`")]
    Compare {
        from: String,
        to: String,
        #[source]
        source: git2::Error,
    },
    #[error("cannot merge `{theirs}` into `{ours}`")]
    Merge {
        ours: String,
        theirs: String,
        #[source]
        source: git2::Error,
    },
    #[error("cannot commit on `{branch}`")]
    Commit {
        branch: String,
        #[source]
        source: git2::Error,
    },
    #[error("cannot check out files in {path}")]
    Checkout {
        path: PathBuf,
        #[source]
        source: git2::Error,
    },
    #[error("cannot read the status of {path}")]
    Status {
        path: PathBuf,
        #[source]
        source: git2::Error,
    },
    #[error("cannot list the worktrees of {path}")]
    ListWorktrees {
        path: PathBuf,
        #[source]
        source: git2::Error,
    },
    #[error(
        "cannot clone {from} into {to}: include_copy = \"reflink\" asks for copy-on-write \
         clones and this file system does not make them"
    )]
    NoReflink {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot add worktree `{name}` at {path} for branch `{branch}`")]
    AddWorktree {
        name: String,
        path: PathBuf,
        branch: String,
        #[source]
        source: git2::Error,
    },
    #[error(
        "the checkout of worktree {path} is not complete, and finishing it would overwrite: {}",
        summarize(.files)
    )]
    Unfinished { path: PathBuf, files: Vec<String> },
    #[error("{path} exists but is not the worktree of branch `{branch}`")]
    WorktreeInTheWay { path: PathBuf, branch: String },
    #[error("branch `{branch}` is already checked out at {path}")]
    CheckedOutElsewhere { branch: String, path: PathBuf },
    #[error("cannot {action} worktree `{name}`")]
    Worktree {
        action: &'static str,
        name: String,
        #[source]
        source: git2::Error,
    },
    #[error("cannot {action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error("{path} has uncommitted changes: {}", summarize(.files))]
    RootDirty { path: PathBuf, files: Vec<String> },
    #[error(
        "merging {branch} would overwrite files in {path} that are not committed: {}; nothing was changed",
        summarize(.files)
    )]
    UntrackedInTheWay {
        path: PathBuf,
        branch: String,
        files: Vec<String>,
    },
    #[error("another git process holds {path}; nothing was changed")]
    IndexLocked { path: PathBuf },
    #[error("cannot create branch `{branch}`: another git process holds its lock {path}")]
    BranchLocked { branch: String, path: PathBuf },
    #[error("{path} is in the middle of a {operation}")]
    Busy { path: PathBuf, operation: String },
    #[error("{path} is on `{current}`, not on the target branch `{target}`")]
    NotOnTarget {
        path: PathBuf,
        current: String,
        target: String,
    },
    #[error("another `orchestrate merge` is running ({holder}; it holds {path})")]
    MergeRunning { path: PathBuf, holder: String },
    #[error(transparent)]
    PostCreate(#[from] crate::worker::post_create::PostCreateError),
}

impl GitError {
    /// `map_err` adapter for a file-system step: `.map_err(GitError::io("write", &path))`.
    pub fn io(action: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}

impl Diagnostic for GitError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            Self::Open { .. } => "run inside a git repository, or pass `--project DIR`".into(),
            Self::NoBranch { .. } => {
                "check out the branch to merge into (`git switch <branch>`), or pass `--into BRANCH`"
                    .into()
            }
            Self::NoCommit { .. } => {
                "make a first commit (`git add -A && git commit -m initial`), then run again".into()
            }
            Self::Moved { .. } => {
                "someone changed it while orchestrate worked; run the command again".into()
            }
            Self::MissingBranch { .. } => "`git branch --list 'stream/*'` lists stream branches".into(),
            Self::WorktreeInTheWay { path, .. } => format!(
                "move {} away (or remove it if it holds nothing you need), then run again",
                path.display()
            ),
            Self::Unfinished { path, .. } => format!(
                "its checkout was cut short; keep what you need from {}, remove it \
                 (`git worktree remove --force {}`), then run again",
                path.display(),
                path.display()
            ),
            Self::CheckedOutElsewhere { path, .. } => format!(
                "switch {} to another branch, or remove that worktree (`git worktree remove`)",
                path.display()
            ),
            Self::RootDirty { .. } => {
                "commit or stash them (`git stash -u`), then run `orchestrate merge` again".into()
            }
            Self::UntrackedInTheWay { .. } => {
                "move them away or commit them (`git stash -u` stashes untracked files too), then run `orchestrate merge` again".into()
            }
            Self::IndexLocked { path } | Self::BranchLocked { path, .. } => format!(
                "wait for it to finish and run again; if no git process is running, a crashed one \
                 left the lock: remove {}",
                path.display()
            ),
            Self::Busy { .. } => {
                "finish it or abort it (`git merge --abort`, `git rebase --abort`, …) first".into()
            }
            Self::NotOnTarget { target, current, .. } => format!(
                "`git switch {target}` first, or merge into the current branch with `--into {current}`"
            ),
            Self::NoReflink { .. } => "set include_copy = \"auto\" in .claude/orchestrator/config.toml \
                (a clone where the file system can, else a copy), or put the project on a file \
                system with copy-on-write clones (XFS with reflink, btrfs)"
                .into(),
            Self::MergeRunning { .. } => {
                "wait for it to finish, then run `orchestrate merge` again".into()
            }
            Self::State(e) => return e.hint(),
            Self::PostCreate(e) => return e.hint(),
            _ => return None,
        })
    }

    fn exit_code(&self) -> i32 {
        match self {
            Self::MergeRunning { .. } => exit_codes::REFUSED,
            _ => exit_codes::FAILURE,
        }
    }
}

pub type Result<T, E = GitError> = std::result::Result<T, E>;

/// The first few paths of a list, then "and N more".
pub fn summarize(files: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = files
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if files.len() > SHOWN {
        text.push_str(&format!(" and {} more", files.len() - SHOWN));
    }
    text
}
