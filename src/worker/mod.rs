//! Worker processes: building the command, spawning it under a supervisor in its own process
//! group, proving its identity, stopping its whole group, and reading its log.
//!
//! Shape of a running worker: `start` spawns `orchestrate __supervise --record ID --state DB --
//! <argv…>` as a new process group (`process_group(0)`), stdin `/dev/null`, stdout and stderr
//! appended to the stream's log after a header. The supervisor is the group leader; it runs the
//! real worker in the same group, survives SIGTERM, and writes the worker's exit status into the
//! state store — so an exit is recorded even when no `start` is running. The recorded identity is
//! the supervisor's (pid + start time + boot id); see [`proc`]. The worker's environment also
//! holds `ORCHESTRATE_WORKER_ID` (the supervisor's pid and start time), inherited by all its
//! descendants, so `stop` finds those that left the group ([`proc::marked_processes`]).
//! A sandboxed worker is started by the supervisor as `orchestrate __sandbox … -- <argv…>`, which
//! confines itself and execs the worker, keeping the pid ([`sandbox`]).

pub mod proc;
pub mod prompt;
pub mod render;
pub mod sandbox;
pub mod stop;
pub mod supervise;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::Diagnostic;
use crate::state::time::now_rfc3339;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("the worker command `{command}` cannot be split into words: {message}")]
    BadCommand { command: String, message: String },
    #[error("the worker command is empty")]
    EmptyCommand,
    #[error("cannot write log file {path}")]
    Log {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the supervisor for stream {stream}")]
    Spawn {
        stream: String,
        #[source]
        source: std::io::Error,
    },
}

impl Diagnostic for WorkerError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::BadCommand { .. } | Self::EmptyCommand => Some(
                "set `worker_cmd` in .claude/orchestrator/config.toml, ORCHESTRATE_WORKER_CMD or \
                 --worker-cmd to a command such as `claude -p {prompt}`"
                    .into(),
            ),
            Self::Log { .. } => Some("check that .claude/orchestrator/logs is writable".into()),
            Self::Spawn { .. } => None,
        }
    }
}

/// Splits the worker command into words (no shell involved) and fills the placeholders in each.
pub fn build_argv(
    template: &str,
    prompt: &str,
    stream: &str,
    worktree: &Path,
) -> Result<Vec<String>, WorkerError> {
    let words = shell_words::split(template).map_err(|e| WorkerError::BadCommand {
        command: template.to_string(),
        message: e.to_string(),
    })?;
    if words.is_empty() {
        return Err(WorkerError::EmptyCommand);
    }
    let worktree = worktree.display().to_string();
    Ok(words
        .into_iter()
        .map(|w| {
            w.replace("{prompt}", prompt)
                .replace("{stream}", stream)
                .replace("{worktree}", &worktree)
        })
        .collect())
}

/// Finds the program a worker command names, as `execvp` would from `dir`.
pub fn find_program(program: &str, dir: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = dir.join(program);
        return executable(&p).then_some(p);
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| dir.join(d).join(program))
        .find(|p| executable(p))
}

/// What the log header says about a launch.
pub struct Header<'a> {
    pub stream: &'a str,
    pub name: &'a str,
    pub dependencies: &'a [String],
    pub attempt: u32,
    /// The command as configured (placeholders unfilled, so the prompt does not flood the log).
    pub command: &'a str,
    pub dir: &'a Path,
    pub branch: Option<&'a str>,
    /// What confines it and where it may write ([`sandbox::Plan::header`]).
    pub sandbox: &'a [String],
}

/// Opens `path` for appending (creating its folder) and writes the launch header.
pub fn open_log(path: &Path, h: &Header<'_>) -> Result<File, WorkerError> {
    let err = |source| WorkerError::Log {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(err)?;
    let deps = if h.dependencies.is_empty() {
        "none".to_string()
    } else {
        h.dependencies.join(", ")
    };
    let header = format!(
        "{m} orchestrate worker: {} ({}), attempt {}\n{m} time: {}\n{m} dependencies: {deps}\n\
         {m} dir: {}{}\n{m} command: {}\n",
        h.stream,
        h.name,
        h.attempt,
        now_rfc3339(),
        h.dir.display(),
        h.branch
            .map(|b| format!(" (branch {b})"))
            .unwrap_or_default(),
        h.command,
        m = render::MARK,
    );
    let header = h
        .sandbox
        .iter()
        .fold(header, |text, line| text + render::MARK + " " + line + "\n");
    file.write_all(header.as_bytes()).map_err(err)?;
    Ok(file)
}

/// The last `max` bytes of a file as text, without a partial first line.
pub fn tail(path: &Path, max: u64) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let start = len.saturating_sub(max);
    f.seek(SeekFrom::Start(start)).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    Some(if start > 0 {
        text.split_once('\n')
            .map(|(_, r)| r.to_string())
            .unwrap_or_default()
    } else {
        text
    })
}

/// The log file of a stream: `<slug>.log`, the slug of its worktree and branch.
///
/// Stream ids are free text: the slug is one safe component of bounded length (a 300-character
/// id made the file name too long for the file system), and collision-free (`a b` and `a_b`
/// used to share one log).
pub fn log_path(logs_dir: &Path, stream: &str) -> PathBuf {
    logs_dir.join(format!("{}.log", crate::git::names::slug(stream)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_words_and_fills_placeholders_per_word() {
        let argv = build_argv(
            "claude -p --x 'a b' {prompt} --name={stream} {worktree}",
            "do it; rm -rf /",
            "Stream-A",
            Path::new("/w"),
        )
        .unwrap();
        assert_eq!(
            argv,
            [
                "claude",
                "-p",
                "--x",
                "a b",
                "do it; rm -rf /",
                "--name=Stream-A",
                "/w"
            ]
        );
        assert!(matches!(
            build_argv("claude 'open", "", "", Path::new("/")),
            Err(WorkerError::BadCommand { .. })
        ));
        assert!(matches!(
            build_argv("  ", "", "", Path::new("/")),
            Err(WorkerError::EmptyCommand)
        ));
    }

    #[test]
    fn finds_programs_on_path_and_relative_ones() {
        assert!(find_program("sh", Path::new("/")).is_some());
        assert!(find_program("no-such-program-here", Path::new("/")).is_none());
        assert!(find_program("./nope", Path::new("/")).is_none());
    }

    #[test]
    fn log_names_are_one_safe_component() {
        assert_eq!(
            log_path(Path::new("/l"), "Stream-A"),
            PathBuf::from("/l/Stream-A.log")
        );
        for id in ["a/b c", "a_b_c", "..", "../x", &"L".repeat(300)] {
            let path = log_path(Path::new("/l"), id);
            assert_eq!(path.parent(), Some(Path::new("/l")), "{id}");
            assert!(path.file_name().unwrap().len() < 80, "{id}");
        }
        assert_ne!(
            log_path(Path::new("/l"), "a b"),
            log_path(Path::new("/l"), "a_b")
        );
    }
}
