//! `.worktreeinclude`: files a fresh worktree lacks because git ignores them (`.env`, local
//! config, and whole warm caches: `target/`, `node_modules/`, `.venv/`), copied from the
//! project root into a new worktree: cloned where the file system can (copy-on-write: no room
//! and no time per byte), else copied with their holes (`include_copy`, see `beneath.rs`).
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

use super::beneath::{self, CopyMode, Entry, Folder, Method, Refusal};
use super::error::{GitError, Result};
use super::repo::Repo;
use super::{Progress, Ticker};
use std::collections::HashSet;

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
    /// Bytes of the files copied (their apparent size).
    pub bytes: u64,
    /// How many of them are copy-on-write clones.
    pub cloned: usize,
}

/// What [`copy_included`] would copy: the files and their apparent size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Planned {
    pub files: usize,
    pub bytes: u64,
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

/// Copies the included ignored files of `repo`'s work tree into the worktree at `dest`, as
/// `how` says; `progress` hears how far a copy slower than a second has come.
/// No `.worktreeinclude` → nothing to do.
pub fn copy_included(
    repo: &Repo,
    dest: &Path,
    how: CopyMode,
    progress: &dyn Fn(Progress),
) -> Result<Copied> {
    copy_ticking(repo, dest, how, progress, Ticker::new(Ticker::QUIET))
}

fn copy_ticking(
    repo: &Repo,
    dest: &Path,
    how: CopyMode,
    progress: &dyn Fn(Progress),
    mut ticker: Ticker,
) -> Result<Copied> {
    let root = repo.path.clone();
    let candidates = candidates(repo)?;
    let mut out = Copied::default();
    if candidates.is_empty() {
        return Ok(out);
    }
    let total: u64 = candidates.iter().map(|c| c.1).sum();
    let worktree = Repo::open(dest)?;
    let mut ignored = IgnoredIn::new(&worktree);
    let (mut from, mut to) = (open_folder(&root)?, open_folder(dest)?);
    for (rel, size) in candidates {
        if ticker.due() {
            progress(Progress::Include {
                bytes: out.bytes,
                of: total,
            });
        }
        let copied = if ignored.covers(&rel) {
            copy_one(&mut from, &mut to, &rel, how)
        } else {
            // Where the worktree would not ignore it, a copy could end up in a commit.
            Err(Outcome::Skipped(Skip::NotIgnoredInWorktree))
        };
        match copied {
            Ok(Some(method)) => {
                out.cloned += usize::from(method == Method::Cloned);
                out.bytes += size;
                out.copied.push(rel);
            }
            Ok(None) => {}
            Err(Outcome::Skipped(why)) => out.skipped.push((rel, why)),
            Err(Outcome::NoClone(source)) => {
                return Err(GitError::NoReflink {
                    from: root.join(&rel),
                    to: dest.to_path_buf(),
                    source,
                });
            }
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

/// What [`copy_included`] would copy from `repo`'s work tree (for `start --dry-run`).
pub fn planned(repo: &Repo) -> Result<Planned> {
    let candidates = candidates(repo)?;
    Ok(Planned {
        files: candidates.len(),
        bytes: candidates.iter().map(|c| c.1).sum(),
    })
}

/// The included ignored files of the work tree (relative to the root), sorted, with their
/// apparent sizes.
///
/// A wholly ignored folder (`target/`, `node_modules/`) is entered only when a pattern selects
/// it or names a path inside it, so a pattern like `.env` does not walk every build folder.
fn candidates(repo: &Repo) -> Result<Vec<(PathBuf, u64)>> {
    let root = repo.path.clone();
    let Some(includes) = Includes::load(&root)? else {
        return Ok(Vec::new());
    };
    let mut candidates = Vec::new();
    for rel in ignored_entries(repo)? {
        if NEVER.iter().any(|n| rel.starts_with(n)) {
            continue;
        }
        let abs = root.join(&rel);
        let Ok(meta) = std::fs::symlink_metadata(&abs) else {
            continue;
        };
        if !meta.is_dir() {
            if includes
                .matcher
                .matched_path_or_any_parents(&abs, false)
                .is_ignore()
            {
                candidates.push((rel, meta.len()));
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
    Ok(candidates)
}

/// Whether the worktree ignores a path, asking git once per folder: everything inside an
/// ignored folder is ignored (git never looks inside one), and a `target/` holds thousands.
struct IgnoredIn<'r> {
    worktree: &'r Repo,
    folders: HashSet<PathBuf>,
}

impl<'r> IgnoredIn<'r> {
    fn new(worktree: &'r Repo) -> Self {
        Self {
            worktree,
            folders: HashSet::new(),
        }
    }

    fn covers(&mut self, rel: &Path) -> bool {
        let ask = |p: &Path| self.worktree.inner.is_path_ignored(p).unwrap_or(false);
        for folder in rel
            .ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
        {
            if self.folders.contains(folder) {
                return true;
            }
        }
        // The top-most ignored folder on the way, remembered for its siblings.
        let mut on_the_way: Vec<&Path> = rel
            .ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
            .collect();
        on_the_way.reverse();
        for folder in on_the_way {
            let as_folder = PathBuf::from(format!("{}/", folder.display()));
            if ask(&as_folder) {
                self.folders.insert(folder.to_path_buf());
                return true;
            }
        }
        ask(rel)
    }
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
    out: &mut Vec<(PathBuf, u64)>,
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
            // The entry's own size: a link is not followed.
            let size = entry.metadata().map_or(0, |m| m.len());
            out.push((path.strip_prefix(root).unwrap_or(&path).to_path_buf(), size));
        }
    }
    Ok(())
}

enum Outcome {
    Skipped(Skip),
    NoClone(std::io::Error),
    Failed(std::io::Error),
}

impl From<Refusal> for Outcome {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::ThroughLink { at } => Outcome::Skipped(Skip::ThroughLink { at }),
            Refusal::Exists => {
                Outcome::Failed(std::io::Error::from(std::io::ErrorKind::AlreadyExists))
            }
            Refusal::NoClone(e) => Outcome::NoClone(e),
            Refusal::Io(e) => Outcome::Failed(e),
        }
    }
}

/// Copies one file (a link as a link, if it stays inside); `Ok(None)` when the worktree
/// already has something at its path.
fn copy_one(
    from: &mut Folder,
    to: &mut Folder,
    rel: &Path,
    how: CopyMode,
) -> std::result::Result<Option<Method>, Outcome> {
    let written = match from.read(rel)? {
        Entry::File(file, meta) => to.create_copy(rel, &file, &meta, how),
        Entry::Link(target) if beneath::link_stays_inside(rel, &target) => {
            to.create_link(rel, &target).map(|()| Method::Copied)
        }
        Entry::Link(target) => return Err(Outcome::Skipped(Skip::LinkOutside { target })),
        Entry::Other => return Ok(None),
    };
    match written {
        Ok(method) => Ok(Some(method)),
        Err(Refusal::Exists) => Ok(None),
        Err(other) => Err(other.into()),
    }
}

/// "copied from .worktreeinclude: …" and one note per reason something was left out.
pub fn notes(copied: &Copied) -> Vec<String> {
    let mut notes = Vec::new();
    if !copied.copied.is_empty() {
        let how = match copied.cloned {
            0 => String::new(),
            n if n == copied.copied.len() => ", as copy-on-write clones".into(),
            n => format!(", {n} of them as copy-on-write clones"),
        };
        notes.push(format!(
            "copied from {FILE}: {} ({}{how})",
            summary(&copied.copied),
            size(copied.bytes)
        ));
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

/// The copied paths, a folder's files counted under its name: `.env, target/ (20000 files)`.
fn summary(paths: &[PathBuf]) -> String {
    let mut groups: Vec<(String, usize, &PathBuf)> = Vec::new();
    for p in paths {
        let top = p
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        match groups.last_mut() {
            Some((name, n, _)) if *name == top => *n += 1,
            _ => groups.push((top, 1, p)),
        }
    }
    groups
        .iter()
        .map(|(top, n, first)| match n {
            1 => first.display().to_string(),
            n => format!("{top}/ ({n} files)"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A size for people: `512 B`, `3.2 MiB`, `1.0 GiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repository at `dir` ignoring and including `cache/`, with one commit.
    fn repo_with_cache(dir: &Path) -> Repo {
        let repo = git2::Repository::init(dir).unwrap();
        std::fs::write(dir.join(".gitignore"), "cache/\n").unwrap();
        std::fs::write(dir.join(FILE), "cache/\n").unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new(".gitignore")).unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        repo.commit(Some("HEAD"), &sig, &sig, "rules", &tree, &[])
            .unwrap();
        Repo::open(dir).unwrap()
    }

    #[test]
    fn a_copy_reports_its_bytes_once_it_is_due() {
        let tmp = tempfile::tempdir().unwrap();
        let (root, dest) = (tmp.path().join("root"), tmp.path().join("dest"));
        std::fs::create_dir_all(root.join("cache/a")).unwrap();
        std::fs::create_dir_all(&dest).unwrap();
        let repo = repo_with_cache(&root);
        repo_with_cache(&dest);
        for i in 0..3 {
            std::fs::write(root.join(format!("cache/a/f{i}")), vec![7u8; 1000]).unwrap();
        }
        let heard = std::cell::RefCell::new(Vec::new());
        let progress = |p| heard.borrow_mut().push(p);
        let ticker = Ticker::new(std::time::Duration::ZERO);
        let copied = copy_ticking(&repo, &dest, CopyMode::Auto, &progress, ticker).unwrap();
        assert_eq!((copied.copied.len(), copied.bytes), (3, 3000));
        let heard = heard.into_inner();
        assert_eq!(
            heard.first(),
            Some(&Progress::Include { bytes: 0, of: 3000 }),
            "{heard:?}"
        );
        // Once a second after the first: a fast copy says it once.
        assert_eq!(heard.len(), 1, "{heard:?}");
        assert_eq!(
            std::fs::read(dest.join("cache/a/f2")).unwrap(),
            vec![7u8; 1000]
        );
    }
}
