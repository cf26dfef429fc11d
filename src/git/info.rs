//! The little set-up needs to know about the project's git repository: whether there is one,
//! where its `info/exclude` lives, and whether a path is tracked (tracked files are never
//! edited). Read-only.

use std::path::{Path, PathBuf};

/// The project's repository, if the root is one.
pub struct RepoInfo {
    /// `<common git dir>/info/exclude` (shared by every worktree of the repository).
    pub exclude_file: PathBuf,
    index: Option<git2::Index>,
}

impl RepoInfo {
    /// `None` when `root` is not the top of a git work tree.
    pub fn open(root: &Path) -> Option<Self> {
        let repo = git2::Repository::open(root).ok()?;
        if repo.is_bare() {
            return None;
        }
        Some(Self {
            exclude_file: repo.commondir().join("info").join("exclude"),
            index: repo.index().ok(),
        })
    }

    /// Whether `rel` (relative to the root, `/`-separated) is in the index.
    pub fn is_tracked(&self, rel: &str) -> bool {
        self.index
            .as_ref()
            .is_some_and(|index| index.get_path(Path::new(rel), 0).is_some())
    }
}

/// Whether `name` is a valid full ref name (`refs/heads/…`) for git.
pub fn is_valid_ref_name(name: &str) -> bool {
    git2::Reference::is_valid_name(name)
}

/// Where the repository at `root` stands, as `doctor` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// `root` is not a git repository (git's message).
    NotARepository(String),
    Bare,
    /// A repository without a commit.
    Unborn,
    /// On `branch` (`(detached)` when not on one) at `commit` (hex).
    At {
        branch: String,
        commit: String,
    },
}

/// Where the repository at `root` stands.
pub fn head(root: &Path) -> Head {
    let repo = match git2::Repository::open(root) {
        Ok(repo) => repo,
        Err(e) => return Head::NotARepository(e.message().to_string()),
    };
    if repo.is_bare() {
        return Head::Bare;
    }
    let head = repo.head().ok();
    let branch = head
        .as_ref()
        .and_then(|h| h.shorthand().ok().map(str::to_string))
        .unwrap_or_else(|| "(detached)".into());
    match head.and_then(|h| h.peel_to_commit().ok()) {
        Some(commit) => Head::At {
            branch,
            commit: commit.id().to_string(),
        },
        None => Head::Unborn,
    }
}

/// Whether the repository at `root` has the local branch `branch`; `None` without a repository.
pub fn has_local_branch(root: &Path, branch: &str) -> Option<bool> {
    let repo = git2::Repository::open(root).ok()?;
    Some(repo.find_branch(branch, git2::BranchType::Local).is_ok())
}

/// Whether the repository `dir` is in tracks anything at `rel` or under it (`rel` relative
/// to `dir`), as `git -C dir ls-files -- rel` would say.
pub fn tracks_under(dir: &Path, rel: &str) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(repo) = git2::Repository::discover(dir) else {
        return false;
    };
    let (Some(workdir), Ok(index)) = (repo.workdir(), repo.index()) else {
        return false;
    };
    let (Ok(dir), Ok(workdir)) = (dir.canonicalize(), workdir.canonicalize()) else {
        return false;
    };
    let Ok(inside) = dir.strip_prefix(&workdir) else {
        return false;
    };
    let wanted = inside.join(rel);
    index
        .iter()
        .any(|e| Path::new(std::ffi::OsStr::from_bytes(&e.path)).starts_with(&wanted))
}
