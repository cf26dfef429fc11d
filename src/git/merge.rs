//! `orchestrate merge`'s git steps: one stream's merge made in the object database (a `--no-ff`
//! merge commit `Merge stream <id>: <name>`, referenced by nothing), and [`advance`], the one
//! place the target branch moves and the user's checkout follows it.
//!
//! The merges are built away from the user's checkout (in memory, and checked out for a
//! verify only in `merge`'s scratch worktree, see `scratch.rs`); so a conflict or a failed
//! verify leaves nothing to abort anywhere.
//!
//! [`advance`] moves the target compare-and-swap (promise 4 of PRODUCT.md) from where the
//! merge began: a target moved meanwhile (a user's commit, a push, `git update-ref`) refuses
//! the move and changes nothing. The checkout that has the target checked out (the main one
//! or a linked worktree) is brought along only when it is clean: under its `index.lock`, as
//! `git merge` takes it, so a `git commit` there cannot interleave; the new tree is checked out
//! with a scratch index (safe mode, refusing to overwrite anything), then the ref moves, then
//! the index is committed; if the ref moved meanwhile the files are put back. A checkout with
//! uncommitted changes (or an untracked file where a merged file goes) is left byte-identical
//! and the caller says how to bring it along.

use std::path::PathBuf;

use git2::Oid;

use super::error::{GitError, Result};
use super::index_lock::IndexLock;
use super::preview::{MergePreview, StreamMerge, merge_in_memory};
use super::repo::Repo;
use crate::graph::Stream;

/// What one stream's turn in the queue comes to.
#[derive(Debug, Clone)]
pub enum Turn {
    /// Already merged, no commits, or not complete.
    Skip(StreamMerge),
    /// Merged cleanly onto the queue's current commit, as `commit` (not referenced yet).
    Merged { entry: StreamMerge, commit: Oid },
    /// The merge conflicts (the paths are in the entry's preview).
    Conflict(StreamMerge),
}

/// Merges `stream`'s branch onto `current` (the target's tip when the queue began, then the
/// queue's last merge), judging it as the preview does. `None`: the stream has no branch.
pub fn turn(
    repo: &Repo,
    target: &str,
    begun: Oid,
    current: Oid,
    stream: &Stream,
    is_complete: bool,
) -> Result<Option<Turn>> {
    let branch = crate::names::StreamNames::new(stream.id()).branch();
    let Some(tip) = repo.branch_tip(&branch)? else {
        return Ok(None);
    };
    let mut entry = StreamMerge {
        stream: stream.id().into(),
        name: stream.record.name.clone(),
        branch: branch.clone(),
        commits_ahead: repo.commits_ahead(begun, tip)?,
        preview: MergePreview::Clean,
    };
    if repo.contains(current, tip)? {
        entry.preview = if is_complete {
            MergePreview::AlreadyMerged
        } else {
            MergePreview::NoCommits
        };
        return Ok(Some(Turn::Skip(entry)));
    }
    if !is_complete {
        entry.preview = MergePreview::Incomplete;
        return Ok(Some(Turn::Skip(entry)));
    }
    Ok(Some(
        match merge_in_memory(repo, current, tip, target, &branch, stream)? {
            Ok(commit) => Turn::Merged { entry, commit },
            Err(paths) => {
                entry.preview = MergePreview::Conflicts { paths };
                Turn::Conflict(entry)
            }
        },
    ))
}

/// How [`advance`] went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Advanced {
    /// The target points at the new commit; what became of the checkout that has it.
    Done(Checkout),
    /// The target no longer pointed at `expected` but at `found`: nothing was changed.
    Moved { expected: Oid, found: Oid },
}

/// The checkout that has the target checked out, after the target moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkout {
    /// No checkout has the target checked out.
    None,
    /// Fast-forwarded: index and files are the new commit's.
    Updated { path: PathBuf },
    /// Left byte-identical because it has uncommitted changes to tracked files. `at`: the
    /// commit its index is based on (to bring it along: `git read-tree -m -u <at> <target>`).
    Dirty {
        path: PathBuf,
        files: Vec<String>,
        at: Oid,
    },
    /// Left byte-identical because untracked files are where merged files go; its index is
    /// `at`'s.
    InTheWay {
        path: PathBuf,
        files: Vec<String>,
        at: Oid,
    },
}

/// Moves `target` from `expected` to `new` (compare-and-swap) and brings along the checkout
/// that has it checked out, if that checkout is clean (see the module's header).
pub fn advance(repo: &Repo, target: &str, expected: Oid, new: Oid) -> Result<Advanced> {
    let Some(path) = checkout_of(repo, target)? else {
        return moved_or(repo, target, expected, new, Checkout::None);
    };
    let co = Repo::open(&path)?;
    let lock = IndexLock::take(&co)?;
    advance_checkout(repo, &co, lock, target, expected, new)
}

/// The target moved with the checkout `co` (whose index lock is held) brought along if clean.
fn advance_checkout(
    repo: &Repo,
    co: &Repo,
    mut lock: IndexLock,
    target: &str,
    expected: Oid,
    new: Oid,
) -> Result<Advanced> {
    let path = co.path.clone();
    if let Err(e) = check_state(co) {
        lock.release(co);
        return Err(e);
    }
    // Checked again under the lock: the user may have switched away meanwhile.
    if co.current_branch().as_deref() != Some(target) {
        lock.release(co);
        return moved_or(repo, target, expected, new, Checkout::None);
    }
    let dirty: Vec<String> = co
        .dirty_files()?
        .into_iter()
        .filter(|f| !f.untracked)
        .map(|f| f.path)
        .collect();
    if !dirty.is_empty() {
        lock.release(co);
        let at = index_base(co)?;
        let left = Checkout::Dirty {
            path,
            files: dirty,
            at,
        };
        return moved_or(repo, target, expected, new, left);
    }
    let found = repo.require_tip(target)?;
    if found != expected {
        lock.release(co);
        return Ok(Advanced::Moved { expected, found });
    }
    let scratch = match check_out(co, &lock, new)? {
        Ok(scratch) => scratch,
        Err(files) => {
            lock.release(co);
            let left = Checkout::InTheWay {
                path,
                files,
                at: expected,
            };
            return moved_or(repo, target, expected, new, left);
        }
    };
    match move_target(repo, target, expected, new)? {
        None => {
            lock.commit(&scratch)?;
            lock.release(co);
            Ok(Advanced::Done(Checkout::Updated { path }))
        }
        Some(found) => {
            put_back(co, new, expected)?;
            let _ = std::fs::remove_file(&scratch);
            lock.release(co);
            Ok(Advanced::Moved { expected, found })
        }
    }
}

/// Moves the target alone (compare-and-swap); `checkout` says what became of the checkout.
fn moved_or(
    repo: &Repo,
    target: &str,
    expected: Oid,
    new: Oid,
    checkout: Checkout,
) -> Result<Advanced> {
    Ok(match move_target(repo, target, expected, new)? {
        None => Advanced::Done(checkout),
        Some(found) => Advanced::Moved { expected, found },
    })
}

/// The work tree that has `target` checked out: the main checkout, else a linked worktree.
fn checkout_of(repo: &Repo, target: &str) -> Result<Option<PathBuf>> {
    let full = format!("refs/heads/{target}");
    let head = repo.inner.find_reference("HEAD").ok();
    let on_target = head
        .as_ref()
        .and_then(|h| h.symbolic_target().ok().flatten())
        .is_some_and(|t| t == full);
    if !repo.inner.is_bare() && on_target {
        return Ok(Some(repo.path.clone()));
    }
    Ok(super::worktree::list(repo)?
        .into_iter()
        .find(|w| w.valid && w.branch.as_deref() == Some(full.as_str()))
        .map(|w| w.path))
}

/// The commit a checkout's index is based on: of its HEAD and HEAD's first-parent ancestors
/// (at most 64), the nearest whose tree the index differs from in the fewest paths. Usually
/// HEAD; but when an earlier `merge` left the checkout behind and the user committed there
/// since (`git commit -- path` commits onto the moved branch and updates only that path in the
/// index), the index is still the older tip's plus the user's paths, and that older tip is
/// the base that bringing it along needs.
fn index_base(co: &Repo) -> Result<Oid> {
    let err = |source| GitError::Status {
        path: co.path.clone(),
        source,
    };
    let index = co.inner.index().map_err(err)?;
    let mut commit = co.head_commit()?;
    let mut best = (usize::MAX, commit.id());
    for _ in 0..64 {
        let tree = commit.tree().map_err(err)?;
        let differ = co
            .inner
            .diff_tree_to_index(Some(&tree), Some(&index), None)
            .map_err(err)?
            .deltas()
            .len();
        if differ < best.0 {
            best = (differ, commit.id());
        }
        if differ == 0 {
            break;
        }
        match commit.parent(0) {
            Ok(parent) => commit = parent,
            Err(_) => break,
        }
    }
    Ok(best.1)
}

/// No operation (merge, rebase, …) in progress in the checkout: finishing one after the
/// target moved would commit its old files over the merges.
fn check_state(co: &Repo) -> Result<()> {
    let state = co.inner.state();
    if state != git2::RepositoryState::Clean {
        return Err(GitError::Busy {
            path: co.path.clone(),
            operation: format!("{state:?}").to_lowercase(),
        });
    }
    Ok(())
}

/// Checks `commit`'s tree out into the checkout with a scratch index (safe mode: refuses to
/// overwrite anything not committed, checking every path before writing any). `Err(files)`:
/// untracked files in the way, nothing written.
fn check_out(
    co: &Repo,
    lock: &IndexLock,
    commit: Oid,
) -> Result<std::result::Result<PathBuf, Vec<String>>> {
    let checkout_err = |source| GitError::Checkout {
        path: co.path.clone(),
        source,
    };
    let tree = co.commit(commit)?.tree().map_err(checkout_err)?;
    let (scratch, _index) = lock.scratch(co)?;
    let mut in_the_way = Vec::new();
    let checked_out = {
        let mut opts = git2::build::CheckoutBuilder::new();
        opts.safe();
        opts.notify_on(git2::CheckoutNotificationType::CONFLICT);
        opts.notify(|_, path, _, _, _| {
            if let Some(p) = path {
                in_the_way.push(p.to_string_lossy().into_owned());
            }
            true
        });
        co.inner.checkout_tree(tree.as_object(), Some(&mut opts))
    };
    match checked_out {
        Ok(()) => Ok(Ok(scratch)),
        Err(e) => {
            let _ = std::fs::remove_file(&scratch);
            if e.code() == git2::ErrorCode::Conflict && !in_the_way.is_empty() {
                in_the_way.sort();
                Ok(Err(in_the_way))
            } else {
                Err(checkout_err(e))
            }
        }
    }
}

/// Moves `target` from `expected` to `commit` (compare-and-swap); `Some(found)` if it pointed
/// elsewhere. A ref locked for a moment by another git process is tried again briefly.
fn move_target(repo: &Repo, target: &str, expected: Oid, commit: Oid) -> Result<Option<Oid>> {
    let refname = format!("refs/heads/{target}");
    let message = format!("orchestrate merge: into {target}");
    let mut tries = 0;
    loop {
        let result = repo
            .inner
            .reference_matching(&refname, commit, true, expected, &message);
        let e = match result {
            Ok(_) => return Ok(None),
            Err(e) => e,
        };
        let found = repo.require_tip(target)?;
        if found != expected {
            return Ok(Some(found));
        }
        tries += 1;
        if e.code() != git2::ErrorCode::Locked || tries >= 100 {
            return Err(GitError::Commit {
                branch: target.into(),
                source: e,
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Undoes a checkout of `from`'s tree over `to`'s: every path the two trees differ in is
/// written back as `to` has it (or removed if `to` lacks it). The index was never committed,
/// so it still describes `to`.
fn put_back(repo: &Repo, from: Oid, to: Oid) -> Result<()> {
    let err = |source| GitError::Checkout {
        path: repo.path.clone(),
        source,
    };
    let new_tree = repo.commit(from)?.tree().map_err(err)?;
    let old_tree = repo.commit(to)?.tree().map_err(err)?;
    let diff = repo
        .inner
        .diff_tree_to_tree(Some(&old_tree), Some(&new_tree), None)
        .map_err(err)?;
    for delta in diff.deltas() {
        let old = delta.old_file();
        let new = delta.new_file();
        if let Some(p) = new.path()
            && !new.id().is_zero()
        {
            let abs = repo.path.join(p);
            let _ = std::fs::remove_file(&abs);
        }
        if let Some(p) = old.path()
            && !old.id().is_zero()
        {
            let abs = repo.path.join(p);
            let blob = repo.inner.find_blob(old.id()).map_err(err)?;
            if let Some(dir) = abs.parent() {
                std::fs::create_dir_all(dir).map_err(GitError::io("create", dir))?;
            }
            if old.mode() == git2::FileMode::Link {
                use std::os::unix::ffi::OsStrExt;
                let target = std::ffi::OsStr::from_bytes(blob.content());
                std::os::unix::fs::symlink(target, &abs).map_err(GitError::io("write", &abs))?;
                continue;
            }
            std::fs::write(&abs, blob.content()).map_err(GitError::io("write", &abs))?;
            if old.mode() == git2::FileMode::BlobExecutable {
                use std::os::unix::fs::PermissionsExt;
                let perms = std::fs::Permissions::from_mode(0o755);
                std::fs::set_permissions(&abs, perms).map_err(GitError::io("write", &abs))?;
            }
        }
    }
    Ok(())
}
