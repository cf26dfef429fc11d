//! The rule set: every path a confined program may write, and why. Landlock rules need an
//! open file, so only existing paths are listed; the few folders an agent would otherwise
//! create in a read-only place (its temp dir, git's `logs/`, the agent's `/tmp` folders) are
//! created here first.

use std::path::{Path, PathBuf};

use super::{Place, SandboxError};

/// One writable path and why it is writable (shown in the log header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub path: PathBuf,
    pub why: &'static str,
}

/// Where the per-stream temp dirs live: `<system temp>/orchestrate-<uid>/`, outside the project
/// (nothing for `git status` to show or an agent to commit) and short (sockets made in TMPDIR
/// have a path limit of about 100 bytes).
pub(super) fn temp_root() -> PathBuf {
    std::env::temp_dir().join(format!("orchestrate-{}", nix::unistd::getuid()))
}

/// Creates a temp dir (private to us) below [`temp_root`], refusing a root another user made.
pub(super) fn make_temp_dir(path: &Path) -> Result<(), SandboxError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let err = |source| SandboxError::Folder {
        path: path.to_path_buf(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(err)?;
    let root = temp_root();
    if path.starts_with(&root) {
        let owner = std::fs::metadata(&root).map_err(err)?.uid();
        if owner != nix::unistd::getuid().as_raw() {
            return Err(err(std::io::Error::other(format!(
                "{} belongs to another user (uid {owner})",
                root.display()
            ))));
        }
    }
    Ok(())
}

/// `sandbox_writable` entries: `~/x` is in HOME, a relative path is in the project root.
pub(super) fn resolve(path: &Path, root: &Path, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => root.join(path),
    }
}

fn make_dir(path: &Path) -> Result<(), SandboxError> {
    std::fs::create_dir_all(path).map_err(|source| SandboxError::Folder {
        path: path.to_path_buf(),
        source,
    })
}

/// Every path a program in `place` may write, existing ones only (Landlock rules need an open
/// file). Found by test (`tests/integration/sandbox.rs`): committing, staging and stashing in
/// a linked worktree write its own git dir, `objects/`, `refs/` and `logs/` — nothing else.
pub(super) fn rules(place: &Place<'_>, extra: &[PathBuf]) -> Result<Vec<Grant>, SandboxError> {
    let mut out = Vec::new();
    let mut grant = |path: PathBuf, why: &'static str| {
        if path.exists() && !out.iter().any(|g: &Grant| g.path == path) {
            out.push(Grant { path, why });
        }
    };
    if place.dir == place.project.root {
        grant(
            place.dir.to_path_buf(),
            "the project root (shared checkout: its .git and .claude too)",
        );
    } else {
        grant(place.dir.to_path_buf(), "the worktree");
        if let Some((own, common)) = linked_git_dirs(place.dir) {
            grant(own, "its git dir (index, HEAD, per-worktree refs)");
            // A repository without reflogs yet gets the folder now: created later from inside,
            // it would be a new entry in the read-only git dir.
            make_dir(&common.join("logs"))?;
            for part in ["objects", "refs", "logs"] {
                grant(common.join(part), "git objects, refs and reflogs");
            }
        }
    }
    if let Some(folder) = place.db.and_then(Path::parent) {
        grant(
            folder.to_path_buf(),
            "the task database's folder (WAL, shm)",
        );
    }
    for device in DEVICES {
        grant(PathBuf::from(device), "devices");
    }
    for (path, why) in agent_state()? {
        grant(path, why);
    }
    for path in extra {
        grant(path.clone(), "sandbox_writable");
    }
    Ok(out)
}

/// Devices programs open for writing: sinks, randomness, terminals, POSIX shared memory.
const DEVICES: [&str; 9] = [
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/ptmx",
    "/dev/pts",
    "/dev/shm",
];

/// The agent's own state. Claude Code writes `~/.claude`, `~/.claude.json`, and
/// `/tmp/claude-<uid>/` and `/tmp/cc-socks/` whatever HOME is. The folders are created here
/// when missing (found with the real CLI: at its first start it makes `~/.claude`, which in a
/// read-only HOME failed every tool call): ours private, the shared socket folder like `/tmp`
/// itself (every user's agent puts its socket there).
fn agent_state() -> Result<Vec<(PathBuf, &'static str)>, SandboxError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let mut out = Vec::new();
    let mut dirs = Vec::new();
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        dirs.push((home.join(".claude"), 0o700));
        out.push((home.join(".claude.json"), "agent state"));
    }
    let tmp = PathBuf::from("/tmp");
    dirs.push((tmp.join(format!("claude-{}", nix::unistd::getuid())), 0o700));
    dirs.push((tmp.join("cc-socks"), 0o1777));
    for (dir, mode) in dirs {
        let err = |source| SandboxError::Folder {
            path: dir.clone(),
            source,
        };
        match std::fs::DirBuilder::new().mode(mode).create(&dir) {
            // The umask narrowed the mode.
            Ok(()) => std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
                .map_err(err)?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(err(e)),
        }
        out.push((dir, "agent state"));
    }
    Ok(out)
}

/// (own git dir, common dir) of a linked worktree: `<dir>/.git` is a file naming its git dir,
/// whose `commondir` names the repository's. `None` when `.git` is a folder (a main checkout)
/// or absent.
fn linked_git_dirs(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let text = std::fs::read_to_string(dir.join(".git")).ok()?;
    let own = dir.join(text.strip_prefix("gitdir:")?.trim());
    let common = match std::fs::read_to_string(own.join("commondir")) {
        Ok(rel) => own.join(rel.trim()),
        Err(_) => own.clone(),
    };
    let canonical = |p: PathBuf| p.canonicalize().unwrap_or(p);
    Some((canonical(own), canonical(common)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writable_paths_resolve_home_and_project_relative() {
        let root = Path::new("/p");
        let home = Some(Path::new("/h"));
        assert_eq!(
            resolve(Path::new("~/.npm"), root, home),
            Path::new("/h/.npm")
        );
        assert_eq!(
            resolve(Path::new("cache"), root, home),
            Path::new("/p/cache")
        );
        assert_eq!(resolve(Path::new("/abs"), root, home), Path::new("/abs"));
    }
}
