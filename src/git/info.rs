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
