//! THE stream model: one pure function from facts to each stream's state, typed reason and
//! allowed actions. `start` (dispatcher, dry run, summary), `status` (every mode), `stop`,
//! `clean`, `merge` and the hints all call [`derive`], so they cannot disagree.
//!
//! Facts in: the task counts (from the task source, inside the [`StreamGraph`]), the durable
//! [`Verdict`] of each stream (from the state store), and its [`WorkerFact`] (live workers found
//! through the state store and `/proc`). Gathering them is not this module's job (see
//! `crate::facts` and the dispatcher); nothing here reads a file, a database or a clock.
//!
//! The states and their precedence are written down once, in `DESIGN.md` beside this file and
//! in `docs/status-json.md`; the table test in `derive.rs` holds them to it.

mod derive;
pub mod verdict;

pub use derive::derive;
pub use verdict::{Attention, Block, ExitStatus, Failure, Park, ParkCause, Verdict, VerifyRun};

use serde::Serialize;

use crate::taskdb::BlockedTask;

/// A stream's state: exactly one, by the precedence in `DESIGN.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// A live worker is on it (its tasks may already be complete: it is still committing).
    Running,
    /// Its tasks are complete and its verify command is running.
    Verifying,
    /// A `start` has claimed it and is preparing its worktree or launching its worker.
    Preparing,
    /// Every task cancelled: dropped on purpose.
    Cancelled,
    /// Its worker finished but left something a person must look at; dependents wait.
    NeedsAttention,
    /// All tasks completed or cancelled, at least one completed.
    Complete,
    /// Its worker failed after all retries, or it could not be started.
    Failed,
    /// Stopped by the user; only `start STREAM` runs it again.
    Stopped,
    /// Paused in the task store (`tc`): shown, never launched.
    Paused,
    /// Refused by the API (a usage limit, or overload): waits for a time, then resumes; or,
    /// ready, held because another stream hit a usage limit that holds the whole run.
    Parked,
    /// A dependency failed, was cancelled or was skipped: it cannot run.
    Skipped,
    /// Waits for dependencies.
    Waiting,
    /// Needs a person: every open task is blocked, or its base cannot be made.
    Blocked,
    /// Could start, but the run's spending reached `--run-budget-usd`.
    BudgetReached,
    /// Can start now.
    Ready,
}

impl State {
    /// Every state, in precedence order (the first that applies wins).
    pub const ALL: [State; 15] = [
        State::Running,
        State::Verifying,
        State::Preparing,
        State::Cancelled,
        State::NeedsAttention,
        State::Complete,
        State::Failed,
        State::Stopped,
        State::Paused,
        State::Parked,
        State::Skipped,
        State::Waiting,
        State::Blocked,
        State::BudgetReached,
        State::Ready,
    ];

    /// The word `status` and `start` show.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Verifying => "verifying",
            Self::Preparing => "preparing",
            Self::Cancelled => "cancelled",
            Self::NeedsAttention => "needs attention",
            Self::Complete => "complete",
            Self::Failed => "failed",
            Self::Stopped => "stopped",
            Self::Paused => "paused",
            Self::Parked => "parked",
            Self::Skipped => "skipped",
            Self::Waiting => "waiting",
            Self::Blocked => "blocked",
            Self::BudgetReached => "budget reached",
            Self::Ready => "ready",
        }
    }
}

/// What the orchestrator knows of a stream's worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WorkerFact {
    /// No live worker, and nothing left to process.
    #[default]
    None,
    /// A live `start` claimed the stream and is preparing or launching it.
    Preparing,
    /// A live worker (its supervisor is provably the process recorded).
    Live,
    /// Its verify command is running (supervised like a worker).
    Verifying,
    /// Its last worker exited while no `start` was watching, so what it left in its worktree
    /// (uncommitted changes) was not looked at yet; the next `start` does that first.
    ExitUnprocessed,
}

/// Whether a stream's work must pass a verify command before dependents start on it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum VerifyFact {
    /// No verify command applies to it.
    #[default]
    NotRequired,
    /// One applies and has not passed since its worker last ended.
    Pending,
    /// It passed after the worker's last exit.
    Passed,
}

/// Everything about one stream that the task database does not say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub verdict: Option<Verdict>,
    pub worker: WorkerFact,
    pub verify: VerifyFact,
    /// Merges of its branch that the conflict radar predicts will conflict (an annotation:
    /// it never changes the state).
    pub conflicts: Vec<ConflictWith>,
}

/// A merge of the stream's branch that will conflict, predicted from the current tips.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ConflictWith {
    /// The other stream (neither depends on the other); `None` for the target branch.
    pub stream: Option<String>,
    /// The other side's branch: `stream/<id>`, or the target.
    pub branch: String,
    /// The files the merge conflicts in.
    pub paths: Vec<String>,
}

/// The run's facts: how it places streams, what time it is, and what holds it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mode {
    /// `--worktrees`: a stream counts for its dependents only once its worker has exited and
    /// left nothing to look at, so that their base holds all of its work. Without it the task
    /// database alone decides.
    pub worktrees: bool,
    /// Now, in unix seconds: a parked verdict whose time has passed no longer holds. (The
    /// model reads no clock; the caller says what time it is.)
    pub now: i64,
    /// The run's spending reached `--run-budget-usd`: nothing new starts.
    pub budget_reached: bool,
}

/// Why a stream is in its state, as data.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// Dependencies that are not done, each with its state.
    Waiting {
        on: Vec<Wait>,
    },
    /// Every open task is blocked; these tasks say why.
    BlockedTasks {
        tasks: Vec<BlockedTask>,
    },
    Blocked(Block),
    NeedsAttention(Attention),
    Failed(Failure),
    Stopped,
    /// A dependency ended without completing.
    Skipped {
        dependency: String,
        dependency_state: State,
    },
    Paused,
    /// Parked until `park.until`; `hit_by` names the stream whose usage limit holds the whole
    /// run when this stream is held by it rather than parked itself.
    Parked {
        park: Park,
        hit_by: Option<String>,
    },
    /// Ready to go back to its worker: its verify command failed.
    VerifyFailed(VerifyRun),
    /// Ready, but the run's budget is spent.
    BudgetReached,
}

/// One dependency a stream waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Wait {
    pub stream: String,
    /// The dependency's own state.
    pub state: State,
    /// It is complete, but its worker's exit has not been processed yet (worktree mode).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub exit_unprocessed: bool,
    /// It is complete, but its verify command has not passed yet.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub verify_pending: bool,
    /// Not a dependency: both claim these files and `strict_files` is on, so this stream
    /// waits for it as if it depended on it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<String>,
}

/// What may be done with a stream, derived with its state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Actions {
    /// `start` launches it now (when selected and a slot is free).
    pub launch: bool,
    /// A plain `start` gives it another try (its failure is cleared first).
    pub retry: bool,
    /// `start STREAM` runs it again (after a stop, a failure, a block or a park).
    pub restart: bool,
    /// A live worker, a verification or a launch in progress: `stop` ends it, and nothing may
    /// remove its worktree.
    pub in_use: bool,
    /// Its branch may be merged back: complete, and nothing holds it.
    pub merge: bool,
}

/// One stream as the model sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamView {
    pub id: String,
    pub state: State,
    pub reason: Option<Reason>,
    /// Dependents may start on it.
    pub done: bool,
    /// Its tasks are complete but its verify command has not passed yet.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub verify_pending: bool,
    pub actions: Actions,
    /// Predicted conflicts of its branch (the radar's; shown, never acted on).
    pub conflicts_with: Vec<ConflictWith>,
}

/// Every stream's view, in the graph's (topological) order, and lookup by id.
#[derive(Debug, Clone, Default)]
pub struct Model {
    views: Vec<StreamView>,
    /// foldhash: rebuilt at every derivation, several times a launch at 2,000 streams.
    index: foldhash::HashMap<String, usize>,
}

impl Model {
    pub fn views(&self) -> &[StreamView] {
        &self.views
    }

    pub fn get(&self, id: &str) -> Option<&StreamView> {
        self.index.get(id).map(|&i| &self.views[i])
    }

    pub fn state(&self, id: &str) -> Option<State> {
        self.get(id).map(|v| v.state)
    }

    /// Every stream done for its dependents.
    pub fn all_done(&self) -> bool {
        self.views
            .iter()
            .all(|v| v.done || v.state == State::Cancelled)
    }

    fn from_views(views: Vec<StreamView>) -> Self {
        let index = views
            .iter()
            .enumerate()
            .map(|(i, v)| (v.id.clone(), i))
            .collect();
        Self { views, index }
    }
}
