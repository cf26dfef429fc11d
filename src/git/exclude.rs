//! Keeps the main checkout's `git status` clean: adds `.claude/worktrees/` and the
//! orchestrator's runtime folders to `.git/info/exclude` (never to a tracked `.gitignore`).
//!
//! The one writer of that file, used by set-up (which also works where git2 cannot open the
//! repository) and by worktree mode. Idempotent: only missing lines are appended, everything
//! else is kept byte for byte, and `/x/` and `x/` count as the same entry.

use std::io::Write;
use std::path::Path;

use super::error::{GitError, Result};

/// The entries `orchestrate` needs, in gitignore syntax, anchored at the repository root. The
/// installed files themselves stay visible: a team may want to commit them.
pub const ENTRIES: [&str; 4] = [
    "/.claude/orchestrator/logs/",
    "/.claude/orchestrator/run/",
    "/.claude/orchestrator/state/",
    "/.claude/worktrees/",
];

/// Appends the missing [`ENTRIES`] to `<common git dir>/info/exclude`; returns those added.
pub fn ensure(repo: &git2::Repository) -> Result<Vec<String>> {
    let file = repo.commondir().join("info").join("exclude");
    ensure_lines(&file, &ENTRIES).map_err(|source| GitError::Io {
        action: "update",
        path: file,
        source,
    })
}

/// The lines of `lines` that `existing` lacks.
pub fn missing_lines(existing: &str, lines: &[&str]) -> Vec<String> {
    let norm = |l: &str| l.trim().trim_start_matches('/').to_string();
    let present: Vec<String> = existing.lines().map(norm).collect();
    lines
        .iter()
        .filter(|want| !present.contains(&norm(want)))
        .map(|l| l.to_string())
        .collect()
}

/// Appends each of `lines` not already present to the file at `path`, creating it and its
/// folder if needed. Returns the lines added.
pub fn ensure_lines(path: &Path, lines: &[&str]) -> std::io::Result<Vec<String>> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let missing = missing_lines(&existing, lines);
    if missing.is_empty() {
        return Ok(missing);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut text = String::new();
    if !existing.is_empty() && !existing.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("# added by orchestrate: stream worktrees and runtime folders\n");
    for line in &missing {
        text.push_str(line);
        text.push('\n');
    }
    // Append rather than rewrite: a concurrent writer's lines are never lost.
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_only_missing_lines_and_keeps_the_rest() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("info/exclude");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "# user stuff\n*.swp\n.claude/worktrees/").unwrap();
        let added = ensure_lines(&path, &ENTRIES).unwrap();
        assert_eq!(
            added,
            [
                "/.claude/orchestrator/logs/",
                "/.claude/orchestrator/run/",
                "/.claude/orchestrator/state/"
            ]
        );
        assert!(ensure_lines(&path, &ENTRIES).unwrap().is_empty());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# user stuff\n*.swp\n.claude/worktrees/\n"),
            "{text}"
        );
        assert_eq!(text.matches("logs/").count(), 1);
    }

    #[test]
    fn a_leading_slash_does_not_make_a_new_entry() {
        assert!(missing_lines(".claude/worktrees/\n", &["/.claude/worktrees/"]).is_empty());
        assert!(missing_lines("/a/\n", &["a/"]).is_empty());
        assert_eq!(missing_lines("/a/\n", &["/ab/"]), ["/ab/"]);
    }

    #[test]
    fn creates_the_file_and_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("info/exclude");
        assert_eq!(ensure_lines(&path, &["/x/"]).unwrap(), vec!["/x/"]);
        assert!(std::fs::read_to_string(&path).unwrap().ends_with("/x/\n"));
    }
}
