//! The state store: one SQLite file (WAL) holding every worker ever launched and the streams'
//! recorded outcomes. Written by `start`, `stop` and each worker's supervisor, concurrently.
//!
//! Invariants: at most one unfinished, live worker row per stream — [`StateStore::claim`] checks
//! and inserts inside one `BEGIN IMMEDIATE` transaction, so two `start`s cannot both launch; a
//! row's `ended_at` is written once (the first outcome wins, `stop` may relabel it `stopped`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::time::now_rfc3339;
use super::{StateError, StreamOutcome};
use crate::worker::proc::Identity;
use crate::worker::sandbox::Applied;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS workers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    -- the `start` process that launched it: guards the moment between claim and spawn
    claimer_pid INTEGER, claimer_ticks INTEGER,
    -- the supervisor: process-group leader and the identity `stop` checks before signalling
    pid INTEGER, pgid INTEGER, start_ticks INTEGER, boot_id TEXT,
    worker_pid INTEGER,
    log_path TEXT NOT NULL,
    command TEXT,
    dir TEXT, branch TEXT, base TEXT,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    exit_code INTEGER, signal INTEGER,
    outcome TEXT,   -- exited | stopped | lost
    error TEXT,
    -- from the agent's stream-json output, when it prints one
    session_id TEXT, cost_usd REAL, turns INTEGER,
    -- what confined it (`sandbox::Applied::to_db`); added by `migrate` to older stores
    sandbox TEXT
);
CREATE INDEX IF NOT EXISTS workers_stream ON workers(stream, id);
CREATE TABLE IF NOT EXISTS streams (
    stream TEXT PRIMARY KEY,
    outcome TEXT NOT NULL,   -- failed | stopped
    reason TEXT,
    updated_at TEXT NOT NULL
);
";

/// One worker row.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerRecord {
    pub id: i64,
    pub stream: String,
    pub attempt: u32,
    pub claimer: Option<Identity>,
    /// The supervisor (group leader), once spawned.
    pub identity: Option<Identity>,
    pub worker_pid: Option<i32>,
    pub log_path: PathBuf,
    pub command: Option<String>,
    pub dir: Option<PathBuf>,
    pub branch: Option<String>,
    pub base: Option<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub outcome: Option<String>,
    pub error: Option<String>,
    pub session_id: Option<String>,
    pub cost_usd: Option<f64>,
    pub turns: Option<u32>,
    pub sandbox: Option<Applied>,
}

impl WorkerRecord {
    /// Unfinished and provably alive: the supervisor is the recorded process, or (in the instant
    /// between claim and spawn) the `start` that claimed it is.
    pub fn is_live(&self) -> bool {
        if self.ended_at.is_some() {
            return false;
        }
        match (&self.identity, &self.claimer) {
            (Some(id), _) => id.is_alive(),
            (None, Some(claimer)) => claimer.is_alive(),
            (None, None) => false,
        }
    }

    /// The group to signal: the supervisor's pid (it is the group leader).
    pub fn pgid(&self) -> Option<i32> {
        self.identity.as_ref().map(|i| i.pid)
    }
}

/// What a new worker row holds before it is spawned.
#[derive(Debug, Clone)]
pub struct NewWorker<'a> {
    pub stream: &'a str,
    pub attempt: u32,
    pub log_path: &'a Path,
    pub command: &'a str,
    pub dir: &'a Path,
    pub branch: Option<&'a str>,
    pub base: Option<&'a str>,
    pub sandbox: Applied,
}

/// The answer to a launch claim.
#[derive(Debug)]
pub enum Claim {
    /// The row to launch under.
    Granted(i64),
    /// Another live worker already runs the stream: adopt it instead.
    Taken(Box<WorkerRecord>),
}

pub struct StateStore {
    conn: Connection,
    path: PathBuf,
}

const COLUMNS: &str = "id, stream, attempt, claimer_pid, claimer_ticks, pid, start_ticks, boot_id,
    worker_pid, log_path, command, dir, branch, base, started_at, ended_at, exit_code, signal,
    outcome, error, session_id, cost_usd, turns, sandbox";

fn record_from_row(r: &Row<'_>) -> rusqlite::Result<WorkerRecord> {
    let boot: Option<String> = r.get(7)?;
    let claimer = match (r.get::<_, Option<i32>>(3)?, r.get::<_, Option<i64>>(4)?) {
        (Some(pid), Some(ticks)) => Some(Identity {
            pid,
            start_ticks: ticks as u64,
            boot_id: boot.clone().unwrap_or_default(),
        }),
        _ => None,
    };
    let identity = match (r.get::<_, Option<i32>>(5)?, r.get::<_, Option<i64>>(6)?) {
        (Some(pid), Some(ticks)) => Some(Identity {
            pid,
            start_ticks: ticks as u64,
            boot_id: boot.unwrap_or_default(),
        }),
        _ => None,
    };
    Ok(WorkerRecord {
        id: r.get(0)?,
        stream: r.get(1)?,
        attempt: r.get(2)?,
        claimer,
        identity,
        worker_pid: r.get(8)?,
        log_path: PathBuf::from(r.get::<_, String>(9)?),
        command: r.get(10)?,
        dir: r.get::<_, Option<String>>(11)?.map(PathBuf::from),
        branch: r.get(12)?,
        base: r.get(13)?,
        started_at: r.get(14)?,
        ended_at: r.get(15)?,
        exit_code: r.get(16)?,
        signal: r.get(17)?,
        outcome: r.get(18)?,
        error: r.get(19)?,
        session_id: r.get(20)?,
        cost_usd: r.get(21)?,
        turns: r.get(22)?,
        sandbox: r
            .get::<_, Option<String>>(23)?
            .as_deref()
            .and_then(Applied::from_db),
    })
}

/// Adds the columns newer than a store's file. Idempotent, and safe when two processes open an
/// old store at once (the loser of the race finds the column there).
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let has = |column: &str| {
        conn.prepare("SELECT 1 FROM pragma_table_info('workers') WHERE name = ?1")?
            .exists([column])
    };
    if !has("sandbox")? {
        match conn.execute("ALTER TABLE workers ADD COLUMN sandbox TEXT", []) {
            Err(_) if has("sandbox")? => {}
            other => {
                other?;
            }
        }
    }
    Ok(())
}

/// Runs `f` again while SQLite says the database is busy or locked, for up to 10 s.
fn retry_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match f() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

impl StateStore {
    /// Opens (creating folder, file and tables if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let err = |source| StateError::Open {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StateError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        // Switching a new file to WAL takes an exclusive lock without calling the busy handler,
        // so two processes creating the store at once must retry by hand.
        retry_busy(|| conn.pragma_update(None, "journal_mode", "WAL")).map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        retry_busy(|| conn.execute_batch(SCHEMA)).map_err(err)?;
        retry_busy(|| migrate(&conn)).map_err(err)?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Opens the store only if it exists (a project where `start` never ran has none).
    pub fn open_existing(path: &Path) -> Result<Option<Self>, StateError> {
        if path.exists() {
            Self::open(path).map(Some)
        } else {
            Ok(None)
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn q(&self) -> impl Fn(rusqlite::Error) -> StateError + '_ {
        |source| StateError::Read {
            path: self.path.clone(),
            source,
        }
    }

    /// Claims the right to launch a worker for `new.stream`: refuses if a live worker exists,
    /// and marks unfinished rows whose process is gone as `lost`, all in one write transaction.
    pub fn claim(&mut self, new: &NewWorker<'_>, claimer: &Identity) -> Result<Claim, StateError> {
        let path = self.path.clone();
        let q = |source| StateError::Read {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(q)?;
        let open: Vec<WorkerRecord> = {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM workers WHERE stream = ?1 AND ended_at IS NULL"
                ))
                .map_err(q)?;
            stmt.query_map([new.stream], record_from_row)
                .map_err(q)?
                .collect::<Result<_, _>>()
                .map_err(q)?
        };
        for rec in open {
            if rec.is_live() {
                return Ok(Claim::Taken(Box::new(rec)));
            }
            tx.execute(
                "UPDATE workers SET ended_at = ?2, outcome = 'lost' WHERE id = ?1 AND ended_at IS NULL",
                params![rec.id, now_rfc3339()],
            )
            .map_err(q)?;
        }
        tx.execute(
            "INSERT INTO workers (stream, attempt, claimer_pid, claimer_ticks, boot_id, log_path,
                                  command, dir, branch, base, started_at, sandbox)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                new.stream,
                new.attempt,
                claimer.pid,
                claimer.start_ticks as i64,
                claimer.boot_id,
                new.log_path.to_string_lossy(),
                new.command,
                new.dir.to_string_lossy(),
                new.branch,
                new.base,
                now_rfc3339(),
                new.sandbox.to_db()
            ],
        )
        .map_err(q)?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(q)?;
        Ok(Claim::Granted(id))
    }

    /// Records the spawned supervisor's identity.
    pub fn set_spawned(&self, id: i64, who: &Identity) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE workers SET pid = ?2, pgid = ?2, start_ticks = ?3, boot_id = ?4 WHERE id = ?1",
                params![id, who.pid, who.start_ticks as i64, who.boot_id],
            )
            .map_err(self.q())?;
        Ok(())
    }

    /// The supervisor's own [`StateStore::set_spawned`], done only while the row is unfinished;
    /// false if it was already ended (declared lost by a later `start`): the launch must be
    /// given up. This update and `claim`'s check are both write transactions, so exactly one
    /// of "the supervisor is recorded" and "the row is lost" happens first.
    pub fn confirm_spawned(&self, id: i64, who: &Identity) -> Result<bool, StateError> {
        let changed = self
            .conn
            .execute(
                "UPDATE workers SET pid = ?2, pgid = ?2, start_ticks = ?3, boot_id = ?4
                 WHERE id = ?1 AND ended_at IS NULL",
                params![id, who.pid, who.start_ticks as i64, who.boot_id],
            )
            .map_err(self.q())?;
        Ok(changed == 1)
    }

    /// Records the real worker's pid (the supervisor's child), for display.
    pub fn set_worker_pid(&self, id: i64, pid: i32) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE workers SET worker_pid = ?2 WHERE id = ?1",
                params![id, pid],
            )
            .map_err(self.q())?;
        Ok(())
    }

    /// Records how a worker ended (first outcome wins).
    pub fn record_exit(
        &self,
        id: i64,
        exit_code: Option<i32>,
        signal: Option<i32>,
        error: Option<&str>,
    ) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE workers SET ended_at = ?2, exit_code = ?3, signal = ?4, error = ?5,
                        outcome = 'exited'
                 WHERE id = ?1 AND ended_at IS NULL",
                params![id, now_rfc3339(), exit_code, signal, error],
            )
            .map_err(self.q())?;
        Ok(())
    }

    /// Records the agent's session id, cost and turns.
    pub fn set_session(
        &self,
        id: i64,
        info: &crate::worker::render::SessionInfo,
    ) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE workers SET session_id = ?2, cost_usd = ?3, turns = ?4 WHERE id = ?1",
                params![
                    id,
                    info.session_id,
                    info.cost_usd,
                    info.turns.map(|t| t as i64)
                ],
            )
            .map_err(self.q())?;
        Ok(())
    }

    /// Marks a worker ended by `stop` (keeping an exit status the supervisor recorded).
    pub fn mark_stopped(&self, id: i64) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE workers SET ended_at = COALESCE(ended_at, ?2), outcome = 'stopped' WHERE id = ?1",
                params![id, now_rfc3339()],
            )
            .map_err(self.q())?;
        Ok(())
    }

    /// Marks an unfinished row whose process is gone: it is never signalled again.
    pub fn mark_lost(&self, id: i64) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE workers SET ended_at = ?2, outcome = 'lost' WHERE id = ?1 AND ended_at IS NULL",
                params![id, now_rfc3339()],
            )
            .map_err(self.q())?;
        Ok(())
    }

    /// Records the error that kept a claimed worker from spawning at all.
    pub fn record_spawn_failure(&self, id: i64, error: &str) -> Result<(), StateError> {
        self.record_exit(id, None, None, Some(error))
    }

    pub fn worker(&self, id: i64) -> Result<Option<WorkerRecord>, StateError> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM workers WHERE id = ?1"),
                [id],
                record_from_row,
            )
            .optional()
            .map_err(self.q())
    }

    /// The latest worker row of every stream.
    pub fn latest_workers(&self) -> Result<Vec<WorkerRecord>, StateError> {
        self.select(
            "WHERE id IN (SELECT MAX(id) FROM workers GROUP BY stream) ORDER BY stream",
            [],
        )
    }

    /// Every unfinished row (live or not yet known to be dead).
    pub fn open_workers(&self) -> Result<Vec<WorkerRecord>, StateError> {
        self.select("WHERE ended_at IS NULL ORDER BY id", [])
    }

    fn select<P: rusqlite::Params>(
        &self,
        tail: &str,
        params: P,
    ) -> Result<Vec<WorkerRecord>, StateError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM workers {tail}"))
            .map_err(self.q())?;
        stmt.query_map(params, record_from_row)
            .map_err(self.q())?
            .collect::<Result<_, _>>()
            .map_err(self.q())
    }

    /// Sets (or with `None` clears) a stream's recorded outcome.
    pub fn set_outcome(
        &self,
        stream: &str,
        outcome: Option<&StreamOutcome>,
    ) -> Result<(), StateError> {
        match outcome {
            None => self
                .conn
                .execute("DELETE FROM streams WHERE stream = ?1", [stream]),
            Some(o) => {
                let (kind, reason) = match o {
                    StreamOutcome::Failed { reason } => ("failed", Some(reason.as_str())),
                    StreamOutcome::Stopped => ("stopped", None),
                };
                self.conn.execute(
                    "INSERT INTO streams (stream, outcome, reason, updated_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(stream) DO UPDATE SET outcome = ?2, reason = ?3, updated_at = ?4",
                    params![stream, kind, reason, now_rfc3339()],
                )
            }
        }
        .map_err(self.q())?;
        Ok(())
    }

    /// Clears every `failed` outcome (a new run tries those streams again).
    pub fn clear_failed(&self) -> Result<(), StateError> {
        self.conn
            .execute("DELETE FROM streams WHERE outcome = 'failed'", [])
            .map_err(self.q())?;
        Ok(())
    }

    /// Every stream's recorded outcome.
    pub fn outcomes(&self) -> Result<HashMap<String, StreamOutcome>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT stream, outcome, reason FROM streams")
            .map_err(self.q())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .map_err(self.q())?;
        let mut out = HashMap::new();
        for row in rows {
            let (stream, kind, reason) = row.map_err(self.q())?;
            let outcome = match kind.as_str() {
                "stopped" => StreamOutcome::Stopped,
                _ => StreamOutcome::Failed {
                    reason: reason.unwrap_or_default(),
                },
            };
            out.insert(stream, outcome);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_worker<'a>(stream: &'a str, log: &'a Path) -> NewWorker<'a> {
        NewWorker {
            stream,
            attempt: 1,
            log_path: log,
            command: "fake",
            dir: Path::new("/tmp"),
            branch: None,
            base: None,
            sandbox: Applied::Landlock { abi: 7 },
        }
    }

    #[test]
    fn a_live_claim_blocks_a_second_and_a_dead_one_is_marked_lost() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = StateStore::open(&tmp.path().join("s/state.db")).unwrap();
        let me = Identity::current().unwrap();
        let log = tmp.path().join("a.log");
        let Claim::Granted(first) = store.claim(&new_worker("A", &log), &me).unwrap() else {
            panic!("first claim must be granted");
        };
        // We (the claimer) are alive, so a second claim is refused.
        assert!(matches!(
            store.claim(&new_worker("A", &log), &me).unwrap(),
            Claim::Taken(r) if r.id == first
        ));
        // A supervisor identity that is not alive: the row is lost and a new claim is granted.
        let ghost = Identity {
            start_ticks: me.start_ticks + 7,
            ..me.clone()
        };
        store.set_spawned(first, &ghost).unwrap();
        let Claim::Granted(second) = store.claim(&new_worker("A", &log), &me).unwrap() else {
            panic!("claim after a dead worker must be granted");
        };
        assert_ne!(first, second);
        assert_eq!(
            store.worker(first).unwrap().unwrap().outcome.as_deref(),
            Some("lost")
        );
    }

    #[test]
    fn a_supervisor_whose_row_was_declared_lost_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = StateStore::open(&tmp.path().join("state.db")).unwrap();
        let me = Identity::current().unwrap();
        let log = tmp.path().join("a.log");
        // Claimed by a `start` that died before anything recorded the supervisor.
        let dead = Identity {
            start_ticks: me.start_ticks + 7,
            ..me.clone()
        };
        let Claim::Granted(first) = store.claim(&new_worker("A", &log), &dead).unwrap() else {
            panic!("first claim must be granted");
        };
        let Claim::Granted(second) = store.claim(&new_worker("A", &log), &me).unwrap() else {
            panic!("a dead claimer's row is lost");
        };
        // The first launch's supervisor comes up late: it must not run.
        assert!(!store.confirm_spawned(first, &me).unwrap());
        assert!(store.worker(first).unwrap().unwrap().identity.is_none());
        assert!(store.confirm_spawned(second, &me).unwrap());
    }

    #[test]
    fn an_older_store_gains_the_sandbox_column_once() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state.db");
        {
            // The schema as it was before the column.
            let old = SCHEMA.replace(
                ",\n    -- what confined it (`sandbox::Applied::to_db`); added by `migrate` to older stores\n    sandbox TEXT",
                "",
            );
            assert_ne!(old, SCHEMA);
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&old).unwrap();
            conn.execute(
                "INSERT INTO workers (stream, attempt, log_path, started_at) VALUES ('A', 1, '/l', 'now')",
                [],
            )
            .unwrap();
        }
        let mut store = StateStore::open(&path).unwrap();
        // Opening again (another process) finds it there.
        drop(StateStore::open(&path).unwrap());
        let old = store.latest_workers().unwrap();
        assert_eq!(old[0].sandbox, None);
        let me = Identity::current().unwrap();
        let Claim::Granted(id) = store.claim(&new_worker("B", &path), &me).unwrap() else {
            panic!("granted");
        };
        assert_eq!(
            store.worker(id).unwrap().unwrap().sandbox,
            Some(Applied::Landlock { abi: 7 })
        );
    }

    #[test]
    fn outcomes_round_trip_and_failed_ones_clear() {
        let tmp = tempfile::tempdir().unwrap();
        let store = StateStore::open(&tmp.path().join("state.db")).unwrap();
        store
            .set_outcome("A", Some(&StreamOutcome::Failed { reason: "x".into() }))
            .unwrap();
        store
            .set_outcome("B", Some(&StreamOutcome::Stopped))
            .unwrap();
        assert_eq!(store.outcomes().unwrap().len(), 2);
        store.clear_failed().unwrap();
        let left = store.outcomes().unwrap();
        assert_eq!(left.get("B"), Some(&StreamOutcome::Stopped));
        assert!(!left.contains_key("A"));
    }
}
