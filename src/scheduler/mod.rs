//! The scheduler: the only async code. One dispatcher loop owns all run state and `select!`s
//! over supervisor exits, task-database changes (inotify wake-ups, checked with a cheap
//! `PRAGMA data_version` probe, and a periodic probe), the launch stagger timer and
//! Ctrl-C / SIGTERM. See `DESIGN.md` beside this file for the stream and worker state machines.
//!
//! Invariants: never a second worker for a stream (the state store's claim decides); a worker's
//! end is learned from its supervisor's exit (or, for adopted workers, from `/proc`) and its
//! recorded outcome; the task database alone decides completion (plus a clean exit in worktree
//! mode); workers outlive an interrupted `start`.

mod event;
pub mod readiness;

pub use event::{Event, Reporter, RunEnd, Unfinished};
pub use readiness::{Class, Verdict};

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use crate::error::{Error, Result};
use crate::graph::StreamGraph;
use crate::project::Project;
use crate::state::{Claim, NewWorker, StateStore, StreamOutcome, WorkerRecord};
use crate::taskdb::{Snapshot, SqliteTaskDb, TaskSource};
use crate::worker::proc::{Identity, identity_of};
use crate::worker::{self, prompt, render};
use crate::workspace::{Placement, PrepareFailure, Workspaces};

/// How often the task database is probed for changes (`PRAGMA data_version`) when no file
/// watch could be set up.
const PROBE_INTERVAL: Duration = Duration::from_millis(20);
/// The tick when a file watch on the database's folder wakes us on every write: a safety net
/// probe, adopted workers' liveness, activity. Idle CPU stays low on hours-long runs.
const WATCHED_TICK: Duration = Duration::from_millis(100);
/// How often adopted workers (not our children) are checked in `/proc`.
const ADOPTED_POLL: Duration = Duration::from_millis(100);
/// How often running workers' logs are read for the live view.
const ACTIVITY_POLL: Duration = Duration::from_millis(500);
/// Log lines quoted in a failure reason.
const REASON_LINES: usize = 5;

/// Everything a run is told up front.
pub struct Settings {
    pub project: Project,
    /// The task database (for workers' `ORCHESTRATE_DB` and their prompt).
    pub db_path: PathBuf,
    /// This binary, run as `__supervise` and exported as `ORCHESTRATE_BIN`.
    pub exe: PathBuf,
    pub worker_cmd: String,
    pub prompt_template: String,
    pub max_parallel: usize,
    pub stagger: Duration,
    pub retries: u32,
    pub worktree_mode: bool,
    /// `start STREAM…`: only these.
    pub selection: Option<BTreeSet<String>>,
    /// Whether and how workers are confined.
    pub sandbox: worker::sandbox::Policy,
}

/// A worker this run watches.
struct Running {
    record: i64,
    identity: Identity,
    attempt: u32,
    placement: Placement,
    log: PathBuf,
    /// Not our child: its end is noticed by polling `/proc`.
    adopted: bool,
    /// Adopted while another `start` was still spawning it: `identity` is that `start`'s
    /// until the row names the supervisor.
    via_claimer: bool,
    last_activity: Option<String>,
}

/// A worker that exited while the task database could not be read: whether it finished its
/// tasks is unknown, so the verdict (done, retry, fail) waits for a successful read.
struct Unjudged {
    attempt: u32,
    rec: Option<WorkerRecord>,
    log: PathBuf,
}

pub struct Scheduler<'a> {
    settings: Settings,
    db: SqliteTaskDb,
    store: StateStore,
    /// Shared with the blocking thread that runs `prepare` (git work, `post_create`), so that
    /// Ctrl-C is answered while it runs.
    workspaces: Arc<Mutex<Box<dyn Workspaces>>>,
    reporter: &'a mut dyn Reporter,
    me: Identity,
    snapshot: Snapshot,
    graph: StreamGraph,
    running: HashMap<String, Running>,
    /// Exited workers awaiting a readable database; counted as running until judged.
    unjudged: HashMap<String, Unjudged>,
    attempts: HashMap<String, u32>,
    verdicts: HashMap<String, Verdict>,
    finished_clean: HashSet<String>,
    /// Events already reported once (complete / skipped / blocked, and the source's warnings
    /// keyed by their text), so they are said once.
    said: HashSet<(String, &'static str)>,
    next_launch: Option<Instant>,
    exits_tx: mpsc::UnboundedSender<i64>,
    exits_rx: mpsc::UnboundedReceiver<i64>,
}

impl<'a> Scheduler<'a> {
    pub fn new(
        settings: Settings,
        mut db: SqliteTaskDb,
        store: StateStore,
        workspaces: Box<dyn Workspaces>,
        reporter: &'a mut dyn Reporter,
    ) -> Result<Self> {
        let snapshot = db.snapshot()?;
        let graph = StreamGraph::build(&snapshot)?;
        let me = Identity::current()
            .ok_or_else(|| Error::msg("cannot read this process's identity from /proc"))?;
        let (exits_tx, exits_rx) = mpsc::unbounded_channel();
        // `start` printed these before the run; later refreshes report only new ones.
        let said = snapshot
            .warnings
            .iter()
            .map(|w| (w.to_string(), WARNING))
            .collect();
        Ok(Self {
            settings,
            db,
            store,
            workspaces: Arc::new(Mutex::new(workspaces)),
            reporter,
            me,
            snapshot,
            graph,
            running: HashMap::new(),
            unjudged: HashMap::new(),
            attempts: HashMap::new(),
            verdicts: HashMap::new(),
            finished_clean: HashSet::new(),
            said,
            next_launch: None,
            exits_tx,
            exits_rx,
        })
    }

    /// Runs until every stream is complete, nothing more can run, or a signal arrives.
    pub async fn run(mut self) -> Result<RunEnd> {
        let mut signals = Signals::new()?;
        self.adopt()?;
        for (stream, outcome) in self.store.outcomes()? {
            let verdict = match outcome {
                StreamOutcome::Stopped => Verdict::Stopped,
                StreamOutcome::Failed { reason } => Verdict::Failed(reason),
            };
            self.verdicts.entry(stream).or_insert(verdict);
        }
        // Streams already complete with no worker of ours have nothing left to commit.
        for s in self.graph.streams() {
            if !self.running.contains_key(s.id()) {
                self.finished_clean.insert(s.id().to_string());
            }
        }
        self.reporter.event(Event::Snapshot(&self.snapshot));
        let (db_tx, mut db_events) = mpsc::unbounded_channel();
        let tick = if watch_db_dir(&self.settings.db_path, db_tx) {
            WATCHED_TICK
        } else {
            PROBE_INTERVAL
        };
        let mut probe = tokio::time::interval(tick);
        probe.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let every = |period: Duration| (period.as_millis() / tick.as_millis()).max(1) as u32;
        let (adopted_every, activity_every) = (every(ADOPTED_POLL), every(ACTIVITY_POLL));
        let mut ticks: u32 = 0;
        loop {
            let waiting_for_stagger = match self.dispatch(&mut signals).await? {
                Turn::Idle => false,
                Turn::Stagger => true,
                Turn::Interrupted => return Ok(self.interrupted()),
            };
            if self.running.is_empty() && self.unjudged.is_empty() && !waiting_for_stagger {
                return Ok(self.summary());
            }
            let stagger_at = self.next_launch.unwrap_or_else(Instant::now);
            tokio::select! {
                Some(record) = self.exits_rx.recv() => self.on_exit(record)?,
                Some(()) = db_events.recv() => {
                    while db_events.try_recv().is_ok() {}
                    self.probe_db();
                    self.judge_unjudged()?;
                }
                _ = probe.tick() => {
                    ticks = ticks.wrapping_add(1);
                    self.probe_db();
                    self.judge_unjudged()?;
                    if ticks.is_multiple_of(adopted_every) {
                        self.poll_adopted()?;
                    }
                    if ticks.is_multiple_of(activity_every) && self.reporter.wants_activity() {
                        self.read_activity();
                    }
                }
                _ = tokio::time::sleep_until(stagger_at), if waiting_for_stagger => {}
                _ = signals.recv() => return Ok(self.interrupted()),
            }
        }
    }

    fn interrupted(&self) -> RunEnd {
        let mut live: Vec<(String, i32)> = self
            .running
            .iter()
            .map(|(s, r)| (s.clone(), r.identity.pid))
            .collect();
        live.sort();
        RunEnd::Interrupted(live)
    }

    /// Watches workers an earlier `start` launched that are still alive; forgets dead ones.
    fn adopt(&mut self) -> Result<()> {
        for rec in self.store.open_workers()? {
            let selected = self.selected(&rec.stream);
            if !rec.is_live() {
                self.store.mark_lost(rec.id)?;
                continue;
            }
            if !selected || self.running.contains_key(&rec.stream) {
                continue;
            }
            self.watch_adopted(rec);
        }
        Ok(())
    }

    fn watch_adopted(&mut self, rec: WorkerRecord) {
        let via_claimer = rec.identity.is_none();
        let Some(identity) = rec.identity.clone().or(rec.claimer.clone()) else {
            return;
        };
        self.reporter.event(Event::Adopted {
            stream: &rec.stream,
            pid: identity.pid,
        });
        self.attempts.insert(rec.stream.clone(), rec.attempt);
        self.running.insert(
            rec.stream.clone(),
            Running {
                record: rec.id,
                identity,
                attempt: rec.attempt,
                placement: Placement {
                    dir: rec
                        .dir
                        .clone()
                        .unwrap_or_else(|| self.settings.project.root.clone()),
                    branch: rec.branch.clone(),
                    base: rec.base.clone(),
                    notes: Vec::new(),
                },
                log: rec.log_path.clone(),
                adopted: true,
                via_claimer,
                last_activity: None,
            },
        );
    }

    fn selected(&self, stream: &str) -> bool {
        self.settings
            .selection
            .as_ref()
            .is_none_or(|s| s.contains(stream))
    }

    fn classify(&self) -> Vec<(String, Class)> {
        let running: HashSet<String> = self
            .running
            .keys()
            .chain(self.unjudged.keys())
            .cloned()
            .collect();
        readiness::classify(
            &self.graph,
            &readiness::Inputs {
                running: &running,
                verdicts: &self.verdicts,
                selection: self.settings.selection.as_ref(),
                worktree_mode: self.settings.worktree_mode,
                finished_clean: &self.finished_clean,
            },
        )
    }

    /// Reports news and launches what is ready.
    async fn dispatch(&mut self, signals: &mut Signals) -> Result<Turn> {
        loop {
            let classes = self.classify();
            self.report_news(&classes);
            let ready: Vec<String> = classes
                .into_iter()
                .filter(|(_, c)| *c == Class::Ready)
                .map(|(s, _)| s)
                .collect();
            let Some(stream) = ready.into_iter().next() else {
                return Ok(Turn::Idle);
            };
            if self.running.len() >= self.settings.max_parallel {
                return Ok(Turn::Idle);
            }
            if self.next_launch.is_some_and(|t| t > Instant::now()) {
                return Ok(Turn::Stagger);
            }
            if !self.launch(&stream, signals).await? {
                return Ok(Turn::Interrupted);
            }
        }
    }

    fn report_news(&mut self, classes: &[(String, Class)]) {
        for (stream, class) in classes {
            let (key, event) = match class {
                Class::Complete => ("complete", Event::Complete { stream }),
                Class::Skipped(reason) => (
                    "skipped",
                    Event::Skipped {
                        stream,
                        reason: reason.clone(),
                    },
                ),
                Class::Blocked(reason) => (
                    "blocked",
                    Event::Blocked {
                        stream,
                        reason: reason.clone(),
                    },
                ),
                _ => continue,
            };
            if self.said.insert((stream.clone(), key)) {
                self.reporter.event(event);
            }
        }
    }

    fn probe_db(&mut self) {
        match self.db.has_changed() {
            Ok(true) => {
                self.refresh();
            }
            Ok(false) => {}
            Err(e) => self.reporter.event(Event::Note {
                stream: None,
                text: db_note("cannot probe the task database", e),
            }),
        }
    }

    /// Notices the end of workers that are not our children.
    fn poll_adopted(&mut self) -> Result<()> {
        self.learn_supervisors()?;
        let gone: Vec<i64> = self
            .running
            .values()
            .filter(|r| r.adopted && !r.identity.is_alive())
            .map(|r| r.record)
            .collect();
        for record in gone {
            self.on_exit(record)?;
        }
        Ok(())
    }

    /// Replaces a claiming `start`'s identity by the supervisor's once the row has it.
    fn learn_supervisors(&mut self) -> Result<()> {
        let pending: Vec<(String, i64)> = self
            .running
            .iter()
            .filter(|(_, r)| r.via_claimer)
            .map(|(s, r)| (s.clone(), r.record))
            .collect();
        for (stream, record) in pending {
            if let Some(identity) = self.store.worker(record)?.and_then(|r| r.identity)
                && let Some(run) = self.running.get_mut(&stream)
            {
                run.identity = identity;
                run.via_claimer = false;
            }
        }
        Ok(())
    }

    fn read_activity(&mut self) {
        let mut news = Vec::new();
        for (stream, run) in &mut self.running {
            if let Some(text) = worker::tail(&run.log, 16 * 1024)
                .as_deref()
                .and_then(render::latest_activity)
                && run.last_activity.as_ref() != Some(&text)
            {
                run.last_activity = Some(text.clone());
                news.push((stream.clone(), text));
            }
        }
        for (stream, text) in news {
            self.reporter.event(Event::Activity {
                stream: &stream,
                text,
            });
        }
    }

    /// Re-reads the task database; a transient error or a graph made invalid mid-run keeps
    /// the previous view. False when the database could not be read.
    fn refresh(&mut self) -> bool {
        let snapshot = match self.db.snapshot() {
            Ok(s) => s,
            Err(e) => {
                self.reporter.event(Event::Note {
                    stream: None,
                    text: db_note("cannot read the task database", e),
                });
                return false;
            }
        };
        // A malformed row that appears mid-run is ignored like at start, and said once.
        for w in &snapshot.warnings {
            let text = w.to_string();
            if self.said.insert((text.clone(), WARNING)) {
                self.reporter.event(Event::Note { stream: None, text });
            }
        }
        match StreamGraph::build(&snapshot) {
            Ok(graph) => {
                self.graph = graph;
                self.snapshot = snapshot;
                self.reporter.event(Event::Snapshot(&self.snapshot));
            }
            Err(e) => self.reporter.event(Event::Note {
                stream: None,
                text: format!("the stream graph became invalid, keeping the last valid one: {e}"),
            }),
        }
        true
    }

    /// A supervisor ended (our child exited, or an adopted one vanished from `/proc`).
    fn on_exit(&mut self, record: i64) -> Result<()> {
        let Some(stream) = self
            .running
            .iter()
            .find(|(_, r)| r.record == record)
            .map(|(s, _)| s.clone())
        else {
            return Ok(());
        };
        let run = self.running.remove(&stream).expect("found above");
        let rec = self.store.worker(record)?;
        if rec.as_ref().is_some_and(|r| r.ended_at.is_none()) {
            // Killed before it could record anything (SIGKILL of the supervisor).
            self.store.mark_lost(record)?;
        }
        if let Some(r) = &rec {
            self.reporter.event(Event::Exited {
                stream: &stream,
                summary: exit_summary(r),
            });
        }
        let finished = self
            .workspaces
            .lock()
            .expect("no panics while holding the workspaces")
            .worker_finished(&stream, &run.placement);
        for note in &finished.notes {
            self.reporter.event(Event::Note {
                stream: Some(&stream),
                text: note.clone(),
            });
        }
        if finished.dirty {
            self.finished_clean.remove(&stream);
        } else {
            self.finished_clean.insert(stream.clone());
        }
        self.unjudged.insert(
            stream,
            Unjudged {
                attempt: run.attempt,
                rec,
                log: run.log,
            },
        );
        self.judge_unjudged()
    }

    /// Judges exited workers on a fresh read of the database. Judging on the last snapshot
    /// instead lost completions: a worker that finished its tasks while the database was
    /// unreadable was retried, or failed (and its dependents skipped).
    fn judge_unjudged(&mut self) -> Result<()> {
        if self.unjudged.is_empty() || !self.refresh() {
            return Ok(());
        }
        for (stream, exited) in std::mem::take(&mut self.unjudged) {
            self.judge(&stream, exited)?;
        }
        Ok(())
    }

    /// Done, retried or failed: what an exited worker's stream comes to.
    fn judge(&mut self, stream: &str, exited: Unjudged) -> Result<()> {
        let Some(s) = self.graph.get(stream) else {
            return Ok(());
        };
        let counts = s.record.counts;
        if counts.is_complete() || counts.is_cancelled() {
            return Ok(());
        }
        if self.store.outcomes()?.get(stream) == Some(&StreamOutcome::Stopped) {
            self.verdicts.insert(stream.to_string(), Verdict::Stopped);
            self.reporter.event(Event::Stopped { stream });
            return Ok(());
        }
        let rec = exited.rec.as_ref();
        let why = exit_reason(rec, &exited.log);
        let cannot_exec = rec.is_some_and(|r| {
            r.exit_code == Some(worker::supervise::CANNOT_EXEC) && r.error.is_some()
        });
        if !cannot_exec && exited.attempt <= self.settings.retries {
            self.reporter.event(Event::Retrying {
                stream,
                attempt: exited.attempt + 1,
                why,
            });
            return Ok(());
        }
        let reason = format!(
            "failed after {} attempt{}: {why}",
            exited.attempt,
            if exited.attempt == 1 { "" } else { "s" }
        );
        self.fail(stream, reason)
    }

    fn fail(&mut self, stream: &str, reason: String) -> Result<()> {
        self.store.set_outcome(
            stream,
            Some(&StreamOutcome::Failed {
                reason: reason.clone(),
            }),
        )?;
        self.verdicts
            .insert(stream.to_string(), Verdict::Failed(reason.clone()));
        self.reporter.event(Event::Failed { stream, reason });
        Ok(())
    }

    /// Prepares, claims and spawns one worker; false if a signal arrived meanwhile.
    async fn launch(&mut self, stream_id: &str, signals: &mut Signals) -> Result<bool> {
        let stream = self
            .graph
            .get(stream_id)
            .expect("ready streams are in the graph")
            .clone();
        let attempt = self.attempts.get(stream_id).copied().unwrap_or(0) + 1;
        self.attempts.insert(stream_id.to_string(), attempt);
        self.next_launch = Some(Instant::now() + self.settings.stagger);
        let prepared = {
            let workspaces = self.workspaces.clone();
            let (stream, graph) = (stream.clone(), self.graph.clone());
            let job = tokio::task::spawn_blocking(move || {
                workspaces
                    .lock()
                    .expect("no panics while holding the workspaces")
                    .prepare(&stream, &graph)
            });
            tokio::select! {
                r = job => r.map_err(|e| Error::msg(format!("preparing {stream_id} failed: {e}")))?,
                _ = signals.recv() => return Ok(false),
            }
        };
        let placement = match prepared {
            Ok(p) => p,
            Err(PrepareFailure::Blocked { reason }) => {
                self.verdicts
                    .insert(stream_id.to_string(), Verdict::Blocked(reason));
                return Ok(true);
            }
            Err(PrepareFailure::Failed { reason }) => {
                self.fail(stream_id, reason)?;
                return Ok(true);
            }
        };
        self.start_prepared(&stream, attempt, placement)?;
        Ok(true)
    }

    /// Renders the prompt, claims the stream in the state store and spawns its supervisor.
    fn start_prepared(
        &mut self,
        stream: &crate::graph::Stream,
        attempt: u32,
        placement: Placement,
    ) -> Result<()> {
        let stream_id = stream.id();
        for note in &placement.notes {
            self.reporter.event(Event::Note {
                stream: Some(stream_id),
                text: note.clone(),
            });
        }
        let tasks = self.db.tasks(Some(stream_id))?;
        let text = prompt::render(
            &self.settings.prompt_template,
            &prompt::PromptVars {
                stream_id,
                stream_name: &stream.record.name,
                dependencies: &stream.dependencies,
                tasks: &tasks,
                worktree: &placement.dir,
                branch: placement.branch.as_deref(),
                db: &self.settings.db_path,
            },
        );
        let argv = worker::build_argv(&self.settings.worker_cmd, &text, stream_id, &placement.dir)?;
        if worker::find_program(&argv[0], &placement.dir).is_none() {
            // Retrying cannot help: fail at once, with the fix.
            return self.fail(
                stream_id,
                format!(
                    "the worker program `{}` was not found (PATH, or relative to {}); set the worker command with --worker-cmd, ORCHESTRATE_WORKER_CMD or worker_cmd in the config",
                    argv[0],
                    placement.dir.display()
                ),
            );
        }
        // Arguments and environment are C strings: a NUL byte (task data is free text) made
        // the spawn fail with a bare "nul byte found in provided data", once per retry.
        let with_nul = if stream_id.contains('\0') {
            Some("its stream id")
        } else if stream.record.name.contains('\0') {
            Some("its stream name")
        } else if argv.iter().any(|a| a.contains('\0')) {
            Some("its worker command or prompt (task titles, descriptions)")
        } else {
            None
        };
        if let Some(what) = with_nul {
            return self.fail(
                stream_id,
                format!(
                    "{what} contains a NUL byte, which cannot be passed to a worker; remove it from the task database"
                ),
            );
        }
        let sandbox = match self.settings.sandbox.plan(&worker::sandbox::Place {
            project: &self.settings.project,
            stream: stream_id,
            dir: &placement.dir,
            db: Some(&self.settings.db_path),
        }) {
            Ok(plan) => plan,
            // Retrying cannot help either.
            Err(e) => return self.fail(stream_id, e.reason()),
        };
        let log = worker::log_path(&self.settings.project.logs_dir(), stream_id);
        let new = NewWorker {
            stream: stream_id,
            attempt,
            log_path: &log,
            command: &self.settings.worker_cmd,
            dir: &placement.dir,
            branch: placement.branch.as_deref(),
            base: placement.base.as_deref(),
            sandbox: sandbox.applied(),
        };
        let record = match self.store.claim(&new, &self.me)? {
            Claim::Granted(id) => id,
            Claim::Taken(rec) => {
                // Another `start` launched it a moment ago: watch it instead.
                self.watch_adopted(*rec);
                return Ok(());
            }
        };
        let argv = sandbox.wrap(argv, true);
        match self.spawn(stream, attempt, &placement, &argv, &sandbox, &log, record) {
            Ok(identity) => {
                self.workspaces
                    .lock()
                    .expect("no panics while holding the workspaces")
                    .worker_started(stream_id, &placement, identity.pid as u32);
                self.reporter.event(Event::Started {
                    stream: stream_id,
                    pid: identity.pid,
                    attempt,
                });
                self.running.insert(
                    stream_id.to_string(),
                    Running {
                        record,
                        identity,
                        attempt,
                        placement,
                        log,
                        adopted: false,
                        via_claimer: false,
                        last_activity: None,
                    },
                );
                Ok(())
            }
            Err(e) => {
                let text = format!("{e:?}");
                self.store.record_spawn_failure(record, &text)?;
                self.fail(stream_id, format!("could not start its worker: {text}"))
            }
        }
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one launch's facts, each used once"
    )]
    fn spawn(
        &self,
        stream: &crate::graph::Stream,
        attempt: u32,
        placement: &Placement,
        argv: &[std::ffi::OsString],
        sandbox: &worker::sandbox::Plan,
        log: &Path,
        record: i64,
    ) -> Result<Identity> {
        let file = worker::open_log(
            log,
            &worker::Header {
                stream: stream.id(),
                name: &stream.record.name,
                dependencies: &stream.dependencies,
                attempt,
                command: &self.settings.worker_cmd,
                dir: &placement.dir,
                branch: placement.branch.as_deref(),
                sandbox: &sandbox.header(),
            },
        )?;
        let spawn_err = |source| worker::WorkerError::Spawn {
            stream: stream.id().to_string(),
            source,
        };
        let err_file = file.try_clone().map_err(spawn_err)?;
        let s = &self.settings;
        let mut cmd = tokio::process::Command::new(&s.exe);
        cmd.arg("__supervise")
            .arg("--record")
            .arg(record.to_string())
            .arg("--state")
            .arg(self.store.path())
            .arg("--")
            .args(argv)
            .current_dir(&placement.dir)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err_file))
            .env("ORCHESTRATE_STREAM", stream.id())
            .env("ORCHESTRATE_STREAM_NAME", &stream.record.name)
            .env("ORCHESTRATE_WORKTREE", &placement.dir)
            .env(
                "ORCHESTRATE_BRANCH",
                placement.branch.as_deref().unwrap_or(""),
            )
            .env("ORCHESTRATE_DB", &s.db_path)
            .env("ORCHESTRATE_PROJECT_ROOT", &s.project.root)
            .env("ORCHESTRATE_BIN", &s.exe)
            .env("ORCHESTRATE_ATTEMPT", attempt.to_string());
        let mut child = cmd.spawn().map_err(spawn_err)?;
        let pid = child.id().map(|p| p as i32).unwrap_or(0);
        // The child is not reaped until we wait, so its /proc entry is readable even if it
        // already exited.
        let identity = identity_of(pid).ok_or_else(|| {
            Error::msg(format!(
                "the supervisor of {} (pid {pid}) vanished at once",
                stream.id()
            ))
        })?;
        self.store.set_spawned(record, &identity)?;
        let tx = self.exits_tx.clone();
        tokio::spawn(async move {
            let _ = child.wait().await;
            let _ = tx.send(record);
        });
        Ok(identity)
    }

    /// Every selected stream that is not complete, and why.
    fn summary(&self) -> RunEnd {
        let mut out = Vec::new();
        for (stream, class) in self.classify() {
            let (state, why) = match class {
                Class::Complete | Class::NotSelected => continue,
                Class::Cancelled => {
                    // Dropped on purpose; its dependents say so as skipped.
                    continue;
                }
                Class::Failed(r) => ("failed", r),
                Class::Stopped => (
                    "stopped",
                    format!("stopped by the user; `orchestrate start {stream}` starts it again"),
                ),
                Class::Blocked(r) => ("blocked", r),
                Class::Skipped(r) => ("skipped", format!("skipped because {r}")),
                Class::Waiting(deps) => {
                    let dirty: Vec<&String> = deps
                        .iter()
                        .filter(|d| {
                            self.settings.worktree_mode
                                && !self.finished_clean.contains(*d)
                                && self
                                    .graph
                                    .get(d)
                                    .is_some_and(|s| s.record.counts.is_complete())
                        })
                        .collect();
                    if dirty.is_empty() {
                        ("waiting", format!("waits for {}", deps.join(", ")))
                    } else {
                        (
                            "waiting",
                            format!(
                                "waits for {}: finished with uncommitted changes",
                                dirty
                                    .iter()
                                    .map(|s| s.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        )
                    }
                }
                Class::Running | Class::Ready => ("pending", "not started".into()),
            };
            out.push(Unfinished { stream, state, why });
        }
        if out.is_empty() {
            RunEnd::AllComplete
        } else {
            RunEnd::Incomplete(out)
        }
    }
}

/// A transient task-database error as a note: with its causes and hint (a lock held past the
/// busy timeout read as a bare "cannot read task database FILE").
fn db_note(what: &str, e: crate::taskdb::TaskDbError) -> String {
    let e = Error::from(e);
    let mut text = format!("{what}: {}", e.chain().join(": "));
    if let Some(hint) = e.hint() {
        text.push_str(&format!("; {hint}"));
    }
    text
}

/// The `said` key of a task-database warning.
const WARNING: &str = "source warning";

/// Watches the task database's folder with inotify from a helper thread, sending a wake-up for
/// every write to the database or its `-wal`/`-shm` files. False if no watch could be set up.
fn watch_db_dir(db: &Path, tx: mpsc::UnboundedSender<()>) -> bool {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let (Some(dir), Some(name)) = (db.parent(), db.file_name()) else {
        return false;
    };
    let name = name.to_os_string();
    let Ok(inotify) = Inotify::init(InitFlags::IN_CLOEXEC) else {
        return false;
    };
    let mask = AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_CLOSE_WRITE;
    if inotify.add_watch(dir, mask).is_err() {
        return false;
    }
    std::thread::Builder::new()
        .name("taskdb-watch".into())
        .spawn(move || {
            // Blocks in read; ends with the process (or when `start` stops listening).
            while let Ok(events) = inotify.read_events() {
                let ours = events.iter().any(|e| {
                    e.name
                        .as_ref()
                        .is_some_and(|n| n.as_encoded_bytes().starts_with(name.as_encoded_bytes()))
                });
                if ours && tx.send(()).is_err() {
                    break;
                }
            }
        })
        .is_ok()
}

/// What one dispatch turn ended with.
enum Turn {
    /// Nothing more to launch now.
    Idle,
    /// A ready stream waits for the stagger timer.
    Stagger,
    /// Ctrl-C / SIGTERM arrived during a launch.
    Interrupted,
}

/// SIGINT and SIGTERM, as one stream of "stop now".
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let err = |e| Error::msg(format!("cannot listen for signals: {e}"));
        Ok(Self {
            int: signal(SignalKind::interrupt()).map_err(err)?,
            term: signal(SignalKind::terminate()).map_err(err)?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

/// "worker exited with code 0 (session …, cost $…, N turns)".
fn exit_summary(r: &WorkerRecord) -> String {
    let mut text = match (r.exit_code, r.signal, r.outcome.as_deref()) {
        (_, _, Some("stopped")) => "worker stopped".to_string(),
        (Some(c), _, _) => format!("worker exited with code {c}"),
        (_, Some(s), _) => format!("worker killed by signal {s}"),
        _ => "worker gone without a recorded exit".to_string(),
    };
    let mut extra = Vec::new();
    if let Some(id) = &r.session_id {
        extra.push(format!("session {id}"));
    }
    if let Some(cost) = r.cost_usd {
        extra.push(format!("cost ${cost:.4}"));
    }
    if let Some(turns) = r.turns {
        extra.push(format!("{turns} turns"));
    }
    if !extra.is_empty() {
        text.push_str(&format!(" ({})", extra.join(", ")));
    }
    text
}

/// Why a worker's run did not complete its stream: the agent's error result, the start-up
/// error, or the exit status with the last lines of its log.
fn exit_reason(rec: Option<&WorkerRecord>, log: &Path) -> String {
    let text = worker::tail(log, 64 * 1024).unwrap_or_default();
    if let Some(err) = rec.and_then(|r| r.error.clone()) {
        return err;
    }
    if let Some(err) = render::error_result(&text) {
        return format!("the agent reported an error: {err}");
    }
    let status = match rec {
        Some(r) => match (r.exit_code, r.signal, r.outcome.as_deref()) {
            (Some(0), _, _) => "its worker exited with code 0 leaving tasks open".to_string(),
            (Some(c), _, _) => format!("its worker exited with code {c}"),
            (_, Some(s), _) => format!("its worker was killed by signal {s}"),
            (_, _, Some("lost")) | (None, None, None) => {
                "its worker's supervisor was killed before recording an exit".to_string()
            }
            _ => "its worker ended".to_string(),
        },
        None => "its worker ended".to_string(),
    };
    let lines = render::last_lines(&text, REASON_LINES);
    let hint = worker::sandbox::refusal_hint(&text)
        .map(|h| format!("\n    hint: {h}"))
        .unwrap_or_default();
    if lines.is_empty() {
        status + &hint
    } else {
        format!(
            "{status}; last lines of its log:\n    {}{hint}",
            lines.join("\n    ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(exit_code: Option<i32>, signal: Option<i32>, error: Option<&str>) -> WorkerRecord {
        WorkerRecord {
            id: 1,
            stream: "A".into(),
            attempt: 1,
            claimer: None,
            identity: None,
            worker_pid: None,
            log_path: PathBuf::from("/nonexistent"),
            command: None,
            dir: None,
            branch: None,
            base: None,
            started_at: String::new(),
            ended_at: Some(String::new()),
            exit_code,
            signal,
            outcome: Some("exited".into()),
            error: error.map(String::from),
            session_id: None,
            cost_usd: None,
            turns: None,
            sandbox: None,
        }
    }

    #[test]
    fn exit_reasons_quote_the_log_and_prefer_the_agents_own_error() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("a.log");
        std::fs::write(
            &log,
            "==== header\n--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons\n==== orchestrate: worker exited with code 1\n",
        )
        .unwrap();
        let why = exit_reason(Some(&record(Some(1), None, None)), &log);
        assert!(
            why.starts_with("its worker exited with code 1; last lines of its log:"),
            "{why}"
        );
        assert!(why.contains("cannot be used with root/sudo"), "{why}");
        assert!(!why.contains("===="), "{why}");

        std::fs::write(
            &log,
            "{\"type\":\"result\",\"is_error\":true,\"result\":\"Not logged in\"}\n",
        )
        .unwrap();
        assert_eq!(
            exit_reason(Some(&record(Some(1), None, None)), &log),
            "the agent reported an error: Not logged in"
        );
        assert_eq!(
            exit_reason(
                Some(&record(
                    Some(127),
                    None,
                    Some("cannot run worker program `x`")
                )),
                &log
            ),
            "cannot run worker program `x`"
        );
        let killed = exit_reason(
            Some(&record(None, Some(9), None)),
            Path::new("/nonexistent"),
        );
        assert_eq!(killed, "its worker was killed by signal 9");
    }

    #[test]
    fn tail_drops_a_partial_first_line() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("a.log");
        std::fs::write(&log, "first line\nsecond\nthird\n").unwrap();
        assert_eq!(worker::tail(&log, 13).unwrap(), "third\n");
        assert_eq!(
            worker::tail(&log, 1000).unwrap(),
            "first line\nsecond\nthird\n"
        );
    }
}
