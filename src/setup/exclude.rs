//! Idempotent additions to `.git/info/exclude`: append the lines that are missing, keep
//! everything else byte for byte. (The worktree code has its own helper for its own lines; both
//! only append what is absent, so they coexist.)

use std::io::Write;
use std::path::Path;

/// The lines of `lines` that `existing` lacks. `/x/` and `x/` count as the same entry: both
/// spellings are written by `orchestrate` (here and in `git/exclude.rs`) for the same folders.
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
    text.push_str("# added by orchestrate: its runtime folders\n");
    for line in &missing {
        text.push_str(line);
        text.push('\n');
    }
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
    fn appends_only_missing_lines_and_is_idempotent() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("info/exclude");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "# git's sample\n/a/").unwrap();
        let added = ensure_lines(&path, &["/a/", "/b/"]).unwrap();
        assert_eq!(added, vec!["/b/"]);
        assert!(ensure_lines(&path, &["/a/", "/b/"]).unwrap().is_empty());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# git's sample\n/a/\n"), "{text}");
        assert_eq!(text.matches("/b/").count(), 1);
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
