//! Telling the two stores apart by their tables (never by the file's name), and saying exactly
//! what a foreign or partial database lacks.
//!
//! Only the tables and columns `orchestrate` reads or writes are required; anything else (tc's
//! `guard` column, FTS tables, legacy neighbours) may come and go under a reader.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rusqlite::Connection;

use super::{StoreKind, TaskDbError};

/// The legacy store: one `tasks` table with stream fields in `metadata`.
const LEGACY: &[(&str, &[&str])] = &[(
    "tasks",
    &[
        "id",
        "title",
        "description",
        "status",
        "assigned_agent",
        "blocked_reason",
        "notes",
        "metadata",
        "created_at",
        "updated_at",
    ],
)];

/// tc's v3 store, as `TASK-COPILOT.md` documents it.
const V3: &[(&str, &[&str])] = &[
    ("prds", &["id", "status"]),
    ("streams", &["id", "name", "status", "worktree_path"]),
    (
        "tasks",
        &[
            "id",
            "prd_id",
            "stream_id",
            "title",
            "description",
            "status",
            "agent",
            "priority",
            "metadata",
            "created_at",
            "updated_at",
        ],
    ),
    ("task_dependencies", &["task_id", "depends_on"]),
    (
        "agent_log",
        &["agent", "stream_id", "task_id", "action", "details"],
    ),
];

/// Tables only tc's store has: any of them makes a database a (maybe partial) v3 one.
const V3_MARKERS: [&str; 3] = ["streams", "task_dependencies", "agent_log"];

/// The tables of a database and their columns.
pub(crate) struct Tables(BTreeMap<String, BTreeSet<String>>);

impl Tables {
    pub fn read(conn: &Connection) -> rusqlite::Result<Self> {
        let mut stmt = conn.prepare(
            "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
             WHERE m.type = 'table'",
        )?;
        let mut tables: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))?;
        for row in rows {
            let (table, column) = row?;
            tables.entry(table).or_default().insert(column);
        }
        Ok(Self(tables))
    }

    pub fn has_column(&self, table: &str, column: &str) -> bool {
        self.0.get(table).is_some_and(|c| c.contains(column))
    }

    /// Which store this looks like, or what it lacks to be one.
    pub fn classify(&self, path: &Path) -> Result<StoreKind, TaskDbError> {
        let v3ish = V3_MARKERS.iter().any(|t| self.0.contains_key(*t))
            || self.has_column("tasks", "stream_id");
        let (kind, wanted) = if v3ish {
            (StoreKind::Tc, V3)
        } else if self.0.contains_key("tasks") {
            (StoreKind::Legacy, LEGACY)
        } else {
            return Err(TaskDbError::NotTaskDb {
                path: path.to_path_buf(),
                kind: None,
                missing: vec!["table `tasks`".into()],
            });
        };
        let missing = self.missing(wanted);
        if missing.is_empty() {
            Ok(kind)
        } else {
            Err(TaskDbError::NotTaskDb {
                path: path.to_path_buf(),
                kind: Some(kind),
                missing,
            })
        }
    }

    fn missing(&self, wanted: &[(&str, &[&str])]) -> Vec<String> {
        let mut out = Vec::new();
        for (table, columns) in wanted {
            let Some(have) = self.0.get(*table) else {
                out.push(format!("table `{table}`"));
                continue;
            };
            let lacking: Vec<&str> = columns
                .iter()
                .copied()
                .filter(|c| !have.contains(*c))
                .collect();
            if !lacking.is_empty() {
                out.push(format!("`{table}`.{}", lacking.join(", ")));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(sql: &str) -> Result<StoreKind, TaskDbError> {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(sql).unwrap();
        Tables::read(&conn).unwrap().classify(Path::new("x.db"))
    }

    #[test]
    fn both_real_schemas_are_recognised() {
        assert_eq!(
            classify(crate::taskdb::TASK_COPILOT_SCHEMA).unwrap(),
            StoreKind::Legacy
        );
        assert_eq!(classify(crate::taskdb::TC_SCHEMA).unwrap(), StoreKind::Tc);
    }

    #[test]
    fn a_partial_v3_store_names_what_it_lacks() {
        let err = classify(
            "CREATE TABLE streams (id INTEGER PRIMARY KEY, name TEXT);
             CREATE TABLE tasks (id INTEGER PRIMARY KEY, title TEXT, status TEXT, metadata TEXT);",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("looks like a tc (Task Copilot v3) store"),
            "{err}"
        );
        assert!(err.contains("table `prds`"), "{err}");
        assert!(err.contains("`streams`.status, worktree_path"), "{err}");
        assert!(err.contains("`tasks`.prd_id, stream_id"), "{err}");
    }

    #[test]
    fn a_foreign_database_names_both_kinds() {
        let err = classify("CREATE TABLE other (x)").unwrap_err().to_string();
        assert!(err.contains("neither a legacy Task Copilot store"), "{err}");
        assert!(err.contains("nor a tc (Task Copilot v3) store"), "{err}");
        assert!(err.contains("table `tasks`"), "{err}");
    }
}
