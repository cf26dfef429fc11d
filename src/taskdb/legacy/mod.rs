//! The legacy store: the MCP-server era's `<TASK_DB_PATH>/<workspace>/tasks.db`, text task ids,
//! stream fields only in `metadata` (see `TASK-COPILOT.md`), read-only; and its `task set`
//! writer.
//!
//! Invariants: archived tasks (when the column exists) are invisible; a malformed `metadata`
//! never fails a read.

mod writer;

pub use writer::set_task;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, Row};
use serde_json::Value;

use super::schema::Tables;
use super::streams::{Parsed, StreamAccumulator, StreamMeta, TaskRow};
use super::{Snapshot, Task, TaskDbError, TaskStatus};

/// The legacy store's tables, for making databases in the demo and the tests.
pub const SCHEMA: &str = include_str!("schema.sql");

/// A read-only view of a legacy Task Copilot database (the connection is [`super::TaskDb`]'s).
pub struct LegacyDb {
    path: PathBuf,
    /// Whether `tasks.archived` exists (it came with a later migration).
    has_archived: bool,
}

/// One statement per refresh reads every non-archived task's status and metadata; the
/// grouping into streams happens in Rust.
///
/// Measured (callgrind, 20,000 tasks): grouping in SQL with `json_valid`/`json_extract` spent
/// ~1.1 G instructions, nearly all in SQLite converting each row's JSON text to JSONB; a typed
/// serde_json parse of the few keys we need is several times cheaper. Parsing in Rust also
/// means a malformed row can never fail the statement (SQLite's `json_extract` fails the whole
/// query on one malformed value).
const SNAPSHOT_SQL: &str = "SELECT id, status, metadata,
        CASE WHEN status = 'blocked' THEN title END,
        CASE WHEN status = 'blocked' THEN blocked_reason END
    FROM tasks WHERE {not_archived}";

impl LegacyDb {
    pub(crate) fn new(path: &Path, tables: &Tables) -> Self {
        Self {
            path: path.to_path_buf(),
            has_archived: tables.has_column("tasks", "archived"),
        }
    }

    fn query_err(&self) -> impl Fn(rusqlite::Error) -> TaskDbError + '_ {
        |source| TaskDbError::Query {
            path: self.path.clone(),
            source,
        }
    }

    fn not_archived(&self) -> &'static str {
        if self.has_archived {
            "COALESCE(archived, 0) = 0"
        } else {
            "1"
        }
    }

    pub(crate) fn snapshot(&self, conn: &Connection) -> Result<Snapshot, TaskDbError> {
        let sql = SNAPSHOT_SQL.replace("{not_archived}", self.not_archived());
        let mut stmt = conn.prepare_cached(&sql).map_err(self.query_err())?;
        let mut rows = stmt.query([]).map_err(self.query_err())?;
        let mut streams = StreamAccumulator::default();
        while let Some(row) = rows.next().map_err(self.query_err())? {
            add_row(&mut streams, row).map_err(self.query_err())?;
        }
        Ok(streams.finish())
    }

    /// The tasks of one stream (or of every stream), oldest first.
    pub(crate) fn tasks(
        &self,
        conn: &Connection,
        stream: Option<&str>,
    ) -> Result<Vec<Task>, TaskDbError> {
        let sql = format!(
            "{} WHERE {} AND json_valid(metadata) ORDER BY created_at, id",
            self.select_tasks(),
            self.not_archived()
        );
        let mut stmt = conn.prepare_cached(&sql).map_err(self.query_err())?;
        let rows = stmt
            .query_map([], task_from_row)
            .map_err(self.query_err())?;
        super::of_stream(rows, stream).map_err(self.query_err())
    }

    /// One task by id, archived or not, stream task or not.
    pub(crate) fn task(&self, conn: &Connection, id: &str) -> Result<Option<Task>, TaskDbError> {
        let sql = format!("{} WHERE id = ?1", self.select_tasks());
        let mut stmt = conn.prepare_cached(&sql).map_err(self.query_err())?;
        let mut rows = stmt
            .query_map([id], task_from_row)
            .map_err(self.query_err())?;
        rows.next().transpose().map_err(self.query_err())
    }

    /// `SELECT … FROM tasks` with the columns [`task_from_row`] reads.
    fn select_tasks(&self) -> String {
        let archived = if self.has_archived {
            "COALESCE(archived, 0)"
        } else {
            "0"
        };
        format!(
            "SELECT id, title, description, status, assigned_agent, blocked_reason, notes,
                    created_at, updated_at, {archived},
                    CASE WHEN json_valid(metadata) THEN metadata END
             FROM tasks"
        )
    }
}

/// Folds one row of [`SNAPSHOT_SQL`] into the streams.
fn add_row(streams: &mut StreamAccumulator, row: &Row<'_>) -> rusqlite::Result<()> {
    let Some(text) = row.get_ref(2)?.as_str_or_null()? else {
        return Ok(()); // NULL metadata: not a stream task
    };
    let mut meta = match StreamMeta::parse(text) {
        Parsed::Meta(meta) => meta,
        Parsed::NotAnObject => return Ok(()),
        Parsed::Malformed => {
            streams.malformed(row.get(0)?);
            return Ok(());
        }
    };
    let Some(id) = meta.stream_id() else {
        return Ok(());
    };
    let task_id = || row.get::<_, String>(0).unwrap_or_default();
    let task = TaskRow {
        id: &task_id,
        status: row.get_ref(1)?.as_str_or_null()?,
        title: row.get_ref(3)?.as_str_or_null()?,
        blocked_reason: row.get_ref(4)?.as_str_or_null()?,
    };
    streams.add(id, meta, &task);
    Ok(())
}

fn task_from_row(r: &Row<'_>) -> rusqlite::Result<Task> {
    let status: String = r.get(3)?;
    let metadata = r
        .get::<_, Option<String>>(10)?
        .and_then(|m| serde_json::from_str::<Value>(&m).ok())
        .unwrap_or(Value::Null);
    Ok(Task {
        id: r.get(0)?,
        title: r.get(1)?,
        description: r.get(2)?,
        // The CHECK constraint makes other values impossible in a real database; a hand-made
        // one may lack it, and an unknown status is not progress.
        status: status.parse().unwrap_or(TaskStatus::Pending),
        assigned_agent: r.get(4)?,
        blocked_reason: r.get(5)?,
        notes: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
        archived: r.get::<_, Option<i64>>(9)?.unwrap_or(0) != 0,
        stream_id: super::stream_id_of(&metadata),
        metadata,
    })
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    use crate::taskdb::{TaskDb, TaskSource};

    fn db_with(metadata: &[Option<String>]) -> (tempfile::TempDir, TaskDb) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tasks.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        for (i, m) in metadata.iter().enumerate() {
            conn.execute(
                "INSERT INTO tasks (id, title, status, metadata, created_at, updated_at)
                 VALUES (?1, 't', 'pending', ?2, 'now', 'now')",
                rusqlite::params![format!("T{i}"), m],
            )
            .unwrap();
        }
        drop(conn);
        let db = TaskDb::open(&path, "test").unwrap();
        (dir, db)
    }

    fn metadata() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            Just(None),
            any::<String>().prop_map(Some),
            (
                "[a-zA-Z0-9 :\\[\\]./-]{0,10}",
                proptest::collection::vec(any::<String>(), 0..3)
            )
                .prop_map(|(id, deps)| {
                    Some(serde_json::json!({"streamId": id, "dependencies": deps}).to_string())
                }),
            any::<String>().prop_map(|id| Some(
                serde_json::json!({"streamId": id, "dependencies": id}).to_string()
            )),
            Just(Some(
                r#"{"streamId": 5, "dependencies": [1, [2], {"a": 3}], "streamName": null}"#
                    .to_string()
            )),
            Just(Some(r#"{"streamId": "S", "dependencies": "#.to_string())),
            Just(Some("[]".to_string())),
            Just(Some("\"just a string\"".to_string())),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn snapshot_never_fails_on_any_metadata(rows in proptest::collection::vec(metadata(), 0..8)) {
            let (_dir, mut db) = db_with(&rows);
            let snapshot = db.snapshot().unwrap();
            let total: u32 = snapshot.streams.iter().map(|s| s.counts.total).sum();
            prop_assert!(total as usize + snapshot.warnings.len() <= rows.len());
            for s in &snapshot.streams {
                prop_assert!(!s.id.is_empty());
                prop_assert!(!s.name.is_empty());
            }
        }
    }
}
