//! Who works inside a folder: every process whose working directory is in it (a shell, an
//! editor's terminal, a build, a worker whose record was lost), found in `/proc/*/cwd`.
//! Nothing removes a worktree such a process is in.
//!
//! Limit: `/proc/<pid>/cwd` of another user's process is unreadable without privileges, so
//! only this user's processes (and any others `/proc` lets us see) are found.

use std::path::Path;

/// Live processes (not this one, not zombies) whose working directory is `dir` or below it.
pub fn inside(dir: &Path) -> Vec<u32> {
    let Ok(dir) = dir.canonicalize() else {
        return Vec::new();
    };
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(&dir))
        })
        // Alive now, not a zombie (this is a scan of the present: no record to match).
        .filter(|&pid| crate::proc::stat(pid as i32).is_some_and(|s| s.is_live()))
        .collect();
    pids.sort_unstable();
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_child_working_inside_and_not_outside() {
        let tmp = tempfile::tempdir().unwrap();
        let inner = tmp.path().join("a/b");
        std::fs::create_dir_all(&inner).unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .current_dir(&inner)
            .spawn()
            .unwrap();
        let found = inside(&tmp.path().join("a"));
        let elsewhere = inside(&tmp.path().join("nothing-here"));
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.contains(&child.id()), "{found:?}");
        assert!(elsewhere.is_empty());
    }
}
