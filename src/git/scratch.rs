//! Where `merge` builds and verifies its result: a detached worktree of the target under
//! `<git dir>/orchestrate/merge-<pid>`, never the user's checkout; and the lock that makes
//! one `merge` at a time.
//!
//! Invariants:
//! * a scratch worktree exists only while its `merge` holds [`MergeLock`] (an `flock` the
//!   kernel drops when the process dies, even by SIGKILL), so one found by a holder of the
//!   lock is a leftover of a dead `merge`, and entirely ours: [`leftovers`] names it and
//!   [`remove_leftover`] deletes it (its folder and its admin entry);
//! * the scratch worktree is created by the same crash-safe path as a stream's
//!   (`worktree::add_detached`: registered, filled, proven complete) and removed on drop;
//! * nothing here moves a ref or touches the user's checkout.

use std::path::{Path, PathBuf};

use git2::Oid;
use nix::fcntl::{Flock, FlockArg};

use super::error::{GitError, Result};
use super::repo::Repo;
use super::worktree;

/// Folder names of scratch worktrees under `<git dir>/orchestrate/`, and their admin names.
const PREFIX: &str = "merge-";
const ADMIN_PREFIX: &str = "orchestrate-merge-";

fn orchestrate_dir(repo: &Repo) -> PathBuf {
    repo.inner.commondir().join("orchestrate")
}

/// Where the output of `merge`'s verify commands is appended: `<git dir>/orchestrate/merge.log`
/// (inside the git directory, so that no checkout changes by a byte).
pub fn log_path(repo: &Repo) -> PathBuf {
    orchestrate_dir(repo).join("merge.log")
}

/// `<git dir>/orchestrate/merge.lock`, held (`flock`, exclusive) for a whole `merge`.
pub struct MergeLock {
    _lock: Flock<std::fs::File>,
}

impl MergeLock {
    /// Takes the lock, or says which `merge` holds it (its pid, written in the file).
    pub fn take(repo: &Repo) -> Result<Self> {
        let dir = orchestrate_dir(repo);
        // Private, as the rest of our folder there (it holds the run's markers).
        crate::private_files::dir(&dir).map_err(GitError::io("create", &dir))?;
        let path = dir.join("merge.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(GitError::io("open", &path))?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                return Err(GitError::MergeRunning {
                    path,
                    holder: holder.trim().to_string(),
                });
            }
            Err((_, errno)) => return Err(GitError::io("lock", &path)(errno.into())),
        };
        use std::io::{Seek, Write};
        let _ = lock.set_len(0);
        let _ = lock.rewind();
        let _ = write!(lock, "pid {}", std::process::id());
        Ok(Self { _lock: lock })
    }
}

/// A scratch worktree left by a `merge` that died.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    pub dir: PathBuf,
    /// Its admin folder's name, when git still has it.
    pub admin: Option<String>,
}

/// Every scratch worktree (folder or admin entry) there is. Only meaningful under
/// [`MergeLock`]: then each is a leftover.
pub fn leftovers(repo: &Repo, _held: &MergeLock) -> Vec<Leftover> {
    let mut out: Vec<Leftover> = Vec::new();
    let dir = orchestrate_dir(repo);
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(PREFIX) && e.file_type().is_ok_and(|t| t.is_dir()) {
                out.push(Leftover {
                    dir: e.path(),
                    admin: worktree::admin_of(&e.path()),
                });
            }
        }
    }
    let admins = repo.inner.commondir().join("worktrees");
    if let Ok(entries) = std::fs::read_dir(&admins) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_prefix(ADMIN_PREFIX) else {
                continue;
            };
            if !out
                .iter()
                .any(|l| l.admin.as_deref() == Some(name.as_str()))
            {
                out.push(Leftover {
                    dir: dir.join(format!("{PREFIX}{id}")),
                    admin: Some(name),
                });
            }
        }
    }
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    out
}

/// Deletes a leftover scratch worktree: its admin entry and its folder. The caller has ended
/// whatever still ran in it.
pub fn remove_leftover(repo: &Repo, leftover: &Leftover, _held: &MergeLock) -> Result<()> {
    if let Some(name) = &leftover.admin {
        let admin = repo.inner.commondir().join("worktrees").join(name);
        if admin.exists() {
            std::fs::remove_dir_all(&admin).map_err(GitError::io("remove", &admin))?;
        }
    }
    if leftover.dir.exists() {
        std::fs::remove_dir_all(&leftover.dir).map_err(GitError::io("remove", &leftover.dir))?;
    }
    Ok(())
}

/// This `merge`'s scratch worktree: made on first use, moved from commit to commit, removed
/// on drop (also when the merge stops on an error).
pub struct Scratch {
    common: PathBuf,
    dir: PathBuf,
    name: String,
    made: bool,
}

impl Scratch {
    /// The scratch worktree this process would use; nothing is created yet.
    pub fn new(repo: &Repo, _held: &MergeLock) -> Self {
        let id = std::process::id();
        Self {
            common: repo.inner.commondir().to_path_buf(),
            dir: orchestrate_dir(repo).join(format!("{PREFIX}{id}")),
            name: format!("{ADMIN_PREFIX}{id}"),
            made: false,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Puts `commit` in the scratch worktree (detached HEAD, index and files): created with
    /// it the first time, then checked out over the previous commit (files a verify left,
    /// such as build output, stay unless the commit has them).
    pub fn check_out(&mut self, repo: &Repo, commit: Oid) -> Result<()> {
        if !self.made {
            self.made = true;
            return worktree::add_detached(repo, &self.name, &self.dir, commit);
        }
        let wt = Repo::open(&self.dir)?;
        let err = |source| GitError::Checkout {
            path: self.dir.clone(),
            source,
        };
        let target = wt.commit(commit)?;
        let mut opts = git2::build::CheckoutBuilder::new();
        opts.force();
        wt.inner
            .checkout_tree(target.as_object(), Some(&mut opts))
            .map_err(err)?;
        wt.inner.set_head_detached(commit).map_err(err)
    }

    fn remove(&mut self) {
        if !self.made {
            return;
        }
        let admin = self.common.join("worktrees").join(&self.name);
        let _ = std::fs::remove_dir_all(&admin);
        let _ = std::fs::remove_dir_all(&self.dir);
        self.made = false;
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.remove();
    }
}
