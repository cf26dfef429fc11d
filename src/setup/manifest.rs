//! What was installed: a hash of each installed file's content, so a later run can tell a file
//! the user edited (keep it) from one still as installed (safe to update).
//!
//! Kept in `.claude/orchestrator/state/installed.json`. The hash is FNV-1a 64: it only has to
//! notice edits, not resist an adversary, and it needs no extra dependency.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    /// Installed path (relative to the project root) → hash of what was written.
    pub files: BTreeMap<String, String>,
}

/// `fnv1a64:<16 hex digits>` of `bytes`.
pub fn hash(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("fnv1a64:{h:016x}")
}

impl Manifest {
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("installed.json")
    }

    /// Reads the manifest; a missing or unreadable one is empty (every file then counts as
    /// "not known to be ours", which only ever keeps files, never overwrites them).
    pub fn load(path: &Path) -> Self {
        std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut me = self.clone();
        me.version = VERSION;
        let text = serde_json::to_string_pretty(&me).map_err(std::io::Error::other)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // Write then rename, so a crash never leaves half a manifest.
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut tmp, (text + "\n").as_bytes())?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_content_sensitive() {
        assert_eq!(hash(b""), "fnv1a64:cbf29ce484222325");
        assert_eq!(hash(b"a"), "fnv1a64:af63dc4c8601ec8c");
        assert_ne!(hash(b"ab"), hash(b"ba"));
    }

    #[test]
    fn round_trips_and_tolerates_garbage() {
        let tmp = tempfile::tempdir().unwrap();
        let path = Manifest::path(tmp.path());
        assert_eq!(Manifest::load(&path), Manifest::default());
        let mut m = Manifest::default();
        m.files.insert("a".into(), hash(b"x"));
        m.save(&path).unwrap();
        assert_eq!(Manifest::load(&path).files, m.files);
        std::fs::write(&path, "not json").unwrap();
        assert_eq!(Manifest::load(&path), Manifest::default());
    }
}
