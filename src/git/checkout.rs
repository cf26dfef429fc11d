//! Filling a stream worktree with its files: the one place a worktree's checkout happens, and
//! the proof that it finished.
//!
//! [`populate`] writes HEAD's tree into a registered worktree and its index; [`verify`] checks
//! that the index holds exactly HEAD's tree and that no tracked file is missing or different.
//! A worktree is handed to a worker only after both (see `worktree.rs` for the marker that
//! makes an interrupted checkout visible).
//!
//! A fresh worktree (its folder holds nothing but its `.git` file) is filled by `fill.rs`:
//! several threads write the files and the index is written once with their stat data, which
//! measured 0.5–0.7× `git worktree add` where libgit2's single-threaded checkout took 1.2–1.5×
//! (BENCHMARKS.md §5). Paths whose attributes convert them, settings that convert every file,
//! and finishing a worktree that already holds files go through libgit2's checkout, which
//! leaves the same two facts behind.

use std::path::Path;

use git2::Repository;

use super::Progress;
use super::error::{GitError, Result};
use super::fill;

/// How much of what is already in the folder may be overwritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// The folder holds only what our own (interrupted) checkout wrote: overwrite freely.
    Ours,
    /// The folder may hold someone's edits (a worktree made by an older version, cut mid
    /// checkout): create what is missing, refuse to overwrite anything that differs.
    Careful,
}

/// Checks HEAD's tree out into the worktree at `dir` and writes its index; `progress` hears
/// how far a checkout slower than a second has come.
pub fn populate(dir: &Path, fill: Fill, progress: &dyn Fn(Progress)) -> Result<()> {
    let repo = open(dir)?;
    if fill == Fill::Ours && is_fresh(&repo, dir) && fill::applies(&repo) {
        return populate_fresh(&repo, dir, progress);
    }
    libgit2_checkout(&repo, dir, fill, None)
}

/// Nothing but the `.git` file in the folder, and no index: a worktree just registered.
fn is_fresh(repo: &Repository, dir: &Path) -> bool {
    let only_git = std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .map(|e| e.map(|e| e.file_name()))
            .all(|n| n.is_ok_and(|n| n == ".git"))
    });
    only_git && !repo.path().join("index").exists()
}

/// The parallel fill, libgit2's checkout for the paths it leaves, then the index.
fn populate_fresh(repo: &Repository, dir: &Path, progress: &dyn Fn(Progress)) -> Result<()> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
    let (entries, converted) = fill::fill(dir, threads, progress)?;
    if !converted.is_empty() {
        libgit2_checkout(repo, dir, Fill::Ours, Some(&converted))?;
    }
    fill::write_index(dir, entries, &converted)
}

/// libgit2's checkout of HEAD into `dir`: every path, or only `paths` (then the index is left
/// to the caller).
fn libgit2_checkout(
    repo: &Repository,
    dir: &Path,
    fill: Fill,
    paths: Option<&[String]>,
) -> Result<()> {
    let mut in_the_way = Vec::new();
    let mut opts = git2::build::CheckoutBuilder::new();
    match fill {
        Fill::Ours => {
            // A checkout killed while writing the index leaves its lock behind; the marker
            // proves the worktree ours and never handed over, so the lock is ours too.
            let lock = repo.path().join("index.lock");
            if lock.exists() {
                std::fs::remove_file(&lock).map_err(GitError::io("remove", &lock))?;
            }
            opts.force();
        }
        Fill::Careful => {
            // Without an index every file there looks untracked (in the way): index HEAD's
            // tree first, so that only what is missing is written and a changed file is left
            // alone (and then named by `verify`).
            let tree = repo.head().and_then(|h| h.peel_to_tree());
            let indexed = tree.and_then(|tree| {
                let mut index = repo.index()?;
                index.read_tree(&tree)?;
                index.write()
            });
            indexed.map_err(|source| GitError::Checkout {
                path: dir.to_path_buf(),
                source,
            })?;
            opts.safe().recreate_missing(true);
        }
    }
    if let Some(paths) = paths {
        opts.update_index(false).disable_pathspec_match(true);
        for p in paths {
            opts.path(p);
        }
    }
    opts.notify_on(git2::CheckoutNotificationType::CONFLICT);
    opts.notify(|_, path, _, _, _| {
        if let Some(p) = path {
            in_the_way.push(p.to_string_lossy().into_owned());
        }
        true
    });
    let result = repo.checkout_head(Some(&mut opts));
    drop(opts);
    match result {
        Err(e) if e.code() == git2::ErrorCode::Conflict && !in_the_way.is_empty() => {
            in_the_way.sort();
            Err(GitError::Unfinished {
                path: dir.to_path_buf(),
                files: in_the_way,
            })
        }
        other => other.map_err(|source| GitError::Checkout {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// Proves the checkout of the worktree at `dir` complete: its index exists and holds HEAD's
/// tree, and every tracked file is in the folder. After our own checkout ([`Fill::Ours`]) a file
/// is checked for its presence, type and size (a checkout cut short leaves files missing or
/// short; hashing every file again would double the cost of creating a worktree); after a
/// careful one, for its content too.
pub fn verify(dir: &Path, fill: Fill) -> Result<()> {
    let repo = open(dir)?;
    let err = |source| GitError::Checkout {
        path: dir.to_path_buf(),
        source,
    };
    let head_tree = repo.head().and_then(|h| h.peel_to_tree()).map_err(err)?;
    let indexed = repo.path().join("index").exists();
    let index = repo.index().map_err(err)?;
    let mut files = match fill {
        Fill::Ours => missing_or_short(dir, &index),
        Fill::Careful => differing(&repo).map_err(err)?,
    };
    if files.is_empty() && !(indexed && index_holds(&index, &head_tree).map_err(err)?) {
        files.push("(the index does not hold HEAD's tree)".into());
    }
    if files.is_empty() {
        Ok(())
    } else {
        Err(GitError::Unfinished {
            path: dir.to_path_buf(),
            files,
        })
    }
}

/// Whether the index lists exactly the tree's files, with their ids and modes. (Compared
/// entry by entry: writing the index's tree would cost more than the checkout's verification
/// is worth.)
fn index_holds(
    index: &git2::Index,
    tree: &git2::Tree<'_>,
) -> std::result::Result<bool, git2::Error> {
    let mut want: Vec<(Vec<u8>, git2::Oid, i32)> = Vec::with_capacity(index.len());
    tree.walk(git2::TreeWalkMode::PreOrder, |root, entry| {
        if entry.kind() != Some(git2::ObjectType::Tree) {
            let mut path = root.as_bytes().to_vec();
            path.extend_from_slice(entry.name_bytes());
            want.push((path, entry.id(), entry.filemode()));
        }
        git2::TreeWalkResult::Ok
    })?;
    let mut have: Vec<(Vec<u8>, git2::Oid, i32)> = index
        .iter()
        .map(|e| (e.path, e.id, e.mode as i32))
        .collect();
    want.sort();
    have.sort();
    Ok(want == have)
}

/// Index entries whose file is missing, of another type, or of another size.
fn missing_or_short(dir: &Path, index: &git2::Index) -> Vec<String> {
    const LINK: u32 = 0o120000;
    const GITLINK: u32 = 0o160000;
    index
        .iter()
        .filter(|e| e.mode != GITLINK)
        .filter_map(|e| {
            let rel = String::from_utf8_lossy(&e.path).into_owned();
            let meta = std::fs::symlink_metadata(dir.join(&rel));
            let whole = meta.is_ok_and(|m| {
                if e.mode == LINK {
                    m.file_type().is_symlink()
                } else {
                    // The index keeps the size's low 32 bits.
                    m.is_file() && m.len() as u32 == e.file_size
                }
            });
            (!whole).then_some(rel)
        })
        .collect()
}

/// Whether the worktree's checkout never finished by an older version's standards: no index
/// was ever written (libgit2 writes it last).
pub fn never_indexed(dir: &Path) -> bool {
    open(dir).is_ok_and(|r| !r.path().join("index").exists())
}

/// Tracked paths that are missing, changed or staged differently from HEAD.
fn differing(repo: &Repository) -> std::result::Result<Vec<String>, git2::Error> {
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(false)
        .include_ignored(false)
        .exclude_submodules(true);
    let statuses = repo.statuses(Some(&mut opts))?;
    Ok(statuses
        .iter()
        .filter(|s| s.status() != git2::Status::CURRENT)
        .map(|s| String::from_utf8_lossy(s.path_bytes()).into_owned())
        .collect())
}

fn open(dir: &Path) -> Result<Repository> {
    Repository::open(dir).map_err(|source| GitError::Open {
        path: dir.to_path_buf(),
        source,
    })
}
