//! The task source: Task Copilot's SQLite database, read-only (and the narrow `task set` writer).
//!
//! Everything the scheduler and the dashboard know about tasks comes through [`TaskSource`], so a
//! second source (Task Copilot v3's `.copilot/tasks.db`) can be added without touching them.
//! Invariants: never hold a read transaction open; one long-lived connection per reader so that
//! `PRAGMA data_version` is comparable between probes; a malformed row never fails a whole read.

mod model;
mod sqlite;
mod writer;

pub use model::{
    BlockedTask, Progress, Snapshot, SourceWarning, StreamRecord, Task, TaskCounts, TaskStatus,
    UnknownStatus,
};
pub use sqlite::SqliteTaskDb;
pub use writer::{TaskChange, TaskUpdate, set_task};

use std::path::PathBuf;

use crate::error::Diagnostic;
use crate::exit_codes;

/// Task Copilot's schema (`schema.sql`), for making databases in the demo and the tests;
/// `orchestrate` itself only ever opens an existing one.
pub const TASK_COPILOT_SCHEMA: &str = include_str!("schema.sql");

/// Where tasks come from.
pub trait TaskSource {
    /// Every stream with its task counts and dependencies, in one consistent read.
    fn snapshot(&mut self) -> Result<Snapshot, TaskDbError>;

    /// A cheap probe: `true` if the source may have changed since the last probe (false
    /// positives are allowed, false negatives are not).
    fn has_changed(&mut self) -> Result<bool, TaskDbError>;

    /// The tasks of one stream (or of all stream tasks with `None`), oldest first.
    fn tasks(&mut self, stream: Option<&str>) -> Result<Vec<Task>, TaskDbError>;
}

#[derive(Debug, thiserror::Error)]
pub enum TaskDbError {
    #[error("task database {path} does not exist ({how})")]
    Missing { path: PathBuf, how: String },
    #[error("cannot open task database {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path} is not a Task Copilot database: {problem}")]
    NotTaskDb { path: PathBuf, problem: String },
    #[error("cannot read task database {path}")]
    Query {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot write task database {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("no task {id} in {path}")]
    NoSuchTask { id: String, path: PathBuf },
    #[error("cannot update an archived task ({id})")]
    Archived { id: String },
}

/// SQLITE_BUSY / SQLITE_LOCKED: another connection holds the lock.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

impl Diagnostic for TaskDbError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::Missing { .. } => Some(
                "set WORKSPACE_ID to the workspace Task Copilot uses, pass `--db FILE`, \
                 or create stream tasks with Task Copilot first"
                    .into(),
            ),
            // A lock held longer than the busy timeout is not a permissions problem.
            Self::Open { source, .. } | Self::Query { source, .. } | Self::Write { source, .. }
                if is_busy(source) =>
            {
                Some(
                    "another process held a lock on the database for too long; run the command \
                     again (if it persists, find the process holding it: `fuser FILE`)"
                        .into(),
                )
            }
            Self::Open { source, .. } | Self::Query { source, .. }
                if source.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) =>
            {
                Some(
                    "the file is not an SQLite database (still being copied or restored?); \
                     `orchestrate doctor` checks the whole set-up"
                        .into(),
                )
            }
            Self::Open { .. } | Self::Query { .. } | Self::Write { .. } => Some(
                "check the file's permissions; `orchestrate doctor` checks the whole set-up".into(),
            ),
            Self::NotTaskDb { .. } => Some("pass the right file with `--db FILE`".into()),
            Self::NoSuchTask { .. } => Some("`orchestrate task list` shows the task ids".into()),
            Self::Archived { .. } => None,
        }
    }

    fn exit_code(&self) -> i32 {
        match self {
            Self::Missing { .. } | Self::Open { .. } | Self::NotTaskDb { .. } => {
                exit_codes::NO_DATABASE
            }
            _ => exit_codes::FAILURE,
        }
    }
}
