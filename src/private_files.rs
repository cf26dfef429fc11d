//! Files only the user may read: stream logs (they hold the worker command, which may carry
//! keys, and everything the agent printed), the state store, prompt files.
//!
//! Invariant: each is created 0600 in a folder created 0700, whatever the umask. One found
//! looser (made by an older version, or by hand) is tightened when it is next opened, and that
//! is said once, as a warning: once tightened it is never found loose again.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The mode of a private file.
pub const FILE_MODE: u32 = 0o600;
/// The mode of a folder of private files.
pub const DIR_MODE: u32 = 0o700;

/// Makes `dir` (its parents as usual) a private folder: created 0700, or tightened to it.
pub fn dir(dir: &Path) -> io::Result<()> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {
            tighten(dir, DIR_MODE);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Opens `path` for appending, creating it (and its folder) private, or tightening it.
pub fn open_append(path: &Path) -> io::Result<File> {
    dir(path.parent().unwrap_or(Path::new(".")))?;
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(FILE_MODE)
        .open(path)?;
    tighten(path, FILE_MODE);
    Ok(file)
}

/// Writes `bytes` to `path` whole: readers see the old file or the new one, never a part.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let folder = path.parent().unwrap_or(Path::new("."));
    dir(folder)?;
    // A temporary file is created 0600 in the same folder, then renamed over the old one.
    let mut file = tempfile::NamedTempFile::new_in(folder)?;
    file.write_all(bytes)?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Prepares an SQLite database file to be private before SQLite opens it: SQLite creates a
/// new file 0644 (less the umask) and gives its `-wal` and `-shm` the database file's mode, so
/// a missing file is made here, 0600, and loose ones (with their `-wal`/`-shm`) are tightened.
/// An existing file is not opened: a store that is only readable to us still opens read-only.
pub fn prepare_db(path: &Path) -> io::Result<()> {
    dir(path.parent().unwrap_or(Path::new(".")))?;
    if !path.exists() {
        // An empty file is an empty database to SQLite; one made meanwhile is not truncated.
        OpenOptions::new()
            .write(true)
            .create(true)
            .mode(FILE_MODE)
            .open(path)?;
    }
    for side in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(side);
        tighten(Path::new(&name), FILE_MODE);
    }
    Ok(())
}

/// Sets `wanted` on `path` if its mode lets others in, and says so. A file that is not ours
/// to change (or is gone) is left as it is: it still works, and this is no reason to stop.
fn tighten(path: &Path, wanted: u32) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let mode = meta.permissions().mode();
    if mode & 0o077 == 0 {
        return;
    }
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(wanted)) {
        Ok(()) => tracing::warn!(
            "{} was readable by others (mode {:o}); only you can read it now ({wanted:o})",
            path.display(),
            mode & 0o777,
        ),
        Err(e) => tracing::warn!(
            "{} is readable by others (mode {:o}) and cannot be made private: {e}",
            path.display(),
            mode & 0o777,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_private_files_in_private_folders() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("a/logs/x.log");
        open_append(&log).unwrap().write_all(b"one\n").unwrap();
        open_append(&log).unwrap().write_all(b"two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "one\ntwo\n");
        assert_eq!(mode(&log), 0o600);
        assert_eq!(mode(log.parent().unwrap()), 0o700);
        let prompt = tmp.path().join("run/s/prompt.md");
        write(&prompt, b"old").unwrap();
        write(&prompt, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&prompt).unwrap(), "new");
        assert_eq!(mode(&prompt), 0o600);
        assert_eq!(mode(prompt.parent().unwrap()), 0o700);
    }

    #[test]
    fn an_existing_store_is_not_opened_for_writing() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("state/state.db");
        std::fs::create_dir_all(db.parent().unwrap()).unwrap();
        std::fs::write(&db, b"data").unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o400)).unwrap();
        prepare_db(&db).unwrap();
        assert_eq!(mode(&db), 0o400);
        assert_eq!(std::fs::read(&db).unwrap(), b"data");
    }

    #[test]
    fn tightens_loose_files_and_keeps_their_content() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("state/state.db");
        std::fs::create_dir_all(db.parent().unwrap()).unwrap();
        std::fs::write(&db, b"data").unwrap();
        let wal = tmp.path().join("state/state.db-wal");
        std::fs::write(&wal, b"wal").unwrap();
        for p in [&db, &wal] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        std::fs::set_permissions(db.parent().unwrap(), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        prepare_db(&db).unwrap();
        assert_eq!((mode(&db), mode(&wal)), (0o600, 0o600));
        assert_eq!(mode(db.parent().unwrap()), 0o700);
        assert_eq!(std::fs::read(&db).unwrap(), b"data");
    }
}
