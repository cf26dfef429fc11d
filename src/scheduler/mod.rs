//! The scheduler: the only async code. One dispatcher loop owns all run state (one typed
//! record per stream) and `select!`s over supervisor exits, task-database changes (inotify
//! wake-ups confirmed by a `PRAGMA data_version` probe, and a periodic probe), the launch
//! stagger timer and Ctrl-C / SIGTERM. It decides nothing about a stream's state itself: it
//! keeps the facts (verdicts, workers) and asks [`crate::model::derive`], like every command.
//! See `DESIGN.md` beside this file for the dispatcher and the worker's life, and
//! `src/model/DESIGN.md` for the states.
//!
//! Files: `dispatcher.rs` (the loop, exits judged into done / parked / retried / failed, the
//! budget, the summary), `launch.rs` (claim, prepare, resume or start afresh, spawn),
//! `verify.rs` (the verification gate), `exits.rs` (how an exit becomes typed facts),
//! `watch.rs` (the database watch, shared with `status --watch`), `event.rs` (what the UI is
//! told). Signals are listened for in [`crate::signals`], their one owner.

mod dispatcher;
mod event;
mod exits;
mod launch;
mod radar;
mod verify;
pub mod watch;

pub use dispatcher::Scheduler;
pub use event::{Event, ExitSummary, Reporter, RunEnd, RunStats, Unfinished};

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use crate::project::Project;

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
    /// The verify command every stream's work must pass (a stream may set its own).
    pub verify: Option<String>,
    pub verify_timeout: Duration,
    /// `--max-budget-usd` for each Claude worker; `--run-budget-usd` for the run.
    pub max_budget_usd: Option<f64>,
    pub run_budget_usd: Option<f64>,
    /// The first wait of a back-off (it doubles each time).
    pub backoff_min: Duration,
    /// Resume a retried or parked Claude worker's session.
    pub resume: bool,
    /// The continuation prompt of a resumed session.
    pub resume_template: String,
    /// Whether and how workers are confined.
    pub sandbox: crate::worker::sandbox::Policy,
    /// Streams claiming the same files run one after the other (`StreamGraph::strict_files`).
    pub strict_files: bool,
}
