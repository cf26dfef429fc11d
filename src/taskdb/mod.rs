//! The task source: Task Copilot's SQLite database in either of its two stores (the legacy one
//! and tc's v3 `.copilot/tasks.db`, one folder each), read-only, plus the narrow writes each
//! store's own tool would make (`task set`; for tc also `agent_log` rows).
//!
//! Everything the scheduler and the dashboard know about tasks comes through [`TaskSource`];
//! [`TaskDb`] is the one implementation, choosing the store by the file's tables (never by its
//! name). A one-shot command reads a [`TaskSource::snapshot`]; a long-lived reader keeps a
//! view current with [`TaskSource::refresh`], which reads only what changed (`cache.rs`).
//!
//! Invariants: never hold a read transaction open between calls; one long-lived connection
//! per reader so that `PRAGMA data_version` is comparable between probes; a malformed row
//! never fails a whole read; a file replaced under a reader is reopened (and its kind told
//! again); the view a refresh keeps is what a full read gives, up to the changes `cache.rs`
//! says it sees late, and both are folded by the same code, row by row in rowid order.

mod cache;
pub mod legacy;
mod meta_scan;
mod model;
mod schema;
mod streams;
#[cfg(test)]
mod tests;
pub mod v3;

pub use model::{
    BlockedTask, Changes, Progress, Snapshot, SourceWarning, StoreKind, StreamRecord, Task,
    TaskChange, TaskCounts, TaskStatus, TaskUpdate, UnknownStatus,
};
pub use v3::ActivityLog;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use rusqlite::{Connection, OpenFlags};

use cache::{Cache, Key, Mark, Marks, Stamp};
use streams::StreamAccumulator;

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

    /// Brings [`TaskSource::view`] up to date, reading only what changed since the last
    /// refresh (the first one reads everything), and says what changed.
    fn refresh(&mut self) -> Result<Changes, TaskDbError>;

    /// The rows of `streams` read again, whatever their `updated_at` says (what a worker's exit
    /// is judged on), and nothing else: its cost is those streams' rows, not the database's.
    /// Other changes wait for the next [`TaskSource::refresh`].
    fn reread(&mut self, streams: &[String]) -> Result<Changes, TaskDbError>;

    /// The view as of the last refresh (empty before the first).
    fn view(&self) -> &Snapshot;

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

/// What [`TaskDb`] asks of a store's reader (how the answers are used: `cache.rs`). Every
/// method that reads rows for streams reads the same columns and folds them with the same
/// code, whichever rows it picks.
pub(crate) trait Reader {
    /// One full read, rows in rowid order; every row's mark into `marks` when given.
    fn read_all(
        &mut self,
        conn: &Connection,
        marks: Option<&mut Marks>,
    ) -> Result<Snapshot, TaskDbError>;

    /// The rows whose `updated_at` is at or after `since` or whose rowid is above every row
    /// `marks` knows (every row when `since` is `None`), and whose
    /// hash differs from `marks` (or that it lacks), with their new marks.
    fn read_recent(
        &self,
        conn: &Connection,
        since: Option<&str>,
        marks: &Marks,
    ) -> Result<Vec<(i64, Mark)>, TaskDbError>;

    /// Reads row `rowid` and folds it into `acc`; its mark (`None`: the row is gone).
    fn fold_row(
        &self,
        conn: &Connection,
        rowid: i64,
        acc: &mut StreamAccumulator,
    ) -> Result<Option<Mark>, TaskDbError>;

    /// A stream's record as a full read ends it, from what its own rows folded to.
    fn finish(&self, record: StreamRecord, marks: &Marks) -> StreamRecord;

    /// Streams whose record depends on these rows (that changed stream) beyond their own
    /// (tc's `task_dependencies`).
    fn linked(&self, moved: &[i64], marks: &Marks) -> Vec<Key>;

    /// Whether folding only the streams whose rows changed gives what a full read would.
    fn partial_ok(&self, marks: &Marks) -> bool;
}

/// The reader of one store.
enum Store {
    Legacy(legacy::LegacyDb),
    Tc(v3::V3Db),
}

impl Store {
    fn reader(&mut self) -> &mut dyn Reader {
        match self {
            Self::Legacy(db) => db,
            Self::Tc(db) => db,
        }
    }
}

/// An open task database of either kind: the one [`TaskSource`].
pub struct TaskDb {
    path: PathBuf,
    /// How the path was found, for the "missing" error after a reopen.
    how: String,
    conn: Connection,
    store: Store,
    /// The last `PRAGMA data_version` seen on `conn` by [`TaskSource::has_changed`].
    data_version: Option<i64>,
    /// (device, inode) of the file when opened: a replaced file means reopening.
    file_id: (u64, u64),
    /// What [`TaskSource::refresh`] keeps current.
    view: Snapshot,
    /// What lets a refresh read only what changed; `None` until the first (and after a
    /// reopen).
    cache: Option<Cache>,
    /// Changes found by reads the caller did not ask to hear about (a `tasks` call), kept for
    /// the next refresh to report.
    pending: Changes,
    /// The least time between two full reads while the database changes (`cache.rs`).
    resync_min: Duration,
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
            view: Snapshot::default(),
            cache: None,
            pending: Changes::default(),
            resync_min: cache::RESYNC_MIN,
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
        let fresh = Self::open(&self.path, &self.how)?;
        // The view stays, so that the first read of the new file says what differs from it.
        let (view, pending) = (
            std::mem::take(&mut self.view),
            std::mem::take(&mut self.pending),
        );
        let resync_min = self.resync_min;
        *self = fresh;
        (self.view, self.pending, self.resync_min) = (view, pending, resync_min);
        Ok(true)
    }

    /// Brings the view up to date (see `cache.rs`), then folds `streams` again from their
    /// rows; what changed is added to `pending`.
    fn update(&mut self, streams: &[String]) -> Result<(), TaskDbError> {
        self.reopen_if_replaced()?;
        let read_at = SystemTime::now();
        let path = self.path.clone();
        let err = move |source| TaskDbError::Query {
            path: path.clone(),
            source,
        };
        let tx = self.conn.unchecked_transaction().map_err(&err)?;
        // Inside the read: the number describes exactly what this read sees.
        let version: i64 = tx
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(&err)?;
        let reader = self.store.reader();
        let mut changes = None;
        let mut seen_all = false;
        if let Some(c) = self.cache.as_mut()
            && !c.full_due(version, self.resync_min)
            && reader.partial_ok(&c.marks)
        {
            let mut keys: Vec<Key> = streams.iter().cloned().map(Key::Stream).collect();
            // Named streams alone: their rows, not the window over every row (the scan of
            // which is the one cost that grows with the database). The version stays, so the
            // next refresh looks at the window.
            seen_all = streams.is_empty();
            if seen_all && c.version != version {
                keys.extend(recent(reader, &tx, c)?);
                // What the window cannot see waits for the next full read, due or not.
                c.unsynced = true;
            }
            changes = fold_again(reader, &tx, c, &mut self.view, keys)?;
        }
        let changes = match changes {
            Some(changes) => changes,
            None => {
                seen_all = true;
                full_read(reader, &tx, &mut self.view, &mut self.cache)?
            }
        };
        let cache = self.cache.as_mut().expect("a read leaves a cache");
        if seen_all && cache.version != version {
            cache.version = version;
            cache.read_at = read_at;
        }
        tx.finish().map_err(&err)?;
        self.pending.merge(changes);
        Ok(())
    }

    /// Sets the least time between two full reads (tests: never, or every time).
    #[cfg(test)]
    pub(crate) fn set_resync_min(&mut self, min: Duration) {
        self.resync_min = min;
    }

    /// The rows of `stream` as the view knows them, when the cache can say (`None`: read
    /// every task to find them).
    fn rows_of(&self, stream: &str) -> Option<Vec<i64>> {
        let cache = self.cache.as_ref()?;
        let mut reader_ok = true;
        if let Store::Tc(_) = &self.store {
            // Tasks placed by their stream row's name may belong to any stream.
            reader_ok = !cache.marks.keys().any(|k| matches!(k, Key::RowName(_)));
        }
        reader_ok.then(|| cache.marks.members(&Key::Stream(stream.to_string())))
    }
}

/// Marks the rows updated since the last read (see `cache.rs`); the keys whose records they
/// change.
fn recent(reader: &dyn Reader, conn: &Connection, c: &mut Cache) -> Result<Vec<Key>, TaskDbError> {
    let changed = reader.read_recent(conn, c.since().as_deref(), &c.marks)?;
    let mut keys = Vec::new();
    let mut moved = Vec::new();
    for (rowid, mark) in changed {
        if c.marks.get(rowid).map(|m| &m.key) != Some(&mark.key) {
            moved.push(rowid);
        }
        keys.extend(c.marks.set(rowid, Some(mark)).0);
    }
    keys.extend(reader.linked(&moved, &c.marks));
    Ok(keys)
}

/// Folds `keys` again into the view; `None` when only a full read can place what was found.
fn fold_again(
    reader: &dyn Reader,
    conn: &Connection,
    c: &mut Cache,
    view: &mut Snapshot,
    keys: Vec<Key>,
) -> Result<Option<Changes>, TaskDbError> {
    let mut changes = Changes::default();
    let records = cache::refold(reader, conn, &mut c.marks, keys)?;
    if !reader.partial_ok(&c.marks) {
        return Ok(None);
    }
    cache::apply(view, records, &mut changes);
    let warnings = c.marks.warnings();
    if warnings != view.warnings {
        view.warnings = warnings;
        changes.warnings = true;
    }
    Ok(Some(changes))
}

/// Reads everything again, keeping every row's mark; what differs from the old view.
fn full_read(
    reader: &mut dyn Reader,
    conn: &Connection,
    view: &mut Snapshot,
    cache: &mut Option<Cache>,
) -> Result<Changes, TaskDbError> {
    let started = Instant::now();
    let mut marks = Marks::default();
    let fresh = reader.read_all(conn, Some(&mut marks))?;
    let newest: Option<String> = conn
        .query_row(
            "SELECT updated_at FROM tasks ORDER BY rowid DESC LIMIT 1",
            [],
            |r| r.get::<_, Option<String>>(0),
        )
        .ok()
        .flatten();
    let changes = cache::diff(view, &fresh);
    *view = fresh;
    let old = cache.take();
    *cache = Some(Cache {
        marks,
        // Set by the caller; a value no read returns makes the next refresh look.
        version: old.as_ref().map_or(i64::MIN, |c| c.version),
        read_at: old.as_ref().map_or(SystemTime::UNIX_EPOCH, |c| c.read_at),
        stamp: newest.as_deref().and_then(Stamp::of),
        full_at: Instant::now(),
        full_cost: started.elapsed(),
        unsynced: false,
    });
    Ok(changes)
}

impl TaskSource for TaskDb {
    fn snapshot(&mut self) -> Result<Snapshot, TaskDbError> {
        // Callers may read without probing first: a file replaced since the last probe must
        // not yield the old file's rows.
        self.reopen_if_replaced()?;
        self.store.reader().read_all(&self.conn, None)
    }

    fn refresh(&mut self) -> Result<Changes, TaskDbError> {
        self.update(&[])?;
        Ok(std::mem::take(&mut self.pending))
    }

    fn reread(&mut self, streams: &[String]) -> Result<Changes, TaskDbError> {
        self.update(streams)?;
        Ok(std::mem::take(&mut self.pending))
    }

    fn view(&self) -> &Snapshot {
        &self.view
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
        // A full read that fell due since the last refresh may find what no window could.
        let due = self
            .cache
            .as_ref()
            .is_some_and(|c| c.unsynced && c.resync_due(self.resync_min));
        Ok(changed || due)
    }

    fn tasks(&mut self, stream: Option<&str>) -> Result<Vec<Task>, TaskDbError> {
        // One stream's tasks are read by rowid, from the rows the view knows it by: a launch
        // at 50,000 tasks used to read and parse every task for one stream's prompt.
        // The stream's own rows read again (a row that joined it since the last refresh shows
        // at the next one); every task: everything that changed.
        let named: Vec<String> = stream.map(str::to_string).into_iter().collect();
        self.update(&named)?;
        let rows = stream.and_then(|s| self.rows_of(s));
        match &self.store {
            Store::Legacy(db) => db.tasks(&self.conn, stream, rows.as_deref()),
            Store::Tc(db) => db.tasks(&self.conn, stream, rows.as_deref(), &self.view.streams),
        }
    }

    fn task(&mut self, id: &str) -> Result<Option<Task>, TaskDbError> {
        match &self.store {
            Store::Legacy(db) => db.task(&self.conn, id),
            Store::Tc(_) => {
                // A task without `streamId` is placed by the streams' names.
                self.update(&[])?;
                let Store::Tc(db) = &self.store else {
                    unreachable!("matched above")
                };
                db.task(&self.conn, id, &self.view.streams)
            }
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
