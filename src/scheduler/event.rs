//! What the scheduler tells its reporter, and how a run ends. Payloads are typed (the model's
//! reasons, failures, exit statuses); the reporter (in `ui/`) decides how they look, and the
//! scheduler never prints.

use crate::graph::StreamGraph;
use crate::model::{ConflictWith, ExitStatus, Failure, Model, Reason, State};

/// How a worker's process ended, with what its agent reported.
#[derive(Debug, Clone, PartialEq)]
pub struct ExitSummary {
    /// `None` when it was stopped by `orchestrate stop`.
    pub exit: Option<ExitStatus>,
    pub session_id: Option<String>,
    pub cost_usd: Option<f64>,
    pub turns: Option<u32>,
}

/// Something that happened during a run.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// A `start` claimed the stream and is preparing where it runs (its worktree, base,
    /// `.worktreeinclude`, `post_create`) before spawning attempt `attempt`.
    Preparing { stream: &'a str, attempt: u32 },
    /// How far a long step of preparing the stream's place has come (a big checkout or
    /// `.worktreeinclude` copy), about once a second.
    PrepareProgress {
        stream: &'a str,
        progress: crate::workspace::Progress,
    },
    /// A worker was launched.
    Started {
        stream: &'a str,
        pid: i32,
        attempt: u32,
    },
    /// A worker launched by an earlier `start` is alive and is being watched.
    Adopted {
        stream: &'a str,
        pid: i32,
        attempt: u32,
        /// When it was started (RFC 3339, as recorded), for the live view's runtime.
        started_at: &'a str,
    },
    /// A worker ended.
    Exited {
        stream: &'a str,
        summary: &'a ExitSummary,
    },
    /// A worker exited with the stream incomplete and will be started again.
    Retrying {
        stream: &'a str,
        attempt: u32,
        why: &'a Failure,
    },
    /// The stream entered `state` (complete, failed, blocked, needs attention, skipped,
    /// stopped); `reason` is the model's.
    Entered {
        stream: &'a str,
        state: State,
        reason: Option<&'a Reason>,
    },
    /// Something the user should know that changes nothing (placement notes, read errors).
    Note {
        stream: Option<&'a str>,
        text: String,
    },
    /// The conflict radar predicts that merging `stream`'s branch with `with` will conflict
    /// (new, or in other files than said before). Changes nothing: the streams keep running.
    Conflict {
        stream: &'a str,
        with: &'a ConflictWith,
    },
    /// A predicted conflict is gone (one side changed its work, or it was merged).
    ConflictResolved {
        stream: &'a str,
        with: &'a ConflictWith,
    },
    /// The latest thing a running worker did (from its log).
    Activity { stream: &'a str, text: String },
    /// A new view of every stream (after a database change or a decision): the one snapshot
    /// a live view draws from.
    Snapshot {
        graph: &'a StreamGraph,
        model: &'a Model,
    },
}

/// Receives events; implemented by `ui::run`.
pub trait Reporter {
    fn event(&mut self, event: Event<'_>);

    /// Whether to read workers' logs for [`Event::Activity`] (only the bars show it).
    fn wants_activity(&self) -> bool {
        false
    }
}

/// A stream that did not complete, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Unfinished {
    pub stream: String,
    pub state: State,
    pub reason: Option<Reason>,
}

/// What a run spent and how long a usage limit held it, for the end summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunStats {
    /// What the workers launched by this `start` reported spending.
    pub spending: crate::facts::Spending,
    /// `--run-budget-usd`, if set.
    pub budget: Option<f64>,
    /// How long every launch was held by a usage limit.
    pub parked: std::time::Duration,
}

/// How `Scheduler::run` ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEnd {
    /// Every stream of the run (every stream, or every selected one) is complete; `others`
    /// lists streams outside the selection that are not.
    Complete { others: Vec<Unfinished> },
    /// Nothing runs and nothing can become ready.
    Incomplete(Vec<Unfinished>),
    /// Ctrl-C or SIGTERM: these workers (stream, pid) keep running.
    Interrupted(Vec<(String, i32)>),
}
