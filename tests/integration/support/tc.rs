//! The tc (Task Copilot v3) side of the harness: a `.copilot/tasks.db` built from the documented
//! schema (all six tables, WAL, foreign keys on), plans written the way upstream's
//! `/orchestrate generate` writes them (`tc prd create`, `tc stream create`, `tc task create
//! --metadata …`), and a writer that issues exactly the statements `tc task update` issues.

use std::path::PathBuf;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use super::TestEnv;

use orchestrate::taskdb::TC_SCHEMA;

/// One `agent_log` row: (agent, stream_id, task_id, action, details).
pub type LogRow = (String, Option<i64>, Option<i64>, String, Option<String>);

/// The ids of a plan written into a tc store.
#[derive(Debug, Clone, Default)]
pub struct TcPlan {
    pub prd: i64,
    /// `streams.id` by stream id (`metadata.streamId`).
    pub streams: Vec<(String, i64)>,
    /// Task ids by stream id, in creation order.
    pub tasks: Vec<(String, Vec<i64>)>,
}

impl TcPlan {
    pub fn stream_row(&self, stream: &str) -> i64 {
        self.streams.iter().find(|(s, _)| s == stream).unwrap().1
    }

    pub fn tasks_of(&self, stream: &str) -> &[i64] {
        &self.tasks.iter().find(|(s, _)| s == stream).unwrap().1
    }
}

impl TestEnv {
    /// `<root>/.copilot/tasks.db`, where `tc init` puts it.
    pub fn tc_db_path(&self) -> PathBuf {
        self.root.join(".copilot/tasks.db")
    }

    /// Creates the tc store as `tc init` does: WAL, foreign keys on, the six tables.
    pub fn create_tc_db(&self) {
        let path = self.tc_db_path();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        conn.execute_batch(TC_SCHEMA).unwrap();
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN
                 ('prds', 'streams', 'tasks', 'task_dependencies', 'work_products', 'agent_log')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 6, "the documented schema has six tables");
    }

    /// A connection opened as tc opens its own (WAL, busy timeout 5 s, foreign keys on,
    /// synchronous NORMAL).
    pub fn tc_conn(&self) -> Connection {
        let conn = Connection::open(self.tc_db_path()).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
        conn
    }

    /// `tc prd create --title …` (then the status set by hand).
    pub fn tc_prd(&self, title: &str, status: &str) -> i64 {
        let conn = self.tc_conn();
        conn.execute(
            "INSERT INTO prds (title, status) VALUES (?1, ?2)",
            params![title, status],
        )
        .unwrap();
        conn.last_insert_rowid()
    }

    /// `tc stream create --name … --prd …` (then the status set by hand).
    pub fn tc_stream(&self, name: &str, prd: Option<i64>, status: &str) -> i64 {
        let conn = self.tc_conn();
        conn.execute(
            "INSERT INTO streams (name, prd_id, status) VALUES (?1, ?2, ?3)",
            params![name, prd, status],
        )
        .unwrap();
        conn.last_insert_rowid()
    }

    /// `tc task create --title … --prd … --stream … --metadata …`.
    pub fn tc_task(
        &self,
        prd: Option<i64>,
        stream: Option<i64>,
        title: &str,
        status: &str,
        metadata: Option<Value>,
    ) -> i64 {
        let conn = self.tc_conn();
        conn.execute(
            "INSERT INTO tasks (prd_id, stream_id, title, status, metadata)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![prd, stream, title, status, metadata.map(|m| m.to_string())],
        )
        .unwrap();
        conn.last_insert_rowid()
    }

    /// `tc task deps add TASK --depends-on OTHER`.
    pub fn tc_dep(&self, task: i64, depends_on: i64) {
        self.tc_conn()
            .execute(
                "INSERT INTO task_dependencies (task_id, depends_on) VALUES (?1, ?2)",
                params![task, depends_on],
            )
            .unwrap();
    }

    /// A plan as upstream's `/orchestrate generate` writes it: one active PRD, one `streams`
    /// row per stream named by its `streamName`, `n` pending tasks each with the metadata.
    pub fn tc_plan(&self, streams: &[(&str, &[&str])], n: usize) -> TcPlan {
        let prd = self.tc_prd("Feature", "active");
        let mut plan = TcPlan {
            prd,
            ..TcPlan::default()
        };
        for (stream, deps) in streams {
            let name = format!("{stream} work");
            let row = self.tc_stream(&name, Some(prd), "active");
            let meta = json!({"streamId": stream, "streamName": name,
                              "files": [format!("src/{stream}.rs")], "dependencies": deps});
            let tasks = (0..n)
                .map(|i| {
                    let title = format!("{stream} task {i}");
                    self.tc_task(Some(prd), Some(row), &title, "pending", Some(meta.clone()))
                })
                .collect();
            plan.streams.push((stream.to_string(), row));
            plan.tasks.push((stream.to_string(), tasks));
        }
        plan
    }

    /// The diamond A → {B, C} → Z, two pending tasks a stream.
    pub fn tc_diamond(&self) -> TcPlan {
        self.tc_plan(
            &[
                ("Stream-A", &[]),
                ("Stream-B", &["Stream-A"]),
                ("Stream-C", &["Stream-A"]),
                ("Stream-Z", &["Stream-B", "Stream-C"]),
            ],
            2,
        )
    }

    /// Exactly what `tc task update ID --status STATUS` does: read the row, then in one
    /// transaction the `UPDATE` with `updated_at = datetime('now')` and, for `completed` with
    /// an agent, the `agent_log` row.
    pub fn tc_update(&self, task: i64, status: &str) {
        let mut conn = self.tc_conn();
        let row: Option<(Option<String>, Option<i64>)> = conn
            .query_row(
                "SELECT agent, stream_id FROM tasks WHERE id = ?1",
                [task],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .unwrap();
        let (agent, stream) = row.expect("tc exits 2 for an unknown task");
        let tx = conn.transaction().unwrap();
        tx.execute(
            "UPDATE tasks SET status = ?, updated_at = datetime('now') WHERE id = ?",
            params![status, task],
        )
        .unwrap();
        if let Some(agent) = agent.filter(|a| status == "completed" && !a.is_empty()) {
            tx.execute(
                "INSERT INTO agent_log (agent, stream_id, task_id, action, details) VALUES (?, ?, ?, ?, ?)",
                params![agent, stream, task, "completed", Option::<String>::None],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }

    /// One column of one task, as text.
    pub fn tc_task_field(&self, task: i64, column: &str) -> Option<String> {
        self.tc_conn()
            .query_row(
                &format!("SELECT CAST({column} AS TEXT) FROM tasks WHERE id = ?1"),
                [task],
                |r| r.get(0),
            )
            .unwrap()
    }

    /// `agent_log` rows, oldest first.
    pub fn tc_log(&self) -> Vec<LogRow> {
        let conn = self.tc_conn();
        let mut stmt = conn
            .prepare("SELECT agent, stream_id, task_id, action, details FROM agent_log ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    /// The fake `tc` (tests/fixtures/fake-tc.sh) as a command for the fake worker.
    pub fn fake_tc() -> String {
        format!("{}/tests/fixtures/fake-tc.sh", env!("CARGO_MANIFEST_DIR"))
    }
}
