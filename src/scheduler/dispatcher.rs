//! The dispatcher: one loop, one owner of the run's state. Each turn it derives the model from
//! its facts, reports what changed, launches what the model says may launch, and waits for
//! the next thing to happen.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use super::event::{Event, Reporter, RunEnd, RunStats, Unfinished};
use super::{Settings, exits, watch};
use crate::error::{Error, Result};
use crate::facts::{self, Spending};
use crate::graph::StreamGraph;
use crate::model::{
    self, Failure, Mode, Model, Observed, Park, ParkCause, State, Verdict, VerifyFact, WorkerFact,
};
use crate::proc::Identity;
use crate::signals::Signals;
use crate::state::time::{now_rfc3339, now_unix};
use crate::state::{Finalize, StateStore, WorkerRecord};
use crate::taskdb::{Changes, Snapshot, TaskDb, TaskSource};
use crate::worker::agent::{LimitStatus, Outcome, Transcript};
use crate::worker::prompt::Happened;
use crate::worker::{self, render};
use crate::workspace::{Placement, Progress, Workspaces};

/// How often adopted workers (not our children) are checked in `/proc`.
const ADOPTED_POLL: Duration = Duration::from_millis(100);
/// How often running workers' logs are read: for the live view's activity line, and for what
/// the API says while they run (a usage limit rejected, a warning past a threshold).
const ACTIVITY_POLL: Duration = Duration::from_millis(500);
/// A refresh for a database change waits until this many times the last one's CPU cost has
/// passed: while thousands of workers write, reading what changed costs at most about 1/30 of a
/// core however fast they write (a worker's exit is read at once, whatever the wait). At 1/20,
/// `start` used 8.9–10.0 % of a core under 667 task updates a second (target ≤ 10 %).
const REFRESH_SHARE: u32 = 30;
/// How many times a run about to end looks again at a database that keeps changing.
const END_LOOKS: u32 = 3;
/// How many times in a row a stream may be backed off because the API is overloaded or
/// failing before it counts as failed.
const MAX_UNAVAILABLE: u32 = 8;
/// How long to wait for another `start` processing an ended worker's leftovers.
const FINALIZE_WAIT: Duration = Duration::from_secs(30);

/// A worker this run watches.
pub(super) struct Running {
    pub record: i64,
    pub identity: Identity,
    pub attempt: u32,
    pub placement: Placement,
    pub log: PathBuf,
    /// Not our child: its end is noticed by polling `/proc`.
    pub adopted: bool,
    /// Adopted while another `start` was still spawning it: `identity` is that `start`'s
    /// until the row names the supervisor.
    pub via_claimer: bool,
    pub last_activity: Option<String>,
    /// What its output said so far, fed as it grows.
    pub transcript: Transcript,
    /// How far into the log the transcript has read.
    pub read_to: u64,
    /// It resumed an earlier session (a missing session then means: start afresh).
    pub resumed: bool,
}

/// A worker that exited; whether it finished its tasks is judged on a fresh, successful read
/// of the task database (judging on the last snapshot lost completions).
pub(super) struct Exited {
    pub attempt: u32,
    /// It ended while the task database could not be read: it worked blind, so its attempt
    /// is not counted.
    pub blind: bool,
    pub rec: Option<WorkerRecord>,
    pub log: PathBuf,
    pub resumed: bool,
    pub placement: Placement,
}

/// A stream's verify command running under its supervisor.
pub(super) struct Verifying {
    pub record: i64,
    pub identity: Identity,
    pub deadline: Instant,
    /// Stopped because it ran out of time.
    pub timed_out: bool,
    /// Not our child: its end is noticed by polling `/proc`.
    pub adopted: bool,
}

/// Where a stream's worker is in its life, as this run knows it.
#[derive(Default)]
pub(super) enum Slot {
    #[default]
    Idle,
    /// Claimed by this run: its worktree is being prepared or its worker spawned.
    Preparing,
    Running(Box<Running>),
    /// Ended, awaiting judgment; counts as live (nothing may start on it or relaunch it).
    Exited(Box<Exited>),
    /// Its tasks are complete and its verify command runs.
    Verifying(Box<Verifying>),
    /// Its worker ended while no `start` watched it; what it left is looked at first.
    Unprocessed(Box<WorkerRecord>),
}

/// Everything the run knows about one stream: the one typed record the dispatcher keeps.
#[derive(Default)]
pub(super) struct StreamRun {
    /// Launches of its worker in this run.
    pub attempts: u32,
    /// Attempts that count against `--retries` (parks and a missing session do not).
    pub failures: u32,
    /// Back-offs in a row because the API was overloaded or failing.
    pub unavailable: u32,
    /// Back-offs in a row on a usage limit that gave no reset time.
    pub limited: u32,
    /// The durable verdict, as written to the state store.
    pub verdict: Option<Verdict>,
    pub slot: Slot,
    /// Its verify command, when one applies; and whether it passed.
    pub verify_cmd: Option<String>,
    pub verify: VerifyFact,
    /// The agent session to resume, and what the resumed attempt is told.
    pub session: Option<String>,
    pub happened: Option<Happened>,
    /// The session could not be resumed: the next attempt starts afresh with the full prompt.
    pub fresh_next: bool,
    /// Launched while the API warned that a limit is near (one new launch at a time).
    pub launched_while_warned: bool,
    /// The state last reported, so each change is said once.
    reported: Option<State>,
    /// What the conflict radar predicts for its branch now (`scheduler::radar`).
    pub conflicts: Vec<crate::model::ConflictWith>,
}

impl StreamRun {
    fn observed(&self) -> Observed {
        Observed {
            verdict: self.verdict.clone(),
            worker: match &self.slot {
                Slot::Idle => WorkerFact::None,
                Slot::Preparing => WorkerFact::Preparing,
                Slot::Running(_) | Slot::Exited(_) => WorkerFact::Live,
                Slot::Verifying(_) => WorkerFact::Verifying,
                Slot::Unprocessed(_) => WorkerFact::ExitUnprocessed,
            },
            verify: self.verify,
            conflicts: self.conflicts.clone(),
        }
    }
}

pub struct Scheduler<'a> {
    pub(super) settings: Settings,
    pub(super) db: TaskDb,
    pub(super) store: StateStore,
    /// Shared with the blocking thread that runs `prepare` (git work, `post_create`), so that
    /// Ctrl-C is answered while it runs.
    pub(super) workspaces: Arc<Mutex<Box<dyn Workspaces>>>,
    pub(super) reporter: &'a mut dyn Reporter,
    pub(super) me: Identity,
    pub(super) graph: StreamGraph,
    /// The last build of the graph from the task database's view failed: it is older than
    /// the view (see [`Self::apply_changes`]).
    graph_stale: bool,
    pub(super) runs: BTreeMap<String, StreamRun>,
    /// Source warnings already reported (said once each).
    said_warnings: std::collections::HashSet<String>,
    /// The task-database fault being ridden out, as said (once; again only when it changes).
    /// While it lasts nothing is judged or launched.
    db_fault: Option<String>,
    pub(super) next_launch: Option<Instant>,
    /// No probe of the task database for its changes before this (see [`REFRESH_SHARE`]).
    next_probe: Instant,
    /// The last refresh found something changed.
    refreshed_changes: bool,
    pub(super) exits_tx: mpsc::UnboundedSender<i64>,
    exits_rx: mpsc::UnboundedReceiver<i64>,
    /// How far the preparation under way has come (sent from the blocking `prepare`).
    pub(super) progress_rx: mpsc::UnboundedReceiver<(String, Progress)>,
    /// The API warned that a limit is near: one new launch at a time until then (unix s).
    warned_until: Option<i64>,
    /// What the run spent (since this `start` began) against `--run-budget-usd`.
    pub(super) budget: Budget,
    /// Since when a usage limit has held every launch (unix s), and the seconds held so far.
    hold_since: Option<i64>,
    held_secs: i64,
    /// The conflict radar (worktree mode), compared on every wake-up.
    pub(super) radar: Option<super::radar::RadarWatch>,
}

/// The run's spending against its budget.
#[derive(Default)]
pub(super) struct Budget {
    pub limit: Option<f64>,
    /// Spending counts from here (RFC 3339): this `start`'s beginning.
    pub since: String,
    pub spent: f64,
    warned: bool,
}

impl Budget {
    fn reached(&self) -> bool {
        self.limit.is_some_and(|l| self.spent >= l)
    }
}

/// What one dispatch turn ended with.
pub(super) enum Turn {
    /// Nothing more to launch now.
    Idle,
    /// A ready stream waits for the stagger timer.
    Stagger,
    /// Ctrl-C / SIGTERM arrived during a launch.
    Interrupted,
}

impl<'a> Scheduler<'a> {
    pub fn new(
        settings: Settings,
        mut db: TaskDb,
        store: StateStore,
        workspaces: Box<dyn Workspaces>,
        reporter: &'a mut dyn Reporter,
    ) -> Result<Self> {
        // The long-lived view, kept current by `refresh` (reading only what changed).
        db.refresh()?;
        let snapshot = db.view();
        let graph = graph_of(snapshot, settings.strict_files)?;
        let me = Identity::current()
            .ok_or_else(|| Error::msg("cannot read this process's identity from /proc"))?;
        let (exits_tx, exits_rx) = mpsc::unbounded_channel();
        let (progress_tx, progress_rx) = mpsc::unbounded_channel();
        let mut workspaces = workspaces;
        workspaces.set_progress(Arc::new(move |stream: &str, p: Progress| {
            let _ = progress_tx.send((stream.to_string(), p));
        }));
        // `start` printed these before the run; later refreshes report only new ones.
        let said_warnings = snapshot.warnings.iter().map(|w| w.to_string()).collect();
        let budget = Budget {
            limit: settings.run_budget_usd,
            since: now_rfc3339(),
            ..Budget::default()
        };
        Ok(Self {
            budget,
            warned_until: None,
            hold_since: None,
            held_secs: 0,
            radar: None,
            settings,
            db,
            store,
            workspaces: Arc::new(Mutex::new(workspaces)),
            reporter,
            me,
            graph_stale: false,
            graph,
            runs: BTreeMap::new(),
            said_warnings,
            db_fault: None,
            next_launch: None,
            next_probe: Instant::now(),
            refreshed_changes: false,
            exits_tx,
            exits_rx,
            progress_rx,
        })
    }

    fn mode(&self) -> Mode {
        Mode {
            worktrees: self.settings.worktree_mode,
            now: now_unix(),
            budget_reached: self.budget.reached(),
        }
    }

    /// Runs until every stream is complete, nothing more can run, or a signal arrives.
    pub async fn run(mut self) -> Result<(RunEnd, RunStats)> {
        let mut signals = Signals::new()?;
        self.load_facts()?;
        self.adopt()?;
        self.process_unprocessed()?;
        self.open_radar();
        let (db_tx, mut db_events) = mpsc::unbounded_channel();
        let tick = if watch::watch_db(&self.settings.db_path, move || db_tx.send(()).is_ok()) {
            watch::PROBE_WITH_WATCH
        } else {
            watch::PROBE_WITHOUT_WATCH
        };
        let mut probe = tokio::time::interval(tick);
        probe.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let every = |period: Duration| (period.as_millis() / tick.as_millis()).max(1) as u32;
        let (adopted_every, activity_every) = (every(ADOPTED_POLL), every(ACTIVITY_POLL));
        let mut ticks: u32 = 0;
        let mut end_looks = 0;
        // A write came while a refresh was put off (`REFRESH_SHARE`): probe when the wait ends.
        // Kept across turns: a turn for another reason (an exit, the tick) does not probe early.
        let mut stale = false;
        loop {
            let waiting_for_stagger = match self.dispatch(&mut signals).await? {
                Turn::Idle => false,
                Turn::Stagger => true,
                Turn::Interrupted => return Ok(self.interrupted()),
            };
            // Whatever woke us (a commit lands with a task update, an exit, or the tick):
            // after the launches, so that a handoff never waits for a preview.
            self.watch_conflicts();
            let wake = self.next_wake();
            if !self.anything_live() && !waiting_for_stagger && wake.is_none() {
                // One last look at every change (an exit reads only its stream's rows, and a
                // refresh may have been put off): the run ends on what the database says.
                // A few looks at most: a database written on and on must not keep it running.
                self.refreshed_changes = false;
                end_looks += 1;
                if end_looks > END_LOOKS || !self.refresh() || !self.refreshed_changes {
                    return Ok(self.summary());
                }
                continue;
            }
            end_looks = 0;
            let stagger_at = self.next_launch.unwrap_or_else(Instant::now);
            let wake_at = wake.unwrap_or_else(Instant::now);
            // Waits for something worth a turn (each turn derives the model). A write while a
            // refresh is put off only marks the view stale, and the probe comes when the wait
            // is over: waiting for the tick instead made a handoff right after a cheap refresh
            // wait up to 100 ms (BENCHMARKS.md §1).
            loop {
                tokio::select! {
                    Some(record) = self.exits_rx.recv() => {
                        self.on_exit(record)?;
                        break;
                    }
                    Some(()) = db_events.recv() => {
                        while db_events.try_recv().is_ok() {}
                        if Instant::now() < self.next_probe {
                            stale = true;
                            continue;
                        }
                        stale = false;
                        self.probe_db();
                        self.judge_exited()?;
                        break;
                    }
                    _ = tokio::time::sleep_until(self.next_probe), if stale => {
                        stale = false;
                        self.probe_db();
                        self.judge_exited()?;
                        break;
                    }
                    _ = probe.tick() => {
                        ticks = ticks.wrapping_add(1);
                        // The probe below runs only once the wait is over; then it covers
                        // what was stale.
                        stale &= Instant::now() < self.next_probe;
                        self.probe_db();
                        self.judge_exited()?;
                        if ticks.is_multiple_of(adopted_every) {
                            self.poll_adopted()?;
                        }
                        if ticks.is_multiple_of(activity_every) {
                            self.read_activity()?;
                        }
                        self.time_out_verifications().await;
                        break;
                    }
                    _ = tokio::time::sleep_until(stagger_at), if waiting_for_stagger => break,
                    _ = tokio::time::sleep_until(wake_at), if wake.is_some() => break,
                    _ = signals.recv() => return Ok(self.interrupted()),
                }
            }
        }
    }

    /// The same facts `status` reads (verdicts re-checked against git), as this run's records.
    fn load_facts(&mut self) -> Result<()> {
        let facts = facts::gather(&self.settings.project, &self.graph, Some(self.mode()))?;
        for (stream, observed) in facts.observed {
            let run = self.runs.entry(stream).or_default();
            run.verdict = observed.verdict;
            run.verify = observed.verify;
            if let Some(Verdict::Parked { park }) = &run.verdict {
                run.session = park.session_id.clone();
                run.happened = Some(Happened::Parked(park.cause.clone()));
            }
        }
        let streams: Vec<(String, Option<String>)> = self
            .graph
            .streams()
            .iter()
            .map(|s| (s.id().to_string(), s.record.verify.clone()))
            .collect();
        for (stream, own) in streams {
            let cmd = own
                .or_else(|| self.settings.verify.clone())
                .filter(|c| !c.trim().is_empty());
            self.run_of(&stream).verify_cmd = cmd;
        }
        Ok(())
    }

    /// The next moment something is due without any event: a parked stream's time comes, a
    /// warning's window ends, a verification's time runs out.
    fn next_wake(&self) -> Option<Instant> {
        let now = now_unix();
        let at = |unix: i64| Instant::now() + Duration::from_secs((unix - now).max(0) as u64);
        let parks = self.runs.values().filter_map(|r| match &r.verdict {
            Some(Verdict::Parked { park }) if park.until > now => Some(at(park.until)),
            _ => None,
        });
        let verifications = self.runs.values().filter_map(|r| match &r.slot {
            Slot::Verifying(v) if !v.timed_out => Some(v.deadline),
            _ => None,
        });
        let warning = self.warned_until.filter(|&t| t > now).map(at);
        parks.chain(verifications).chain(warning).min()
    }

    fn anything_live(&self) -> bool {
        self.runs.values().any(|r| {
            matches!(
                r.slot,
                Slot::Running(_) | Slot::Exited(_) | Slot::Preparing | Slot::Verifying(_)
            )
        })
    }

    pub(super) fn live_workers(&self) -> usize {
        self.runs
            .values()
            .filter(|r| {
                matches!(
                    r.slot,
                    Slot::Running(_) | Slot::Preparing | Slot::Verifying(_)
                )
            })
            .count()
    }

    pub(super) fn run_of(&mut self, stream: &str) -> &mut StreamRun {
        self.runs.entry(stream.to_string()).or_default()
    }

    fn interrupted(&self) -> (RunEnd, RunStats) {
        let live: Vec<(String, i32)> = self
            .runs
            .iter()
            .filter_map(|(s, r)| match &r.slot {
                Slot::Running(run) => Some((s.clone(), run.identity.pid)),
                Slot::Verifying(v) => Some((s.clone(), v.identity.pid)),
                _ => None,
            })
            .collect();
        (RunEnd::Interrupted(live), self.stats())
    }

    /// What the run spent and how long it was held by a usage limit.
    fn stats(&self) -> RunStats {
        let spending = self
            .store
            .workers_since(&self.budget.since)
            .map(|rows| Spending::of(&rows))
            .unwrap_or_default();
        let held = self.held_secs + self.hold_since.map_or(0, |t| now_unix() - t);
        RunStats {
            spending,
            budget: self.budget.limit,
            parked: Duration::from_secs(held.max(0) as u64),
        }
    }

    /// Watches workers an earlier `start` launched that are still alive; notes the ones that
    /// ended while nobody watched, so what they left is looked at before anything starts.
    fn adopt(&mut self) -> Result<()> {
        for rec in self.store.latest_workers()? {
            if rec.session_id.is_some() {
                let stream = rec.stream.clone();
                self.run_of(&stream).session = rec.session_id.clone();
            }
            if rec.is_live() {
                if self.selected(&rec.stream) {
                    self.watch_adopted(rec);
                }
                continue;
            }
            if rec.ended_at.is_none() && !self.store.mark_lost(&rec)? {
                // Its supervisor recorded itself as we looked: alive after all.
                if let Some(rec) = self.store.worker(rec.id)?
                    && self.selected(&rec.stream)
                {
                    self.watch_adopted(rec);
                }
                continue;
            }
            if rec.finalized_at.is_none() {
                let stream = rec.stream.clone();
                self.run_of(&stream).slot = Slot::Unprocessed(Box::new(rec));
            }
        }
        for rec in self.store.latest_verifications()? {
            if rec.is_live() && rec.identity.is_some() {
                self.watch_adopted_verify(rec);
            } else if rec.finalized_at.is_none() {
                if rec.ended_at.is_none() {
                    self.store.mark_lost(&rec)?;
                }
                let rec = self.store.worker(rec.id)?.unwrap_or(rec);
                self.judge_verify_row(&rec, false)?;
            }
        }
        // Older unfinished rows of a stream whose latest row is done: gone, never signalled.
        for rec in self.store.open_workers()? {
            if !rec.is_live() {
                self.store.mark_lost(&rec)?;
            }
        }
        Ok(())
    }

    /// Looks at what workers that ended unwatched left in their worktrees (auto-commit, or a
    /// verdict that needs a person), as if this run had seen them exit.
    fn process_unprocessed(&mut self) -> Result<()> {
        let pending: Vec<(String, WorkerRecord)> = self
            .runs
            .iter_mut()
            .filter_map(|(s, r)| match std::mem::take(&mut r.slot) {
                Slot::Unprocessed(rec) => Some((s.clone(), *rec)),
                other => {
                    r.slot = other;
                    None
                }
            })
            .collect();
        for (stream, rec) in pending {
            let placement = Placement::of_record(&rec, &self.settings.project.root);
            self.finish_worker(&stream, rec.id, &placement)?;
        }
        Ok(())
    }

    pub(super) fn watch_adopted(&mut self, rec: WorkerRecord) {
        if let Some(identity) = rec.identity.as_ref().or(rec.claimer.as_ref()) {
            self.reporter.event(Event::Adopted {
                stream: &rec.stream,
                pid: identity.pid,
                attempt: rec.attempt,
                started_at: &rec.started_at,
            });
        }
        self.watch(rec);
    }

    /// Watches a worker this run did not spawn: its end is noticed by polling `/proc`.
    pub(super) fn watch(&mut self, rec: WorkerRecord) {
        let via_claimer = rec.identity.is_none();
        let Some(identity) = rec.identity.clone().or(rec.claimer.clone()) else {
            return;
        };
        let dir = rec
            .dir
            .clone()
            .unwrap_or_else(|| self.settings.project.root.clone());
        let run = self.run_of(&rec.stream);
        run.attempts = run.attempts.max(rec.attempt);
        run.slot = Slot::Running(Box::new(Running {
            record: rec.id,
            identity,
            attempt: rec.attempt,
            placement: Placement {
                dir,
                branch: rec.branch.clone(),
                base: rec.base.clone(),
                notes: Vec::new(),
            },
            read_to: rec.log_offset,
            log: rec.log_path.clone(),
            adopted: true,
            via_claimer,
            last_activity: None,
            transcript: Transcript::default(),
            resumed: false,
        }));
    }

    pub(super) fn selected(&self, stream: &str) -> bool {
        self.settings
            .selection
            .as_ref()
            .is_none_or(|s| s.contains(stream))
    }

    /// The model of this run's facts.
    pub(super) fn model(&self) -> Model {
        // Only what is observed of a stream: one idle, without verdict or verify command, is
        // what `derive` assumes of a stream it is told nothing of (at 2,000 streams, building
        // the map for all of them was most of a derivation's cost, several times a launch).
        let observed: HashMap<String, Observed> = self
            .runs
            .iter()
            .filter(|(_, r)| {
                r.verdict.is_some()
                    || !matches!(r.slot, Slot::Idle)
                    || r.verify != VerifyFact::default()
            })
            .map(|(s, r)| (s.clone(), r.observed()))
            .collect();
        model::derive(&self.graph, &observed, self.mode())
    }

    /// Reports news and launches what the model says is ready.
    async fn dispatch(&mut self, signals: &mut Signals) -> Result<Turn> {
        loop {
            let model = self.model();
            self.report_news(&model);
            self.track_hold(&model);
            // Work an earlier `start` left unverified (it ended before the check ran).
            let owed: Vec<String> = model
                .views()
                .iter()
                .filter(|v| v.state == State::Complete && v.verify_pending && self.selected(&v.id))
                .filter(|v| {
                    matches!(
                        self.runs.get(&v.id).map(|r| &r.slot),
                        Some(Slot::Idle) | None
                    )
                })
                .map(|v| v.id.clone())
                .collect();
            let mut started = false;
            for stream in owed {
                self.verify_owed(&stream)?;
                started |= !matches!(self.run_of(&stream).slot, Slot::Idle);
            }
            if started {
                continue;
            }
            // Streams back from a park or a failed verification go first: they hold work
            // in progress.
            let Some(stream) = model
                .views()
                .iter()
                .filter(|v| v.actions.launch && self.selected(&v.id))
                .min_by_key(|v| {
                    let back = matches!(
                        self.runs.get(&v.id).and_then(|r| r.verdict.as_ref()),
                        Some(Verdict::Parked { .. } | Verdict::VerifyFailed { .. })
                    );
                    !back
                })
                .map(|v| v.id.clone())
            else {
                return Ok(Turn::Idle);
            };
            // While the task database cannot be read, a worker started could not read or mark
            // its tasks.
            if self.db_fault.is_some()
                || self.live_workers() >= self.settings.max_parallel
                || self.warned_hold()
            {
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

    /// The API warned that a limit is near and its window has not ended.
    pub(super) fn warned(&self) -> bool {
        self.warned_until.is_some_and(|t| t > now_unix())
    }

    /// While the API warns that a limit is near, one new launch at a time: none while a
    /// worker launched during the warning still runs.
    fn warned_hold(&mut self) -> bool {
        if self.warned_until.is_none_or(|t| t <= now_unix()) {
            self.warned_until = None;
            for r in self.runs.values_mut() {
                r.launched_while_warned = false;
            }
            return false;
        }
        self.runs.values().any(|r| {
            r.launched_while_warned
                && matches!(r.slot, Slot::Running(_) | Slot::Preparing | Slot::Exited(_))
        })
    }

    /// Counts the time every launch was held by a usage limit, for the summary.
    fn track_hold(&mut self, model: &Model) {
        let held = model.views().iter().any(|v| {
            matches!(&v.reason, Some(model::Reason::Parked { park, .. }) if park.cause.holds_the_run())
        });
        match (held, self.hold_since) {
            (true, None) => self.hold_since = Some(now_unix()),
            (false, Some(since)) => {
                self.held_secs += now_unix() - since;
                self.hold_since = None;
            }
            _ => {}
        }
    }

    /// Says each stream's change of state once, and hands the UI the new snapshot.
    fn report_news(&mut self, model: &Model) {
        let mut changed = false;
        for view in model.views() {
            // Looked up before `entry`, which would copy the id of each of 2,000 streams
            // at every derivation.
            let run = match self.runs.get_mut(&view.id) {
                Some(run) => run,
                None => self.runs.entry(view.id.clone()).or_default(),
            };
            if run.reported == Some(view.state) {
                continue;
            }
            let first = run.reported.is_none();
            run.reported = Some(view.state);
            changed = true;
            let worth_saying = matches!(
                view.state,
                State::Complete
                    | State::Skipped
                    | State::Blocked
                    | State::NeedsAttention
                    | State::Failed
                    | State::Stopped
                    | State::Parked
                    | State::Verifying
                    | State::BudgetReached
            );
            // Streams complete before the run began are not news.
            if worth_saying && !(first && view.state == State::Complete) {
                self.reporter.event(Event::Entered {
                    stream: &view.id,
                    state: view.state,
                    reason: view.reason.as_ref(),
                });
            }
        }
        if changed {
            self.reporter.event(Event::Snapshot {
                graph: &self.graph,
                model,
            });
        }
    }

    fn probe_db(&mut self) {
        // Not yet: the change stays unseen by the probe, and a later one finds it.
        if Instant::now() < self.next_probe {
            return;
        }
        match self.db.has_changed() {
            Ok(true) => {
                self.refresh();
            }
            Ok(false) if self.db_fault.is_some() => {
                // It may have come back without changing (a lock released).
                self.refresh();
            }
            Ok(false) => {}
            Err(e) => self.db_failed(e),
        }
    }

    /// Says a task-database fault once (the watch and the probe see it many times a second),
    /// and again only when it changes.
    fn db_failed(&mut self, e: crate::taskdb::TaskDbError) {
        let text = match &e {
            crate::taskdb::TaskDbError::Missing { path, .. } => format!(
                "the task database {} is gone (deleted or moved); no worker is judged or started \
                 until it is back",
                path.display()
            ),
            _ => format!(
                "{}; no worker is judged or started until it can be read",
                db_note("cannot read the task database", e)
            ),
        };
        if self.db_fault.as_ref() != Some(&text) {
            self.reporter.event(Event::Note {
                stream: None,
                text: text.clone(),
            });
            self.db_fault = Some(text);
        }
    }

    /// Notices the end of workers that are not our children.
    fn poll_adopted(&mut self) -> Result<()> {
        self.learn_supervisors()?;
        let gone: Vec<i64> = self
            .runs
            .values()
            .filter_map(|r| match &r.slot {
                Slot::Running(run) if run.adopted && !run.identity.tree_alive() => Some(run.record),
                Slot::Verifying(v) if v.adopted && !v.identity.tree_alive() => Some(v.record),
                _ => None,
            })
            .collect();
        for record in gone {
            self.on_exit(record)?;
        }
        Ok(())
    }

    /// Replaces a claiming `start`'s identity by the supervisor's once the row has it.
    fn learn_supervisors(&mut self) -> Result<()> {
        let pending: Vec<(String, i64)> = self
            .runs
            .iter()
            .filter_map(|(s, r)| match &r.slot {
                Slot::Running(run) if run.via_claimer => Some((s.clone(), run.record)),
                _ => None,
            })
            .collect();
        for (stream, record) in pending {
            if let Some(identity) = self.store.worker(record)?.and_then(|r| r.identity)
                && let Slot::Running(run) = &mut self.run_of(&stream).slot
            {
                run.identity = identity;
                run.via_claimer = false;
            }
        }
        Ok(())
    }

    /// Reads what running workers wrote since the last look: their activity for the live
    /// view, and what the API said (a usage limit rejected: hold every launch now, without
    /// waiting for the worker to exit; a warning past a threshold: one launch at a time).
    fn read_activity(&mut self) -> Result<()> {
        let wants = self.reporter.wants_activity();
        let mut news = Vec::new();
        let mut rejected = Vec::new();
        for (stream, r) in &mut self.runs {
            let Slot::Running(run) = &mut r.slot else {
                continue;
            };
            if let Some(bytes) = worker::read_from(&run.log, run.read_to, 1 << 20) {
                run.read_to += bytes.len() as u64;
                run.transcript.feed(&bytes);
            }
            if let Some(limit) = run.transcript.warning()
                && limit.status == LimitStatus::AllowedWarning
            {
                let until = limit.resets_at.map_or(now_unix() + 3600, unix_secs);
                self.warned_until = Some(self.warned_until.map_or(until, |t| t.max(until)));
            }
            if let Some(limit) = run.transcript.rejection()
                && !matches!(r.verdict, Some(Verdict::Parked { .. }))
            {
                let until = limit.resets_at.map(unix_secs);
                let kind = limit.limit_type.as_ref().map(|t| t.as_str().to_string());
                rejected.push((
                    stream.clone(),
                    until,
                    kind,
                    run.transcript.session_id().map(String::from),
                ));
            }
            if wants
                && let Some(text) = worker::tail(&run.log, 16 * 1024)
                    .as_deref()
                    .and_then(render::latest_activity)
                && run.last_activity.as_ref() != Some(&text)
            {
                run.last_activity = Some(text.clone());
                news.push((stream.clone(), text));
            }
        }
        for (stream, until, limit_type, session) in rejected {
            let now = now_unix();
            let min = self.settings.backoff_min;
            let tries = self.run_of(&stream).limited + 1;
            let until = until.unwrap_or_else(|| now + backoff(min, tries));
            let park = Park {
                until,
                since: now,
                cause: ParkCause::UsageLimit {
                    limit_type,
                    reset_known: true,
                    message: "the API refused on a usage limit".into(),
                },
                session_id: session,
            };
            self.set_verdict(&stream, Verdict::Parked { park })?;
        }
        for (stream, text) in news {
            self.reporter.event(Event::Activity {
                stream: &stream,
                text,
            });
        }
        Ok(())
    }

    /// Brings the view of the task database up to date (reading only what changed); a
    /// transient error or a graph made invalid mid-run keeps the previous view. False when the
    /// database could not be read.
    pub(super) fn refresh(&mut self) -> bool {
        self.refresh_with(&[])
    }

    /// With `streams`, only their rows are read again, whatever their `updated_at` says (a
    /// worker's exit is judged on them), at the cost of those rows alone; without, a refresh.
    pub(super) fn refresh_with(&mut self, streams: &[String]) -> bool {
        let cpu = thread_cpu();
        let read = self.read_changes(streams);
        // The whole refresh counts (the read, the model and what the UI is told), in CPU time:
        // the share is of a core. Wall time also counted the waits for the disk (a state-store
        // commit), which put a 10-stream chain's next probe ~90 ms off and its handoffs with it
        // (BENCHMARKS.md §1). A cheap read of one stream never brings forward what an expensive
        // refresh put off.
        let cost = thread_cpu().saturating_sub(cpu);
        self.next_probe = self
            .next_probe
            .max(Instant::now() + cost.saturating_mul(REFRESH_SHARE));
        read
    }

    fn read_changes(&mut self, streams: &[String]) -> bool {
        let changes = match self.db.reread(streams) {
            Ok(c) => c,
            Err(e) => {
                self.db_failed(e);
                return false;
            }
        };
        if self.db_fault.take().is_some() {
            self.reporter.event(Event::Note {
                stream: None,
                text: "the task database can be read again".into(),
            });
        }
        self.refreshed_changes = !changes.is_empty();
        if changes.warnings {
            self.say_warnings();
        }
        if changes.streams.is_empty() && !self.graph_stale {
            return true;
        }
        if !self.apply_changes(&changes) {
            return true;
        }
        // Counts changed: the bars move even when no state did.
        let model = self.model();
        self.reporter.event(Event::Snapshot {
            graph: &self.graph,
            model: &model,
        });
        true
    }

    /// A malformed row that appears mid-run is ignored like at start, and said once.
    fn say_warnings(&mut self) {
        for w in &self.db.view().warnings {
            let text = w.to_string();
            if self.said_warnings.insert(text.clone()) {
                self.reporter.event(Event::Note { stream: None, text });
            }
        }
    }

    /// Puts the changed streams into the graph: their records alone when its shape stays, else
    /// the graph built again from the whole view. False when nothing could be applied.
    fn apply_changes(&mut self, changes: &Changes) -> bool {
        let view = self.db.view();
        // `--strict-files` waits read other streams' counts: the graph is built again.
        let shape_stays = !changes.structure
            && !self.graph_stale
            && !self.settings.strict_files
            && changes.streams.iter().all(|id| {
                view.stream(id)
                    .is_some_and(|record| self.graph.replace_record(record))
            });
        if shape_stays {
            return true;
        }
        match graph_of(view, self.settings.strict_files) {
            Ok(graph) => {
                self.graph = graph;
                self.graph_stale = false;
                true
            }
            Err(e) => {
                // Until a build succeeds, every later change builds from the whole view (a
                // record alone may carry the dependencies that made this one invalid).
                self.graph_stale = true;
                self.reporter.event(Event::Note {
                    stream: None,
                    text: format!(
                        "the stream graph became invalid, keeping the last valid one: {e}"
                    ),
                });
                false
            }
        }
    }

    /// A supervisor ended (our child exited, or an adopted one vanished from `/proc`).
    fn on_exit(&mut self, record: i64) -> Result<()> {
        if let Some(stream) = self.runs.iter().find_map(|(s, r)| match &r.slot {
            Slot::Verifying(v) if v.record == record => Some(s.clone()),
            _ => None,
        }) {
            return self.on_verify_exit(&stream, record);
        }
        let Some(stream) = self.runs.iter().find_map(|(s, r)| match &r.slot {
            Slot::Running(run) if run.record == record => Some(s.clone()),
            _ => None,
        }) else {
            return Ok(());
        };
        let Some(rec) = self.store.worker(record)? else {
            return Ok(());
        };
        if rec.ended_at.is_none() {
            // Gone without recording anything (its supervisor was SIGKILLed) — unless the
            // supervisor of a launch we adopted from its claimer recorded itself just now, or
            // the worker lives on without its supervisor: then watch it like an adopted one.
            if rec.is_live() || !self.store.mark_lost(&rec)? {
                if let Slot::Running(run) = &mut self.run_of(&stream).slot {
                    run.adopted = true;
                }
                self.learn_supervisors()?;
                return Ok(());
            }
        }
        let Slot::Running(run) = std::mem::take(&mut self.run_of(&stream).slot) else {
            unreachable!("found running above");
        };
        let rec = self.store.worker(record)?.unwrap_or(rec);
        let summary = exits::summary(&rec);
        self.finish_worker(&stream, record, &run.placement)?;
        self.run_of(&stream).slot = Slot::Exited(Box::new(Exited {
            attempt: run.attempt,
            blind: false,
            rec: Some(rec),
            log: run.log,
            resumed: run.resumed,
            placement: run.placement,
        }));
        self.account_spending();
        // Read the task database before saying the worker exited, so that whoever reads the
        // message knows the judgment's read was already tried.
        // Its own rows are read again, whatever their `updated_at` says.
        let read = self.refresh_with(std::slice::from_ref(&stream));
        if let (false, Slot::Exited(exited)) = (read, &mut self.run_of(&stream).slot) {
            exited.blind = true;
        }
        self.reporter.event(Event::Exited {
            stream: &stream,
            summary: &summary,
        });
        if read { self.judge_exited() } else { Ok(()) }
    }

    /// What an ended worker left: unlock, auto-commit or a verdict that needs a person; then
    /// the row is marked processed. Of two `start`s that saw the worker end, one does it and
    /// the other takes its verdict from the store (both committing at once in one worktree
    /// made one fail, and its stream wait for a person).
    fn finish_worker(&mut self, stream: &str, record: i64, placement: &Placement) -> Result<()> {
        if !self.finalizing_is_mine(record)? {
            if let Some(verdict) = self.store.verdicts()?.remove(stream) {
                self.run_of(stream).verdict = Some(verdict);
            }
            return Ok(());
        }
        let finished = self
            .workspaces
            .lock()
            .expect("no panics while holding the workspaces")
            .worker_finished(stream, placement);
        for note in &finished.notes {
            self.reporter.event(Event::Note {
                stream: Some(stream),
                text: note.clone(),
            });
        }
        if let Some(attention) = finished.attention {
            self.set_verdict(stream, Verdict::Attention { attention })?;
        }
        self.store.set_finalized(record)?;
        Ok(())
    }

    /// Claims the processing of an ended worker's leftovers; while another live `start` does it,
    /// waits (briefly: an auto-commit) for it to finish. False if it is not ours to do.
    fn finalizing_is_mine(&self, record: i64) -> Result<bool> {
        let deadline = std::time::Instant::now() + FINALIZE_WAIT;
        loop {
            match self.store.claim_finalize(record, &self.me)? {
                Finalize::Mine => return Ok(true),
                Finalize::Done => return Ok(false),
                Finalize::Busy if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Finalize::Busy => return Ok(false),
            }
        }
    }

    /// Judges exited workers on a fresh read of the database.
    pub(super) fn judge_exited(&mut self) -> Result<()> {
        let waiting: Vec<String> = self
            .runs
            .iter()
            .filter(|(_, r)| matches!(r.slot, Slot::Exited(_)))
            .map(|(s, _)| s.clone())
            .collect();
        // Judged on their own rows read again, whatever their `updated_at` says.
        if waiting.is_empty() || !self.refresh_with(&waiting) {
            return Ok(());
        }
        let exited: Vec<(String, Box<Exited>)> = self
            .runs
            .iter_mut()
            .filter_map(|(s, r)| match std::mem::take(&mut r.slot) {
                Slot::Exited(e) => Some((s.clone(), e)),
                other => {
                    r.slot = other;
                    None
                }
            })
            .collect();
        for (stream, e) in exited {
            self.judge(&stream, e)?;
        }
        Ok(())
    }

    /// Done (or on to verification), parked, retried or failed: what an exited worker's
    /// stream comes to.
    fn judge(&mut self, stream: &str, exited: Box<Exited>) -> Result<()> {
        let Some(s) = self.graph.get(stream) else {
            return Ok(());
        };
        let counts = s.record.counts;
        let rec = exited.rec.as_ref();
        let outcome = exits::outcome(rec, &exited.log);
        if let Some(session) = rec.and_then(|r| r.session_id.clone()) {
            self.run_of(stream).session = Some(session);
        }
        if counts.is_cancelled() {
            return Ok(());
        }
        if counts.is_complete() {
            // A park recorded while it ran (a rejection it then got past) no longer holds.
            if matches!(self.run_of(stream).verdict, Some(Verdict::Parked { .. })) {
                self.clear_verdict(stream)?;
            }
            return self.maybe_verify(stream, &exited);
        }
        // `stop` records its verdict before it signals, so a stopped worker is not retried.
        if let Some(v @ Verdict::Stopped) = self.store.verdicts()?.remove(stream) {
            self.run_of(stream).verdict = Some(v);
            return Ok(());
        }
        if let Some(failure) = rec.and_then(exits::cannot_run) {
            return self.fail(stream, failure);
        }
        if exited.blind {
            // It could neither read nor mark its tasks: not a failure of its own.
            self.reporter.event(Event::Note {
                stream: Some(stream),
                text: "its worker ended while the task database could not be read; it runs \
                       again, and that is not counted as a retry"
                    .into(),
            });
            return Ok(());
        }
        let session = self.run_of(stream).session.clone();
        match outcome {
            Outcome::UsageLimit {
                resets_at,
                limit_type,
                message,
            } => {
                let run = self.run_of(stream);
                let reset = resets_at.map(unix_secs);
                if reset.is_none() {
                    run.limited += 1;
                }
                let tries = run.limited;
                let until =
                    reset.unwrap_or_else(|| now_unix() + backoff(self.settings.backoff_min, tries));
                let cause = ParkCause::UsageLimit {
                    limit_type: limit_type.map(|t| t.as_str().to_string()),
                    reset_known: reset.is_some(),
                    message,
                };
                self.park(stream, until, cause, session)
            }
            Outcome::Transient { status, message } => {
                let run = self.run_of(stream);
                run.unavailable += 1;
                let tries = run.unavailable;
                if tries > MAX_UNAVAILABLE {
                    return self.fail(
                        stream,
                        Failure::Unavailable {
                            status,
                            tries,
                            message,
                        },
                    );
                }
                let until = now_unix() + backoff(self.settings.backoff_min, tries);
                self.park(
                    stream,
                    until,
                    ParkCause::Overloaded {
                        status,
                        tries,
                        message,
                    },
                    session,
                )
            }
            Outcome::BudgetExceeded { message } => {
                self.fail(stream, Failure::BudgetExceeded { message })
            }
            Outcome::SessionNotFound { message } if exited.resumed => {
                // Not the worker's fault: start afresh at once, with the full prompt.
                let run = self.run_of(stream);
                run.fresh_next = true;
                let _ = worker::append_log_line(
                    &exited.log,
                    &format!(
                        "orchestrate: the session to resume was not found ({message}); the next attempt starts a fresh session with the full prompt"
                    ),
                );
                self.reporter.event(Event::Note {
                    stream: Some(stream),
                    text: "its session could not be resumed; starting a fresh session".into(),
                });
                Ok(())
            }
            _ => {
                let run = self.run_of(stream);
                run.failures += 1;
                run.unavailable = 0;
                run.limited = 0;
                let failures = run.failures;
                let failure = exits::failure(rec, &exited.log, failures);
                if failures <= self.settings.retries {
                    self.run_of(stream).happened = Some(Happened::Failed(failure.clone()));
                    self.reporter.event(Event::Retrying {
                        stream,
                        attempt: exited.attempt + 1,
                        why: &failure,
                    });
                    return Ok(());
                }
                self.fail(stream, failure)
            }
        }
    }

    /// Parks `stream` until `until` (unix s): not a failed attempt; it resumes its session.
    fn park(
        &mut self,
        stream: &str,
        until: i64,
        cause: ParkCause,
        session: Option<String>,
    ) -> Result<()> {
        self.run_of(stream).happened = Some(Happened::Parked(cause.clone()));
        let park = Park {
            until,
            since: now_unix(),
            cause,
            session_id: session,
        };
        self.set_verdict(stream, Verdict::Parked { park })
    }

    /// Adds up what the run spent after a worker ended; says so at 80 % of the budget and
    /// when it is reached.
    fn account_spending(&mut self) {
        let Some(limit) = self.budget.limit else {
            return;
        };
        let Ok(rows) = self.store.workers_since(&self.budget.since) else {
            return;
        };
        let before = self.budget.reached();
        self.budget.spent = Spending::of(&rows).cost_usd;
        let spent = self.budget.spent;
        if !self.budget.warned && spent >= 0.8 * limit && spent < limit {
            self.budget.warned = true;
            self.reporter.event(Event::Note {
                stream: None,
                text: format!(
                    "the run has spent ${spent:.2} of its ${limit:.2} budget (80 %); at 100 % nothing new starts"
                ),
            });
        }
        if !before && self.budget.reached() {
            self.reporter.event(Event::Note {
                stream: None,
                text: format!(
                    "the run's budget is spent (${spent:.2} of ${limit:.2}): nothing new starts; running workers finish"
                ),
            });
        }
    }

    /// Forgets `stream`'s verdict, in the store and here.
    pub(super) fn clear_verdict(&mut self, stream: &str) -> Result<()> {
        self.store.clear_verdict(stream)?;
        self.run_of(stream).verdict = None;
        Ok(())
    }

    pub(super) fn fail(&mut self, stream: &str, failure: Failure) -> Result<()> {
        self.set_verdict(stream, Verdict::Failed { failure })
    }

    /// Records a durable verdict, then this run's copy of it.
    pub(super) fn set_verdict(&mut self, stream: &str, verdict: Verdict) -> Result<()> {
        self.store.set_verdict(stream, &verdict)?;
        self.run_of(stream).verdict = Some(verdict);
        Ok(())
    }

    /// Every selected stream that is not complete, and why, as the model says.
    fn summary(&self) -> (RunEnd, RunStats) {
        (self.end(), self.stats())
    }

    fn end(&self) -> RunEnd {
        let model = self.model();
        let unfinished = |v: &model::StreamView| Unfinished {
            stream: v.id.clone(),
            state: v.state,
            reason: v.reason.clone(),
        };
        let open = |v: &&model::StreamView| !v.done && v.state != State::Cancelled;
        let (mine, others): (Vec<_>, Vec<_>) = model
            .views()
            .iter()
            .filter(open)
            .partition(|v| self.selected(&v.id));
        if mine.is_empty() {
            RunEnd::Complete {
                others: others.into_iter().map(unfinished).collect(),
            }
        } else {
            RunEnd::Incomplete(mine.into_iter().map(unfinished).collect())
        }
    }
}

/// Seconds to wait before the `tries`-th retry: `min` doubled each time, up to an hour, with
/// ±20 % jitter so that several workers do not come back together.
/// The run's graph of a snapshot: with `strict_files`, streams claiming the same files wait
/// for each other.
fn graph_of(
    snapshot: &Snapshot,
    strict_files: bool,
) -> std::result::Result<StreamGraph, crate::graph::GraphError> {
    let graph = StreamGraph::build(snapshot)?;
    Ok(if strict_files {
        graph.strict_files()
    } else {
        graph
    })
}

/// The CPU time this thread has used (user and system); zero if it cannot be read. A refresh
/// has no `.await` in it, so it runs on one thread from start to end.
fn thread_cpu() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_THREAD).map_or(Duration::ZERO, |u| {
        let tv = |t: nix::sys::time::TimeVal| {
            Duration::new(t.tv_sec().max(0) as u64, (t.tv_usec().max(0) as u32) * 1000)
        };
        tv(u.user_time()) + tv(u.system_time())
    })
}

pub(super) fn backoff(min: Duration, tries: u32) -> i64 {
    use std::hash::{BuildHasher, Hasher};
    let base = min.as_secs_f64().max(1.0) * 2f64.powi(tries.saturating_sub(1).min(16) as i32);
    let base = base.min(3600.0);
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let jitter = 0.8 + 0.4 * (random % 10_000) as f64 / 10_000.0;
    (base * jitter).round() as i64
}

/// Unix seconds of a time.
fn unix_secs(t: std::time::SystemTime) -> i64 {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(_) => 0,
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
