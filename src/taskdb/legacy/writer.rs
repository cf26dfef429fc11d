//! The one write `orchestrate` makes to a legacy task database: `task set`, done exactly as Task
//! Copilot's server does it (status, `updated_at` in ISO-8601 UTC with milliseconds, notes, a
//! `blocked_reason` with `blocked`, metadata untouched, archived tasks refused), in one short
//! `BEGIN IMMEDIATE` transaction with a busy timeout so it is safe while agents write too.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::taskdb::{TaskChange, TaskDbError, TaskUpdate};

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Applies `update` to task `id` in the database at `path` (which must exist).
pub fn set_task(path: &Path, id: &str, update: &TaskUpdate) -> Result<TaskChange, TaskDbError> {
    let write_err = |source| TaskDbError::Write {
        path: path.to_path_buf(),
        source,
    };
    if !path.exists() {
        return Err(TaskDbError::Missing {
            path: path.to_path_buf(),
            how: "needed to update a task".into(),
        });
    }
    // READ_WRITE without CREATE: never make an empty database where the real one is missing.
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| TaskDbError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(write_err)?;
    let has_archived: bool = conn
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info('tasks') WHERE name = 'archived'",
            [],
            |r| r.get(0),
        )
        .map_err(write_err)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(write_err)?;
    let archived = if has_archived {
        "COALESCE(archived, 0)"
    } else {
        "0"
    };
    let current: Option<(String, String, i64)> = tx
        .query_row(
            &format!("SELECT title, status, {archived} FROM tasks WHERE id = ?1"),
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(write_err)?;
    let Some((title, from, archived)) = current else {
        return Err(TaskDbError::NoSuchTask {
            id: id.to_string(),
            path: path.to_path_buf(),
        });
    };
    if archived != 0 {
        return Err(TaskDbError::Archived { id: id.to_string() });
    }
    let updated_at: String = tx
        .query_row("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", [], |r| {
            r.get(0)
        })
        .map_err(write_err)?;
    tx.execute(
        "UPDATE tasks SET status = ?2, updated_at = ?3,
                notes = COALESCE(?4, notes),
                blocked_reason = COALESCE(?5, blocked_reason)
         WHERE id = ?1",
        params![
            id,
            update.status.as_str(),
            updated_at,
            update.notes,
            update.blocked_reason
        ],
    )
    .map_err(write_err)?;
    tx.commit().map_err(write_err)?;
    Ok(TaskChange {
        id: id.to_string(),
        title,
        from,
        to: update.status,
        updated_at,
    })
}
