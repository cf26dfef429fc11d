//! Worker processes: building the command, spawning it under a supervisor in its own process
//! group, proving its identity, stopping its whole group, and reading its log.
//!
//! Shape of a running worker: `start` spawns `orchestrate __supervise --record ID --state DB
//! [--stdin PROMPT_FILE] -- <argv…>` as a new process group (`process_group(0)`), stdin
//! `/dev/null`, stdout and stderr appended to the stream's log (private: 0600) after a header.
//! The worker's stdin is the prompt file when the prompt was too long to be an argument
//! ([`command`]), else `/dev/null`: never a terminal. The supervisor is the group leader; it runs the
//! real worker in the same group, survives SIGTERM, and writes the worker's exit status into the
//! state store — so an exit is recorded even when no `start` is running. The recorded identity is
//! the supervisor's (pid + start time + boot id); see [`proc`]. The worker's environment also
//! holds `ORCHESTRATE_WORKER_ID` (the supervisor's pid and start time), inherited by all its
//! descendants, so `stop` finds those that left the group ([`crate::proc::marked_processes`]).
//! Every process tree is ended by one routine ([`terminate`]).
//! Its environment is the user's less a parent Claude Code session's variables ([`env`]).
//! A sandboxed worker gets its confinement on the supervisor's command line (`--abi N --write
//! PATH…`); the supervisor builds the rule set and confines the worker between fork and exec,
//! so the worker is still its direct child and the supervisor stays unconfined ([`sandbox`]).

pub mod agent;
pub mod command;
pub mod env;
pub mod post_create;
pub mod prompt;
pub mod render;
pub mod sandbox;
pub mod stop;
pub mod supervise;
pub mod template;
pub mod terminate;
pub mod verify;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use command::{Filled, Values, WorkerCommand};

use crate::error::Diagnostic;
use crate::exit_codes;
use crate::state::time::now_rfc3339;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("the worker command `{command}` cannot be split into words: {message}")]
    BadCommand { command: String, message: String },
    #[error("the worker command is empty")]
    EmptyCommand,
    #[error(
        "the worker command `{command}` has {placeholder} inside a script that `{runner}` runs \
         as code: whatever a stream id or task holds would be run"
    )]
    PlaceholderInScript {
        command: String,
        placeholder: String,
        runner: String,
    },
    #[error(
        "the prompt ({bytes} bytes) is too long to be a command-line argument, and {{prompt}} \
         is inside the word `{word}`, so it cannot be left out for stdin"
    )]
    PromptTooLarge { bytes: usize, word: String },
    #[error("cannot write log file {path}")]
    Log {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the prompt file {path}")]
    PromptFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the sandbox cannot confine the verify command")]
    Sandbox(#[source] sandbox::SandboxError),
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
            Self::PlaceholderInScript { .. } => Some(
                "read the values from the worker's environment instead: ORCHESTRATE_STREAM, \
                 ORCHESTRATE_WORKTREE, ORCHESTRATE_PROMPT_FILE (the prompt), …; or pass them as \
                 words of their own after the script: `sh -c 'exec agent \"$1\"' sh {stream}`"
                    .into(),
            ),
            Self::PromptTooLarge { .. } => Some(
                "make {prompt} a word of its own (it is then left out and the prompt comes on \
                 stdin, which `claude -p` reads), or use {prompt_file}, the path of a file \
                 holding the prompt"
                    .into(),
            ),
            Self::Log { .. } | Self::PromptFile { .. } => {
                Some("check that .claude/orchestrator is writable by you".into())
            }
            Self::Spawn { source, .. } if source.raw_os_error() == Some(nix::libc::E2BIG) => Some(
                "the worker's command line and environment are larger than the system allows: \
                 look for a very long stream id or name, or a large environment"
                    .into(),
            ),
            Self::Spawn { .. } => None,
            Self::Sandbox(e) => e.hint(),
        }
    }

    fn exit_code(&self) -> i32 {
        match self {
            Self::BadCommand { .. } | Self::EmptyCommand | Self::PlaceholderInScript { .. } => {
                exit_codes::USAGE
            }
            _ => exit_codes::FAILURE,
        }
    }
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
    /// What earlier attempts did (spending, the session this one resumes), one line each.
    pub earlier: &'a [String],
    /// What confines it and where it may write ([`sandbox::Plan::header`]).
    pub sandbox: &'a [String],
}

/// Opens `path` for appending (private, creating its folder) and writes the launch header.
pub fn open_log(path: &Path, h: &Header<'_>) -> Result<File, WorkerError> {
    let err = |source| WorkerError::Log {
        path: path.to_path_buf(),
        source,
    };
    let mut file = crate::private_files::open_append(path).map_err(err)?;
    let deps = if h.dependencies.is_empty() {
        "none".to_string()
    } else {
        h.dependencies.join(", ")
    };
    let mut header = format!(
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
    for line in h.earlier {
        header.push_str(&format!("{} {line}\n", render::MARK));
    }
    for line in h.sandbox {
        header.push_str(&format!("{} {line}\n", render::MARK));
    }
    file.write_all(header.as_bytes()).map_err(err)?;
    Ok(file)
}

/// Opens a stream's log for appending (private, creating its folder), with no header.
pub fn open_log_append(path: &Path) -> Result<File, WorkerError> {
    crate::private_files::open_append(path).map_err(|source| WorkerError::Log {
        path: path.to_path_buf(),
        source,
    })
}

/// Appends one of `orchestrate`'s own lines to a stream's log.
pub fn append_log_line(path: &Path, line: &str) -> std::io::Result<()> {
    let mut file = crate::private_files::open_append(path)?;
    let line = if line.starts_with(render::MARK) {
        format!("{line}\n")
    } else {
        format!("{} {line}\n", render::MARK)
    };
    file.write_all(line.as_bytes())
}

/// Up to `max` bytes of a file from `offset` on (what a growing log added since the last
/// look); `None` when there is nothing new or it cannot be read.
pub fn read_from(path: &Path, offset: u64, max: u64) -> Option<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    if f.metadata().ok()?.len() <= offset {
        return None;
    }
    f.seek(SeekFrom::Start(offset)).ok()?;
    let mut buf = Vec::new();
    f.take(max).read_to_end(&mut buf).ok()?;
    (!buf.is_empty()).then_some(buf)
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
    logs_dir.join(format!("{}.log", crate::names::slug(stream)))
}

/// The prompt file of a stream: `prompt.md` in its runtime folder (named like its log).
pub fn prompt_path(run_dir: &Path, stream: &str) -> PathBuf {
    run_dir.join(crate::names::slug(stream)).join("prompt.md")
}

/// Writes the prompt file (private, whole: a worker never reads half of it).
pub fn write_prompt(path: &Path, prompt: &str) -> Result<(), WorkerError> {
    crate::private_files::write(path, prompt.as_bytes()).map_err(|source| WorkerError::PromptFile {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
