//! `orchestrate merge`: brings complete stream branches into the target branch, in dependency
//! order, as `--no-ff` merge commits `Merge stream <id>: <name>`.
//!
//! Each merge is computed in memory first; the work tree, index and branch are updated only
//! when it is clean (checkout in safe mode, then the ref moves). A conflict therefore stops the
//! run with the project root exactly as it was before that merge: nothing to abort, nothing lost.
//!
//! Concurrency (promise 4 of PRODUCT.md): the whole run holds the main checkout's
//! `.git/index.lock`, as `git merge` does, so a `git commit` (or `switch`, `add`, …) in the
//! main checkout waits for it or fails cleanly instead of interleaving; the new index is
//! written into that lock file and committed by renaming it. Every move of the target is
//! compare-and-swap against where the merge began (then against our own previous merge): a
//! target moved meanwhile by anything that does not take the index lock (a push or fetch into
//! it, `git update-ref`) stops the run, the work tree put back as it was, nothing overwritten.

use git2::Oid;

use super::error::{GitError, Result};
use super::index_lock::IndexLock;
use super::preview::{MergePreview, StreamMerge, merge_in_memory};
use super::repo::Repo;
use crate::graph::Stream;

/// What a merge run did.
#[derive(Debug, Clone, Default)]
pub struct MergeReport {
    pub target: String,
    /// Merged streams with their merge commits, in order.
    pub merged: Vec<(StreamMerge, Oid)>,
    /// Already merged, or not complete.
    pub skipped: Vec<StreamMerge>,
    /// The stream whose merge conflicted (with the paths); the run stopped there.
    pub conflict: Option<StreamMerge>,
    /// Why the run stopped before the end, with the merges before it done.
    pub stopped: Option<Stop>,
}

/// Why a merge run stopped early (a conflict is [`MergeReport::conflict`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The target moved meanwhile: it was expected at `expected` and found at `found`.
    Moved { expected: Oid, found: Oid },
    /// Another git process took the main checkout's index lock between two merges.
    LockTaken,
}

/// Merges `streams` (dependency order) into `target`, which the project root must have
/// checked out with no uncommitted changes to tracked files.
pub fn merge_streams(
    repo: &Repo,
    target: &str,
    streams: &[&Stream],
    is_complete: impl Fn(&Stream) -> bool,
) -> Result<MergeReport> {
    // Where the merge begins: the target is advanced only from here.
    let begun = repo.require_tip(target)?;
    let mut lock = IndexLock::take(repo)?;
    check_root(repo, target)?;
    let mut report = MergeReport {
        target: target.into(),
        ..Default::default()
    };
    let now = repo.require_tip(target)?;
    if now != begun {
        report.stopped = Some(Stop::Moved {
            expected: begun,
            found: now,
        });
        return Ok(report);
    }
    let mut expected = begun;
    for stream in streams {
        let names = crate::names::StreamNames::new(stream.id());
        let branch = names.branch();
        let Some(tip) = repo.branch_tip(&branch)? else {
            continue;
        };
        let mut entry = StreamMerge {
            stream: stream.id().into(),
            name: stream.record.name.clone(),
            branch: branch.clone(),
            commits_ahead: repo.commits_ahead(begun, tip)?,
            preview: MergePreview::Clean,
        };
        if repo.contains(expected, tip)? {
            entry.preview = if is_complete(stream) {
                MergePreview::AlreadyMerged
            } else {
                MergePreview::NoCommits
            };
            report.skipped.push(entry);
            continue;
        }
        if !is_complete(stream) {
            entry.preview = MergePreview::Incomplete;
            report.skipped.push(entry);
            continue;
        }
        match merge_in_memory(repo, expected, tip, target, &branch, stream)? {
            Ok(commit) => match apply(repo, &mut lock, target, &branch, expected, commit)? {
                Applied::Moved(found) => {
                    report.stopped = Some(Stop::Moved { expected, found });
                    break;
                }
                Applied::Done { lock_kept } => {
                    expected = commit;
                    report.merged.push((entry, commit));
                    if !lock_kept {
                        report.stopped = Some(Stop::LockTaken);
                        break;
                    }
                }
            },
            Err(paths) => {
                entry.preview = MergePreview::Conflicts { paths };
                report.conflict = Some(entry);
                break;
            }
        }
    }
    lock.release(repo);
    Ok(report)
}

/// The project root is ready to merge into: no operation in progress, on `target`, no
/// uncommitted changes to tracked files. Checked under the index lock.
fn check_root(repo: &Repo, target: &str) -> Result<()> {
    let state = repo.inner.state();
    if state != git2::RepositoryState::Clean {
        return Err(GitError::Busy {
            path: repo.path.clone(),
            operation: format!("{state:?}").to_lowercase(),
        });
    }
    let current = repo
        .current_branch()
        .unwrap_or_else(|| "(detached HEAD)".into());
    if current != target {
        return Err(GitError::NotOnTarget {
            path: repo.path.clone(),
            current,
            target: target.into(),
        });
    }
    let dirty: Vec<String> = repo
        .dirty_files()?
        .into_iter()
        .filter(|f| !f.untracked)
        .map(|f| f.path)
        .collect();
    if !dirty.is_empty() {
        return Err(GitError::RootDirty {
            path: repo.path.clone(),
            files: dirty,
        });
    }
    Ok(())
}

enum Applied {
    /// Merged; `lock_kept`: this run still holds the index lock.
    Done { lock_kept: bool },
    /// The target no longer pointed where expected: it points here. Nothing was changed.
    Moved(Oid),
}

/// Checks out `commit`'s tree (safe mode: refuses to overwrite anything not committed), then
/// moves `target` from `expected` to `commit` (compare-and-swap) and commits the new index.
/// If the target moved meanwhile, the work tree is put back as it was and nothing else changes.
fn apply(
    repo: &Repo,
    lock: &mut IndexLock,
    target: &str,
    branch: &str,
    expected: Oid,
    commit: Oid,
) -> Result<Applied> {
    let checkout_err = |source| GitError::Checkout {
        path: repo.path.clone(),
        source,
    };
    let tree = repo.commit(commit)?.tree().map_err(checkout_err)?;
    let (scratch, _index) = lock.scratch(repo)?;
    // libgit2 checks every path before writing any, so a refusal changes nothing; collect the
    // paths in the way (untracked files the merge would add) to name them.
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
        repo.inner.checkout_tree(tree.as_object(), Some(&mut opts))
    };
    match checked_out {
        Err(e) if e.code() == git2::ErrorCode::Conflict && !in_the_way.is_empty() => {
            let _ = std::fs::remove_file(&scratch);
            return Err(GitError::UntrackedInTheWay {
                path: repo.path.clone(),
                branch: branch.into(),
                files: in_the_way,
            });
        }
        Err(e) => {
            let _ = std::fs::remove_file(&scratch);
            return Err(checkout_err(e));
        }
        Ok(()) => {}
    }
    let moved = move_target(repo, target, branch, expected, commit);
    match moved {
        Ok(None) => Ok(Applied::Done {
            lock_kept: lock.commit(&scratch)?,
        }),
        other => {
            put_back(repo, commit, expected)?;
            let _ = std::fs::remove_file(&scratch);
            other.map(|found| Applied::Moved(found.expect("not moved is handled above")))
        }
    }
}

/// Moves `target` from `expected` to `commit` (compare-and-swap); `Some(found)` if it pointed
/// elsewhere. A ref locked for a moment by another git process is tried again briefly.
fn move_target(
    repo: &Repo,
    target: &str,
    branch: &str,
    expected: Oid,
    commit: Oid,
) -> Result<Option<Oid>> {
    let refname = format!("refs/heads/{target}");
    let message = format!("orchestrate merge: {branch} into {target}");
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
