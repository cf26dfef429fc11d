//! `.worktreeinclude`: files a fresh worktree lacks because git ignores them (`.env`, local
//! config), copied from the project root into a new worktree.
//!
//! The file uses gitignore syntax. A file is copied only if it matches a pattern **and** git
//! really ignores it in the project root: tracked files come with the checkout anyway, and
//! untracked-but-not-ignored files are the user's work in progress, not configuration.
//! Existing files in the worktree are never overwritten.

use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::error::{GitError, Result};
use super::repo::Repo;

pub const FILE: &str = ".worktreeinclude";

/// Folders never copied: other worktrees and the orchestrator's runtime state.
const NEVER: [&str; 3] = [".git", ".claude/worktrees", ".claude/orchestrator"];

/// Copies the included ignored files of `repo`'s work tree into `dest`; returns their paths
/// relative to the root. No `.worktreeinclude` → nothing to do.
///
/// A wholly ignored folder (`target/`, `node_modules/`) is entered only when a pattern selects
/// it or names a path inside it, so a pattern like `.env` does not walk every build folder.
pub fn copy_included(repo: &Repo, dest: &Path) -> Result<Vec<PathBuf>> {
    let root = repo.path.clone();
    let file = root.join(FILE);
    if !file.is_file() {
        return Ok(Vec::new());
    }
    let bad = |action, e: &dyn std::fmt::Display| GitError::Io {
        action,
        path: file.clone(),
        source: std::io::Error::other(e.to_string()),
    };
    let mut builder = GitignoreBuilder::new(&root);
    if let Some(e) = builder.add(&file) {
        return Err(bad("read", &e));
    }
    let matcher = builder.build().map_err(|e| bad("parse", &e))?;
    let patterns: Vec<String> = std::fs::read_to_string(&file)
        .map_err(|e| bad("read", &e))?
        .lines()
        .map(|l| l.trim().trim_start_matches('/').to_string())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let mut copied = Vec::new();
    for rel in ignored_entries(repo)? {
        if NEVER.iter().any(|n| rel.starts_with(n)) {
            continue;
        }
        let abs = root.join(&rel);
        let is_dir = std::fs::symlink_metadata(&abs).is_ok_and(|m| m.is_dir());
        if !is_dir {
            if matcher.matched_path_or_any_parents(&abs, false).is_ignore() {
                copy_one(&root, dest, &abs, &mut copied)?;
            }
            continue;
        }
        let whole = matcher.matched(&abs, true).is_ignore();
        let prefix = format!("{}/", rel.display());
        let named_inside = patterns
            .iter()
            .any(|p| p.starts_with(&prefix) || p.starts_with("**/"));
        if whole || named_inside {
            walk(&root, &abs, &matcher, whole, &mut |f| {
                copy_one(&root, dest, f, &mut copied)
            })?;
        }
    }
    copied.sort();
    Ok(copied)
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

/// Visits the files under the ignored folder `dir` that the include patterns select (all of
/// them when `all`). Symlinks are visited, not followed.
fn walk(
    root: &Path,
    dir: &Path,
    matcher: &Gitignore,
    all: bool,
    visit: &mut dyn FnMut(&Path) -> Result<()>,
) -> Result<()> {
    let rel = dir.strip_prefix(root).unwrap_or(dir);
    if NEVER.iter().any(|n| rel.starts_with(n)) {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(|source| GitError::Io {
        action: "read",
        path: dir.into(),
        source,
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            walk(root, &path, matcher, all, visit)?;
        } else if all
            || matcher
                .matched_path_or_any_parents(&path, false)
                .is_ignore()
        {
            visit(&path)?;
        }
    }
    Ok(())
}

fn copy_one(root: &Path, dest: &Path, file: &Path, copied: &mut Vec<PathBuf>) -> Result<()> {
    let rel = file.strip_prefix(root).unwrap_or(file).to_path_buf();
    let target = dest.join(&rel);
    let io = GitError::io;
    if target.symlink_metadata().is_ok() {
        return Ok(());
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(io("create", parent))?;
    }
    let meta = std::fs::symlink_metadata(file).map_err(io("read", file))?;
    if meta.file_type().is_symlink() {
        // Copy the link itself: following it could copy a whole folder or fail on a dangling one.
        let link = std::fs::read_link(file).map_err(io("read", file))?;
        std::os::unix::fs::symlink(link, &target).map_err(io("create", &target))?;
    } else if meta.is_file() {
        std::fs::copy(file, &target).map_err(io("copy", file))?;
    } else {
        return Ok(());
    }
    copied.push(rel);
    Ok(())
}
