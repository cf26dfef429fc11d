//! Stream worktrees: create, reuse, repair, lock, unlock, remove.
//!
//! Invariants (see notes/CRATES.md §4 for the libgit2 behaviour behind each):
//! * a worktree is only ever *reused* when it is valid, at our path, and has our branch checked
//!   out; anything else at our path is refused, never overwritten;
//! * stale entries (folder deleted by hand) are pruned before adding, because libgit2 would
//!   otherwise let the branch be checked out twice;
//! * a failed add leaves neither `.git/worktrees/<name>` nor the folder it began behind;
//! * nothing here deletes a work tree unless the caller asked for it explicitly ([`remove`]).

use std::path::{Path, PathBuf};

use git2::{Repository, WorktreeAddOptions, WorktreeLockStatus, WorktreePruneOptions};

use super::error::{GitError, Result};
use super::repo::Repo;
use crate::names::StreamNames;

/// One linked worktree of the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorktreeInfo {
    /// The admin name (`.git/worktrees/<name>`).
    pub name: String,
    pub path: PathBuf,
    /// The full ref checked out (`refs/heads/…`), if on a branch.
    pub branch: Option<String>,
    /// Folder and metadata are intact.
    pub valid: bool,
    /// `Some(reason)` when locked (`Some("")` for a lock without reason).
    pub lock: Option<String>,
}

impl WorktreeInfo {
    /// Its folder is gone and no one holds it: the metadata can be pruned without loss. A lock
    /// not written by us (e.g. a worktree on unmounted media) is the user's call, and one held
    /// by a live worker is respected.
    pub fn is_stale(&self) -> bool {
        let held = self
            .lock
            .as_deref()
            .is_some_and(|r| lock_pid(r).is_none_or(pid_alive));
        !self.valid && !self.path.exists() && !held
    }

    /// The pid named in our lock reason, if that process is alive (not a zombie).
    pub fn live_lock_pid(&self) -> Option<u32> {
        self.lock
            .as_deref()
            .and_then(lock_pid)
            .filter(|pid| pid_alive(*pid))
    }

    /// The live process our lock reason names (pid and start time), if any.
    pub fn lock_holder(&self) -> Option<crate::proc::Identity> {
        self.lock.as_deref().and_then(lock_holder)
    }
}

/// How [`ensure`] got the worktree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    /// A valid worktree of the branch was already there.
    Reused,
    Created,
    /// A stale entry (folder deleted by hand) was pruned and the worktree added again.
    Repaired,
}

/// Every linked worktree, sorted by path.
pub fn list(repo: &Repo) -> Result<Vec<WorktreeInfo>> {
    let names = repo
        .inner
        .worktrees()
        .map_err(|source| GitError::ListWorktrees {
            path: repo.path.clone(),
            source,
        })?;
    let mut out = Vec::new();
    for name in names.iter().filter_map(|r| r.ok().flatten()) {
        let Ok(wt) = repo.inner.find_worktree(name) else {
            continue;
        };
        let lock = match wt.is_locked() {
            Ok(WorktreeLockStatus::Locked(reason)) => Some(reason.unwrap_or_default()),
            _ => None,
        };
        out.push(WorktreeInfo {
            name: name.to_string(),
            path: wt.path().to_path_buf(),
            branch: admin_head(&repo.inner, name),
            valid: wt.validate().is_ok(),
            lock,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// `ref: refs/heads/x` in `.git/worktrees/<name>/HEAD`; readable even when the folder is gone.
fn admin_head(repo: &Repository, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(admin_dir(repo, name).join("HEAD")).ok()?;
    text.trim().strip_prefix("ref: ").map(str::to_string)
}

fn admin_dir(repo: &Repository, name: &str) -> PathBuf {
    repo.commondir().join("worktrees").join(name)
}

/// Paths as libgit2 stores them are absolute and resolved; compare resolved forms.
pub fn same_path(a: &Path, b: &Path) -> bool {
    let norm = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    norm(a) == norm(b)
}

/// Prunes entries whose folder is gone: unlocked ones, and ones locked by an `orchestrate`
/// worker that is dead. Returns the pruned names. Never touches a folder that exists.
pub fn prune_stale(repo: &Repo) -> Result<Vec<String>> {
    let mut pruned = Vec::new();
    for info in list(repo)? {
        if !info.is_stale() {
            continue;
        }
        prune_entry(repo, &info.name, info.lock.is_some())?;
        pruned.push(info.name);
    }
    Ok(pruned)
}

fn prune_entry(repo: &Repo, name: &str, locked: bool) -> Result<()> {
    let err = |source| GitError::Worktree {
        action: "prune",
        name: name.into(),
        source,
    };
    let wt = repo.inner.find_worktree(name).map_err(err)?;
    let mut opts = WorktreePruneOptions::new();
    opts.locked(locked);
    wt.prune(Some(&mut opts)).map_err(err)
}

/// Makes sure `path` is a worktree with `names.branch()` checked out (the branch must exist).
pub fn ensure(repo: &Repo, names: &StreamNames, path: &Path) -> Result<Ensured> {
    let branch_ref = names.branch_ref();
    let before = list(repo)?;
    let pruned = prune_stale(repo)?;
    let mut repaired = before
        .iter()
        .any(|w| pruned.contains(&w.name) && same_path(&w.path, path));
    let mut existing = list(repo)?;
    if let Some(at_path) = existing.iter().find(|w| same_path(&w.path, path)) {
        if at_path.valid && at_path.branch.as_deref() == Some(branch_ref.as_str()) {
            return Ok(Ensured::Reused);
        }
        if at_path.valid || path.exists() {
            return Err(GitError::WorktreeInTheWay {
                path: path.into(),
                branch: names.branch(),
            });
        }
        // Stale but locked by a live process: its folder is gone, so nothing can be lost.
        prune_entry(repo, &at_path.name.clone(), true)?;
        repaired = true;
        existing = list(repo)?;
    }
    if repo
        .inner
        .head()
        .ok()
        .and_then(|h| h.name().ok().map(str::to_string))
        == Some(branch_ref.clone())
        && !repo.inner.is_bare()
    {
        return Err(GitError::CheckedOutElsewhere {
            branch: names.branch(),
            path: repo.path.clone(),
        });
    }
    if let Some(other) = existing
        .iter()
        .find(|w| w.branch.as_deref() == Some(branch_ref.as_str()))
    {
        return Err(GitError::CheckedOutElsewhere {
            branch: names.branch(),
            path: other.path.clone(),
        });
    }
    if path.exists() {
        return Err(GitError::WorktreeInTheWay {
            path: path.into(),
            branch: names.branch(),
        });
    }
    let name = unused_name(repo, names.worktree_name(), &existing);
    add(repo, &name, path, &names.branch())?;
    Ok(if repaired {
        Ensured::Repaired
    } else {
        Ensured::Created
    })
}

/// Our slug, or `<slug>-2`, … when a worktree elsewhere already uses that admin name.
fn unused_name(repo: &Repo, slug: &str, existing: &[WorktreeInfo]) -> String {
    let taken = |n: &str| existing.iter().any(|w| w.name == n);
    let mut name = slug.to_string();
    let mut i = 2;
    while taken(&name) {
        name = format!("{slug}-{i}");
        i += 1;
    }
    // A leftover admin folder of a failed add is invisible to `worktrees()`: clear it.
    let admin = admin_dir(&repo.inner, &name);
    if admin.exists() && !admin.join("gitdir").exists() {
        let _ = std::fs::remove_dir_all(&admin);
    }
    name
}

fn add(repo: &Repo, name: &str, path: &Path, branch: &str) -> Result<()> {
    let io = GitError::io;
    let parent = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent).map_err(io("create", parent))?;
    // `ensure` refuses a folder in the way, so one there after a failed add is ours.
    let existed = path.exists();
    let admin = admin_dir(&repo.inner, name);
    let admin_existed = admin.exists();
    let result = repo
        .inner
        .find_branch(branch, git2::BranchType::Local)
        .and_then(|b| {
            let mut opts = WorktreeAddOptions::new();
            opts.reference(Some(b.get()));
            repo.inner.worktree(name, path, Some(&opts))
        });
    match result {
        Ok(_) => Ok(()),
        Err(source) => {
            // libgit2 leaves a half-made admin dir (and maybe the folder) behind on failure.
            if !admin_existed && admin.exists() {
                let _ = std::fs::remove_dir_all(&admin);
            }
            // A checkout cut short (the disk full) left a partial folder that would block
            // the stream for good ("in the way"); no worker ever saw it.
            if !existed {
                let _ = std::fs::remove_dir_all(path);
            }
            Err(GitError::AddWorktree {
                name: name.into(),
                path: path.into(),
                branch: branch.into(),
                source,
            })
        }
    }
}

/// The admin name of the worktree at `path`, if any.
pub fn name_at(repo: &Repo, path: &Path) -> Result<Option<String>> {
    Ok(list(repo)?
        .into_iter()
        .find(|w| same_path(&w.path, path))
        .map(|w| w.name))
}

/// The lock reason naming the stream, the worker's pid and its start time (so a pid reused by
/// another process is not taken for the worker); [`lock_pid`] and [`lock_holder`] read it back.
pub fn lock_reason(stream: &str, pid: u32) -> String {
    match crate::proc::stat(pid as i32) {
        Some(stat) => format!(
            "orchestrate: stream {stream} worker pid {pid} start {}",
            stat.start_ticks
        ),
        None => format!("orchestrate: stream {stream} worker pid {pid}"),
    }
}

/// The live process a lock reason written by [`lock_reason`] names. With a start time, that
/// exact process; without (an older lock), a live process of ours that carries a stream in
/// its environment, so that a pid reused by anything else holds nothing.
pub fn lock_holder(reason: &str) -> Option<crate::proc::Identity> {
    let pid = i32::try_from(lock_pid(reason)?).ok()?;
    let ticks = reason
        .rsplit_once(" start ")
        .and_then(|(_, t)| t.trim().parse::<u64>().ok());
    let now = crate::proc::identity_of(pid).filter(crate::proc::Identity::is_alive)?;
    let ours = match ticks {
        Some(ticks) => now.start_ticks == ticks,
        None => std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
            env.split(|&b| b == 0)
                .any(|v| v.starts_with(b"ORCHESTRATE_STREAM="))
        }),
    };
    ours.then_some(now)
}

/// The pid in a lock reason written by [`lock_reason`].
pub fn lock_pid(reason: &str) -> Option<u32> {
    let (_, rest) = reason.rsplit_once("pid ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Alive and not a zombie, per `/proc/<pid>/stat` (this sandbox's PID 1 does not reap, so
/// `kill(pid, 0)` would call zombies alive).
pub fn pid_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

pub fn lock(repo: &Repo, path: &Path, reason: &str) -> Result<()> {
    let Some(name) = name_at(repo, path)? else {
        return Ok(());
    };
    let err = |source| GitError::Worktree {
        action: "lock",
        name: name.clone(),
        source,
    };
    let wt = repo.inner.find_worktree(&name).map_err(err)?;
    if matches!(wt.is_locked(), Ok(WorktreeLockStatus::Locked(_))) {
        wt.unlock().map_err(err)?;
    }
    wt.lock(Some(reason)).map_err(err)
}

pub fn unlock(repo: &Repo, path: &Path) -> Result<()> {
    let Some(name) = name_at(repo, path)? else {
        return Ok(());
    };
    let err = |source| GitError::Worktree {
        action: "unlock",
        name: name.clone(),
        source,
    };
    let wt = repo.inner.find_worktree(&name).map_err(err)?;
    match wt.is_locked() {
        Ok(WorktreeLockStatus::Locked(_)) => wt.unlock().map_err(err),
        _ => Ok(()),
    }
}

/// Deletes the worktree folder (everything in it) and its metadata. The caller has checked
/// that nothing of value is lost, or the user said `--force`.
pub fn remove(repo: &Repo, info: &WorktreeInfo) -> Result<()> {
    let err = |source| GitError::Worktree {
        action: "remove",
        name: info.name.clone(),
        source,
    };
    let wt = repo.inner.find_worktree(&info.name).map_err(err)?;
    let mut opts = WorktreePruneOptions::new();
    opts.valid(true).working_tree(true).locked(true);
    wt.prune(Some(&mut opts)).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_reasons_carry_the_pid() {
        let r = lock_reason("Stream-A pid 5", 1234);
        assert_eq!(lock_pid(&r), Some(1234));
        assert_eq!(lock_pid("someone else's lock"), None);
    }

    #[test]
    fn a_lock_holds_only_for_the_process_it_names() {
        let me = std::process::id();
        let reason = lock_reason("Stream-A", me);
        assert_eq!(lock_pid(&reason), Some(me));
        let held = lock_holder(&reason).expect("we are alive");
        assert_eq!(held, crate::proc::Identity::current().unwrap());
        // The same pid with another start time is another process.
        let ticks = held.start_ticks + 1;
        let reused = format!("orchestrate: stream Stream-A worker pid {me} start {ticks}");
        assert_eq!(lock_holder(&reused), None);
        assert_eq!(
            lock_holder("orchestrate: stream S worker pid 4194999 start 1"),
            None
        );
    }

    #[test]
    fn own_process_is_alive_and_a_free_pid_is_not() {
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(u32::MAX - 1));
    }
}
