//! The scheduler: the only async code. One dispatcher loop owns all run state (one typed
//! record per stream) and `select!`s over supervisor exits, task-database changes (inotify
//! wake-ups confirmed by a `PRAGMA data_version` probe, and a periodic probe), the launch
//! stagger timer and Ctrl-C / SIGTERM. It decides nothing about a stream's state itself: it
//! keeps the facts (verdicts, workers) and asks [`crate::model::derive`], like every command.
//! See `DESIGN.md` beside this file for the dispatcher and the worker's life, and
//! `src/model/DESIGN.md` for the states.
//!
//! Files: `dispatcher.rs` (the loop, exits, verdicts, the summary), `launch.rs` (claim,
//! prepare, spawn), `exits.rs` (how an exit becomes a typed failure), `watch.rs` (the database
//! watch, shared with `status --watch`), `signals.rs`, `event.rs` (what the UI is told).

mod dispatcher;
mod event;
mod exits;
mod launch;
mod signals;
pub mod watch;

pub use dispatcher::Scheduler;
pub use event::{Event, ExitSummary, Reporter, RunEnd, Unfinished};

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
    /// Whether and how workers are confined.
    pub sandbox: crate::worker::sandbox::Policy,
}
