//! The state store: one SQLite file (WAL) holding every worker ever launched, every stream's
//! durable verdict, the stream worktrees and the run's recorded base. Written by `start`,
//! `stop` and each worker's supervisor, concurrently; the only place that knows its schema.
//!
//! Invariants: at most one unfinished, live worker row per stream — [`StateStore::claim`] checks
//! and inserts inside one `BEGIN IMMEDIATE` transaction, so two `start`s cannot both launch; a
//! row's `ended_at` is written once (the first outcome wins, `stop` may relabel it `stopped`);
//! a supervisor writes only the row that names its own pid, so a row id reused after the store
//! was rebuilt is never written by a stranger. A file that is not a database, or is corrupt, is
//! set aside (never deleted) and rebuilt from the workers found alive in `/proc` (live
//! supervisors, and worker trees orphaned by a SIGKILLed supervisor).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::SandboxApplied as Applied;
use super::StateError;
use super::time::now_rfc3339;
use crate::proc::Identity;

/// The tables of a store at [`SCHEMA_VERSION`]. Columns added later are listed in
/// [`ADDED_COLUMNS`] too, so an older file gains them.
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
    -- where this attempt's part of the log begins (failure reasons quote the last attempt only)
    log_offset INTEGER,
    command TEXT,
    dir TEXT, branch TEXT, base TEXT,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    exit_code INTEGER, signal INTEGER,
    outcome TEXT,   -- exited | stopped | lost
    error TEXT,
    -- from the agent's stream-json output, when it prints one
    session_id TEXT, cost_usd REAL, turns INTEGER,
    -- when a `start` looked at what the ended worker left (auto-commit, dirty check)
    finalized_at TEXT,
    -- `worker`, or `verify` for a run of the stream's verify command
    kind TEXT NOT NULL DEFAULT 'worker',
    -- from the agent's stream-json output: its version (how to add costs up) and tokens
    agent_version TEXT, input_tokens INTEGER, output_tokens INTEGER,
    -- what confined it (`SandboxApplied::to_db`)
    sandbox TEXT,
    -- the `start` processing what the ended worker left (its marker): exactly one does it
    finalizer TEXT
);
CREATE INDEX IF NOT EXISTS workers_stream ON workers(stream, id);
-- one durable verdict per stream (model::Verdict as JSON)
CREATE TABLE IF NOT EXISTS verdicts (
    stream TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- stream -> slug, branch, worktree folder and the commit its branch was created on
CREATE TABLE IF NOT EXISTS worktrees (
    stream TEXT PRIMARY KEY,
    slug TEXT NOT NULL,
    branch TEXT NOT NULL,
    worktree TEXT NOT NULL,
    base TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- `clean` removing a stream's worktree or branch: while its process lives, `claim` waits
CREATE TABLE IF NOT EXISTS removals (
    stream TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    start_ticks INTEGER NOT NULL,
    boot_id TEXT NOT NULL,
    started_at TEXT NOT NULL
);
-- the run's merge-back target and the commit every stream without dependencies starts from
CREATE TABLE IF NOT EXISTS run (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    target_branch TEXT,
    base_commit TEXT,
    -- 1 when the run uses a worktree per stream (`start --worktrees`)
    worktrees INTEGER NOT NULL DEFAULT 0,
    -- the verify command every stream's work must pass (a stream may set its own)
    verify TEXT,
    -- `--run-budget-usd`, and since when spending counts against it
    budget_usd REAL, budget_since TEXT,
    recorded_at TEXT NOT NULL,
    -- 1 with `--strict-files`: streams claiming the same files run one after the other
    strict_files INTEGER NOT NULL DEFAULT 0
);
-- run history: one row per `start` that ran the scheduler (not the `run` row above, which is
-- the merge-back target every `start` continues)
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    pid INTEGER NOT NULL,
    worktrees INTEGER NOT NULL DEFAULT 0,
    -- JSON array of the streams named on the command line, NULL for every stream
    selection TEXT,
    outcome TEXT,      -- complete | incomplete | interrupted; NULL while it runs or if it died
    exit_code INTEGER
);
-- what happened during a run, in order: one typed entry (timeline::Entry as JSON) each
CREATE TABLE IF NOT EXISTS run_events (
    run INTEGER NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL,
    at TEXT NOT NULL,
    stream TEXT,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (run, seq)
);
";

/// `PRAGMA user_version` of a store made by this version (2: run history, `runs` and
/// `run_events`; 3: `removals`; each created by [`SCHEMA`]'s `IF NOT EXISTS` when an older
/// store is opened).
const SCHEMA_VERSION: i64 = 3;

/// How long a launch waits for a `clean` that is removing the same stream's worktree.
const REMOVAL_WAIT: Duration = Duration::from_secs(120);

/// Columns added after a table was first released: (table, column, declaration). Added with
/// `ALTER TABLE` when missing, so a file written by an older version keeps working.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("workers", "log_offset", "INTEGER"),
    ("workers", "finalized_at", "TEXT"),
    ("workers", "kind", "TEXT NOT NULL DEFAULT 'worker'"),
    ("workers", "agent_version", "TEXT"),
    ("workers", "input_tokens", "INTEGER"),
    ("workers", "output_tokens", "INTEGER"),
    ("run", "verify", "TEXT"),
    ("run", "budget_usd", "REAL"),
    ("run", "budget_since", "TEXT"),
    ("workers", "sandbox", "TEXT"),
    ("workers", "finalizer", "TEXT"),
    ("run", "strict_files", "INTEGER NOT NULL DEFAULT 0"),
];

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
    /// Where this attempt's lines begin in the log.
    pub log_offset: u64,
    /// When a `start` processed what the ended worker left; `None` while that is pending.
    pub finalized_at: Option<String>,
    pub kind: RowKind,
    /// The agent's version (from its output), which says how its costs add up.
    pub agent_version: Option<String>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// What confined it; `None` until it is launched (and for rows older than the sandbox).
    pub sandbox: Option<Applied>,
}

/// What a `workers` row runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RowKind {
    /// The stream's agent.
    #[default]
    Worker,
    /// The stream's verify command, after its worker finished its tasks.
    Verify,
}

impl RowKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Worker => "worker",
            Self::Verify => "verify",
        }
    }
}

/// What an agent reported about one run, from its structured output.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentReport {
    pub session_id: Option<String>,
    pub cost_usd: Option<f64>,
    pub turns: Option<u32>,
    pub version: Option<String>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

impl WorkerRecord {
    /// Unfinished and provably alive: the supervisor is the recorded process, or its worker
    /// tree lives on without it (it was SIGKILLed), or (in the instant between claim and spawn)
    /// the `start` that claimed it is.
    pub fn is_live(&self) -> bool {
        if self.ended_at.is_some() {
            return false;
        }
        match (&self.identity, &self.claimer) {
            (Some(id), _) => id.tree_alive(),
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
    /// The log's length when this attempt begins.
    pub log_offset: u64,
    pub kind: RowKind,
    pub command: &'a str,
    pub dir: &'a Path,
    pub branch: Option<&'a str>,
    pub base: Option<&'a str>,
}

/// The answer to [`StateStore::claim_finalize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finalize {
    /// Ours to do.
    Mine,
    /// Another live `start` is doing it now.
    Busy,
    /// Already done.
    Done,
}

/// The answer to a launch claim.
#[derive(Debug)]
pub enum Claim {
    /// The row to launch under.
    Granted(i64),
    /// Another live worker already runs the stream: adopt it instead.
    Taken(Box<WorkerRecord>),
}

/// The answer to [`StateStore::begin_removal`].
#[derive(Debug)]
pub enum Removal {
    /// No launch can claim the stream until [`StateStore::end_removal`] (or this process
    /// dies).
    Granted,
    /// A live worker, or a `start` preparing or launching one, holds the stream.
    InUse(Box<WorkerRecord>),
    /// Another live `clean` is removing it.
    Removing(Identity),
}

/// One try at a claim.
enum Attempt {
    Done(Claim),
    /// A live `clean` removes the stream's worktree: try again once it is done.
    Removing(Identity),
}

/// What a read-only look at the store's file finds (for `doctor`, which changes nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readability {
    /// No store yet: no run so far.
    Absent,
    Readable,
    /// Not a database, or corrupt (SQLite's message): the next command that opens it sets it
    /// aside and rebuilds it.
    Corrupt(String),
    /// Cannot be read (SQLite's message), e.g. for its permissions.
    Unreadable(String),
}

/// Reads the store at `path` read-only, without setting anything aside.
pub fn readability(path: &Path) -> Readability {
    if !path.exists() {
        return Readability::Absent;
    }
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    let read = Connection::open_with_flags(path, flags).and_then(|conn| {
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
    });
    match read {
        Ok(_) => Readability::Readable,
        Err(e)
            if matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
            ) =>
        {
            Readability::Corrupt(e.to_string())
        }
        Err(e) => Readability::Unreadable(e.to_string()),
    }
}

pub struct StateStore {
    pub(super) conn: Connection,
    path: PathBuf,
    recovered: Option<PathBuf>,
    /// (device, inode) of the file when opened.
    file_id: Option<(u64, u64)>,
}

/// A lock on the store's folder (the folder itself: no lock file to leave behind), held while
/// the guard lives.
fn lock_folder(
    path: &Path,
    how: nix::fcntl::FlockArg,
) -> Result<nix::fcntl::Flock<std::fs::File>, StateError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let locked = std::fs::File::open(dir).and_then(|d| {
        nix::fcntl::Flock::lock(d, how).map_err(|(_, errno)| std::io::Error::from(errno))
    });
    locked.map_err(|source| StateError::Lock {
        path: dir.to_path_buf(),
        source,
    })
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

const COLUMNS: &str = "id, stream, attempt, claimer_pid, claimer_ticks, pid, start_ticks, boot_id,
    worker_pid, log_path, command, dir, branch, base, started_at, ended_at, exit_code, signal,
    outcome, error, session_id, cost_usd, turns, log_offset, finalized_at, kind, agent_version,
    input_tokens, output_tokens, sandbox";

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
        log_offset: r.get::<_, Option<i64>>(23)?.unwrap_or(0).max(0) as u64,
        finalized_at: r.get(24)?,
        kind: match r.get::<_, Option<String>>(25)?.as_deref() {
            Some("verify") => RowKind::Verify,
            _ => RowKind::Worker,
        },
        agent_version: r.get(26)?,
        input_tokens: r.get::<_, Option<i64>>(27)?.map(|n| n.max(0) as u64),
        output_tokens: r.get::<_, Option<i64>>(28)?.map(|n| n.max(0) as u64),
        sandbox: r
            .get::<_, Option<String>>(29)?
            .as_deref()
            .and_then(Applied::from_db),
    })
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
    /// Opens (creating folder, file and tables if needed) the store at `path`. A file that is
    /// not a database or is corrupt is set aside and a new store is rebuilt from the live
    /// supervisors in `/proc` ([`StateStore::recovered`] says where the old file went).
    pub fn open(path: &Path) -> Result<Self, StateError> {
        if let Some(dir) = path.parent() {
            super::private_dir(dir)?;
        }
        {
            // Shared: a recovery (exclusive) is never caught half-way, between setting the
            // corrupt file aside and recording the workers in the new one.
            let _turn = lock_folder(path, nix::fcntl::FlockArg::LockShared)?;
            if let Some(store) = Self::open_sound(path)? {
                return Ok(store);
            }
        }
        Self::recover(path)
    }

    /// Sets a corrupt store aside and rebuilds it from the workers alive in `/proc`. Commands
    /// that find it corrupt at once take turns on a lock of the state folder (no lock file left
    /// behind): the later ones find the rebuilt store and use it, so a good store is never set
    /// aside and nobody writes to a file that was moved away.
    fn recover(path: &Path) -> Result<Self, StateError> {
        let _turn = lock_folder(path, nix::fcntl::FlockArg::LockExclusive)?;
        if let Some(store) = Self::open_sound(path)? {
            return Ok(store);
        }
        let aside = set_aside(path)?;
        let mut store = Self::open_file(path)?;
        store.adopt_found()?;
        store.recovered = Some(aside);
        Ok(store)
    }

    /// Opens the store unless it is corrupt (`None`); a new one records the workers alive.
    fn open_sound(path: &Path) -> Result<Option<Self>, StateError> {
        let fresh = !path.exists();
        match Self::open_file(path) {
            Ok(mut store) => {
                if fresh {
                    store.adopt_found()?;
                }
                Ok(Some(store))
            }
            Err(e) if e.is_corrupt() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reopens the store if its file was deleted, moved or replaced since it was opened (a
    /// supervisor about to record its worker's exit: the exit goes to the store others read,
    /// rebuilt with this supervisor's row if need be). True if it reopened.
    pub fn reopen_if_replaced(&mut self) -> Result<bool, StateError> {
        if file_id(&self.path) == self.file_id && self.file_id.is_some() {
            return Ok(false);
        }
        *self = Self::open(&self.path)?;
        Ok(true)
    }

    /// Opens the store only if it exists, or if workers of its project are alive (it was
    /// deleted under them): read paths must not create a store for nothing.
    pub fn open_existing(path: &Path) -> Result<Option<Self>, StateError> {
        if path.exists() || !crate::proc::found_workers(path).is_empty() {
            Self::open(path).map(Some)
        } else {
            Ok(None)
        }
    }

    fn open_file(path: &Path) -> Result<Self, StateError> {
        let err = |source| StateError::Open {
            path: path.to_path_buf(),
            source,
        };
        super::private_file(path)?;
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        // Switching a new file to WAL takes an exclusive lock without calling the busy handler,
        // so two processes creating the store at once must retry by hand.
        retry_busy(|| conn.pragma_update(None, "journal_mode", "WAL")).map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        retry_busy(|| migrate(&conn)).map_err(err)?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            recovered: None,
            file_id: file_id(path),
        })
    }

    /// Where a corrupt store was moved when this one was rebuilt.
    pub fn recovered(&self) -> Option<&Path> {
        self.recovered.as_deref()
    }

    /// Records every worker alive in `/proc` for this store's project that has no row here (the
    /// store was deleted or set aside under it), so `status`, `stop` and the next `start` see it
    /// and never launch a second one: a live supervisor under the row id it writes to, an
    /// orphaned worker tree (its supervisor SIGKILLed) under a new row naming that supervisor.
    fn adopt_found(&mut self) -> Result<(), StateError> {
        let mut found = crate::proc::found_workers(&self.path);
        // Supervisors first, under the ids they write to; orphans then take new ids, so an
        // orphan's row never takes the id a live supervisor writes to.
        found.sort_by_key(|f| f.record.is_none());
        for f in &found {
            self.insert_found(f)?;
        }
        Ok(())
    }

    fn insert_found(&self, found: &crate::proc::Found) -> Result<(), StateError> {
        // One statement each, so two commands rebuilding the store at once add one row.
        let sql = if found.record.is_some() {
            "INSERT OR IGNORE INTO workers (id, stream, attempt, pid, pgid, start_ticks, boot_id,
                 log_path, dir, branch, started_at)
             VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        } else {
            "INSERT INTO workers (stream, attempt, pid, pgid, start_ticks, boot_id, log_path, dir,
                 branch, started_at)
             SELECT ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9, ?10
             WHERE ?1 IS NULL AND NOT EXISTS (SELECT 1 FROM workers
                 WHERE pid = ?4 AND start_ticks = ?5 AND boot_id = ?6 AND ended_at IS NULL)"
        };
        self.conn
            .execute(
                sql,
                params![
                    found.record,
                    found.stream,
                    found.attempt,
                    found.leader.pid,
                    found.leader.start_ticks as i64,
                    found.leader.boot_id,
                    found
                        .log
                        .as_deref()
                        .map(|p| p.to_string_lossy())
                        .unwrap_or_default(),
                    found.dir.to_string_lossy(),
                    found.branch,
                    now_rfc3339(),
                ],
            )
            .map_err(self.w())?;
        Ok(())
    }

    /// Hands a row claimed for a launch over to a worker of the stream found alive meanwhile
    /// (one the store did not know): the row now records that worker, and nothing is launched.
    pub fn hand_over(&self, id: i64, found: &crate::proc::Found) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE workers SET pid = ?2, pgid = ?2, start_ticks = ?3, boot_id = ?4,
                     dir = ?5, branch = ?6, log_path = COALESCE(?7, log_path)
                 WHERE id = ?1 AND ended_at IS NULL",
                params![
                    id,
                    found.leader.pid,
                    found.leader.start_ticks as i64,
                    found.leader.boot_id,
                    found.dir.to_string_lossy(),
                    found.branch,
                    found.log.as_deref().map(|p| p.to_string_lossy()),
                ],
            )
            .map_err(self.w())?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The error of a statement that reads.
    pub(super) fn q(&self) -> impl Fn(rusqlite::Error) -> StateError + '_ {
        |source| StateError::Read {
            path: self.path.clone(),
            source,
        }
    }

    /// The error of a statement that writes (on a full disk, "cannot read" misled).
    pub(super) fn w(&self) -> impl Fn(rusqlite::Error) -> StateError + '_ {
        write_error(&self.path)
    }

    /// Claims the right to launch a worker for `new.stream`: refuses if a live worker exists,
    /// and marks unfinished rows whose process is gone as `lost`, all in one write transaction.
    /// While a live `clean` removes the stream's worktree ([`StateStore::begin_removal`]), it
    /// waits (up to two minutes), so a launch never prepares a worktree being removed.
    pub fn claim(&mut self, new: &NewWorker<'_>, claimer: &Identity) -> Result<Claim, StateError> {
        let deadline = std::time::Instant::now() + REMOVAL_WAIT;
        loop {
            match self.try_claim(new, claimer)? {
                Attempt::Done(claim) => return Ok(claim),
                Attempt::Removing(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Attempt::Removing(by) => {
                    return Err(StateError::Removing {
                        stream: new.stream.to_string(),
                        pid: by.pid,
                    });
                }
            }
        }
    }

    fn try_claim(
        &mut self,
        new: &NewWorker<'_>,
        claimer: &Identity,
    ) -> Result<Attempt, StateError> {
        let path = self.path.clone();
        let q = write_error(&path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(q)?;
        if let Some(by) = live_remover(&tx, new.stream).map_err(q)? {
            return Ok(Attempt::Removing(by));
        }
        let open = unfinished(&tx, new.stream).map_err(q)?;
        for rec in open {
            if rec.is_live() {
                return Ok(Attempt::Done(Claim::Taken(Box::new(rec))));
            }
            tx.execute(
                "UPDATE workers SET ended_at = ?2, outcome = 'lost' WHERE id = ?1 AND ended_at IS NULL",
                params![rec.id, now_rfc3339()],
            )
            .map_err(q)?;
        }
        tx.execute(
            "INSERT INTO workers (stream, attempt, claimer_pid, claimer_ticks, boot_id, log_path,
                                  command, dir, branch, base, started_at, log_offset, kind)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
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
                new.log_offset as i64,
                new.kind.as_str()
            ],
        )
        .map_err(q)?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(q)?;
        Ok(Attempt::Done(Claim::Granted(id)))
    }

    /// Takes the right to remove `stream`'s worktree and branch (`clean`): granted only if no
    /// live worker or launch holds the stream, checked and recorded in one write transaction,
    /// so that no `start` can claim the stream until [`StateStore::end_removal`].
    pub fn begin_removal(&mut self, stream: &str, me: &Identity) -> Result<Removal, StateError> {
        let path = self.path.clone();
        let q = write_error(&path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(q)?;
        if let Some(by) = live_remover(&tx, stream).map_err(q)?
            && by != *me
        {
            return Ok(Removal::Removing(by));
        }
        let open = unfinished(&tx, stream).map_err(q)?;
        if let Some(live) = open.into_iter().find(WorkerRecord::is_live) {
            return Ok(Removal::InUse(Box::new(live)));
        }
        tx.execute(
            "INSERT OR REPLACE INTO removals (stream, pid, start_ticks, boot_id, started_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                stream,
                me.pid,
                me.start_ticks as i64,
                me.boot_id,
                now_rfc3339()
            ],
        )
        .map_err(q)?;
        tx.commit().map_err(q)?;
        Ok(Removal::Granted)
    }

    /// Gives back what [`StateStore::begin_removal`] took.
    pub fn end_removal(&self, stream: &str, me: &Identity) -> Result<(), StateError> {
        self.conn
            .execute(
                "DELETE FROM removals WHERE stream = ?1 AND pid = ?2 AND start_ticks = ?3",
                params![stream, me.pid, me.start_ticks as i64],
            )
            .map_err(self.w())?;
        Ok(())
    }

    /// Gives up a claim nothing was launched under (the stream turned out done meanwhile): the
    /// row goes, as if never claimed.
    pub fn release_claim(&self, id: i64) -> Result<(), StateError> {
        self.conn
            .execute(
                "DELETE FROM workers WHERE id = ?1 AND pid IS NULL AND ended_at IS NULL",
                [id],
            )
            .map_err(self.w())?;
        Ok(())
    }

    /// Records where the claimed worker runs, once its worktree is prepared.
    pub fn set_placement(
        &self,
        id: i64,
        dir: &Path,
        branch: Option<&str>,
        base: Option<&str>,
    ) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE workers SET dir = ?2, branch = ?3, base = ?4 WHERE id = ?1",
                params![id, dir.to_string_lossy(), branch, base],
            )
            .map_err(self.w())?;
        Ok(())
    }

    /// Records what confines the worker about to be spawned.
    pub fn set_sandbox(&self, id: i64, sandbox: Applied) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE workers SET sandbox = ?2 WHERE id = ?1",
                params![id, sandbox.to_db()],
            )
            .map_err(self.w())?;
        Ok(())
    }

    /// Records the spawned supervisor's identity.
    pub fn set_spawned(&self, id: i64, who: &Identity) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE workers SET pid = ?2, pgid = ?2, start_ticks = ?3, boot_id = ?4 WHERE id = ?1",
                params![id, who.pid, who.start_ticks as i64, who.boot_id],
            )
            .map_err(self.w())?;
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
            .map_err(self.w())?;
        Ok(changed == 1)
    }

    /// Records the real worker's pid (the supervisor's child), for display.
    pub fn set_worker_pid(&self, id: i64, pid: i32) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE workers SET worker_pid = ?2 WHERE id = ?1",
                params![id, pid],
            )
            .map_err(self.w())?;
        Ok(())
    }

    /// Records how a worker ended (first outcome wins). `by` is the supervisor writing it: only
    /// the row recording that supervisor is touched.
    pub fn record_exit(
        &self,
        id: i64,
        by: &Identity,
        exit_code: Option<i32>,
        signal: Option<i32>,
        error: Option<&str>,
    ) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE workers SET ended_at = ?2, exit_code = ?3, signal = ?4, error = ?5,
                        outcome = 'exited'
                 WHERE id = ?1 AND ended_at IS NULL AND pid = ?6 AND start_ticks = ?7",
                params![
                    id,
                    now_rfc3339(),
                    exit_code,
                    signal,
                    error,
                    by.pid,
                    by.start_ticks as i64
                ],
            )
            .map_err(self.w())?;
        Ok(())
    }

    /// Records the error that kept a claimed worker from spawning at all (written by the
    /// claiming `start`; no supervisor exists).
    pub fn record_spawn_failure(&self, id: i64, error: &str) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE workers SET ended_at = ?2, error = ?3, outcome = 'exited', finalized_at = ?2
                 WHERE id = ?1 AND ended_at IS NULL",
                params![id, now_rfc3339(), error],
            )
            .map_err(self.w())?;
        Ok(())
    }

    /// Claims the processing of what an ended worker left (auto-commit, the dirty check), so
    /// that of two `start`s that both saw it end exactly one commits in its worktree. A claim
    /// held by a `start` that died is taken over.
    pub fn claim_finalize(&self, id: i64, me: &Identity) -> Result<Finalize, StateError> {
        let mine = me.worker_marker();
        let take = |from: Option<&str>| {
            self.conn
                .execute(
                    "UPDATE workers SET finalizer = ?2
                     WHERE id = ?1 AND finalized_at IS NULL AND finalizer IS ?3",
                    params![id, mine, from],
                )
                .map_err(self.w())
        };
        if take(None)? == 1 {
            return Ok(Finalize::Mine);
        }
        let (done, holder): (Option<String>, Option<String>) = self
            .conn
            .query_row(
                "SELECT finalized_at, finalizer FROM workers WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.q())?
            .unwrap_or((Some(String::new()), None));
        match holder {
            _ if done.is_some() => Ok(Finalize::Done),
            Some(h) if h == mine => Ok(Finalize::Mine),
            Some(h) if Identity::from_marker(&h).is_none_or(|i| !i.is_alive()) => {
                Ok(if take(Some(&h))? == 1 {
                    Finalize::Mine
                } else {
                    Finalize::Busy
                })
            }
            _ => Ok(Finalize::Busy),
        }
    }

    /// Notes that what the ended worker left was processed (auto-commit or the dirty check).
    pub fn set_finalized(&self, id: i64) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE workers SET finalized_at = ?2 WHERE id = ?1 AND finalized_at IS NULL",
                params![id, now_rfc3339()],
            )
            .map_err(self.w())?;
        Ok(())
    }

    /// Records what the agent reported about its run (session, cost, turns, version, tokens).
    pub fn set_agent_report(&self, id: i64, r: &AgentReport) -> Result<(), StateError> {
        let tokens = |n: Option<u64>| n.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        self.conn
            .execute(
                "UPDATE workers SET session_id = ?2, cost_usd = ?3, turns = ?4, agent_version = ?5,
                        input_tokens = ?6, output_tokens = ?7
                 WHERE id = ?1",
                params![
                    id,
                    r.session_id,
                    r.cost_usd,
                    r.turns.map(i64::from),
                    r.version,
                    tokens(r.input_tokens),
                    tokens(r.output_tokens)
                ],
            )
            .map_err(self.w())?;
        Ok(())
    }

    /// Marks a worker ended by `stop` (keeping an exit status the supervisor recorded).
    pub fn mark_stopped(&self, id: i64) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE workers SET ended_at = COALESCE(ended_at, ?2), outcome = 'stopped' WHERE id = ?1",
                params![id, now_rfc3339()],
            )
            .map_err(self.w())?;
        Ok(())
    }

    /// Marks an unfinished row whose process is gone: it is never signalled again. `seen` is
    /// the row as the caller found it dead: if a supervisor recorded itself meanwhile (its
    /// `confirm_spawned` and this update are each one statement, so exactly one wins), the row
    /// is left alone and false is returned: it is alive after all.
    pub fn mark_lost(&self, seen: &WorkerRecord) -> Result<bool, StateError> {
        let changed = self
            .conn
            .execute(
                "UPDATE workers SET ended_at = ?2, outcome = 'lost'
                 WHERE id = ?1 AND ended_at IS NULL AND pid IS ?3",
                params![
                    seen.id,
                    now_rfc3339(),
                    seen.identity.as_ref().map(|i| i.pid)
                ],
            )
            .map_err(self.w())?;
        Ok(changed == 1)
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
            "WHERE id IN (SELECT MAX(id) FROM workers WHERE kind = 'worker' GROUP BY stream)
             ORDER BY stream",
            [],
        )
    }

    /// The latest verify run of every stream that had one.
    pub fn latest_verifications(&self) -> Result<Vec<WorkerRecord>, StateError> {
        self.select(
            "WHERE id IN (SELECT MAX(id) FROM workers WHERE kind = 'verify' GROUP BY stream)
             ORDER BY stream",
            [],
        )
    }

    /// Every worker run (not verification) of `stream`, oldest first: its spending.
    pub fn attempts_of(&self, stream: &str) -> Result<Vec<WorkerRecord>, StateError> {
        self.select(
            "WHERE stream = ?1 AND kind = 'worker' ORDER BY id",
            [stream],
        )
    }

    /// Every worker run started at or after `since` (RFC 3339), oldest first.
    pub fn workers_since(&self, since: &str) -> Result<Vec<WorkerRecord>, StateError> {
        self.select(
            "WHERE kind = 'worker' AND started_at >= ?1 ORDER BY id",
            [since],
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
}

/// The unfinished worker rows of `stream`.
fn unfinished(conn: &Connection, stream: &str) -> rusqlite::Result<Vec<WorkerRecord>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM workers WHERE stream = ?1 AND ended_at IS NULL"
    ))?;
    stmt.query_map([stream], record_from_row)?.collect()
}

/// The live `clean` removing `stream`, if any (a dead one's row is dropped).
fn live_remover(conn: &Connection, stream: &str) -> rusqlite::Result<Option<Identity>> {
    let row = conn
        .query_row(
            "SELECT pid, start_ticks, boot_id FROM removals WHERE stream = ?1",
            [stream],
            |r| {
                Ok(Identity {
                    pid: r.get(0)?,
                    start_ticks: r.get::<_, i64>(1)? as u64,
                    boot_id: r.get(2)?,
                })
            },
        )
        .optional()?;
    match row {
        Some(by) if by.is_alive() => Ok(Some(by)),
        Some(_) => {
            conn.execute("DELETE FROM removals WHERE stream = ?1", [stream])?;
            Ok(None)
        }
        None => Ok(None),
    }
}

/// The error of a statement or transaction that writes `path` (on a full disk, "cannot read"
/// misled).
fn write_error(path: &Path) -> impl Fn(rusqlite::Error) -> StateError + Copy + '_ {
    |source| StateError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// Brings a store of any earlier version to [`SCHEMA_VERSION`], in one write transaction:
/// tables and columns are added, and the tables of version 0 (`streams` outcomes, the git
/// code's `git_streams` and `git_run`) are carried into `verdicts`, `worktrees` and `run`.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version >= SCHEMA_VERSION && has_columns(conn)? {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        conn.execute_batch(SCHEMA)?;
        for (table, column, decl) in ADDED_COLUMNS {
            if !column_exists(conn, table, column)? {
                conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))?;
                if *column == "finalized_at" {
                    // Rows of an older version were judged by the `start` that saw them end.
                    conn.execute_batch(
                        "UPDATE workers SET finalized_at = ended_at WHERE ended_at IS NOT NULL",
                    )?;
                }
            }
        }
        carry_version_0(conn)?;
        conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn has_columns(conn: &Connection) -> rusqlite::Result<bool> {
    for (table, column, _) in ADDED_COLUMNS {
        if !column_exists(conn, table, column)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn table_exists(conn: &Connection, table: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [table],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

fn column_exists(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
    let names = stmt.query_map([], |r| r.get::<_, String>(1))?;
    for name in names {
        if name? == column {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Version 0 kept outcomes in `streams` and the worktree records in `git_streams`/`git_run`.
fn carry_version_0(conn: &Connection) -> rusqlite::Result<()> {
    use crate::model::{Failure, Verdict};
    if table_exists(conn, "streams")? {
        let rows: Vec<(String, String, Option<String>, String)> = {
            let mut stmt =
                conn.prepare("SELECT stream, outcome, reason, updated_at FROM streams")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<rusqlite::Result<_>>()?
        };
        for (stream, outcome, reason, at) in rows {
            let verdict = match outcome.as_str() {
                "stopped" => Verdict::Stopped,
                _ => Verdict::Failed {
                    failure: Failure::Legacy {
                        text: reason.unwrap_or_default(),
                    },
                },
            };
            let body = serde_json::to_string(&verdict).expect("verdicts serialise");
            conn.execute(
                "INSERT OR IGNORE INTO verdicts (stream, kind, body, updated_at) VALUES (?1, ?2, ?3, ?4)",
                params![stream, verdict.kind(), body, at],
            )?;
        }
        conn.execute_batch("DROP TABLE streams")?;
    }
    if table_exists(conn, "git_streams")? {
        conn.execute_batch(
            "INSERT OR IGNORE INTO worktrees (stream, slug, branch, worktree, base, created_at, updated_at)
               SELECT stream, slug, branch, worktree, base, created_at, updated_at FROM git_streams;
             DROP TABLE git_streams;",
        )?;
    }
    if table_exists(conn, "git_run")? {
        conn.execute_batch(
            "INSERT OR IGNORE INTO run (id, target_branch, recorded_at)
               SELECT 1, target_branch, recorded_at FROM git_run;
             DROP TABLE git_run;",
        )?;
    }
    Ok(())
}

/// Moves a corrupt store (and its `-wal`/`-shm`) to `<name>.corrupt-<time>`; returns where.
fn set_aside(path: &Path) -> Result<PathBuf, StateError> {
    let stamp = now_rfc3339().replace([':', '.'], "-");
    let aside = path.with_extension(format!("db.corrupt-{stamp}"));
    let io = |source| StateError::SetAside {
        path: path.to_path_buf(),
        source,
    };
    std::fs::rename(path, &aside).map_err(io)?;
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let side = PathBuf::from(side);
        if side.exists() {
            let mut to = aside.as_os_str().to_owned();
            to.push(suffix);
            std::fs::rename(&side, PathBuf::from(to)).map_err(io)?;
        }
    }
    Ok(aside)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_worker<'a>(stream: &'a str, log: &'a Path) -> NewWorker<'a> {
        NewWorker {
            stream,
            attempt: 1,
            log_path: log,
            log_offset: 0,
            kind: RowKind::Worker,
            command: "fake",
            dir: Path::new("/tmp"),
            branch: None,
            base: None,
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
    fn a_removal_keeps_launches_out_and_a_live_launch_keeps_removals_out() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = StateStore::open(&tmp.path().join("state.db")).unwrap();
        let me = Identity::current().unwrap();
        let log = tmp.path().join("a.log");
        assert!(matches!(
            store.begin_removal("A", &me).unwrap(),
            Removal::Granted
        ));
        // Another (live) `start` would wait; a dead remover is ignored.
        let dead = Identity {
            start_ticks: me.start_ticks + 7,
            ..me.clone()
        };
        let mut other = StateStore::open(&tmp.path().join("state.db")).unwrap();
        assert!(matches!(
            other.begin_removal("A", &dead).unwrap(),
            Removal::Removing(by) if by == me
        ));
        store.end_removal("A", &me).unwrap();
        let Claim::Granted(_) = store.claim(&new_worker("A", &log), &me).unwrap() else {
            panic!("the removal is over");
        };
        assert!(matches!(
            store.begin_removal("A", &me).unwrap(),
            Removal::InUse(_)
        ));
        // A remover that died keeps nothing out.
        assert!(matches!(
            other.begin_removal("B", &dead).unwrap(),
            Removal::Granted
        ));
        let Claim::Granted(_) = store.claim(&new_worker("B", &log), &me).unwrap() else {
            panic!("a dead remover holds nothing");
        };
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
    fn one_start_finalizes_an_ended_worker_and_a_dead_ones_claim_is_taken_over() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = StateStore::open(&tmp.path().join("state.db")).unwrap();
        let me = Identity::current().unwrap();
        let log = tmp.path().join("a.log");
        let Claim::Granted(id) = store.claim(&new_worker("A", &log), &me).unwrap() else {
            panic!("granted");
        };
        // Another `start`, alive (our parent), holds it: busy.
        let other = crate::proc::identity_of(nix::unistd::getppid().as_raw()).unwrap();
        assert_eq!(store.claim_finalize(id, &other).unwrap(), Finalize::Mine);
        assert_eq!(store.claim_finalize(id, &me).unwrap(), Finalize::Busy);
        // The holder died (same pid, another start time): taken over.
        let dead = Identity {
            start_ticks: me.start_ticks + 9,
            ..me.clone()
        };
        let Claim::Granted(id2) = store.claim(&new_worker("B", &log), &me).unwrap() else {
            panic!("granted");
        };
        assert_eq!(store.claim_finalize(id2, &dead).unwrap(), Finalize::Mine);
        assert_eq!(store.claim_finalize(id2, &me).unwrap(), Finalize::Mine);
        store.set_finalized(id2).unwrap();
        assert_eq!(store.claim_finalize(id2, &other).unwrap(), Finalize::Done);
    }

    #[test]
    fn a_released_claim_leaves_no_row_and_a_spawned_one_is_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = StateStore::open(&tmp.path().join("state.db")).unwrap();
        let me = Identity::current().unwrap();
        let log = tmp.path().join("a.log");
        let Claim::Granted(id) = store.claim(&new_worker("A", &log), &me).unwrap() else {
            panic!("granted");
        };
        store.release_claim(id).unwrap();
        assert_eq!(store.worker(id).unwrap(), None);
        let Claim::Granted(id) = store.claim(&new_worker("A", &log), &me).unwrap() else {
            panic!("granted");
        };
        store.set_spawned(id, &me).unwrap();
        store.release_claim(id).unwrap();
        assert!(
            store.worker(id).unwrap().is_some(),
            "a spawned worker's row stays"
        );
    }

    #[test]
    fn a_store_deleted_under_a_connection_is_reopened() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state.db");
        let mut store = StateStore::open(&path).unwrap();
        assert!(!store.reopen_if_replaced().unwrap());
        store
            .set_verdict("A", &crate::model::Verdict::Stopped)
            .unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        assert!(store.reopen_if_replaced().unwrap());
        assert!(path.exists(), "a new store where the old one was");
        assert!(store.verdicts().unwrap().is_empty());
    }

    #[test]
    fn a_version_0_store_is_carried_over() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state.db");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE workers (id INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL,
                 attempt INTEGER NOT NULL, claimer_pid INTEGER, claimer_ticks INTEGER, pid INTEGER,
                 pgid INTEGER, start_ticks INTEGER, boot_id TEXT, worker_pid INTEGER,
                 log_path TEXT NOT NULL, command TEXT, dir TEXT, branch TEXT, base TEXT,
                 started_at TEXT NOT NULL, ended_at TEXT, exit_code INTEGER, signal INTEGER,
                 outcome TEXT, error TEXT, session_id TEXT, cost_usd REAL, turns INTEGER);
             INSERT INTO workers (stream, attempt, log_path, started_at, ended_at, outcome)
                 VALUES ('A', 1, '/l', 't0', 't1', 'exited');
             CREATE TABLE streams (stream TEXT PRIMARY KEY, outcome TEXT NOT NULL, reason TEXT,
                 updated_at TEXT NOT NULL);
             INSERT INTO streams VALUES ('A', 'failed', 'exit 1', 't'), ('B', 'stopped', NULL, 't');
             CREATE TABLE git_streams (stream TEXT PRIMARY KEY, slug TEXT NOT NULL,
                 branch TEXT NOT NULL, worktree TEXT NOT NULL, base TEXT, created_at TEXT NOT NULL,
                 updated_at TEXT NOT NULL);
             INSERT INTO git_streams VALUES ('A', 'A', 'stream/A', '/w/A', 'abc', 't', 't');
             CREATE TABLE git_run (id INTEGER PRIMARY KEY CHECK (id = 1),
                 target_branch TEXT NOT NULL, recorded_at TEXT NOT NULL);
             INSERT INTO git_run VALUES (1, 'main', 't');",
        )
        .unwrap();
        drop(old);
        let store = StateStore::open(&path).unwrap();
        let verdicts = store.verdicts().unwrap();
        assert_eq!(verdicts["B"], crate::model::Verdict::Stopped);
        assert!(matches!(
            &verdicts["A"],
            crate::model::Verdict::Failed { failure: crate::model::Failure::Legacy { text } } if text == "exit 1"
        ));
        assert_eq!(
            store.worktree("A").unwrap().unwrap().base.as_deref(),
            Some("abc")
        );
        assert_eq!(
            store.run().unwrap().unwrap().target_branch.as_deref(),
            Some("main")
        );
        // Rows of the old version were judged by the `start` that saw them end.
        assert!(store.latest_workers().unwrap()[0].finalized_at.is_some());
        // They predate the sandbox; a new row records what confined it.
        assert_eq!(store.latest_workers().unwrap()[0].sandbox, None);
        store.set_sandbox(1, Applied::Landlock { abi: 7 }).unwrap();
        assert_eq!(
            store.worker(1).unwrap().unwrap().sandbox,
            Some(Applied::Landlock { abi: 7 })
        );
        // Opening again changes nothing.
        drop(store);
        assert_eq!(
            StateStore::open(&path).unwrap().verdicts().unwrap().len(),
            2
        );
    }

    #[test]
    fn a_corrupt_store_is_set_aside_and_rebuilt() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state/state.db");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, vec![0x5a_u8; 8192]).unwrap();
        let store = StateStore::open(&path).unwrap();
        let aside = store.recovered().expect("set aside").to_path_buf();
        assert_eq!(std::fs::read(&aside).unwrap(), vec![0x5a_u8; 8192]);
        assert!(store.verdicts().unwrap().is_empty());
        // Private: the store may hold worker commands carrying keys.
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
    }
}
