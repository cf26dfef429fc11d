//! The orchestrator's own durable state: workers (identity, attempts, outcomes), streams'
//! outcomes (failed / stopped), worktrees and runs.
//!
//! The store itself is built by the scheduler issue; until then [`read_workers`] reports no
//! workers, which is exactly right for a project where `start` never ran.

use serde::Serialize;

use crate::error::Diagnostic;
use crate::project::Project;

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

/// A stream-level verdict the scheduler recorded, beyond what the task database says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StreamOutcome {
    /// Retries exhausted, or the worker could not start.
    Failed { reason: String },
    /// Stopped by the user; not restarted until `start STREAM`.
    Stopped,
}

/// The latest worker of one stream, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerInfo {
    pub stream: String,
    pub pid: i32,
    pub state: WorkerState,
    /// RFC 3339 UTC.
    pub started_at: String,
    pub ended_at: Option<String>,
    pub attempt: u32,
    pub exit_code: Option<i32>,
}

/// What the state store knows about one stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamState {
    pub worker: Option<WorkerInfo>,
    pub outcome: Option<StreamOutcome>,
    pub branch: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read the orchestrator state {path}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

impl Diagnostic for StateError {
    fn hint(&self) -> Option<String> {
        Some("`orchestrate doctor` checks the state store".into())
    }
}

/// The recorded state of every stream the orchestrator has run, by stream id.
pub fn read_streams(
    project: &Project,
) -> Result<std::collections::HashMap<String, StreamState>, StateError> {
    let _ = project.state_db();
    Ok(Default::default())
}
