//! The orchestrator's own durable state, and the only owner of its database: workers
//! (identity, attempts, exits), each stream's durable verdict, the stream worktrees and the
//! run's recorded base, and the history of every run (`history.rs`).
//!
//! [`StateStore`] is the SQLite file (`store.rs` holds its schema and migrations). A project
//! where `start` never ran has no store, which reads as "no workers". Files are private (0600
//! in a 0700 folder): they hold worker commands, which may carry keys.

mod history;
mod store;
pub mod time;
mod verdicts;
mod worktrees;

pub use history::{RunEvent, RunRow};
pub use store::{
    AgentReport, Claim, Finalize, NewWorker, Readability, Removal, RowKind, StateStore,
    WorkerRecord, readability,
};
pub use worktrees::{RunRecord, WorktreeRecord};

use serde::Serialize;

use crate::error::Diagnostic;

/// What became of a worker process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    /// Alive, and provably the process we started (pid + start time + boot id match).
    Running,
    /// Exited on its own; see the exit code.
    Exited,
    /// Ended by `orchestrate stop`.
    Stopped,
    /// Gone without a recorded outcome (killed with its supervisor, machine rebooted, …).
    Lost,
}

/// The latest worker of one stream, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerInfo {
    pub stream: String,
    pub pid: i32,
    pub state: WorkerState,
    /// RFC 3339 UTC.
    pub started_at: String,
    pub ended_at: Option<String>,
    pub attempt: u32,
    pub exit_code: Option<i32>,
    /// The agent's session (Claude Code `session_id`), for `claude --resume`.
    pub session_id: Option<String>,
    /// What the agent reported it spent, in US dollars.
    pub cost_usd: Option<f64>,
    pub turns: Option<u32>,
    /// What confined it (absent for workers recorded before the sandbox existed).
    pub sandbox: Option<SandboxApplied>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read the orchestrator state {path}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot write the orchestrator state {path}")]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot open the orchestrator state {path}")]
    Open {
        path: std::path::PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create folder {path}")]
    CreateDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot secure {path} (make it private to its owner)")]
    Permissions {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "stream {stream} is being removed by `orchestrate clean` (pid {pid}), which did not finish in two minutes"
    )]
    Removing { stream: String, pid: i32 },
    #[error("cannot lock {path} to open the orchestrator state in it")]
    Lock {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the orchestrator state {path} is corrupt and could not be set aside")]
    SetAside {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StateError {
    /// The file is not a database, or is damaged: set it aside and rebuild.
    pub fn is_corrupt(&self) -> bool {
        let source = match self {
            Self::Open { source, .. } | Self::Read { source, .. } | Self::Write { source, .. } => {
                source
            }
            _ => return false,
        };
        matches!(
            source.sqlite_error_code(),
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
        )
    }

    /// Out of space: SQLite says so, an I/O error says ENOSPC, or SQLite reports a bare I/O
    /// error (growing its shared-memory file on a full disk is `SQLITE_IOERR_SHMSIZE`) where
    /// the file system has next to no room left.
    fn is_disk_full(&self) -> bool {
        let full_io = |e: &std::io::Error| e.raw_os_error() == Some(nix::libc::ENOSPC);
        match self {
            Self::Open { source, path }
            | Self::Read { source, path }
            | Self::Write { source, path } => match source.sqlite_error_code() {
                Some(rusqlite::ErrorCode::DiskFull) => true,
                Some(rusqlite::ErrorCode::SystemIoFailure) => no_room(path),
                _ => false,
            },
            Self::CreateDir { source, .. }
            | Self::Permissions { source, .. }
            | Self::Lock { source, .. }
            | Self::SetAside { source, .. } => full_io(source),
            Self::Removing { .. } => false,
        }
    }
}

/// The file system holding `path` has less than 1 MiB free.
fn no_room(path: &std::path::Path) -> bool {
    path.ancestors()
        .find(|p| p.exists())
        .and_then(|p| nix::sys::statvfs::statvfs(p).ok())
        .is_some_and(|s| s.blocks_available() * s.fragment_size() < 1 << 20)
}

impl Diagnostic for StateError {
    fn hint(&self) -> Option<String> {
        if self.is_disk_full() {
            return Some("the disk is full: free some space, then run the command again".into());
        }
        if let Self::Removing { pid, .. } = self {
            return Some(format!(
                "wait for that `clean` to end (or end it: `kill {pid}`), then run the command again"
            ));
        }
        Some("`orchestrate doctor` checks the state store".into())
    }
}

/// Creates `dir` (and parents) if needed and makes it 0700 (see [`crate::private_files`]).
pub(crate) fn private_dir(dir: &std::path::Path) -> Result<(), StateError> {
    crate::private_files::dir(dir).map_err(|source| StateError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })
}

/// Creates `file` empty if missing, 0600, so SQLite (which gives `-wal`/`-shm` the database
/// file's mode) never makes it readable by others; tightens a loose one and its `-wal`/`-shm`.
pub(crate) fn private_file(file: &std::path::Path) -> Result<(), StateError> {
    crate::private_files::prepare_db(file).map_err(|source| StateError::Permissions {
        path: file.to_path_buf(),
        source,
    })
}

/// A worker row as `status` shows it; liveness is checked against `/proc` now.
pub fn worker_info(rec: &WorkerRecord) -> WorkerInfo {
    let state = match rec.outcome.as_deref() {
        Some("stopped") => WorkerState::Stopped,
        Some("lost") => WorkerState::Lost,
        Some(_) => WorkerState::Exited,
        None if rec.is_live() => WorkerState::Running,
        None => WorkerState::Lost,
    };
    WorkerInfo {
        stream: rec.stream.clone(),
        // The supervisor's pid: it is also the process-group id (`kill -- -PID`).
        pid: rec.identity.as_ref().map(|i| i.pid).unwrap_or(0),
        state,
        started_at: rec.started_at.clone(),
        ended_at: rec.ended_at.clone(),
        attempt: rec.attempt,
        exit_code: rec.exit_code,
        session_id: rec.session_id.clone(),
        cost_usd: rec.cost_usd,
        turns: rec.turns,
        sandbox: rec.sandbox,
    }
}

/// What confined a worker (see [`crate::worker::sandbox`]), as the state store records it and
/// `status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SandboxApplied {
    /// Confined by Landlock with this ABI.
    Landlock { abi: u32 },
    /// Unconfined because the sandbox is turned off.
    Off,
    /// Unconfined because the kernel cannot enforce it (`sandbox = "auto"`).
    Unavailable,
}

impl SandboxApplied {
    /// The text stored in the `workers.sandbox` column.
    pub fn to_db(self) -> String {
        match self {
            Self::Landlock { abi } => format!("landlock {abi}"),
            Self::Off => "off".into(),
            Self::Unavailable => "unavailable".into(),
        }
    }

    pub fn from_db(text: &str) -> Option<Self> {
        match text {
            "off" => Some(Self::Off),
            "unavailable" => Some(Self::Unavailable),
            _ => text
                .strip_prefix("landlock ")
                .and_then(|abi| abi.parse().ok())
                .map(|abi| Self::Landlock { abi }),
        }
    }
}

impl std::fmt::Display for SandboxApplied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Landlock { abi } => write!(f, "sandboxed (Landlock ABI {abi})"),
            Self::Off => write!(f, "unsandboxed (sandbox off)"),
            Self::Unavailable => write!(f, "unsandboxed (Landlock unavailable)"),
        }
    }
}
