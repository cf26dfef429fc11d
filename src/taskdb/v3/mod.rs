//! tc's v3 store (`.copilot/tasks.db`, the `tc` CLI's): integer ids, real `prds`, `streams`,
//! `task_dependencies` and `agent_log` tables. Read-only here; `writer` holds the only writes
//! (`task set` as `tc task update` does it, and `agent_log` rows).
//!
//! The mapping (`TASK-COPILOT.md`): a stream's id is the `metadata.streamId` its tasks carry; a
//! task without one belongs to the stream *named* by its `streams.name` (the stream whose
//! display name that is, else a stream of that id). Dependencies are `dependencies` ∪
//! `streamDependencies` over the stream's tasks, plus every `task_dependencies` edge between
//! tasks of two different streams. Scope: tasks of `active` PRDs or of none, in streams that
//! are not `archived`; a `paused` stream is kept (shown) with [`StreamRecord::paused`].
//!
//! Invariants: tc may add columns (`guard`) while we read, so nothing selects `*`; a malformed
//! `metadata` is a warning; ids are integers, shown as decimal text.

mod writer;

pub use writer::{ActivityLog, set_task};

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, Row};
use serde_json::Value;

use super::streams::{Parsed, StreamAccumulator, StreamMeta, TaskRow};
use super::{Snapshot, StreamRecord, Task, TaskDbError, TaskStatus};

/// The v3 store's tables as `TASK-COPILOT.md` documents them, for the demo and the tests
/// (`orchestrate` never creates a task database).
pub const SCHEMA: &str = include_str!("schema.sql");

/// Every task with its stream row `s` and PRD row `p`.
const JOINS: &str = "FROM tasks t
    LEFT JOIN streams s ON s.id = t.stream_id
    LEFT JOIN prds p ON p.id = t.prd_id";

/// Tasks in scope: of an active PRD or none, in a stream that is not archived (or none).
const IN_SCOPE: &str = "(t.prd_id IS NULL OR p.status = 'active')
    AND (s.id IS NULL OR s.status IS NOT 'archived')";

/// Like the legacy store's, one statement reads every task and Rust does the grouping (a typed
/// parse of a few metadata keys is much cheaper than SQLite's JSON functions). The scope is
/// decided in Rust too, against the few `streams` and `prds` rows read first: measured on
/// 20,000 tasks, joining them in SQL made the read 1.8× the legacy store's.
const SNAPSHOT_SQL: &str = "SELECT id, status, metadata,
        CASE WHEN status = 'blocked' THEN title END, stream_id, prd_id
    FROM tasks";

const STREAMS_SQL: &str = "SELECT id, name, status, worktree_path FROM streams";

const PRDS_SQL: &str = "SELECT id, status = 'active' FROM prds";

const EDGES_SQL: &str = "SELECT task_id, depends_on FROM task_dependencies";

/// The columns [`task_from_row`] reads.
const TASK_SQL: &str = "SELECT t.id, t.title, t.description, t.status, t.agent,
        t.created_at, t.updated_at,
        CASE WHEN json_valid(t.metadata) THEN t.metadata END,
        s.name, COALESCE(s.status = 'archived' OR p.status = 'archived', 0)";

/// A read-only view of a tc database (the connection is [`super::TaskDb`]'s).
pub struct V3Db {
    path: PathBuf,
}

/// Where a task landed before names are resolved.
#[derive(Clone)]
enum Key {
    /// Its `metadata.streamId`.
    Stream(String),
    /// No `streamId`: the `streams.name` of its `stream_id`.
    RowName(String),
}

/// A `streams` row, as the scan needs it.
struct StreamRow {
    /// Trimmed; `None` when blank.
    name: Option<String>,
    paused: bool,
    archived: bool,
    worktree_path: Option<String>,
}

/// One pass over the tasks in scope.
struct Scan {
    rows: HashMap<i64, StreamRow>,
    /// PRD id → whether it is `active`.
    prds: HashMap<i64, bool>,
    streams: StreamAccumulator,
    /// Tasks without `streamId`, by their stream row's name.
    by_row_name: StreamAccumulator,
    /// The lowest `streams.id` among each key's tasks (for `agent_log.stream_id`), when asked.
    row_ids: Option<HashMap<(bool, String), i64>>,
    /// Keys of the tasks named by a `task_dependencies` edge.
    keys: HashMap<i64, Key>,
}

impl V3Db {
    pub(crate) fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
        }
    }

    fn query_err(&self) -> impl Fn(rusqlite::Error) -> TaskDbError + '_ {
        |source| TaskDbError::Query {
            path: self.path.clone(),
            source,
        }
    }

    pub(crate) fn snapshot(&self, conn: &Connection) -> Result<Snapshot, TaskDbError> {
        Ok(self.read(conn, false)?.0)
    }

    /// Each stream's `streams.id` (the lowest among its tasks'), for `agent_log` rows.
    pub(crate) fn stream_row_ids(
        &self,
        conn: &Connection,
    ) -> Result<HashMap<String, i64>, TaskDbError> {
        Ok(self.read(conn, true)?.1)
    }

    /// One consistent read (a short read transaction over the four statements).
    fn read(
        &self,
        conn: &Connection,
        row_ids: bool,
    ) -> Result<(Snapshot, HashMap<String, i64>), TaskDbError> {
        let tx = conn.unchecked_transaction().map_err(self.query_err())?;
        let edges = self.edges(&tx)?;
        let mut scan = Scan {
            rows: self.stream_rows(&tx)?,
            prds: self.query_map(&tx, PRDS_SQL, |r| Ok((r.get(0)?, r.get(1)?)))?,
            streams: StreamAccumulator::default(),
            by_row_name: StreamAccumulator::default(),
            row_ids: row_ids.then(HashMap::new),
            // An empty id marks "named by an edge, not seen (yet)": out of scope until seen.
            keys: edges
                .iter()
                .flat_map(|&(a, b)| [a, b])
                .map(|id| (id, Key::Stream(String::new())))
                .collect(),
        };
        {
            let mut stmt = tx.prepare_cached(SNAPSHOT_SQL).map_err(self.query_err())?;
            let mut rows = stmt.query([]).map_err(self.query_err())?;
            while let Some(row) = rows.next().map_err(self.query_err())? {
                scan.add(row).map_err(self.query_err())?;
            }
        }
        tx.finish().map_err(self.query_err())?;
        Ok(scan.finish(&edges))
    }

    fn stream_rows(&self, conn: &Connection) -> Result<HashMap<i64, StreamRow>, TaskDbError> {
        self.query_map(conn, STREAMS_SQL, |r| {
            let status = r.get_ref(2)?.as_str_or_null()?;
            Ok((
                r.get(0)?,
                StreamRow {
                    name: r
                        .get::<_, Option<String>>(1)?
                        .map(|n| n.trim().to_string())
                        .filter(|n| !n.is_empty()),
                    paused: status == Some("paused"),
                    archived: status == Some("archived"),
                    worktree_path: r.get::<_, Option<String>>(3)?.filter(|p| !p.is_empty()),
                },
            ))
        })
    }

    fn query_map<T, C: FromIterator<T>>(
        &self,
        conn: &Connection,
        sql: &str,
        f: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<C, TaskDbError> {
        let mut stmt = conn.prepare_cached(sql).map_err(self.query_err())?;
        let rows = stmt.query_map([], f).map_err(self.query_err())?;
        rows.collect::<Result<_, _>>().map_err(self.query_err())
    }

    /// Every `task_dependencies` edge (task, depends on); usually few.
    fn edges(&self, conn: &Connection) -> Result<Vec<(i64, i64)>, TaskDbError> {
        self.query_map(conn, EDGES_SQL, |r| Ok((r.get(0)?, r.get(1)?)))
    }

    /// The tasks of one stream (or of every stream), in tc's own order: priority, then id.
    pub(crate) fn tasks(
        &self,
        conn: &Connection,
        stream: Option<&str>,
    ) -> Result<Vec<Task>, TaskDbError> {
        let names = self.names(conn)?;
        let sql = format!("{TASK_SQL} {JOINS} WHERE {IN_SCOPE} ORDER BY t.priority, t.id");
        let mut stmt = conn.prepare_cached(&sql).map_err(self.query_err())?;
        let rows = stmt
            .query_map([], |r| task_from_row(r, &names))
            .map_err(self.query_err())?;
        super::of_stream(rows, stream).map_err(self.query_err())
    }

    /// One task by id (an integer, `#12` accepted), in scope or not.
    pub(crate) fn task(&self, conn: &Connection, id: &str) -> Result<Option<Task>, TaskDbError> {
        let id = parse_id(id)?;
        let names = self.names(conn)?;
        let sql = format!("{TASK_SQL} {JOINS} WHERE t.id = ?1");
        let mut stmt = conn.prepare_cached(&sql).map_err(self.query_err())?;
        let mut rows = stmt
            .query_map([id], |r| task_from_row(r, &names))
            .map_err(self.query_err())?;
        rows.next().transpose().map_err(self.query_err())
    }

    /// The streams as the snapshot names them, for placing tasks without `streamId`.
    fn names(&self, conn: &Connection) -> Result<Vec<StreamRecord>, TaskDbError> {
        Ok(self.snapshot(conn)?.streams)
    }
}

/// A tc task id: a positive integer, optionally written `#12` as tc prints it.
pub(crate) fn parse_id(id: &str) -> Result<i64, TaskDbError> {
    let digits = id.trim().trim_start_matches('#');
    digits
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| TaskDbError::BadTaskId { id: id.to_string() })
}

impl Scan {
    fn add(&mut self, row: &Row<'_>) -> rusqlite::Result<()> {
        let task_id: i64 = row.get(0)?;
        let prd: Option<i64> = row.get(5)?;
        if prd.is_some_and(|p| self.prds.get(&p) != Some(&true)) {
            return Ok(()); // a PRD that is not active (or is gone): out of scope
        }
        let row_id: Option<i64> = row.get(4)?;
        let stream_row = row_id.and_then(|id| self.rows.get(&id));
        if stream_row.is_some_and(|r| r.archived) {
            return Ok(());
        }
        let mut meta = match row.get_ref(2)?.as_str_or_null()? {
            None => StreamMeta::default(),
            Some(text) => match StreamMeta::parse(text) {
                Parsed::Meta(meta) => meta,
                Parsed::NotAnObject => StreamMeta::default(),
                Parsed::Malformed => {
                    self.streams.malformed(task_id.to_string());
                    StreamMeta::default()
                }
            },
        };
        let row_name = stream_row.and_then(|r| r.name.as_deref());
        let (by_row, label) = match (meta.stream_id(), row_name) {
            (Some(id), _) => (false, id),
            (None, Some(name)) => (true, name.to_string()),
            _ => return Ok(()), // neither a streamId nor a stream: not a stream task
        };
        if let Some(key) = self.keys.get_mut(&task_id) {
            *key = if by_row {
                Key::RowName(label.clone())
            } else {
                Key::Stream(label.clone())
            };
        }
        if let (Some(ids), Some(row_id)) = (self.row_ids.as_mut(), row_id) {
            let slot = ids.entry((by_row, label.clone())).or_insert(row_id);
            *slot = (*slot).min(row_id);
        }
        let id_text = || task_id.to_string();
        let task = TaskRow {
            id: &id_text,
            status: row.get_ref(1)?.as_str_or_null()?,
            title: row.get_ref(3)?.as_str_or_null()?,
            blocked_reason: None,
        };
        let acc = if by_row {
            &mut self.by_row_name
        } else {
            &mut self.streams
        };
        let record = acc.add(label, meta, &task);
        if let Some(r) = stream_row {
            record.paused |= r.paused;
            if record.worktree_path.is_none() {
                record.worktree_path.clone_from(&r.worktree_path);
            }
            if record.name.is_empty()
                && let Some(name) = &r.name
            {
                // tc's `streams.name` is the display name (upstream writes the `streamName`).
                record.name.clone_from(name);
            }
        }
        Ok(())
    }

    fn finish(mut self, edges: &[(i64, i64)]) -> (Snapshot, HashMap<String, i64>) {
        // Tasks without `streamId` join the stream their row names.
        let rows = std::mem::take(&mut self.by_row_name.streams);
        let mut resolved: HashMap<String, String> = HashMap::new();
        for (name, record) in rows {
            let label = resolve_row_name(self.streams.streams.values(), &name);
            self.streams.absorb(&label, record);
            resolved.insert(name, label);
        }
        self.streams.warnings.append(&mut self.by_row_name.warnings);
        let label_of = |id: i64| match self.keys.get(&id)? {
            Key::Stream(s) if s.is_empty() => None, // not in scope, or not a stream task
            Key::Stream(s) => Some(s.clone()),
            Key::RowName(n) => resolved.get(n).cloned(),
        };
        for &(task, depends_on) in edges {
            if let (Some(from), Some(to)) = (label_of(task), label_of(depends_on))
                && from != to
                && let Some(record) = self.streams.streams.get_mut(&from)
            {
                record.raw_dependencies.push(to);
            }
        }
        let mut row_ids: HashMap<String, i64> = HashMap::new();
        for ((by_row, key), id) in self.row_ids.unwrap_or_default() {
            let label = if by_row {
                resolved.get(&key).cloned().unwrap_or(key)
            } else {
                key
            };
            let slot = row_ids.entry(label).or_insert(id);
            *slot = (*slot).min(id);
        }
        (self.streams.finish(), row_ids)
    }
}

/// The stream named `name`: the one stream whose display name it is, else the stream with that
/// id, else a stream of its own with `name` as its id.
fn resolve_row_name<'a>(
    streams: impl Iterator<Item = &'a StreamRecord> + Clone,
    name: &str,
) -> String {
    let mut named = streams.clone().filter(|s| s.name == name);
    if let (Some(one), None) = (named.next(), named.next()) {
        return one.id.clone();
    }
    name.to_string()
}

fn task_from_row(r: &Row<'_>, streams: &[StreamRecord]) -> rusqlite::Result<Task> {
    let status: String = r.get(3)?;
    let metadata = r
        .get::<_, Option<String>>(7)?
        .and_then(|m| serde_json::from_str::<Value>(&m).ok())
        .unwrap_or(Value::Null);
    let row_name: Option<String> = r.get(8)?;
    let stream_id = super::stream_id_of(&metadata).or_else(|| {
        row_name
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .map(|n| resolve_row_name(streams.iter(), &n))
    });
    let text = |key: &str| {
        metadata
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Ok(Task {
        id: r.get::<_, i64>(0)?.to_string(),
        title: r.get(1)?,
        description: r.get(2)?,
        status: status.parse().unwrap_or(TaskStatus::Pending),
        assigned_agent: r.get(4)?,
        blocked_reason: text("blockedReason"),
        notes: text("notes"),
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
        archived: r.get::<_, Option<bool>>(9)?.unwrap_or(false),
        stream_id,
        metadata,
    })
}
