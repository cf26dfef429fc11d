//! `.worktreeinclude`: files a fresh worktree lacks because git ignores them (`.env`, local
//! config), copied from the project root into a new worktree.
//!
//! The file uses gitignore syntax. A file is copied only if it matches a pattern **and** git
//! really ignores it in the project root: tracked files come with the checkout anyway, and
//! untracked-but-not-ignored files are the user's work in progress, not configuration.
//!
//! Containment (promise 6 of PRODUCT.md): a file comes in only from inside the root, reached
//! through no symbolic link; it is written into the worktree through no symbolic link (a
//! stream may have committed one where the root has a folder); it must be ignored in the
//! worktree too, or a worker's `git add -A` (or our auto-commit) would commit it; and existing
//! files are never overwritten. A link is copied as a link only if it stays inside. Whatever
//! is left out is reported with the reason. [`Includes::covers`] tells auto-commit which paths
//! it must never commit.

use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::beneath::{self, Entry, Folder, Refusal};
use super::error::{GitError, Result};
use super::repo::Repo;

pub const FILE: &str = ".worktreeinclude";

/// Folders never copied: other worktrees and the orchestrator's runtime state.
const NEVER: [&str; 3] = [".git", ".claude/worktrees", ".claude/orchestrator"];

/// Why a listed file was not copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// A folder on the way, in the root or in the worktree, is a symbolic link.
    ThroughLink { at: PathBuf },
    /// The file is a symbolic link that leads outside the repository.
    LinkOutside { target: PathBuf },
    /// The worktree does not ignore it (its committed ignore rules differ from the root's):
    /// copied, it could be committed.
    NotIgnoredInWorktree,
}

/// What [`copy_included`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Copied {
    pub copied: Vec<PathBuf>,
    pub skipped: Vec<(PathBuf, Skip)>,
}

/// The include patterns of a project root.
pub struct Includes {
    matcher: Gitignore,
    patterns: Vec<String>,
}

impl Includes {
    /// The root's `.worktreeinclude`, or `None` without one.
    pub fn load(root: &Path) -> Result<Option<Self>> {
        let file = root.join(FILE);
        if !file.is_file() {
            return Ok(None);
        }
        let bad = |action, e: &dyn std::fmt::Display| GitError::Io {
            action,
            path: file.clone(),
            source: std::io::Error::other(e.to_string()),
        };
        let mut builder = GitignoreBuilder::new(root);
        if let Some(e) = builder.add(&file) {
            return Err(bad("read", &e));
        }
        let matcher = builder.build().map_err(|e| bad("parse", &e))?;
        let patterns = std::fs::read_to_string(&file)
            .map_err(|e| bad("read", &e))?
            .lines()
            .map(|l| l.trim().trim_start_matches('/').to_string())
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        Ok(Some(Self { matcher, patterns }))
    }

    /// Whether the file at `rel` (relative to a root or a worktree) is one `.worktreeinclude`
    /// selects: auto-commit never commits such a path.
    pub fn covers(&self, rel: &Path) -> bool {
        self.matcher
            .matched_path_or_any_parents(rel, false)
            .is_ignore()
    }
}

/// Copies the included ignored files of `repo`'s work tree into the worktree at `dest`.
/// No `.worktreeinclude` → nothing to do.
///
/// A wholly ignored folder (`target/`, `node_modules/`) is entered only when a pattern selects
/// it or names a path inside it, so a pattern like `.env` does not walk every build folder.
pub fn copy_included(repo: &Repo, dest: &Path) -> Result<Copied> {
    let root = repo.path.clone();
    let Some(includes) = Includes::load(&root)? else {
        return Ok(Copied::default());
    };
    let mut candidates = Vec::new();
    for rel in ignored_entries(repo)? {
        if NEVER.iter().any(|n| rel.starts_with(n)) {
            continue;
        }
        let abs = root.join(&rel);
        let is_dir = std::fs::symlink_metadata(&abs).is_ok_and(|m| m.is_dir());
        if !is_dir {
            if includes
                .matcher
                .matched_path_or_any_parents(&abs, false)
                .is_ignore()
            {
                candidates.push(rel);
            }
            continue;
        }
        let whole = includes.matcher.matched(&abs, true).is_ignore();
        let prefix = format!("{}/", rel.display());
        let named_inside = includes
            .patterns
            .iter()
            .any(|p| p.starts_with(&prefix) || p.starts_with("**/"));
        if whole || named_inside {
            walk(&root, &abs, &includes.matcher, whole, &mut candidates)?;
        }
    }
    candidates.sort();
    let worktree = Repo::open(dest)?;
    let (from, to) = (open_folder(&root)?, open_folder(dest)?);
    let mut out = Copied::default();
    for rel in candidates {
        match copy_one(&from, &to, &worktree, &rel) {
            Ok(true) => out.copied.push(rel),
            Ok(false) => {}
            Err(Outcome::Skipped(why)) => out.skipped.push((rel, why)),
            Err(Outcome::Failed(source)) => {
                return Err(GitError::Io {
                    action: "copy",
                    path: root.join(&rel),
                    source,
                });
            }
        }
    }
    Ok(out)
}

fn open_folder(path: &Path) -> Result<Folder> {
    Folder::open(path).map_err(GitError::io("open", path))
}

/// Ignored files and top-most ignored folders of the work tree, relative to the root.
fn ignored_entries(repo: &Repo) -> Result<Vec<PathBuf>> {
    let mut opts = git2::StatusOptions::new();
    opts.include_ignored(true)
        .recurse_ignored_dirs(false)
        .include_untracked(false)
        .exclude_submodules(true);
    let statuses = repo
        .inner
        .statuses(Some(&mut opts))
        .map_err(|source| GitError::Status {
            path: repo.path.clone(),
            source,
        })?;
    Ok(statuses
        .iter()
        .filter(|s| s.status().is_ignored())
        .map(|s| {
            PathBuf::from(
                String::from_utf8_lossy(s.path_bytes())
                    .trim_end_matches('/')
                    .to_string(),
            )
        })
        .collect())
}

/// Collects (relative to `root`) the files under the ignored folder `dir` that the include
/// patterns select (all of them when `all`). Links are collected, never followed.
fn walk(
    root: &Path,
    dir: &Path,
    matcher: &Gitignore,
    all: bool,
    out: &mut Vec<PathBuf>,
) -> Result<()> {
    let rel = dir.strip_prefix(root).unwrap_or(dir);
    if NEVER.iter().any(|n| rel.starts_with(n)) {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(GitError::io("read", dir))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            walk(root, &path, matcher, all, out)?;
        } else if all
            || matcher
                .matched_path_or_any_parents(&path, false)
                .is_ignore()
        {
            out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
        }
    }
    Ok(())
}

enum Outcome {
    Skipped(Skip),
    Failed(std::io::Error),
}

impl From<Refusal> for Outcome {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::ThroughLink { at } => Outcome::Skipped(Skip::ThroughLink { at }),
            Refusal::Exists => {
                Outcome::Failed(std::io::Error::from(std::io::ErrorKind::AlreadyExists))
            }
            Refusal::Io(e) => Outcome::Failed(e),
        }
    }
}

/// Copies one file; `Ok(false)` when the worktree already has something at its path.
fn copy_one(
    from: &Folder,
    to: &Folder,
    worktree: &Repo,
    rel: &Path,
) -> std::result::Result<bool, Outcome> {
    // Where the worktree would not ignore it, a copy could end up in a commit.
    if !worktree.inner.is_path_ignored(rel).unwrap_or(false) {
        return Err(Outcome::Skipped(Skip::NotIgnoredInWorktree));
    }
    let written = match from.read(rel)? {
        Entry::File(file) => to.create_copy(rel, &file),
        Entry::Link(target) if beneath::link_stays_inside(rel, &target) => {
            to.create_link(rel, &target)
        }
        Entry::Link(target) => return Err(Outcome::Skipped(Skip::LinkOutside { target })),
        Entry::Other => return Ok(false),
    };
    match written {
        Ok(()) => Ok(true),
        Err(Refusal::Exists) => Ok(false),
        Err(other) => Err(other.into()),
    }
}

/// "copied from .worktreeinclude: …" and one note per reason something was left out.
pub fn notes(copied: &Copied) -> Vec<String> {
    let list = |paths: &[&PathBuf]| {
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut notes = Vec::new();
    if !copied.copied.is_empty() {
        let paths: Vec<&PathBuf> = copied.copied.iter().collect();
        notes.push(format!("copied from {FILE}: {}", list(&paths)));
    }
    for (rel, why) in &copied.skipped {
        let because = match why {
            Skip::ThroughLink { at } => format!(
                "{} is a symbolic link (or not a folder); nothing is read or written through a link",
                at.display()
            ),
            Skip::LinkOutside { target } => format!(
                "it is a symbolic link to {}, outside the repository",
                target.display()
            ),
            Skip::NotIgnoredInWorktree => "it is not ignored in the worktree (its committed \
                ignore rules do not cover it), so it could be committed; commit the ignore rule"
                .to_string(),
        };
        notes.push(format!(
            "not copied from {FILE}: {}: {because}",
            rel.display()
        ));
    }
    notes
}
