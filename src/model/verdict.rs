//! Durable verdicts: what the orchestrator concluded about a stream beyond what the task
//! database says, kept in the state store so that `status` from another shell, the next
//! `start` and `merge` all see it, with its reason, until its cause is gone.
//!
//! Every field is data (stream ids, paths, exit codes, log lines), never prose: `ui/` alone
//! turns a verdict into words.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A verdict that keeps a stream (and so its dependents) from going on by itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Verdict {
    /// Retries exhausted, or the stream could not be started at all. A plain `start` tries it
    /// again; `start STREAM` too.
    Failed { failure: Failure },
    /// Stopped by the user; only `start STREAM` runs it again.
    Stopped,
    /// Needs a person before it can start.
    Blocked { block: Block },
    /// Its worker finished but left something a person must look at; dependents wait.
    Attention { attention: Attention },
    /// Its worker was refused by the API (a usage limit, or overload after the agent's own
    /// retries): it waits for `park.until`, then resumes its session. Not a failed attempt.
    Parked { park: Park },
    /// Its tasks are complete but the verify command failed, and attempts are left: its
    /// worker goes back to work (resumed, told the command and the output).
    VerifyFailed { verify: VerifyRun },
}

impl Verdict {
    /// The short kind stored beside the body, so a reader can select by it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Failed { .. } => "failed",
            Self::Stopped => "stopped",
            Self::Blocked { .. } => "blocked",
            Self::Attention { .. } => "attention",
            Self::Parked { .. } => "parked",
            Self::VerifyFailed { .. } => "verify_failed",
        }
    }
}

/// Why a stream failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum Failure {
    /// Its worker ended with the stream incomplete on its last allowed attempt.
    Exited {
        attempts: u32,
        exit: ExitStatus,
        /// What the agent itself said went wrong (its error result), when it said it.
        agent_error: Option<String>,
        /// The last lines of the last attempt's log (rendered, without our own markers).
        log_lines: Vec<String>,
    },
    /// The worker program could not be found or run: retrying cannot help.
    CannotRun { program: String, detail: String },
    /// Its worktree could not be prepared (a git error, `post_create` failed).
    Prepare { detail: String },
    /// Task data cannot be handed to a worker (a NUL byte in an argument).
    BadTaskData { what: String },
    /// The verify command still failed when the attempts ran out.
    VerifyFailed { verify: VerifyRun },
    /// The agent stopped at its own spending cap (`--max-budget-usd`): retrying cannot help.
    BudgetExceeded { message: String },
    /// The API kept failing (overloaded, server errors) through every back-off.
    Unavailable {
        status: u16,
        tries: u32,
        message: String,
    },
    /// A reason recorded by an older version, as text.
    Legacy { text: String },
}

/// One run of a stream's verify command that failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyRun {
    pub command: String,
    /// How it ended; `None` when it ran out of time (`verify_timeout`).
    pub exit: Option<ExitStatus>,
    /// The last lines of its output.
    pub output_lines: Vec<String>,
    /// Attempts of the stream so far (the worker's attempts that ended in this verification).
    pub attempts: u32,
}

/// Why and until when a stream is parked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Park {
    /// When it may run again (unix seconds): the limit's reset, or the end of a back-off.
    pub until: i64,
    /// When it was parked (unix seconds).
    pub since: i64,
    pub cause: ParkCause,
    /// The session to resume.
    pub session_id: Option<String>,
}

/// What refused the worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum ParkCause {
    /// A usage or rate limit (HTTP 429): nothing new starts anywhere until it resets.
    UsageLimit {
        /// The limit's window as the API names it (`five_hour`, `seven_day`, …), when it said.
        limit_type: Option<String>,
        /// The reset time came from the API; without one (API-key auth) it is a back-off.
        reset_known: bool,
        message: String,
    },
    /// The API was overloaded or failing (HTTP 529, 5xx): only this stream backs off.
    Overloaded {
        status: u16,
        tries: u32,
        message: String,
    },
}

impl ParkCause {
    /// Whether this park holds every launch of the run, not only the stream's own.
    pub fn holds_the_run(&self) -> bool {
        matches!(self, Self::UsageLimit { .. })
    }
}

/// How a worker process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "how", rename_all = "snake_case")]
pub enum ExitStatus {
    Code {
        code: i32,
    },
    Signal {
        signal: i32,
    },
    /// Its supervisor was killed before it could record anything.
    Lost,
}

/// What a person must fix before the stream can start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum Block {
    /// Merging its dependencies' branches conflicts: nothing starts on a base without them.
    BaseConflict {
        branches: Vec<String>,
        paths: Vec<String>,
        /// The dependency tips the merge was tried on (hex): the verdict is re-checked once
        /// any of them moves, or once the stream's branch exists (merged by hand).
        tips: Vec<String>,
    },
    /// Something that is not our worktree sits where the stream's worktree goes.
    WorktreeInTheWay { path: PathBuf, branch: String },
    /// The stream's branch is checked out somewhere else.
    CheckedOutElsewhere { branch: String, path: PathBuf },
    /// The stream's branch exists and shares no history with the run's base (another
    /// project's branch, an orphan branch): working on it could never be merged back.
    UnrelatedBranch {
        branch: String,
        /// The run's base commit (hex) it was compared with, and its branch if any.
        base: String,
        target: Option<String>,
    },
}

/// What a finished worker left that a person must look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum Attention {
    /// Uncommitted changes remain in its worktree and `auto_commit` is off.
    DirtyFinish { dir: PathBuf, files: Vec<String> },
    /// The worktree's HEAD is not on the stream's branch (detached, another branch): its work
    /// may not be on the branch dependents start from.
    LeftBranch {
        dir: PathBuf,
        branch: String,
        /// The branch HEAD is on, `None` when detached.
        head_branch: Option<String>,
        /// HEAD's commit (hex).
        head: String,
    },
    /// Its worktree folder is there, but git's record of it (`.git/worktrees/<admin>`) was
    /// deleted: git no longer sees the folder or what is uncommitted in it.
    Orphaned { dir: PathBuf, admin: PathBuf },
}
