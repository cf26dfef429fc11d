//! Keeps the main checkout's `git status` clean: adds `.claude/worktrees/` and the
//! orchestrator's runtime folders to `.git/info/exclude` (never to a tracked `.gitignore`).
//!
//! Idempotent: an entry already present (with or without a leading `/`) is not added again, and
//! the rest of the file is left exactly as it was.

use std::path::{Path, PathBuf};

use super::error::{GitError, Result};

/// The entries `orchestrate` needs, in gitignore syntax.
pub const ENTRIES: [&str; 3] = [
    ".claude/worktrees/",
    ".claude/orchestrator/logs/",
    ".claude/orchestrator/state/",
];

/// Appends the missing [`ENTRIES`] to `<common git dir>/info/exclude`; returns those added.
pub fn ensure(repo: &git2::Repository) -> Result<Vec<&'static str>> {
    let file = repo.commondir().join("info").join("exclude");
    ensure_in(&file)
}

fn ensure_in(file: &Path) -> Result<Vec<&'static str>> {
    let io = |action, path: &PathBuf| {
        let path = path.clone();
        move |source| GitError::Io {
            action,
            path,
            source,
        }
    };
    let existing = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io("read", &file.to_path_buf())(e)),
    };
    let present: Vec<&str> = existing
        .lines()
        .map(|l| l.trim().trim_start_matches('/'))
        .collect();
    let missing: Vec<&'static str> = ENTRIES
        .into_iter()
        .filter(|e| !present.contains(e))
        .collect();
    if missing.is_empty() {
        return Ok(missing);
    }
    let mut text = existing;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("# added by orchestrate: stream worktrees and runtime folders\n");
    for entry in &missing {
        text.push_str(entry);
        text.push('\n');
    }
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(io("create", &dir.to_path_buf()))?;
    }
    std::fs::write(file, text).map_err(io("write", &file.to_path_buf()))?;
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_missing_entries_once_and_keeps_the_rest() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("info/exclude");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "# user stuff\n*.swp\n/.claude/worktrees/").unwrap();
        let added = ensure_in(&file).unwrap();
        assert_eq!(
            added,
            [".claude/orchestrator/logs/", ".claude/orchestrator/state/"]
        );
        let once = std::fs::read_to_string(&file).unwrap();
        assert!(once.starts_with("# user stuff\n*.swp\n/.claude/worktrees/\n"));
        assert!(ensure_in(&file).unwrap().is_empty());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), once);
    }

    #[test]
    fn creates_the_file_when_missing() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("info/exclude");
        assert_eq!(ensure_in(&file).unwrap().len(), 3);
        let text = std::fs::read_to_string(&file).unwrap();
        for e in ENTRIES {
            assert!(text.lines().any(|l| l == e), "{text}");
        }
    }
}
