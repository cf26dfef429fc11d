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

use super::cache::{Key, Mark, Marks, RowHasher};
use super::schema::Tables;
use super::streams::{
    Parsed, StreamAccumulator, StreamMeta, TaskRow, files_warning, finish_record,
};
use super::{Reader, Snapshot, SourceWarning, StreamRecord, Task, TaskDbError, TaskStatus};

/// The legacy store's tables, for making databases in the demo and the tests.
pub const SCHEMA: &str = include_str!("schema.sql");

/// A read-only view of a legacy Task Copilot database (the connection is [`super::TaskDb`]'s).
pub struct LegacyDb {
    path: PathBuf,
    /// Whether `tasks.archived` exists (it came with a later migration).
    has_archived: bool,
}

/// The columns every read of rows for streams selects, whatever rows it picks: the full read,
/// the incremental one and the read of one row by rowid fold the same columns the same way
/// (`cache.rs` relies on it). The grouping into streams happens in Rust.
///
/// Measured (callgrind, 20,000 tasks): grouping in SQL with `json_valid`/`json_extract` spent
/// ~1.1 G instructions, nearly all in SQLite converting each row's JSON text to JSONB; a typed
/// serde_json parse of the few keys we need is several times cheaper. Parsing in Rust also
/// means a malformed row can never fail the statement (SQLite's `json_extract` fails the whole
/// query on one malformed value). The task id, title and reason are only needed for blocked
/// tasks (and the id for malformed rows, read by rowid), so [`RawRow::of`] reads them only for
/// blocked ones: selecting them through `CASE WHEN status = 'blocked'` cost SQLite more (three
/// comparisons a row, 6 % of `status` at 20,000 tasks) than handing over columns not read.
const ROW_SQL: &str = "SELECT rowid, status, metadata, id, title, blocked_reason, {archived}
    FROM tasks";

/// One row of [`ROW_SQL`], borrowed from the statement.
struct RawRow<'r> {
    rowid: i64,
    status: Option<&'r str>,
    metadata: Option<&'r str>,
    /// Only for blocked tasks.
    id: Option<&'r str>,
    title: Option<&'r str>,
    blocked_reason: Option<&'r str>,
    archived: bool,
}

impl<'r> RawRow<'r> {
    fn of(row: &'r Row<'_>) -> rusqlite::Result<Self> {
        let status = row.get_ref(1)?.as_str_or_null()?;
        // The other rows' are `None`, whatever the columns hold: the row's hash (what the
        // incremental read compares) covers only what the fold reads.
        let blocked = |i| -> rusqlite::Result<Option<&'r str>> {
            if status == Some("blocked") {
                row.get_ref(i)?.as_str_or_null().map_err(Into::into)
            } else {
                Ok(None)
            }
        };
        Ok(Self {
            rowid: row.get(0)?,
            status,
            metadata: row.get_ref(2)?.as_str_or_null()?,
            id: blocked(3)?,
            title: blocked(4)?,
            blocked_reason: blocked(5)?,
            archived: row.get::<_, Option<i64>>(6)?.unwrap_or(0) != 0,
        })
    }

    fn hash(&self) -> u64 {
        let mut h = RowHasher::default();
        h.text(self.status)
            .text(self.metadata)
            .text(self.id)
            .text(self.title)
            .text(self.blocked_reason)
            .int(Some(i64::from(self.archived)));
        h.finish()
    }
}

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

    fn archived(&self) -> &'static str {
        if self.has_archived {
            "COALESCE(archived, 0)"
        } else {
            "0"
        }
    }

    fn row_sql(&self, tail: &str) -> String {
        format!("{} {tail}", ROW_SQL.replace("{archived}", self.archived()))
    }

    /// Runs [`ROW_SQL`] with `tail` and hands each row to `f`.
    fn each_row(
        &self,
        conn: &Connection,
        tail: &str,
        params: impl rusqlite::Params,
        mut f: impl FnMut(&RawRow<'_>) -> rusqlite::Result<()>,
    ) -> Result<(), TaskDbError> {
        let mut stmt = conn
            .prepare_cached(&self.row_sql(tail))
            .map_err(self.query_err())?;
        let mut rows = stmt.query(params).map_err(self.query_err())?;
        while let Some(row) = rows.next().map_err(self.query_err())? {
            RawRow::of(row)
                .and_then(|raw| f(&raw))
                .map_err(self.query_err())?;
        }
        Ok(())
    }

    /// The tasks of one stream (or of every stream), oldest first; with `rowids`, only those
    /// rows are read (the stream's rows as the cache knows them).
    pub(crate) fn tasks(
        &self,
        conn: &Connection,
        stream: Option<&str>,
        rowids: Option<&[i64]>,
    ) -> Result<Vec<Task>, TaskDbError> {
        let mut out = Vec::new();
        match rowids {
            Some(rowids) => {
                let sql = format!("{} WHERE rowid = ?1", self.select_tasks());
                let mut stmt = conn.prepare_cached(&sql).map_err(self.query_err())?;
                for rowid in rowids {
                    let mut rows = stmt
                        .query_map([rowid], task_from_row)
                        .map_err(self.query_err())?;
                    if let Some(task) = rows.next().transpose().map_err(self.query_err())? {
                        out.push(task);
                    }
                }
            }
            None => {
                let sql = format!("{} WHERE {}", self.select_tasks(), self.not_archived());
                let mut stmt = conn.prepare_cached(&sql).map_err(self.query_err())?;
                let rows = stmt
                    .query_map([], task_from_row)
                    .map_err(self.query_err())?;
                for task in rows {
                    out.push(task.map_err(self.query_err())?);
                }
            }
        }
        out.retain(|t| {
            !t.archived
                && t.stream_id
                    .as_deref()
                    .is_some_and(|id| stream.is_none_or(|s| s == id))
        });
        // The store's own order (as `ORDER BY created_at, id` sorted them).
        out.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
        Ok(out)
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
        format!(
            "SELECT id, title, description, status, assigned_agent, blocked_reason, notes,
                    created_at, updated_at, {}, metadata
             FROM tasks",
            self.archived()
        )
    }

    /// The id of the task at `rowid` (for a malformed row's warning).
    fn id_at(&self, conn: &Connection, rowid: i64) -> rusqlite::Result<String> {
        conn.prepare_cached("SELECT id FROM tasks WHERE rowid = ?1")?
            .query_row([rowid], |r| r.get::<_, Option<String>>(0))
            .map(Option::unwrap_or_default)
    }

    /// Folds one row into `acc` (unless archived); its mark, with `hash` (`None`: the caller
    /// keeps no marks, and the mark says only whether the row is malformed).
    fn fold(
        &self,
        conn: &Connection,
        raw: &RawRow<'_>,
        hash: Option<u64>,
        acc: &mut StreamAccumulator,
    ) -> rusqlite::Result<Mark> {
        let keep = hash.is_some();
        let mut mark = Mark {
            hash: hash.unwrap_or_default(),
            key: None,
            malformed: None,
        };
        let Some(text) = raw.metadata.filter(|_| !raw.archived) else {
            return Ok(mark); // NULL metadata: not a stream task; archived: invisible
        };
        let mut meta = match StreamMeta::parse(text) {
            Parsed::Meta(meta) => meta,
            Parsed::NotAnObject => return Ok(mark),
            Parsed::Malformed => {
                let id = self.id_at(conn, raw.rowid)?;
                acc.malformed(id.clone());
                mark.malformed = Some(SourceWarning::MalformedMetadata { task_id: id });
                return Ok(mark);
            }
        };
        let Some(id) = meta.stream_id() else {
            return Ok(mark);
        };
        // Selected only for blocked tasks; read by rowid for the rare other row that needs it
        // (malformed `files`).
        let task_id = || match raw.id {
            Some(id) => id.to_string(),
            None => self.id_at(conn, raw.rowid).unwrap_or_default(),
        };
        let task = TaskRow {
            id: &task_id,
            status: raw.status,
            title: raw.title,
            blocked_reason: raw.blocked_reason,
        };
        let bad_files = meta.files.malformed;
        acc.add(&id, meta, &task);
        if bad_files {
            mark.malformed = Some(files_warning(&id, &task));
        }
        // Only a reader that keeps marks needs the key (a full read for `status` does not).
        if keep {
            mark.key = Some(Key::Stream(id.into_owned()));
        }
        Ok(mark)
    }
}

impl Reader for LegacyDb {
    fn read_all(
        &mut self,
        conn: &Connection,
        mut marks: Option<&mut Marks>,
    ) -> Result<Snapshot, TaskDbError> {
        let mut acc = StreamAccumulator::default();
        let tail = format!("WHERE {} ORDER BY rowid", self.not_archived());
        self.each_row(conn, &tail, [], |raw| {
            // Hashing is only for a reader that keeps marks: `status` does not pay for it.
            let hash = marks.is_some().then(|| raw.hash());
            let mark = self.fold(conn, raw, hash, &mut acc)?;
            if let Some(marks) = marks.as_deref_mut() {
                marks.set(raw.rowid, Some(mark));
            }
            Ok(())
        })?;
        Ok(acc.finish())
    }

    fn read_recent(
        &self,
        conn: &Connection,
        since: Option<&str>,
        marks: &Marks,
    ) -> Result<Vec<(i64, Mark)>, TaskDbError> {
        let mut changed = Vec::new();
        let mut acc = StreamAccumulator::default();
        let mut visit = |raw: &RawRow<'_>| {
            let hash = raw.hash();
            if marks.get(raw.rowid).is_none_or(|m| m.hash != hash) {
                changed.push((raw.rowid, self.fold(conn, raw, Some(hash), &mut acc)?));
            }
            Ok(())
        };
        match since {
            Some(since) => self.each_row(
                conn,
                "WHERE updated_at >= ?1 OR rowid > ?2",
                rusqlite::params![since, marks.max_rowid()],
                &mut visit,
            )?,
            None => self.each_row(conn, "", [], &mut visit)?,
        }
        Ok(changed)
    }

    fn fold_row(
        &self,
        conn: &Connection,
        rowid: i64,
        acc: &mut StreamAccumulator,
    ) -> Result<Option<Mark>, TaskDbError> {
        let mut mark = None;
        self.each_row(conn, "WHERE rowid = ?1", [rowid], |raw| {
            mark = Some(self.fold(conn, raw, Some(raw.hash()), acc)?);
            Ok(())
        })?;
        Ok(mark)
    }

    fn finish(&self, record: StreamRecord, _: &Marks) -> StreamRecord {
        finish_record(record)
    }

    fn linked(&self, _: &[i64], _: &Marks) -> Vec<Key> {
        Vec::new()
    }

    fn partial_ok(&self, _: &Marks) -> bool {
        true
    }
}

fn task_from_row(r: &Row<'_>) -> rusqlite::Result<Task> {
    let status: String = r.get(3)?;
    let text = r.get_ref(10)?.as_str_or_null()?;
    let metadata = text
        .and_then(|m| serde_json::from_str::<Value>(m).ok())
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
        // The same reading of `streamId` the snapshot folds by.
        stream_id: text.and_then(super::streams::stream_id_in),
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
