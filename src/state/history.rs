//! Run history: one `runs` row per `start` that ran the scheduler, and its `run_events`, the
//! run's timeline in order. The bodies are the timeline's typed entries as JSON
//! (`crate::timeline::Entry`); this file stores and returns them as text and knows nothing of
//! their meaning, so an entry kind written by a newer version is kept, never dropped.
//!
//! Invariants: `seq` orders a run's events (given by the single writer of the run); a run
//! whose `start` died keeps `ended_at` NULL, and readers treat it as unfinished.

use rusqlite::{OptionalExtension, params};

use super::{StateError, StateStore};

/// One run, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    pub id: i64,
    /// RFC 3339 UTC.
    pub started_at: String,
    pub ended_at: Option<String>,
    pub pid: i32,
    pub worktrees: bool,
    /// The streams named on the command line; `None` for every stream.
    pub selection: Option<Vec<String>>,
    /// `complete`, `incomplete` or `interrupted`; `None` while running (or if `start` died).
    pub outcome: Option<String>,
    pub exit_code: Option<i32>,
}

/// One recorded event of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEvent {
    pub seq: i64,
    /// RFC 3339 UTC.
    pub at: String,
    pub stream: Option<String>,
    pub kind: String,
    /// The entry as JSON.
    pub body: String,
}

const RUN_COLUMNS: &str = "id, started_at, ended_at, pid, worktrees, selection, outcome, exit_code";

fn run_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    let selection: Option<String> = r.get(5)?;
    Ok(RunRow {
        id: r.get(0)?,
        started_at: r.get(1)?,
        ended_at: r.get(2)?,
        pid: r.get(3)?,
        worktrees: r.get::<_, i64>(4)? != 0,
        // A selection this version cannot read is shown as "every stream", never an error.
        selection: selection.and_then(|s| serde_json::from_str(&s).ok()),
        outcome: r.get(6)?,
        exit_code: r.get(7)?,
    })
}

impl StateStore {
    /// Records the beginning of a run; returns its id.
    pub fn begin_run(
        &self,
        started_at: &str,
        pid: i32,
        worktrees: bool,
        selection: Option<&[String]>,
    ) -> Result<i64, StateError> {
        let selection = selection.map(|s| serde_json::to_string(s).expect("strings serialise"));
        self.conn
            .execute(
                "INSERT INTO runs (started_at, pid, worktrees, selection) VALUES (?1, ?2, ?3, ?4)",
                params![started_at, pid, worktrees, selection],
            )
            .map_err(self.w())?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Appends one event to run `run`'s timeline.
    pub fn append_run_event(&self, run: i64, event: &RunEvent) -> Result<(), StateError> {
        self.conn
            .execute(
                "INSERT INTO run_events (run, seq, at, stream, kind, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    run,
                    event.seq,
                    event.at,
                    event.stream,
                    event.kind,
                    event.body
                ],
            )
            .map_err(self.w())?;
        Ok(())
    }

    /// Records how run `run` ended (once; a second end changes nothing).
    pub fn end_run(
        &self,
        run: i64,
        ended_at: &str,
        outcome: &str,
        exit_code: i32,
    ) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE runs SET ended_at = ?2, outcome = ?3, exit_code = ?4
                 WHERE id = ?1 AND ended_at IS NULL",
                params![run, ended_at, outcome, exit_code],
            )
            .map_err(self.w())?;
        Ok(())
    }

    /// Every recorded run, oldest first.
    pub fn runs(&self) -> Result<Vec<RunRow>, StateError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id"))
            .map_err(self.q())?;
        stmt.query_map([], run_from_row)
            .map_err(self.q())?
            .collect::<Result<_, _>>()
            .map_err(self.q())
    }

    /// Run `id`, or the latest run when `id` is `None`.
    pub fn run_row(&self, id: Option<i64>) -> Result<Option<RunRow>, StateError> {
        let sql = match id {
            Some(_) => format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
            None => {
                format!("SELECT {RUN_COLUMNS} FROM runs WHERE ?1 IS NULL ORDER BY id DESC LIMIT 1")
            }
        };
        self.conn
            .query_row(&sql, [id], run_from_row)
            .optional()
            .map_err(self.q())
    }

    /// Run `run`'s events, in order.
    pub fn run_events(&self, run: i64) -> Result<Vec<RunEvent>, StateError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT seq, at, stream, kind, body FROM run_events WHERE run = ?1 ORDER BY seq",
            )
            .map_err(self.q())?;
        stmt.query_map([run], |r| {
            Ok(RunEvent {
                seq: r.get(0)?,
                at: r.get(1)?,
                stream: r.get(2)?,
                kind: r.get(3)?,
                body: r.get(4)?,
            })
        })
        .map_err(self.q())?
        .collect::<Result<_, _>>()
        .map_err(self.q())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_their_events_are_kept_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let store = StateStore::open(&tmp.path().join("state.db")).unwrap();
        assert_eq!(store.run_row(None).unwrap(), None);
        let first = store.begin_run("t0", 10, false, None).unwrap();
        let sel = vec!["Stream-A".to_string()];
        let second = store.begin_run("t1", 11, true, Some(&sel)).unwrap();
        for seq in [0, 1] {
            let event = RunEvent {
                seq,
                at: format!("t1.{seq}"),
                stream: Some("Stream-A".into()),
                kind: "future_kind".into(),
                body: format!("{{\"event\":\"future_kind\",\"n\":{seq}}}"),
            };
            store.append_run_event(second, &event).unwrap();
        }
        store.end_run(second, "t2", "complete", 0).unwrap();
        store.end_run(second, "t3", "interrupted", 130).unwrap();
        let last = store.run_row(None).unwrap().unwrap();
        assert_eq!(last.id, second);
        assert_eq!(last.selection, Some(sel));
        assert_eq!(
            (last.ended_at.as_deref(), last.exit_code),
            (Some("t2"), Some(0)),
            "the first end wins"
        );
        assert_eq!(store.run_row(Some(first)).unwrap().unwrap().outcome, None);
        let events = store.run_events(second).unwrap();
        assert_eq!(events.len(), 2);
        assert!(events[1].body.contains("\"n\":1"));
        assert_eq!(store.runs().unwrap().len(), 2);
    }

    #[test]
    fn a_version_1_store_gains_the_history_tables() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state.db");
        {
            let store = StateStore::open(&path).unwrap();
            store
                .conn
                .execute_batch("DROP TABLE run_events; DROP TABLE runs; PRAGMA user_version = 1;")
                .unwrap();
        }
        let store = StateStore::open(&path).unwrap();
        assert!(store.begin_run("t0", 1, false, None).is_ok());
        drop(store);
        // Opening again is a no-op.
        assert_eq!(StateStore::open(&path).unwrap().runs().unwrap().len(), 1);
    }
}
