//! The fast checkout of a fresh worktree: HEAD's tree written by several threads, then the
//! index written once with the stat data of the files just written, so that the first
//! `git status` finds every file clean without reading it.
//!
//! Invariants:
//! * only an empty folder (nothing but its `.git` file) is filled this way; anything else goes
//!   through libgit2's checkout (see `checkout.rs`), so nothing here ever overwrites a file:
//!   every file, link and folder is created exclusively, and a path that climbs out, or names
//!   `.git`, is refused;
//! * the result is git's own: files with their exec bit (0777/0666 under the umask, as git),
//!   symbolic links as links, a submodule as an empty folder; a path whose attributes ask for
//!   a conversion (`text`, `eol`, `crlf`, `filter`, `ident`, `working-tree-encoding`) is
//!   written by libgit2's checkout, which applies them, and so is every file when
//!   `core.autocrlf` or `core.symlinks = false` changes all of them (the caller checks
//!   [`applies`]);
//! * the index is written last, by one rename: a fill cut short leaves no index (and the
//!   creation marker), so it is redone, never trusted.
//!
//! git2's objects are not `Sync`: each thread opens its own repository.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use git2::{IndexEntry, IndexTime, Repository};

use super::error::{GitError, Result};
use super::{Progress, Ticker};

const LINK: u32 = 0o120000;
const GITLINK: u32 = 0o160000;

/// Below this many files one thread does it all: starting threads would cost more.
const ALONE: usize = 256;

/// Attributes that make a file's bytes in the work tree differ from the blob.
const CONVERTING: [&str; 6] = [
    "text",
    "eol",
    "crlf",
    "filter",
    "ident",
    "working-tree-encoding",
];

/// Whether this fill can check out the repository at `dir` as git would: false when a setting
/// converts every file (`core.autocrlf = true`) or writes links as files (`core.symlinks =
/// false`); libgit2's checkout does those.
pub fn applies(repo: &Repository) -> bool {
    let Ok(config) = repo.config() else {
        return false;
    };
    let autocrlf = config.get_bool("core.autocrlf").unwrap_or(false);
    let symlinks = config.get_bool("core.symlinks").unwrap_or(true);
    !autocrlf && symlinks
}

/// Writes HEAD's tree into the empty worktree at `dir` and its index. Returns the paths it
/// left for libgit2's checkout (their attributes convert them); the caller checks those out
/// and then calls [`write_index`] with `entries`.
pub fn fill(
    dir: &Path,
    threads: usize,
    progress: &dyn Fn(Progress),
) -> Result<(Vec<IndexEntry>, Vec<String>)> {
    let _unverified = Unverified::begin();
    let repo = open(dir)?;
    let err = |source| GitError::Checkout {
        path: dir.to_path_buf(),
        source,
    };
    let tree = repo.head().and_then(|h| h.peel_to_tree()).map_err(err)?;
    // An index without a repository: read from the tree alone, and written (later) without
    // libgit2's racy-entry check, which would read back every file just written.
    let mut index = git2::Index::new().map_err(err)?;
    index.read_tree(&tree).map_err(err)?;
    let entries: Vec<IndexEntry> = index.iter().collect();
    for e in &entries {
        safe_path(dir, &e.path)?;
    }
    make_folders(dir, &entries)?;
    // Attribute files first: deciding which paths they convert reads them from the folder.
    let (attrs, rest): (Vec<IndexEntry>, Vec<IndexEntry>) = entries
        .into_iter()
        .partition(|e| e.path.rsplit(|&b| b == b'/').next() == Some(b".gitattributes"));
    let mut done = write_all(dir, attrs, false, &|_| {})?;
    let converts = !done.is_empty() || outside_attributes(&repo);
    let total = rest.len();
    let written = AtomicUsize::new(0);
    let rest = split(rest, if total < ALONE { 1 } else { threads.max(1) });
    let outcome = std::thread::scope(|s| {
        let workers: Vec<_> = rest
            .into_iter()
            .map(|chunk| {
                let written = &written;
                s.spawn(move || {
                    write_all(dir, chunk, converts, &|n| {
                        written.fetch_add(n, Ordering::Relaxed);
                    })
                })
            })
            .collect();
        report_until_done(&workers, &written, total, progress);
        workers
            .into_iter()
            .map(|w| w.join().expect("a checkout thread panicked"))
            .collect::<Vec<_>>()
    });
    for part in outcome {
        done.extend(part?);
    }
    let mut entries = Vec::with_capacity(done.len());
    let mut left = Vec::new();
    for w in done {
        match w {
            Written::Done(e) => entries.push(e),
            Written::Left(e) => {
                left.push(String::from_utf8_lossy(&e.path).into_owned());
                entries.push(e);
            }
        }
    }
    Ok((entries, left))
}

/// While it lives, libgit2 does not hash every object it reads to check its id (SHA-1 with
/// collision detection: half of the CPU a checkout costs, measured). git itself checks ids only
/// in `fsck` and on transfer; zlib's checksum still catches a damaged object. The setting is
/// the process's: it is turned back on when the fill ends.
struct Unverified;

impl Unverified {
    fn begin() -> Self {
        git2::opts::strict_hash_verification(false);
        Self
    }
}

impl Drop for Unverified {
    fn drop(&mut self) {
        git2::opts::strict_hash_verification(true);
    }
}

/// Tells `progress` how many files are written, once a second, from the first second on.
fn report_until_done<T>(
    workers: &[std::thread::ScopedJoinHandle<'_, T>],
    written: &AtomicUsize,
    total: usize,
    progress: &dyn Fn(Progress),
) {
    let mut ticker = Ticker::new(Ticker::QUIET);
    while !workers.iter().all(|w| w.is_finished()) {
        std::thread::sleep(Duration::from_millis(20));
        if ticker.due() {
            progress(Progress::Checkout {
                files: written.load(Ordering::Relaxed),
                of: total,
            });
        }
    }
}

/// Writes the index of the worktree at `dir`: `entries` (with the stat data of the files
/// written), and the stat data of the `checked_out` paths as libgit2 left them.
pub fn write_index(dir: &Path, mut entries: Vec<IndexEntry>, checked_out: &[String]) -> Result<()> {
    let repo = open(dir)?;
    let err = |source| GitError::Checkout {
        path: dir.to_path_buf(),
        source,
    };
    let io = |action| move |e| GitError::io(action, dir)(e);
    for e in entries.iter_mut().filter(|e| {
        checked_out
            .iter()
            .any(|p| p.as_bytes() == e.path.as_slice())
    }) {
        let path = dir.join(String::from_utf8_lossy(&e.path).as_ref());
        let meta = std::fs::symlink_metadata(&path).map_err(io("read"))?;
        stamp(e, &meta);
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let file = repo.path().join("index");
    let mut index = git2::Index::open(&file).map_err(err)?;
    index.clear().map_err(err)?;
    for e in &entries {
        index.add(e).map_err(err)?;
    }
    index.write().map_err(err)
}

/// What became of one index entry.
enum Written {
    /// Written, with its stat data.
    Done(IndexEntry),
    /// Its attributes convert it: for libgit2's checkout.
    Left(IndexEntry),
}

/// Writes `entries` beneath `dir` with a repository of this thread's own; `converts`: some
/// attributes exist, so each path is asked whether they convert it.
fn write_all(
    dir: &Path,
    entries: Vec<IndexEntry>,
    converts: bool,
    count: &dyn Fn(usize),
) -> Result<Vec<Written>> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let repo = open(dir)?;
    let mut out = Vec::with_capacity(entries.len());
    for (i, mut e) in entries.into_iter().enumerate() {
        let rel = String::from_utf8_lossy(&e.path).into_owned();
        if converts && e.mode != GITLINK && e.mode != LINK && converted(&repo, &rel) {
            out.push(Written::Left(e));
            continue;
        }
        let path = dir.join(&rel);
        if let Some(meta) = write_one(&repo, &e, &path)? {
            stamp(&mut e, &meta);
        }
        out.push(Written::Done(e));
        if i % 64 == 63 {
            count(64);
        }
    }
    Ok(out)
}

/// Writes one entry at `path` (its folder exists): a file, a link, or a submodule's folder.
/// Returns the stat data the index keeps of it (none for a submodule).
fn write_one(repo: &Repository, e: &IndexEntry, path: &Path) -> Result<Option<std::fs::Metadata>> {
    let io = |action| GitError::io(action, path);
    if e.mode == GITLINK {
        return std::fs::create_dir(path)
            .map(|()| None)
            .map_err(io("create"));
    }
    let blob = repo.find_blob(e.id).map_err(|source| GitError::Checkout {
        path: path.to_path_buf(),
        source,
    })?;
    if e.mode == LINK {
        let target = std::ffi::OsStr::from_bytes(blob.content());
        std::os::unix::fs::symlink(target, path).map_err(io("create"))?;
        return std::fs::symlink_metadata(path)
            .map(Some)
            .map_err(io("read"));
    }
    // As git: 0777 or 0666, less the umask.
    let mode = if e.mode & 0o111 != 0 { 0o777 } else { 0o666 };
    let mut file: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(io("create"))?;
    file.write_all(blob.content()).map_err(io("write"))?;
    // The times are final: closing a file does not change them.
    file.metadata().map(Some).map_err(io("read"))
}

/// Whether the attributes of `rel` ask for a conversion on checkout.
fn converted(repo: &Repository, rel: &str) -> bool {
    let flags = git2::AttrCheckFlags::FILE_THEN_INDEX;
    CONVERTING.iter().any(|name| {
        repo.get_attr_bytes(Path::new(rel), name, flags)
            .is_ok_and(|v| v.is_some())
    })
}

/// Attribute files outside the tree that could apply: `info/attributes`, `core.attributesFile`
/// (or its default under the XDG config folder) and the system's.
fn outside_attributes(repo: &Repository) -> bool {
    let configured = repo
        .config()
        .ok()
        .and_then(|c| c.get_path("core.attributesFile").ok());
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|c| c.join("git/attributes"));
    let candidates = [
        Some(repo.commondir().join("info/attributes")),
        configured,
        xdg,
        Some(PathBuf::from("/etc/gitattributes")),
    ];
    candidates.into_iter().flatten().any(|p| p.exists())
}

/// Stat data of the file just written, as git keeps it (times, device and inode in 32 bits).
fn stamp(e: &mut IndexEntry, meta: &std::fs::Metadata) {
    e.ctime = IndexTime::new(meta.ctime() as i32, meta.ctime_nsec() as u32);
    e.mtime = IndexTime::new(meta.mtime() as i32, meta.mtime_nsec() as u32);
    e.dev = meta.dev() as u32;
    e.ino = meta.ino() as u32;
    e.uid = meta.uid();
    e.gid = meta.gid();
    e.file_size = meta.size() as u32;
}

/// Refuses a path that leaves the folder or names a `.git` (a hostile tree's).
fn safe_path(dir: &Path, raw: &[u8]) -> Result<()> {
    let rel = Path::new(std::ffi::OsStr::from_bytes(raw));
    let bad = rel.as_os_str().is_empty()
        || rel.components().any(|c| match c {
            Component::Normal(n) => n.as_bytes().eq_ignore_ascii_case(b".git"),
            _ => true,
        });
    if bad {
        return Err(GitError::Checkout {
            path: dir.join(rel),
            source: git2::Error::from_str("a path in the tree leaves the worktree or names .git"),
        });
    }
    Ok(())
}

/// Creates every folder the entries need, parents first, none existing before.
fn make_folders(dir: &Path, entries: &[IndexEntry]) -> Result<()> {
    let mut folders: Vec<&[u8]> = Vec::new();
    for e in entries {
        let mut end = 0;
        while let Some(i) = e.path[end..].iter().position(|&b| b == b'/') {
            end += i;
            folders.push(&e.path[..end]);
            end += 1;
        }
    }
    folders.sort_unstable();
    folders.dedup();
    for f in folders {
        let path = dir.join(std::ffi::OsStr::from_bytes(f));
        std::fs::create_dir(&path).map_err(GitError::io("create", &path))?;
    }
    Ok(())
}

/// `n` runs of about equal size, each of whole folders' neighbours (entries are sorted, so a
/// run writes into few folders).
fn split(entries: Vec<IndexEntry>, n: usize) -> Vec<Vec<IndexEntry>> {
    let per = entries.len().div_ceil(n).max(1);
    let mut out: Vec<Vec<IndexEntry>> = Vec::with_capacity(n);
    for e in entries {
        match out.last_mut() {
            Some(run) if run.len() < per => run.push(e),
            _ => {
                let mut run = Vec::with_capacity(per);
                run.push(e);
                out.push(run);
            }
        }
    }
    out
}

fn open(dir: &Path) -> Result<Repository> {
    Repository::open(dir).map_err(|source| GitError::Open {
        path: dir.to_path_buf(),
        source,
    })
}
