//! The main checkout's `.git/index.lock`, held the way git holds it: created exclusively, the
//! new index written into it, then renamed over the index. `merge` holds it for its whole run,
//! so that a `git commit` (or `add`, `switch`, …) in the main checkout cannot interleave with
//! it: git waits for it or refuses, and nothing is lost either way.

use std::path::{Path, PathBuf};

use super::error::{GitError, Result};
use super::repo::Repo;

/// `.git/index.lock` of the main checkout, held by this process (created exclusively, as git
/// takes it). Released (removed) on drop unless its content was committed as the index.
pub struct IndexLock {
    lock: PathBuf,
    index: PathBuf,
    held: bool,
}

impl IndexLock {
    pub fn take(repo: &Repo) -> Result<Self> {
        let index = repo.inner.path().join("index");
        let lock = repo.inner.path().join("index.lock");
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
        {
            Ok(_) => Ok(Self {
                lock,
                index,
                held: true,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(GitError::IndexLocked { path: lock })
            }
            Err(e) => Err(GitError::io("create", &lock)(e)),
        }
    }

    /// A scratch index next to the real one, starting as a copy of it, for a checkout to
    /// write while we hold the lock (libgit2 would otherwise try to take the lock itself).
    pub fn scratch(&self, repo: &Repo) -> Result<(PathBuf, git2::Index)> {
        let scratch = self.index.with_file_name("orchestrate-merge.index");
        if self.index.exists() {
            std::fs::copy(&self.index, &scratch).map_err(GitError::io("copy", &self.index))?;
        }
        let err = |source| GitError::Checkout {
            path: repo.path.clone(),
            source,
        };
        let mut index = git2::Index::open(&scratch).map_err(err)?;
        repo.inner.set_index(&mut index).map_err(err)?;
        Ok((scratch, index))
    }

    /// Commits `scratch` as the index: moved into the lock file, then the lock file renamed
    /// over the index (git's own protocol); then takes the lock again for what follows. False
    /// when another git process took it in between (the index is committed all the same).
    pub fn commit(&mut self, scratch: &Path) -> Result<bool> {
        std::fs::rename(scratch, &self.lock).map_err(GitError::io("write", &self.lock))?;
        std::fs::rename(&self.lock, &self.index).map_err(GitError::io("write", &self.index))?;
        self.held = false;
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&self.lock)
        {
            Ok(_) => {
                self.held = true;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(GitError::io("create", &self.lock)(e)),
        }
    }

    /// Points the handle back at the real index and gives the lock up.
    pub fn release(mut self, repo: &Repo) {
        if let Ok(mut index) = git2::Index::open(&self.index) {
            let _ = repo.inner.set_index(&mut index);
        }
        self.drop_lock();
    }

    fn drop_lock(&mut self) {
        if self.held {
            let _ = std::fs::remove_file(&self.lock);
            self.held = false;
        }
    }
}

impl Drop for IndexLock {
    fn drop(&mut self) {
        self.drop_lock();
    }
}
