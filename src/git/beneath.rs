//! Reading and writing files *beneath* a folder through no symbolic link, for
//! `.worktreeinclude`: every component of a relative path is opened with `O_NOFOLLOW` from the
//! folder's own descriptor, so a link anywhere on the way (committed by a stream, or planted in
//! the project root) stops the operation instead of leading it outside. Checking paths first
//! and opening them afterwards would leave a window to swap a folder for a link; descriptors
//! do not.
//!
//! Copies share or keep room: where the file system can, a file is a copy-on-write clone of
//! its source (`FICLONE`: XFS with reflink, btrfs), which costs no room and no time per byte;
//! else it is copied as its data segments (`SEEK_DATA`/`SEEK_HOLE`), so a sparse file takes no
//! more room in a worktree than in the project root.
//!
//! A [`Folder`] keeps the folder of the last path it walked open, so the files of one folder
//! (a `target/` holds thousands in a few hundred) cost one walk, not one each: opening every
//! folder on the way again for each file made a 1 GiB include 1.7× `cp -R` on ext4
//! (BENCHMARKS.md §5b). The kept descriptor was reached through no link, like every other; a
//! folder swapped for a link after that is not followed (the descriptor is the folder itself).

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, readlinkat};
use nix::sys::stat::{Mode, mkdirat};

/// Why a path could not be used.
#[derive(Debug)]
pub enum Refusal {
    /// A component on the way (`at`, relative) is a symbolic link or not a folder.
    ThroughLink {
        at: PathBuf,
    },
    /// The destination exists already (never overwritten).
    Exists,
    /// [`CopyMode::Reflink`] and the file system cannot clone (the kernel's answer).
    NoClone(std::io::Error),
    Io(std::io::Error),
}

impl From<Errno> for Refusal {
    fn from(e: Errno) -> Self {
        Refusal::Io(std::io::Error::from(e))
    }
}

/// How a file's bytes are copied (`include_copy` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CopyMode {
    /// A clone where the file system supports one, else a copy.
    #[default]
    Auto,
    /// A clone, or an error: for users who would rather know than fill their disk.
    Reflink,
    /// Always a copy (of the data segments only).
    Copy,
}

impl CopyMode {
    pub const CHOICES: [&str; 3] = ["auto", "reflink", "copy"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "auto" => Some(Self::Auto),
            "reflink" => Some(Self::Reflink),
            "copy" => Some(Self::Copy),
            _ => None,
        }
    }
}

/// How one file was copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Cloned,
    Copied,
}

/// What sits at a path beneath a folder.
pub enum Entry {
    /// A regular file, open for reading, with what `fstat` said of it.
    File(File, std::fs::Metadata),
    /// A symbolic link, with its target (not followed).
    Link(PathBuf),
    /// Anything else (a folder, a socket, …).
    Other,
}

/// A folder opened once, as the anchor for paths beneath it.
pub struct Folder {
    fd: OwnedFd,
    /// The folder the last walked path ended in (relative), still open; `None` before the
    /// first walk and after a walk that failed.
    last: Option<(PathBuf, OwnedFd)>,
}

impl Folder {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let fd = nix::fcntl::open(path, dir_flags(), Mode::empty())?;
        Ok(Self { fd, last: None })
    }

    /// Opens `rel` (relative, no `..`) for reading through no link on the way.
    pub fn read(&mut self, rel: &Path) -> Result<Entry, Refusal> {
        let (parent, name) = self.walk(rel, false)?;
        match openat(parent, name, OFlag::O_RDONLY | nofollow(), Mode::empty()) {
            Ok(fd) => {
                let file = File::from(fd);
                let meta = file.metadata().map_err(Refusal::Io)?;
                Ok(if meta.is_file() {
                    Entry::File(file, meta)
                } else {
                    Entry::Other
                })
            }
            // O_NOFOLLOW on a link: ELOOP.
            Err(Errno::ELOOP) => Ok(Entry::Link(PathBuf::from(readlinkat(parent, name)?))),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates `rel` (and the folders on the way), refusing any link on the way and an existing
    /// destination; clones or copies `source` (whose `fstat` is `meta`) into it as `how` says,
    /// keeping its holes and permission bits.
    pub fn create_copy(
        &mut self,
        rel: &Path,
        source: &File,
        meta: &std::fs::Metadata,
        how: CopyMode,
    ) -> Result<Method, Refusal> {
        let (parent, name) = self.walk(rel, true)?;
        let mode = meta.mode() & 0o777;
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | nofollow();
        let fd = match openat(parent, name, flags, Mode::from_bits_truncate(mode)) {
            Err(Errno::EEXIST) => return Err(Refusal::Exists),
            other => other?,
        };
        let dest = File::from(fd);
        if how != CopyMode::Copy {
            match rustix::fs::ioctl_ficlone(&dest, source) {
                Ok(()) => return Ok(Method::Cloned),
                // Nothing was written: a copy fills the same empty file.
                Err(_) if how == CopyMode::Auto => {}
                Err(e) => return Err(Refusal::NoClone(e.into())),
            }
        }
        copy_sparse(source, meta, &dest).map_err(Refusal::Io)?;
        Ok(Method::Copied)
    }

    /// Creates the symbolic link `rel` → `target` (through no link on the way).
    pub fn create_link(&mut self, rel: &Path, target: &Path) -> Result<(), Refusal> {
        let (parent, name) = self.walk(rel, true)?;
        match nix::unistd::symlinkat(target, parent, name) {
            Err(Errno::EEXIST) => Err(Refusal::Exists),
            other => other.map_err(Refusal::from),
        }
    }

    /// Opens every folder of `rel` but the last component with `O_NOFOLLOW`, creating missing
    /// ones when `create`; returns the parent and the last component's name. The parent is the
    /// one the previous walk kept when `rel` is in the same folder.
    fn walk<'p>(
        &mut self,
        rel: &'p Path,
        create: bool,
    ) -> Result<(BorrowedFd<'_>, &'p OsStr), Refusal> {
        let parts: Vec<&OsStr> = rel
            .components()
            .map(|c| match c {
                Component::Normal(n) => Ok(n),
                _ => Err(Refusal::ThroughLink {
                    at: rel.to_path_buf(),
                }),
            })
            .collect::<Result<_, _>>()?;
        let Some((name, folders)) = parts.split_last() else {
            return Err(Refusal::Io(std::io::Error::other("an empty path")));
        };
        let parent = rel.parent().unwrap_or(Path::new(""));
        let kept = matches!(&self.last, Some((at, _)) if at == parent);
        if !kept {
            self.last = None;
            let dir = self.open_folders(folders, create)?;
            self.last = Some((parent.to_path_buf(), dir));
        }
        let (_, dir) = self.last.as_ref().expect("kept or just opened");
        Ok((dir.as_fd(), name))
    }

    /// Opens `folders` one by one from this folder with `O_NOFOLLOW`, creating missing ones
    /// when `create`.
    fn open_folders(&self, folders: &[&OsStr], create: bool) -> Result<OwnedFd, Refusal> {
        let mut dir = self.fd.try_clone().map_err(Refusal::Io)?;
        let mut at = PathBuf::new();
        for part in folders {
            at.push(part);
            if create {
                match mkdirat(&dir, *part, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            dir = match openat(&dir, *part, dir_flags(), Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ELOOP | Errno::ENOTDIR) => return Err(Refusal::ThroughLink { at }),
                Err(e) => return Err(e.into()),
            };
        }
        Ok(dir)
    }
}

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | nofollow()
}

fn nofollow() -> OFlag {
    OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// Copies `from` (whose `fstat` is `meta`) into the empty `to`, data segment by data segment;
/// holes stay holes. A file with as many blocks as bytes has no holes: it is copied whole,
/// without asking where its data is (two `lseek`s a file, as `cp`'s `--sparse=auto` decides).
fn copy_sparse(from: &File, meta: &std::fs::Metadata, to: &File) -> std::io::Result<()> {
    use nix::unistd::{Whence, lseek};
    let len = meta.len();
    let mut buf = Vec::new();
    if meta.blocks() * 512 >= len {
        return copy_segment(from, to, 0, len, &mut buf);
    }
    let mut pos: i64 = 0;
    while (pos as u64) < len {
        let data = match lseek(from.as_fd(), pos, Whence::SeekData) {
            Ok(d) => d,
            // No data past `pos`: the rest is a hole.
            Err(Errno::ENXIO) => break,
            // A file system without hole reporting: all of it is data.
            Err(Errno::EINVAL) => pos,
            Err(e) => return Err(e.into()),
        };
        let hole = match lseek(from.as_fd(), data, Whence::SeekHole) {
            Ok(h) => h,
            Err(Errno::EINVAL) => len as i64,
            Err(e) => return Err(e.into()),
        };
        copy_segment(from, to, data as u64, hole as u64, &mut buf)?;
        pos = hole;
    }
    to.set_len(len)
}

/// Copies bytes `start..end` of `from` to the same place in `to`: in the kernel where it can
/// (`copy_file_range`), else through `buf`.
fn copy_segment(
    from: &File,
    to: &File,
    start: u64,
    end: u64,
    buf: &mut Vec<u8>,
) -> std::io::Result<()> {
    let mut at = start;
    while at < end {
        use rustix::io::Errno as E;
        let (mut off_in, mut off_out) = (at, at);
        let want = (end - at) as usize;
        match rustix::fs::copy_file_range(from, Some(&mut off_in), to, Some(&mut off_out), want) {
            Ok(0) => return Ok(()),
            Ok(n) => at += n as u64,
            // Not between these files (another file system, an old kernel): by hand.
            Err(E::XDEV | E::NOSYS | E::INVAL | E::OPNOTSUPP) => break,
            Err(e) => return Err(e.into()),
        }
    }
    if at < end && buf.is_empty() {
        buf.resize(1 << 20, 0);
    }
    while at < end {
        let want = buf.len().min((end - at) as usize);
        let n = from.read_at(&mut buf[..want], at)?;
        if n == 0 {
            break;
        }
        to.write_all_at(&buf[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// Whether the link target `target`, found at `rel` beneath a folder, stays beneath it when
/// resolved by name: relative, and never climbing above the folder.
pub fn link_stays_inside(rel: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = rel.components().count() as i64 - 1;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            _ => return false,
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_that_climb_out_are_outside() {
        let p = Path::new;
        assert!(link_stays_inside(p("a/b"), p("c")));
        assert!(link_stays_inside(p("a/b"), p("../x")));
        assert!(!link_stays_inside(p("a/b"), p("../../x")));
        assert!(!link_stays_inside(p("b"), p("/etc/passwd")));
        assert!(!link_stays_inside(p("b"), p("../b")));
    }

    #[test]
    fn nothing_is_written_through_a_link_on_the_way() {
        let tmp = tempfile::tempdir().unwrap();
        let (inside, outside) = (tmp.path().join("in"), tmp.path().join("out"));
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, inside.join("conf")).unwrap();
        let src = tmp.path().join("src");
        std::fs::write(&src, "secret").unwrap();
        let mut folder = Folder::open(&inside).unwrap();
        let from = File::open(&src).unwrap();
        let meta = from.metadata().unwrap();
        assert!(matches!(
            folder.create_copy(Path::new("conf/.env"), &from, &meta, CopyMode::Auto),
            Err(Refusal::ThroughLink { .. })
        ));
        assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
        folder
            .create_copy(Path::new("a/b/.env"), &from, &meta, CopyMode::Auto)
            .unwrap();
        assert_eq!(std::fs::read(inside.join("a/b/.env")).unwrap(), b"secret");
        assert!(matches!(
            folder.create_copy(Path::new("a/b/.env"), &from, &meta, CopyMode::Auto),
            Err(Refusal::Exists)
        ));
        assert!(matches!(
            folder.read(Path::new("conf/x")),
            Err(Refusal::ThroughLink { .. })
        ));
        assert!(matches!(folder.read(Path::new("conf")), Ok(Entry::Link(_))));
    }

    /// The folder kept open between two files of the same folder is the folder itself: swapped
    /// for a link meanwhile, the next file still lands in the folder (moved aside), never
    /// through the link; a path in another folder is walked again and refused.
    #[test]
    fn a_kept_folder_swapped_for_a_link_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let (inside, outside) = (tmp.path().join("in"), tmp.path().join("out"));
        std::fs::create_dir_all(&outside).unwrap();
        let src = tmp.path().join("src");
        std::fs::write(&src, "secret").unwrap();
        let from = File::open(&src).unwrap();
        let meta = from.metadata().unwrap();
        std::fs::create_dir_all(&inside).unwrap();
        let mut folder = Folder::open(&inside).unwrap();
        folder
            .create_copy(Path::new("a/b/x"), &from, &meta, CopyMode::Copy)
            .unwrap();
        std::fs::rename(inside.join("a/b"), inside.join("a/moved")).unwrap();
        std::os::unix::fs::symlink(&outside, inside.join("a/b")).unwrap();
        folder
            .create_copy(Path::new("a/b/y"), &from, &meta, CopyMode::Copy)
            .unwrap();
        assert_eq!(std::fs::read(inside.join("a/moved/y")).unwrap(), b"secret");
        std::fs::create_dir_all(inside.join("c")).unwrap();
        std::os::unix::fs::symlink(&outside, inside.join("c/d")).unwrap();
        assert!(matches!(
            folder.create_copy(Path::new("c/d/z"), &from, &meta, CopyMode::Copy),
            Err(Refusal::ThroughLink { .. })
        ));
        assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
    }
}
