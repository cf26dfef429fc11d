//! The task source: Task Copilot's SQLite database in either of its two stores (the legacy one
//! and tc's v3 `.copilot/tasks.db`, one folder each), read-only, plus the narrow writes each
//! store's own tool would make (`task set`; for tc also `agent_log` rows).
//!
//! Everything the scheduler and the dashboard know about tasks comes through [`TaskSource`];
//! [`TaskDb`] is the one implementation, choosing the store by the file's tables (never by its
//! name). Invariants: never hold a read transaction open; one long-lived connection per reader
//! so that `PRAGMA data_version` is comparable between probes; a malformed row never fails a
//! whole read; a file replaced under a reader is reopened (and its kind told again).

pub mod legacy;
mod model;
mod schema;
mod streams;
pub mod v3;

pub use model::{
    BlockedTask, Progress, Snapshot, SourceWarning, StoreKind, StreamRecord, Task, TaskChange,
    TaskCounts, TaskStatus, TaskUpdate, UnknownStatus,
};
pub use v3::ActivityLog;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::Diagnostic;
use crate::exit_codes;

/// The legacy store's schema (`legacy/schema.sql`), for making databases in the demo and the
/// tests; `orchestrate` itself only ever opens an existing one.
pub const TASK_COPILOT_SCHEMA: &str = legacy::SCHEMA;
/// tc's v3 schema (`v3/schema.sql`), likewise.
pub const TC_SCHEMA: &str = v3::SCHEMA;

/// How long a read waits for a writer's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Where tasks come from.
pub trait TaskSource {
    /// Every stream with its task counts and dependencies, in one consistent read.
    fn snapshot(&mut self) -> Result<Snapshot, TaskDbError>;

    /// A cheap probe: `true` if the source may have changed since the last probe (false
    /// positives are allowed, false negatives are not).
    fn has_changed(&mut self) -> Result<bool, TaskDbError>;

    /// The tasks of one stream (or of all stream tasks with `None`), in the store's own order
    /// (legacy: oldest first; tc: priority, then id).
    fn tasks(&mut self, stream: Option<&str>) -> Result<Vec<Task>, TaskDbError>;

    /// One task by id, whatever its stream or scope.
    fn task(&mut self, id: &str) -> Result<Option<Task>, TaskDbError>;
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
    #[error("{}", not_task_db(path, *kind, missing))]
    NotTaskDb {
        path: PathBuf,
        /// The store it resembles, if any.
        kind: Option<StoreKind>,
        /// Tables (`table `x``) and columns (`` `table`.a, b ``) it lacks.
        missing: Vec<String>,
    },
    #[error("{path} is not a {} but a {}", expected.describe(), other(*expected).describe())]
    WrongKind { path: PathBuf, expected: StoreKind },
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
    #[error("`{id}` is not a task id of a tc store (they are numbers, e.g. 12)")]
    BadTaskId { id: String },
    #[error("cannot update an archived task ({id})")]
    Archived { id: String },
    #[error(
        "task {id} in {path} has `metadata` that is not a JSON object; notes and a reason cannot be merged into it"
    )]
    MetadataNotObject { id: String, path: PathBuf },
}

fn other(kind: StoreKind) -> StoreKind {
    match kind {
        StoreKind::Legacy => StoreKind::Tc,
        StoreKind::Tc => StoreKind::Legacy,
    }
}

fn not_task_db(path: &Path, kind: Option<StoreKind>, missing: &[String]) -> String {
    let what = match kind {
        Some(kind) => format!("it looks like a {} but lacks", kind.describe()),
        None => format!(
            "it is neither a {} nor a {}: it lacks",
            StoreKind::Legacy.describe(),
            StoreKind::Tc.describe()
        ),
    };
    format!(
        "{} is not a Task Copilot database orchestrate can read: {what} {}",
        path.display(),
        missing.join("; ")
    )
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
                "in a tc project run `tc init` (orchestrate finds `.copilot/tasks.db` from any \
                 folder below it); for the legacy store set WORKSPACE_ID to the workspace Task \
                 Copilot uses; or pass `--db FILE`"
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
            Self::NotTaskDb { .. } | Self::WrongKind { .. } => Some(
                "orchestrate reads the legacy Task Copilot store (`tasks` with stream fields in \
                 `metadata`) and tc's v3 store (`.copilot/tasks.db`: prds, streams, tasks, \
                 task_dependencies, agent_log); pass the right file with `--db FILE`"
                    .into(),
            ),
            Self::NoSuchTask { .. } | Self::BadTaskId { .. } => {
                Some("`orchestrate task list` shows the task ids".into())
            }
            Self::MetadataNotObject { .. } => Some(
                "fix the task's metadata (`tc task get ID --json` shows it), or set the status \
                 without --notes/--reason"
                    .into(),
            ),
            Self::Archived { .. } => None,
        }
    }

    fn exit_code(&self) -> i32 {
        match self {
            Self::Missing { .. }
            | Self::Open { .. }
            | Self::NotTaskDb { .. }
            | Self::WrongKind { .. } => exit_codes::NO_DATABASE,
            Self::BadTaskId { .. } => exit_codes::USAGE,
            _ => exit_codes::FAILURE,
        }
    }
}

/// The reader of one store.
enum Store {
    Legacy(legacy::LegacyDb),
    Tc(v3::V3Db),
}

/// An open task database of either kind: the one [`TaskSource`].
pub struct TaskDb {
    path: PathBuf,
    /// How the path was found, for the "missing" error after a reopen.
    how: String,
    conn: Connection,
    store: Store,
    /// The last `PRAGMA data_version` seen on `conn`.
    data_version: Option<i64>,
    /// (device, inode) of the file when opened: a replaced file means reopening.
    file_id: (u64, u64),
}

impl TaskDb {
    /// Opens `path` read-only and tells its kind by its tables. `how` says how the path was
    /// found, for the "missing" error.
    pub fn open(path: &Path, how: &str) -> Result<Self, TaskDbError> {
        let meta = std::fs::metadata(path).map_err(|_| TaskDbError::Missing {
            path: path.to_path_buf(),
            how: how.to_string(),
        })?;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let open_err = |source| TaskDbError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        let tables = schema::Tables::read(&conn).map_err(open_err)?;
        let store = match tables.classify(path)? {
            StoreKind::Legacy => Store::Legacy(legacy::LegacyDb::new(path, &tables)),
            StoreKind::Tc => Store::Tc(v3::V3Db::new(path)),
        };
        Ok(Self {
            path: path.to_path_buf(),
            how: how.to_string(),
            conn,
            store,
            data_version: None,
            file_id: (meta.dev(), meta.ino()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn kind(&self) -> StoreKind {
        match self.store {
            Store::Legacy(_) => StoreKind::Legacy,
            Store::Tc(_) => StoreKind::Tc,
        }
    }

    /// Reopens the connection if the file at `path` was replaced (new inode); an error if it
    /// is gone.
    fn reopen_if_replaced(&mut self) -> Result<bool, TaskDbError> {
        // Gone: the open connection would go on reading the deleted file's last state, and
        // workers (who open the path) could mark nothing.
        let Ok(meta) = std::fs::metadata(&self.path) else {
            return Err(TaskDbError::Missing {
                path: self.path.clone(),
                how: "deleted or moved since it was opened".into(),
            });
        };
        if (meta.dev(), meta.ino()) == self.file_id {
            return Ok(false);
        }
        tracing::info!(path = %self.path.display(), "task database was replaced; reopening");
        *self = Self::open(&self.path, &self.how)?;
        Ok(true)
    }
}

impl TaskSource for TaskDb {
    fn snapshot(&mut self) -> Result<Snapshot, TaskDbError> {
        // Callers may read without probing first (the scheduler does right after a worker
        // exits): a file replaced since the last probe must not yield the old file's rows.
        self.reopen_if_replaced()?;
        match &self.store {
            Store::Legacy(db) => db.snapshot(&self.conn),
            Store::Tc(db) => db.snapshot(&self.conn),
        }
    }

    fn has_changed(&mut self) -> Result<bool, TaskDbError> {
        if self.reopen_if_replaced()? {
            return Ok(true);
        }
        let version: i64 = self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(|source| TaskDbError::Query {
                path: self.path.clone(),
                source,
            })?;
        let changed = self.data_version != Some(version);
        self.data_version = Some(version);
        Ok(changed)
    }

    fn tasks(&mut self, stream: Option<&str>) -> Result<Vec<Task>, TaskDbError> {
        match &self.store {
            Store::Legacy(db) => db.tasks(&self.conn, stream),
            Store::Tc(db) => db.tasks(&self.conn, stream),
        }
    }

    fn task(&mut self, id: &str) -> Result<Option<Task>, TaskDbError> {
        match &self.store {
            Store::Legacy(db) => db.task(&self.conn, id),
            Store::Tc(db) => db.task(&self.conn, id),
        }
    }
}

/// Applies `update` to task `id` of the database at `path`, exactly as that store's own tool
/// writes it (the kind is told by the tables, as for reading).
pub fn set_task(path: &Path, id: &str, update: &TaskUpdate) -> Result<TaskChange, TaskDbError> {
    match kind_of(path)? {
        StoreKind::Legacy => legacy::set_task(path, id, update),
        StoreKind::Tc => v3::set_task(path, id, update),
    }
}

/// The kind of the database at `path`.
pub fn kind_of(path: &Path) -> Result<StoreKind, TaskDbError> {
    Ok(TaskDb::open(path, "given")?.kind())
}

/// Whether the database at `path` holds any stream task (for choosing between two stores);
/// `false` for a file that cannot be read.
pub fn holds_stream_tasks(path: &Path) -> bool {
    TaskDb::open(path, "probed")
        .and_then(|mut db| db.snapshot())
        .is_ok_and(|s| !s.streams.is_empty())
}

/// The stream tasks among `rows`, of `stream` only when given. The stream is matched on the id
/// as the snapshot normalises it (trimmed): SQL compared the raw text, so a stream `A ` (or
/// with a tab or CR around it) once ran a worker whose `task list` found no tasks.
fn of_stream(
    rows: impl Iterator<Item = rusqlite::Result<Task>>,
    stream: Option<&str>,
) -> rusqlite::Result<Vec<Task>> {
    let mut out = Vec::new();
    for task in rows {
        let task = task?;
        if task
            .stream_id
            .as_deref()
            .is_some_and(|id| stream.is_none_or(|s| s == id))
        {
            out.push(task);
        }
    }
    Ok(out)
}

/// `metadata.streamId` of a parsed task, trimmed (a number counts, as text).
fn stream_id_of(metadata: &serde_json::Value) -> Option<String> {
    let id = match metadata.get("streamId")? {
        serde_json::Value::String(s) => s.trim().to_string(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!id.is_empty()).then_some(id)
}
