//! Reading Task Copilot's `tasks.db`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Row};
use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::{
    BlockedTask, Snapshot, SourceWarning, StreamRecord, Task, TaskCounts, TaskDbError, TaskSource,
    TaskStatus,
};

/// How long a statement waits for a writer's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The columns of `tasks` we cannot do without.
const REQUIRED_COLUMNS: [&str; 4] = ["id", "title", "status", "metadata"];

/// A read-only connection to a Task Copilot database.
pub struct SqliteTaskDb {
    path: PathBuf,
    conn: Connection,
    /// Whether `tasks.archived` exists (it came with a later migration).
    has_archived: bool,
    /// The last `PRAGMA data_version` seen on `conn`.
    data_version: Option<i64>,
    /// (device, inode) of the file when opened: a replaced file means reopening.
    file_id: (u64, u64),
}

impl SqliteTaskDb {
    /// Opens `path` read-only. `how` says how the path was derived, for the "missing" error.
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
        let has_archived = check_schema(&conn, path)?;
        Ok(Self {
            path: path.to_path_buf(),
            conn,
            has_archived,
            data_version: None,
            file_id: (meta.dev(), meta.ino()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
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
        *self = Self::open(&self.path, "reopened after the file was replaced")?;
        Ok(true)
    }
}

/// Checks the `tasks` table has what we read; returns whether it has `archived`.
fn check_schema(conn: &Connection, path: &Path) -> Result<bool, TaskDbError> {
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_table_info('tasks')")
        .map_err(|source| TaskDbError::Open {
            path: path.to_path_buf(),
            source,
        })?;
    let columns: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|source| TaskDbError::Open {
            path: path.to_path_buf(),
            source,
        })?;
    if columns.is_empty() {
        return Err(TaskDbError::NotTaskDb {
            path: path.to_path_buf(),
            problem: "it has no `tasks` table".into(),
        });
    }
    let missing: Vec<&str> = REQUIRED_COLUMNS
        .iter()
        .copied()
        .filter(|c| !columns.iter().any(|have| have == c))
        .collect();
    if !missing.is_empty() {
        return Err(TaskDbError::NotTaskDb {
            path: path.to_path_buf(),
            problem: format!("table `tasks` lacks the column(s) {}", missing.join(", ")),
        });
    }
    Ok(columns.iter().any(|c| c == "archived"))
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

impl TaskSource for SqliteTaskDb {
    fn snapshot(&mut self) -> Result<Snapshot, TaskDbError> {
        // Callers may read without probing first (the scheduler does right after a worker
        // exits): a file replaced since the last probe must not yield the old file's rows.
        self.reopen_if_replaced()?;
        let sql = SNAPSHOT_SQL.replace("{not_archived}", self.not_archived());
        let mut stmt = self.conn.prepare_cached(&sql).map_err(self.query_err())?;
        let mut rows = stmt.query([]).map_err(self.query_err())?;
        let mut streams = StreamAccumulator::default();
        while let Some(row) = rows.next().map_err(self.query_err())? {
            streams.add(row).map_err(self.query_err())?;
        }
        Ok(streams.finish())
    }

    fn has_changed(&mut self) -> Result<bool, TaskDbError> {
        if self.reopen_if_replaced()? {
            return Ok(true);
        }
        let version: i64 = self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(self.query_err())?;
        let changed = self.data_version != Some(version);
        self.data_version = Some(version);
        Ok(changed)
    }

    fn tasks(&mut self, stream: Option<&str>) -> Result<Vec<Task>, TaskDbError> {
        let sql = format!(
            "{} WHERE {} AND json_valid(metadata) ORDER BY created_at, id",
            self.select_tasks(),
            self.not_archived()
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(self.query_err())?;
        let rows = stmt
            .query_map([], task_from_row)
            .map_err(self.query_err())?;
        // The stream is matched in Rust, on the id as the snapshot normalises it (trimmed):
        // SQL compared the raw text, so a stream `A ` (or with a tab or CR around it) ran a
        // worker whose `task list` found no tasks.
        let mut out = Vec::new();
        for task in rows {
            let task = task.map_err(self.query_err())?;
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
}

impl SqliteTaskDb {
    /// One task by id, archived or not, stream task or not.
    pub fn task(&self, id: &str) -> Result<Option<Task>, TaskDbError> {
        let sql = format!("{} WHERE id = ?1", self.select_tasks());
        let mut stmt = self.conn.prepare_cached(&sql).map_err(self.query_err())?;
        let mut rows = stmt
            .query_map([id], task_from_row)
            .map_err(self.query_err())?;
        rows.next().transpose().map_err(self.query_err())
    }
}

impl SqliteTaskDb {
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

fn task_from_row(r: &Row<'_>) -> rusqlite::Result<Task> {
    let status: String = r.get(3)?;
    let metadata = r
        .get::<_, Option<String>>(10)?
        .and_then(|m| serde_json::from_str::<Value>(&m).ok())
        .unwrap_or(Value::Null);
    let stream_id = metadata
        .get("streamId")
        .cloned()
        .and_then(|v| IdValue::deserialize(v).ok())
        .and_then(IdValue::into_id);
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
        metadata,
        stream_id,
    })
}

/// The metadata keys a stream is made of; everything else is skipped unparsed.
#[derive(Deserialize)]
struct StreamMeta<'a> {
    #[serde(rename = "streamId", default)]
    stream_id: Option<IdValue<'a>>,
    #[serde(rename = "streamName", borrow, default)]
    stream_name: Option<Cow<'a, str>>,
    #[serde(rename = "streamPhase", borrow, default)]
    stream_phase: Option<Cow<'a, str>>,
    #[serde(rename = "worktreePath", borrow, default)]
    worktree_path: Option<Cow<'a, str>>,
    #[serde(rename = "branchName", borrow, default)]
    branch_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    dependencies: Deps<'a>,
    #[serde(rename = "streamDependencies", borrow, default)]
    stream_dependencies: Deps<'a>,
}

/// `streamId` as written: usually a string, sometimes a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum IdValue<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Number(serde_json::Number),
    Other(IgnoredAny),
}

impl IdValue<'_> {
    fn into_id(self) -> Option<String> {
        let id = match self {
            Self::Text(s) => s.trim().to_string(),
            Self::Number(n) => n.to_string(),
            Self::Other(_) => return None,
        };
        (!id.is_empty()).then_some(id)
    }
}

/// Folds task rows into stream records.
#[derive(Default)]
struct StreamAccumulator {
    streams: BTreeMap<String, StreamRecord>,
    warnings: Vec<SourceWarning>,
}

impl StreamAccumulator {
    fn add(&mut self, row: &Row<'_>) -> rusqlite::Result<()> {
        let Some(text) = row.get_ref(2)?.as_str_or_null()? else {
            return Ok(()); // NULL metadata: not a stream task
        };
        let meta: StreamMeta<'_> = match serde_json::from_str(text) {
            Ok(meta) => meta,
            Err(_) if serde_json::from_str::<IgnoredAny>(text).is_ok() => return Ok(()), // not an object
            Err(_) => {
                self.warnings.push(SourceWarning::MalformedMetadata {
                    task_id: row.get(0)?,
                });
                return Ok(());
            }
        };
        let Some(id) = meta.stream_id.and_then(IdValue::into_id) else {
            return Ok(());
        };
        let record = self
            .streams
            .entry(id)
            .or_insert_with_key(|id| StreamRecord {
                id: id.clone(),
                name: String::new(),
                raw_dependencies: Vec::new(),
                counts: TaskCounts::default(),
                blocked: Vec::new(),
                phase: None,
                worktree_path: None,
                branch_name: None,
                paused: false,
            });
        let keep = |slot: &mut Option<String>, value: Option<Cow<'_, str>>| {
            if slot.is_none() {
                *slot = value.map(Cow::into_owned).filter(|v| !v.trim().is_empty());
            }
        };
        if record.name.is_empty()
            && let Some(name) = meta.stream_name.filter(|n| !n.trim().is_empty())
        {
            record.name = name.into_owned();
        }
        keep(&mut record.phase, meta.stream_phase);
        keep(&mut record.worktree_path, meta.worktree_path);
        keep(&mut record.branch_name, meta.branch_name);
        for dep in meta
            .dependencies
            .0
            .into_iter()
            .chain(meta.stream_dependencies.0)
        {
            // Tasks of a stream usually repeat the same list: allocate only what is new.
            if !record.raw_dependencies.iter().any(|d| *d == dep) {
                record.raw_dependencies.push(dep.into_owned());
            }
        }
        let c = &mut record.counts;
        c.total += 1;
        match row
            .get_ref(1)?
            .as_str_or_null()?
            .and_then(|s| s.parse().ok())
        {
            Some(TaskStatus::Completed) => c.completed += 1,
            Some(TaskStatus::InProgress) => c.in_progress += 1,
            Some(TaskStatus::Blocked) => {
                c.blocked += 1;
                record.blocked.push(BlockedTask {
                    id: row.get(0)?,
                    title: row.get::<_, Option<String>>(3)?.unwrap_or_default(),
                    reason: row.get(4)?,
                });
            }
            Some(TaskStatus::Cancelled) => c.cancelled += 1,
            // Anything that is not one of the other four counts as pending.
            Some(TaskStatus::Pending) | None => c.pending += 1,
        }
        Ok(())
    }

    fn finish(self) -> Snapshot {
        let streams = self
            .streams
            .into_values()
            .map(|mut s| {
                if s.name.is_empty() {
                    s.name = s.id.clone();
                }
                s.raw_dependencies.sort();
                s.raw_dependencies.dedup();
                s.blocked.sort_by(|a, b| a.id.cmp(&b.id));
                s
            })
            .collect();
        Snapshot {
            streams,
            warnings: self.warnings,
        }
    }
}

/// One task's `dependencies` value, read without building a `serde_json::Value`: the ids in a
/// string, a number, or (nested) arrays of them; a string holding a JSON array is unpacked;
/// objects, booleans and nulls contribute nothing.
#[derive(Default)]
struct Deps<'a>(Vec<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Deps<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut ids = Vec::new();
        d.deserialize_any(DepsVisitor(&mut ids))?;
        Ok(Deps(ids))
    }
}

struct DepsVisitor<'o, 'a>(&'o mut Vec<Cow<'a, str>>);

impl<'o, 'a> DepsVisitor<'o, 'a> {
    fn push(self, id: Cow<'a, str>) {
        let trimmed = id.trim();
        if trimmed.starts_with('[')
            && let Ok(Deps(inner)) = serde_json::from_str::<Deps<'_>>(trimmed)
        {
            self.0
                .extend(inner.into_iter().map(|d| Cow::Owned(d.into_owned())));
            return;
        }
        if trimmed.is_empty() {
            return;
        }
        self.0.push(match id {
            Cow::Borrowed(b) => Cow::Borrowed(b.trim()),
            Cow::Owned(o) => Cow::Owned(o.trim().to_string()),
        });
    }
}

impl<'de: 'a, 'a, 'o> serde::de::Visitor<'de> for DepsVisitor<'o, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stream ids")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<(), E> {
        self.push(Cow::Borrowed(v));
        Ok(())
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.push(Cow::Owned(v.to_string()));
        Ok(())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.0.push(Cow::Owned(v.to_string()));
        Ok(())
    }

    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.0.push(Cow::Owned(v.to_string()));
        Ok(())
    }

    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.0.push(Cow::Owned(v.to_string()));
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(DepsSeed(self.0))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

struct DepsSeed<'o, 'a>(&'o mut Vec<Cow<'a, str>>);

impl<'de: 'a, 'a, 'o> serde::de::DeserializeSeed<'de> for DepsSeed<'o, 'a> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(DepsVisitor(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_accept_arrays_strings_and_nested_json() {
        let text =
            r#"[["A","B"], null, " C ", ["A"], "[\"D\"]", 7, -1, 2.5, "", {"x": "no"}, true]"#;
        let Deps(ids) = serde_json::from_str(text).unwrap();
        assert_eq!(ids, vec!["A", "B", "C", "A", "D", "7", "-1", "2.5"]);
        let Deps(one) = serde_json::from_str(r#""Stream-A: Foundation""#).unwrap();
        assert_eq!(one, vec!["Stream-A: Foundation"]);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn db_with(metadata: &[Option<String>]) -> (tempfile::TempDir, SqliteTaskDb) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tasks.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE tasks (id TEXT PRIMARY KEY, title TEXT NOT NULL, status TEXT, blocked_reason TEXT,
                                 metadata TEXT, archived INTEGER DEFAULT 0)",
        )
        .unwrap();
        for (i, m) in metadata.iter().enumerate() {
            conn.execute(
                "INSERT INTO tasks (id, title, status, metadata) VALUES (?1, 't', 'pending', ?2)",
                rusqlite::params![format!("T{i}"), m],
            )
            .unwrap();
        }
        drop(conn);
        let db = SqliteTaskDb::open(&path, "test").unwrap();
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
