//! Reading Task Copilot's `tasks.db`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Row};
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

    /// Reopens the connection if the file at `path` was replaced (new inode).
    fn reopen_if_replaced(&mut self) -> Result<bool, TaskDbError> {
        let Ok(meta) = std::fs::metadata(&self.path) else {
            return Ok(false);
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

/// Rows are grouped by (metadata is usable JSON, streamId). Malformed rows form their own group
/// so they are reported without failing the statement: `json_extract` on malformed JSON fails
/// the *whole* query, so every use of it is guarded by `json_valid`.
const SNAPSHOT_SQL: &str = "
WITH t AS (
    SELECT id, title, status, blocked_reason,
           CASE WHEN metadata IS NULL OR json_valid(metadata) THEN 1 ELSE 0 END AS ok,
           CASE WHEN json_valid(metadata) THEN metadata END AS m
    FROM tasks WHERE {not_archived}
)
SELECT ok,
       CAST(json_extract(m, '$.streamId') AS TEXT) AS sid,
       MAX(json_extract(m, '$.streamName')),
       MAX(json_extract(m, '$.streamPhase')),
       MAX(json_extract(m, '$.worktreePath')),
       MAX(json_extract(m, '$.branchName')),
       COUNT(*),
       SUM(status = 'completed'),
       SUM(status = 'in_progress'),
       SUM(status = 'blocked'),
       SUM(status = 'cancelled'),
       json_group_array(json_extract(m, '$.dependencies')),
       json_group_array(json_extract(m, '$.streamDependencies')),
       json_group_array(json_object('id', id, 'title', title, 'reason', blocked_reason))
           FILTER (WHERE status = 'blocked'),
       json_group_array(id) FILTER (WHERE ok = 0)
FROM t
GROUP BY ok, sid
ORDER BY sid";

impl TaskSource for SqliteTaskDb {
    fn snapshot(&mut self) -> Result<Snapshot, TaskDbError> {
        let sql = SNAPSHOT_SQL.replace("{not_archived}", self.not_archived());
        let mut stmt = self.conn.prepare_cached(&sql).map_err(self.query_err())?;
        let mut rows = stmt.query([]).map_err(self.query_err())?;
        let mut snapshot = Snapshot::default();
        while let Some(row) = rows.next().map_err(self.query_err())? {
            read_group(row, &mut snapshot).map_err(self.query_err())?;
        }
        snapshot.streams.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(snapshot)
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
        let archived = if self.has_archived {
            "COALESCE(archived, 0)"
        } else {
            "0"
        };
        let sql = format!(
            "SELECT id, title, description, status, assigned_agent, blocked_reason, notes,
                    created_at, updated_at, {archived},
                    CASE WHEN json_valid(metadata) THEN metadata END,
                    CASE WHEN json_valid(metadata) THEN CAST(json_extract(metadata, '$.streamId') AS TEXT) END AS sid
             FROM tasks
             WHERE {} AND sid IS NOT NULL AND (?1 IS NULL OR sid = ?1)
             ORDER BY created_at, id",
            self.not_archived()
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(self.query_err())?;
        let rows = stmt
            .query_map([stream], task_from_row)
            .map_err(self.query_err())?;
        rows.collect::<Result<_, _>>().map_err(self.query_err())
    }
}

impl SqliteTaskDb {
    /// One task by id, archived or not, stream task or not.
    pub fn task(&self, id: &str) -> Result<Option<Task>, TaskDbError> {
        let archived = if self.has_archived {
            "COALESCE(archived, 0)"
        } else {
            "0"
        };
        let sql = format!(
            "SELECT id, title, description, status, assigned_agent, blocked_reason, notes,
                    created_at, updated_at, {archived},
                    CASE WHEN json_valid(metadata) THEN metadata END,
                    CASE WHEN json_valid(metadata) THEN CAST(json_extract(metadata, '$.streamId') AS TEXT) END
             FROM tasks WHERE id = ?1"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(self.query_err())?;
        let mut rows = stmt
            .query_map([id], task_from_row)
            .map_err(self.query_err())?;
        rows.next().transpose().map_err(self.query_err())
    }
}

fn task_from_row(r: &Row<'_>) -> rusqlite::Result<Task> {
    let status: String = r.get(3)?;
    let metadata: Option<String> = r.get(10)?;
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
        metadata: metadata
            .and_then(|m| serde_json::from_str(&m).ok())
            .unwrap_or(Value::Null),
        stream_id: r.get(11)?,
    })
}

/// Turns one result group into a stream record or warnings.
fn read_group(row: &Row<'_>, snapshot: &mut Snapshot) -> rusqlite::Result<()> {
    let ok: bool = row.get(0)?;
    if !ok {
        let ids: Option<String> = row.get(14)?;
        for id in json_strings(ids.as_deref()) {
            snapshot
                .warnings
                .push(SourceWarning::MalformedMetadata { task_id: id });
        }
        return Ok(());
    }
    let Some(id) = row
        .get::<_, Option<String>>(1)?
        .filter(|id| !id.trim().is_empty())
    else {
        return Ok(()); // not stream tasks
    };
    let count = |i| row.get::<_, Option<u32>>(i).map(Option::unwrap_or_default);
    let total = count(6)?;
    let (completed, in_progress, blocked, cancelled) =
        (count(7)?, count(8)?, count(9)?, count(10)?);
    let counts = TaskCounts {
        total,
        completed,
        in_progress,
        blocked,
        cancelled,
        // Anything that is not one of the other four counts as pending.
        pending: total - completed - in_progress - blocked - cancelled,
    };
    let mut deps = dependency_values(row.get::<_, Option<String>>(11)?.as_deref());
    deps.extend(dependency_values(
        row.get::<_, Option<String>>(12)?.as_deref(),
    ));
    deps.sort();
    deps.dedup();
    let blocked: Option<String> = row.get(13)?;
    let name: Option<String> = row.get(2)?;
    snapshot.streams.push(StreamRecord {
        name: name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| id.clone()),
        id,
        raw_dependencies: deps,
        counts,
        blocked: blocked_tasks(blocked.as_deref()),
        phase: row.get(3)?,
        worktree_path: row.get(4)?,
        branch_name: row.get(5)?,
    });
    Ok(())
}

/// The dependency ids in a `json_group_array` of per-task `dependencies` values. Each value may
/// be an array of strings, a single string, or null.
fn dependency_values(group: Option<&str>) -> Vec<String> {
    let Some(Value::Array(per_task)) = group.and_then(|g| serde_json::from_str(g).ok()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for value in per_task {
        match value {
            Value::Array(items) => out.extend(items.into_iter().filter_map(dependency_string)),
            // json_extract returns an array as JSON text when the subtype is lost.
            Value::String(s) if s.trim_start().starts_with('[') => {
                if let Ok(Value::Array(items)) = serde_json::from_str(&s) {
                    out.extend(items.into_iter().filter_map(dependency_string));
                }
            }
            other => out.extend(dependency_string(other)),
        }
    }
    out
}

fn dependency_string(value: Value) -> Option<String> {
    let s = match value {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

fn json_strings(text: Option<&str>) -> Vec<String> {
    text.and_then(|t| serde_json::from_str::<Vec<Option<String>>>(t).ok())
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}

fn blocked_tasks(text: Option<&str>) -> Vec<BlockedTask> {
    let Some(Value::Array(items)) = text.and_then(|t| serde_json::from_str(t).ok()) else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| {
            let s = |k: &str| item.get(k).and_then(Value::as_str).map(str::to_string);
            Some(BlockedTask {
                id: s("id")?,
                title: s("title").unwrap_or_default(),
                reason: s("reason"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependency_values_accept_arrays_strings_and_nulls() {
        let got = dependency_values(Some(r#"[["A","B"], null, "C", ["A"], "[\"D\"]", 7, ""]"#));
        assert_eq!(got, vec!["A", "B", "C", "A", "D", "7"]);
        assert!(dependency_values(Some("not json")).is_empty());
        assert!(dependency_values(None).is_empty());
    }
}
