//! Stream worktrees: create, reuse, repair, lock, unlock, remove.
//!
//! Invariants (see notes/CRATES.md §4 for the libgit2 behaviour behind each):
//! * a worktree is only ever *reused* when it is valid, at our path, and has our branch checked
//!   out; anything else at our path is refused, never overwritten;
//! * stale entries (folder deleted by hand) are pruned before adding, because libgit2 would
//!   otherwise let the branch be checked out twice;
//! * a failed add leaves neither `.git/worktrees/<name>` nor an empty folder behind;
//! * creation is crash-safe: a marker (`<git dir>/orchestrate/incomplete/<slug>`) is written
//!   before anything else and removed only by [`mark_complete`], once the checkout is verified
//!   and the worktree fully prepared; a worktree found with its marker is finished (or, if its
//!   registration was cut short, discarded and made again) before anyone works in it, and so is
//!   one whose index was never written (an older version's checkout cut short);
//! * nothing here deletes a work tree unless the caller asked for it explicitly ([`remove`]),
//!   or the marker proves it is our own unfinished creation that no worker ever saw.

use std::path::{Path, PathBuf};

use git2::{ErrorCode, Repository, WorktreeLockStatus, WorktreePruneOptions};

use super::Progress;
use super::checkout::{self, Fill};
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
            .is_some_and(|r| lock_pid(r).is_none() || lock_held_by(r).is_some());
        !self.valid && !self.path.exists() && !held
    }

    /// The pid named in our lock reason, if that process is alive: see [`lock_held_by`].
    pub fn live_lock_pid(&self) -> Option<u32> {
        self.lock.as_deref().and_then(lock_held_by)
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
    /// An interrupted creation (a checkout cut short) was found and finished.
    Finished,
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

/// Makes sure `path` is a complete worktree with `names.branch()` checked out (the branch must
/// exist). Unless it returns [`Ensured::Reused`], the worktree's creation marker is left in
/// place: the caller finishes preparing it and then calls [`mark_complete`].
pub fn ensure(
    repo: &Repo,
    names: &StreamNames,
    path: &Path,
    progress: &dyn Fn(Progress),
) -> Result<Ensured> {
    let branch_ref = names.branch_ref();
    let marker = Marker::of(repo, names);
    let before = list(repo)?;
    let pruned = prune_stale(repo)?;
    let mut repaired = before
        .iter()
        .any(|w| pruned.contains(&w.name) && same_path(&w.path, path));
    let mut existing = list(repo)?;
    if let Some(at_path) = existing.iter().find(|w| same_path(&w.path, path)) {
        if at_path.valid && at_path.branch.as_deref() == Some(branch_ref.as_str()) {
            return finish_existing(path, &marker, progress);
        }
        if marker.exists() {
            // Our own creation, cut before it was registered in full: no one ever saw it.
            discard(repo, &at_path.name.clone(), path)?;
        } else if at_path.valid || path.exists() {
            return Err(GitError::WorktreeInTheWay {
                path: path.into(),
                branch: names.branch(),
            });
        } else {
            // Stale but locked by a live process: its folder is gone, so nothing can be lost.
            prune_entry(repo, &at_path.name.clone(), true)?;
        }
        repaired = true;
        existing = list(repo)?;
    } else if path.exists() && marker.exists() {
        // Cut before its admin folder was complete: the folder holds nothing but our start.
        discard(repo, &admin_of(path).unwrap_or_default(), path)?;
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
    not_checked_out_in(&existing, names)?;
    if path.exists() {
        return Err(GitError::WorktreeInTheWay {
            path: path.into(),
            branch: names.branch(),
        });
    }
    let name = unused_name(repo, names.worktree_name(), &existing);
    marker.write(path)?;
    add(repo, &name, path, &format!("ref: {branch_ref}"), progress)?;
    Ok(if repaired {
        Ensured::Repaired
    } else {
        Ensured::Created
    })
}

/// Creates the stream's branch at `at`. A `start` killed while libgit2 wrote the branch leaves
/// its lock file (`refs/heads/<branch>.lock`) and no branch, which would fail every later
/// attempt. So a marker of its own (`<git dir>/orchestrate/branching/<slug>`, apart from the
/// worktree's creation marker, whose presence means "the folder is ours") is written first and
/// removed once the branch exists: a marker found from before proves the lock ours (the caller
/// holds the stream's launch claim, so no other `start` creates this branch now), and it is
/// removed. A lock without a marker may be another git's: it is left alone and named.
pub fn create_branch(repo: &Repo, names: &StreamNames, at: git2::Oid) -> Result<()> {
    let marker = Marker(
        repo.inner
            .commondir()
            .join("orchestrate/branching")
            .join(&names.slug),
    );
    let cut_short = marker.exists();
    marker.write(Path::new(&names.branch()))?;
    let branch = names.branch();
    let lock = repo
        .inner
        .commondir()
        .join(format!("{}.lock", names.branch_ref()));
    match repo.create_branch(&branch, at) {
        Err(GitError::CreateBranch { source, .. }) if source.code() == ErrorCode::Locked => {
            if !cut_short {
                return Err(GitError::BranchLocked { branch, path: lock });
            }
            std::fs::remove_file(&lock).map_err(GitError::io("remove", &lock))?;
            repo.create_branch(&branch, at)?;
        }
        other => other?,
    }
    marker.remove()
}

/// Refuses when a worktree of `existing` has the stream's branch checked out.
fn not_checked_out_in(existing: &[WorktreeInfo], names: &StreamNames) -> Result<()> {
    let branch_ref = names.branch_ref();
    match existing
        .iter()
        .find(|w| w.branch.as_deref() == Some(branch_ref.as_str()))
    {
        Some(other) => Err(GitError::CheckedOutElsewhere {
            branch: names.branch(),
            path: other.path.clone(),
        }),
        None => Ok(()),
    }
}

/// A valid worktree of our branch: reused as it is, unless its creation never finished.
fn finish_existing(path: &Path, marker: &Marker, progress: &dyn Fn(Progress)) -> Result<Ensured> {
    let fill = if marker.exists() {
        Fill::Ours
    } else if checkout::never_indexed(path) {
        // Made by an older version that left no marker: someone may have edited it since,
        // so only what is missing is written, and a changed file stops it.
        Fill::Careful
    } else {
        return Ok(Ensured::Reused);
    };
    checkout::populate(path, fill, progress)?;
    checkout::verify(path, fill)?;
    Ok(Ensured::Finished)
}

/// Declares the worktree of `names` complete: from now on it may be handed to a worker.
pub fn mark_complete(repo: &Repo, names: &StreamNames) -> Result<()> {
    Marker::of(repo, names).remove()
}

/// Forgets an unfinished creation of `names` (its worktree was removed).
pub fn forget_incomplete(repo: &Repo, names: &StreamNames) -> Result<()> {
    Marker::of(repo, names).remove()
}

/// Whether the worktree of `names` was begun and never completed.
pub fn is_incomplete(repo: &Repo, names: &StreamNames) -> bool {
    Marker::of(repo, names).exists()
}

/// `<common git dir>/orchestrate/incomplete/<slug>`: exists from before a worktree's creation
/// begins until [`mark_complete`]; holds the worktree's path.
struct Marker(PathBuf);

impl Marker {
    fn of(repo: &Repo, names: &StreamNames) -> Self {
        Self::of_slug(repo, &names.slug)
    }

    fn of_slug(repo: &Repo, slug: &str) -> Self {
        Self(
            repo.inner
                .commondir()
                .join("orchestrate/incomplete")
                .join(slug),
        )
    }

    fn exists(&self) -> bool {
        self.0.exists()
    }

    /// Written and synced (file and folder) before the creation it guards begins.
    fn write(&self, worktree: &Path) -> Result<()> {
        let io = GitError::io;
        let dir = self.0.parent().expect("the marker has a folder");
        // `<git dir>/orchestrate/` and its folders are private, as `merge` expects them (it
        // would otherwise tighten them with a warning about a folder we made ourselves).
        let ours = dir.parent().expect("under <git dir>/orchestrate");
        crate::private_files::dir(ours)
            .and_then(|()| crate::private_files::dir(dir))
            .map_err(io("create", dir))?;
        let mut file = std::fs::File::create(&self.0).map_err(io("create", &self.0))?;
        use std::io::Write;
        writeln!(file, "{}", worktree.display()).map_err(io("write", &self.0))?;
        file.sync_all().map_err(io("write", &self.0))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("sync", dir))
    }

    fn remove(&self) -> Result<()> {
        match std::fs::remove_file(&self.0) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(GitError::io("remove", &self.0)(e))
            }
            _ => Ok(()),
        }
    }
}

/// Removes an unfinished worktree of ours: its admin folder `name` (if any) and its folder.
/// The admin folder is removed only if it records this folder (or nothing yet).
fn discard(repo: &Repo, name: &str, path: &Path) -> Result<()> {
    let admin = admin_dir(&repo.inner, name);
    let records_us = match std::fs::read_to_string(admin.join("gitdir")) {
        Ok(text) => Path::new(text.trim())
            .parent()
            .is_some_and(|p| same_path(p, path)),
        Err(_) => true,
    };
    if !name.is_empty() && admin.exists() && records_us {
        std::fs::remove_dir_all(&admin).map_err(GitError::io("remove", &admin))?;
    }
    if path.exists() {
        std::fs::remove_dir_all(path).map_err(GitError::io("remove", path))?;
    }
    Ok(())
}

/// The admin folder the worktree at `path` points to, when that folder is gone: git's record of
/// the worktree was deleted, its files (and uncommitted work) are still there.
pub fn orphaned_admin(path: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(path.join(".git")).ok()?;
    let gitdir = PathBuf::from(text.trim().strip_prefix("gitdir:")?.trim());
    (!gitdir.join("gitdir").exists()).then_some(gitdir)
}

/// A folder under `.claude/worktrees/` whose git record was deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    /// The folder's name: the stream's slug.
    pub slug: String,
    pub dir: PathBuf,
    /// Where its `.git` file says its admin folder is.
    pub admin: PathBuf,
}

/// Every orphaned worktree folder directly under `worktrees_dir` (but our own creations not
/// complete yet: their registration may simply not be written yet).
pub fn orphans(repo: &Repo, worktrees_dir: &Path) -> Vec<Orphan> {
    let Ok(entries) = std::fs::read_dir(worktrees_dir) else {
        return Vec::new();
    };
    let mut out: Vec<Orphan> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let dir = e.path();
            let admin = orphaned_admin(&dir)?;
            let slug = e.file_name().to_string_lossy().into_owned();
            if Marker::of_slug(repo, &slug).exists() {
                return None;
            }
            Some(Orphan { slug, dir, admin })
        })
        .collect();
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    out
}

/// The orphaned stream worktrees of a project (none if it is not a git repository).
pub fn orphans_of(project: &crate::project::Project) -> Vec<Orphan> {
    match Repo::open(&project.root) {
        Ok(repo) => orphans(&repo, &project.worktrees_dir()),
        Err(_) => Vec::new(),
    }
}

/// Registers an orphaned worktree again, without touching its files: a new admin folder on the
/// stream's branch, and an index rebuilt from that branch's tip (what was staged is unstaged;
/// every change stays in the folder). Refused when the branch is gone or checked out elsewhere.
pub fn reregister(repo: &Repo, orphan: &Orphan, names: &StreamNames) -> Result<()> {
    let branch_ref = names.branch_ref();
    repo.require_tip(&names.branch())?;
    let existing = list(repo)?;
    not_checked_out_in(&existing, names)?;
    let name = unused_name(repo, names.worktree_name(), &existing);
    let admin = admin_dir(&repo.inner, &name);
    std::fs::create_dir_all(&admin).map_err(GitError::io("create", &admin))?;
    write_registration(&admin, &orphan.dir, &format!("ref: {branch_ref}"))?;
    let wt = Repo::open(&orphan.dir)?;
    let err = |source| GitError::Worktree {
        action: "rebuild the index of",
        name: name.clone(),
        source,
    };
    let tree = wt.head_commit()?.tree().map_err(err)?;
    let mut index = wt.inner.index().map_err(err)?;
    index.read_tree(&tree).map_err(err)?;
    index.write().map_err(err)
}

/// The admin name a worktree folder's `.git` file points to (`…/worktrees/<name>`).
pub fn admin_of(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path.join(".git")).ok()?;
    let gitdir = PathBuf::from(text.trim().strip_prefix("gitdir:")?.trim());
    let parent = gitdir.parent()?;
    (parent.file_name()? == "worktrees")
        .then(|| gitdir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .flatten()
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

/// A worktree at `path` (which must not exist) with `commit` checked out on a detached HEAD,
/// made and proven complete as a stream's is ([`checkout::populate`], [`checkout::verify`]).
/// For `merge`'s scratch worktree: a detached HEAD, because the target branch may be checked
/// out elsewhere and git lets a branch be checked out only once.
pub fn add_detached(repo: &Repo, name: &str, path: &Path, commit: git2::Oid) -> Result<()> {
    add(repo, name, path, &commit.to_string(), &|_| {})
}

/// Registers the worktree (`head`: its HEAD file's content, `ref: …` or a commit id) and fills
/// it. On failure neither its admin folder nor its folder is left behind (its marker is: the
/// next attempt knows what it finds).
fn add(
    repo: &Repo,
    name: &str,
    path: &Path,
    head: &str,
    progress: &dyn Fn(Progress),
) -> Result<()> {
    let admin = admin_dir(&repo.inner, name);
    // `register` creates both folders exclusively: one there before is not ours to remove.
    let (admin_existed, path_existed) = (admin.exists(), path.exists());
    let result = register(repo, name, path, head)
        .and_then(|()| checkout::populate(path, Fill::Ours, progress))
        .and_then(|()| checkout::verify(path, Fill::Ours));
    if result.is_err() {
        if !admin_existed {
            let _ = std::fs::remove_dir_all(&admin);
        }
        if !path_existed {
            let _ = std::fs::remove_dir_all(path);
        }
    }
    result
}

/// Writes a worktree's registration as `git worktree add --no-checkout` does: the folder and
/// its `.git` file, and `.git/worktrees/<name>/` with `commondir`, `HEAD` and, last, `gitdir`
/// (the file that makes the entry visible to git). Both folders are created exclusively, so an
/// existing one is never taken over.
fn register(repo: &Repo, name: &str, path: &Path, head: &str) -> Result<()> {
    let io = GitError::io;
    let add_err = |e: std::io::Error| GitError::AddWorktree {
        name: name.into(),
        path: path.into(),
        branch: head
            .trim_start_matches("ref: ")
            .trim_start_matches("refs/heads/")
            .into(),
        source: git2::Error::from_str(&e.to_string()),
    };
    let parent = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent).map_err(io("create", parent))?;
    let admin = admin_dir(&repo.inner, name);
    let admins = admin.parent().expect("worktrees/ holds the admin folder");
    std::fs::create_dir_all(admins).map_err(io("create", admins))?;
    std::fs::create_dir(&admin).map_err(add_err)?;
    std::fs::create_dir(path).map_err(add_err)?;
    write_registration(&admin, path, head)
}

/// The files that make `path` a worktree whose HEAD holds `head` (`ref: refs/heads/…`, or a
/// commit id for a detached one) with its record in `admin` (both folders exist): `commondir`,
/// `HEAD`, the folder's `.git` file, and last `gitdir`, which makes the entry visible to git.
fn write_registration(admin: &Path, path: &Path, head: &str) -> Result<()> {
    let io = GitError::io;
    let path = path.canonicalize().map_err(io("resolve", path))?;
    let admin = admin.canonicalize().map_err(io("resolve", admin))?;
    let write = |file: &Path, text: String| std::fs::write(file, text).map_err(io("write", file));
    write(&admin.join("commondir"), "../..\n".into())?;
    write(&admin.join("HEAD"), format!("{head}\n"))?;
    write(&path.join(".git"), format!("gitdir: {}\n", admin.display()))?;
    write(
        &admin.join("gitdir"),
        format!("{}\n", path.join(".git").display()),
    )
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
    let ticks = lock_ticks(reason);
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

/// The pid of the live process a lock reason of ours names. With a start time, only that very
/// process (a pid reused since holds nothing); without (an older lock), any live process with
/// that pid, since nothing proves it is another: a destructive step keeps a worktree rather
/// than remove one a worker may hold.
pub fn lock_held_by(reason: &str) -> Option<u32> {
    let pid = lock_pid(reason)?;
    let live = if lock_ticks(reason).is_some() {
        lock_holder(reason).is_some()
    } else {
        crate::proc::stat(i32::try_from(pid).ok()?).is_some_and(|s| s.is_live())
    };
    live.then_some(pid)
}

/// The start time in a lock reason written by [`lock_reason`].
fn lock_ticks(reason: &str) -> Option<u64> {
    let (_, ticks) = reason.rsplit_once(" start ")?;
    ticks.trim().parse().ok()
}

/// The pid in a lock reason written by [`lock_reason`].
pub fn lock_pid(reason: &str) -> Option<u32> {
    let (_, rest) = reason.rsplit_once("pid ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
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
    fn a_lock_naming_a_reused_pid_holds_nothing() {
        let me = std::process::id();
        let ticks = crate::proc::Identity::current().unwrap().start_ticks;
        let info = |lock: String| WorktreeInfo {
            name: "gone".into(),
            path: PathBuf::from("/nonexistent/orchestrate-test/gone"),
            branch: None,
            valid: false,
            lock: Some(lock),
        };
        // Our pid, but the start time of another process: the worker that locked it is gone.
        let reused = info(format!(
            "orchestrate: stream A worker pid {me} start {}",
            ticks + 1
        ));
        assert!(reused.is_stale());
        assert_eq!(reused.live_lock_pid(), None);
        let held = info(lock_reason("A", me));
        assert!(!held.is_stale());
        assert_eq!(held.live_lock_pid(), Some(me));
    }
}
