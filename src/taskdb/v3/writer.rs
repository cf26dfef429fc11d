//! The only writes `orchestrate` makes to a tc store:
//!
//! * `task set`, as `tc task update ID --status X` writes it: the status and
//!   `updated_at = datetime('now')` in one statement, and an `agent_log` row (`completed`) when
//!   the task is completed and has an `agent`. A blocked reason and notes have no column: they
//!   are merged shallowly into `metadata` (`blockedReason`, `notes`), as tc merges metadata,
//!   and logged in `agent_log` (`blocked`, `note`) so that `tc log` and `tc watch` show them.
//! * [`ActivityLog`]: one `agent_log` row per thing orchestration does to a stream.
//!
//! Each write is one short transaction on a connection opened as tc opens its own
//! (`busy_timeout` 5 s, foreign keys on); never `CREATE`, so a missing file stays missing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::{V3Db, parse_id};
use crate::taskdb::schema::Tables;
use crate::taskdb::{StoreKind, TaskChange, TaskDbError, TaskStatus, TaskUpdate};

/// tc's own `PRAGMA busy_timeout`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The `agent_log.agent` of rows about orchestration itself.
pub const ORCHESTRATE_AGENT: &str = "orchestrate";

/// Opens `path` read-write as tc does (no create).
fn open_rw(path: &Path) -> Result<Connection, TaskDbError> {
    if !path.exists() {
        return Err(TaskDbError::Missing {
            path: path.to_path_buf(),
            how: "needed to write to it".into(),
        });
    }
    let open_err = |source| TaskDbError::Open {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(open_err)?;
    // A file replaced by another kind of database must not be written as a tc store.
    match Tables::read(&conn).map_err(open_err)?.classify(path)? {
        StoreKind::Tc => Ok(conn),
        StoreKind::Legacy => Err(TaskDbError::WrongKind {
            path: path.to_path_buf(),
            expected: StoreKind::Tc,
        }),
    }
}

/// The task as `task set` needs it.
struct Current {
    title: String,
    status: String,
    agent: Option<String>,
    stream_id: Option<i64>,
    metadata: Option<String>,
}

/// Applies `update` to task `id` (an integer, `#12` accepted) of the tc store at `path`.
pub fn set_task(path: &Path, id: &str, update: &TaskUpdate) -> Result<TaskChange, TaskDbError> {
    let task_id = parse_id(id)?;
    let write_err = |source| TaskDbError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut conn = open_rw(path)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(write_err)?;
    let current = tx
        .query_row(
            "SELECT title, status, agent, stream_id, metadata FROM tasks WHERE id = ?1",
            [task_id],
            |r| {
                Ok(Current {
                    title: r.get(0)?,
                    status: r.get(1)?,
                    agent: r.get::<_, Option<String>>(2)?.filter(|a| !a.is_empty()),
                    stream_id: r.get(3)?,
                    metadata: r.get::<_, Option<String>>(4)?.filter(|m| !m.is_empty()),
                })
            },
        )
        .optional()
        .map_err(write_err)?
        .ok_or_else(|| TaskDbError::NoSuchTask {
            id: task_id.to_string(),
            path: path.to_path_buf(),
        })?;
    let merge: Vec<(&str, &str)> = [
        ("$.blockedReason", update.blocked_reason.as_deref()),
        ("$.notes", update.notes.as_deref()),
    ]
    .into_iter()
    .filter_map(|(key, value)| Some((key, value?)))
    .collect();
    if !merge.is_empty() {
        check_object(&tx, &current, task_id, path)?;
    }
    update_row(&tx, task_id, update.status, &merge).map_err(write_err)?;
    let log = |agent: &str, action: &str, details: Option<&str>| {
        tx.execute(
            "INSERT INTO agent_log (agent, stream_id, task_id, action, details)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![agent, current.stream_id, task_id, action, details],
        )
    };
    // Exactly tc's rule: a completion is logged under the task's agent, when it has one.
    if update.status == TaskStatus::Completed
        && let Some(agent) = &current.agent
    {
        log(agent, "completed", None).map_err(write_err)?;
    }
    let actor = current.agent.as_deref().unwrap_or(ORCHESTRATE_AGENT);
    if let Some(reason) = &update.blocked_reason {
        log(actor, "blocked", Some(reason)).map_err(write_err)?;
    }
    if let Some(notes) = &update.notes {
        log(actor, "note", Some(notes)).map_err(write_err)?;
    }
    let updated_at: String = tx
        .query_row(
            "SELECT updated_at FROM tasks WHERE id = ?1",
            [task_id],
            |r| r.get(0),
        )
        .map_err(write_err)?;
    tx.commit().map_err(write_err)?;
    Ok(TaskChange {
        id: task_id.to_string(),
        title: current.title,
        from: current.status,
        to: update.status,
        updated_at,
    })
}

/// tc merges into a JSON object; anything else in `metadata` would be lost by a merge.
fn check_object(
    conn: &Connection,
    current: &Current,
    task_id: i64,
    path: &Path,
) -> Result<(), TaskDbError> {
    let Some(text) = &current.metadata else {
        return Ok(());
    };
    let is_object: bool = conn
        .query_row(
            "SELECT json_valid(?1) AND json_type(?1) = 'object'",
            [text],
            |r| r.get(0),
        )
        .map_err(|source| TaskDbError::Write {
            path: path.to_path_buf(),
            source,
        })?;
    if is_object {
        Ok(())
    } else {
        Err(TaskDbError::MetadataNotObject {
            id: task_id.to_string(),
            path: path.to_path_buf(),
        })
    }
}

/// The one `UPDATE`: status, the merged keys, `updated_at = datetime('now')`.
fn update_row(
    conn: &Connection,
    task_id: i64,
    status: TaskStatus,
    merge: &[(&str, &str)],
) -> rusqlite::Result<usize> {
    let status = status.as_str();
    let mut params: Vec<&dyn rusqlite::ToSql> = vec![&task_id, &status];
    let mut set_metadata = String::new();
    if !merge.is_empty() {
        // json_set on the stored text: a shallow merge that keeps every other key and its order.
        set_metadata.push_str(", metadata = json_set(COALESCE(NULLIF(metadata, ''), '{}')");
        for (key, value) in merge {
            params.push(key);
            params.push(value);
            set_metadata.push_str(&format!(", ?{}, ?{}", params.len() - 1, params.len()));
        }
        set_metadata.push(')');
    }
    conn.execute(
        &format!(
            "UPDATE tasks SET status = ?2{set_metadata}, updated_at = datetime('now') WHERE id = ?1"
        ),
        params.as_slice(),
    )
}

/// Appends orchestration activity to tc's `agent_log` (`agent = 'orchestrate'`, the stream's
/// numeric `stream_id`), one autocommitted `INSERT` per entry.
pub struct ActivityLog {
    path: PathBuf,
    conn: Connection,
    reader: V3Db,
    /// Stream id → `streams.id` (`None`: a stream with no row), re-read when an unknown
    /// stream shows up.
    row_ids: HashMap<String, Option<i64>>,
}

impl ActivityLog {
    pub fn open(path: &Path) -> Result<Self, TaskDbError> {
        Ok(Self {
            path: path.to_path_buf(),
            conn: open_rw(path)?,
            reader: V3Db::new(path),
            row_ids: HashMap::new(),
        })
    }

    /// Logs `action` (with `details`) for `stream`.
    pub fn record(&mut self, stream: &str, action: &str, details: &str) -> Result<(), TaskDbError> {
        if !self.row_ids.contains_key(stream) {
            let rows = self.reader.stream_row_ids(&self.conn)?;
            let row = rows.get(stream).copied();
            self.row_ids = rows.into_iter().map(|(s, id)| (s, Some(id))).collect();
            self.row_ids.insert(stream.to_string(), row);
        }
        self.conn
            .execute(
                "INSERT INTO agent_log (agent, stream_id, action, details) VALUES (?1, ?2, ?3, ?4)",
                params![
                    ORCHESTRATE_AGENT,
                    self.row_ids.get(stream).copied().flatten(),
                    action,
                    format!("{stream}: {details}")
                ],
            )
            .map(drop)
            .map_err(|source| TaskDbError::Write {
                path: self.path.clone(),
                source,
            })
    }
}
