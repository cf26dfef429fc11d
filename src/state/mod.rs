//! The orchestrator's own durable state: workers (identity, attempts, outcomes), streams'
//! outcomes (failed / stopped), worktrees and runs.
//!
//! [`StateStore`] is the SQLite file; [`read_streams`] is the summary `status` shows. A project
//! where `start` never ran has no store, which reads as "no workers".

mod store;
pub mod time;

pub use store::{Claim, NewWorker, StateStore, WorkerRecord};

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
    pub sandbox: Option<crate::worker::sandbox::Applied>,
}

/// What the state store knows about one stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamState {
    pub worker: Option<WorkerInfo>,
    pub outcome: Option<StreamOutcome>,
    pub branch: Option<String>,
    /// The commit the stream's branch was based on (worktree mode).
    pub base: Option<String>,
    /// Where the latest worker ran.
    pub dir: Option<std::path::PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read the orchestrator state {path}")]
    Read {
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
    let Some(store) = StateStore::open_existing(&project.state_db())? else {
        return Ok(Default::default());
    };
    let mut out: std::collections::HashMap<String, StreamState> = Default::default();
    for rec in store.latest_workers()? {
        let entry = out.entry(rec.stream.clone()).or_default();
        entry.branch = rec.branch.clone();
        entry.base = rec.base.clone();
        entry.dir = rec.dir.clone();
        entry.worker = Some(worker_info(&rec));
    }
    for (stream, outcome) in store.outcomes()? {
        out.entry(stream).or_default().outcome = Some(outcome);
    }
    Ok(out)
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
