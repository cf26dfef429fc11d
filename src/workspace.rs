//! Where a stream's worker runs: the seam between the scheduler and git.
//!
//! The scheduler asks a [`Workspaces`] implementation to prepare a stream just before its worker
//! starts and tells it when the worker has started and exited. [`SharedCheckout`] runs every
//! stream in the project root; the worktree implementation (in `git/`) gives each stream its own
//! branch and worktree based on its dependencies' work.

use std::path::PathBuf;

use crate::graph::{Stream, StreamGraph};
use crate::model::{Attention, Block};

/// Where and on what a stream's worker runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The worker's working directory.
    pub dir: PathBuf,
    /// The stream's branch, in worktree mode.
    pub branch: Option<String>,
    /// The commit the branch was based on (hex), in worktree mode.
    pub base: Option<String>,
    /// Things the user should know (reused branch lacks a dependency tip, files copied, …).
    pub notes: Vec<String>,
}

impl Placement {
    /// Where a recorded worker ran (the project root when the row does not say).
    pub fn of_record(rec: &crate::state::WorkerRecord, root: &std::path::Path) -> Self {
        Self {
            dir: rec.dir.clone().unwrap_or_else(|| root.to_path_buf()),
            branch: rec.branch.clone(),
            base: rec.base.clone(),
            notes: Vec::new(),
        }
    }
}

/// How far a long step of preparing a stream's place has come, for the ui to show. Sent
/// about once a second, and only for steps that last more than a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Files of the branch's tree written into the new worktree.
    Checkout { files: usize, of: usize },
    /// Bytes of `.worktreeinclude` files copied (or cloned).
    Include { bytes: u64, of: u64 },
}

/// Where [`Workspaces::prepare`] says how far it has come: called with the stream's id.
pub type ProgressSink = std::sync::Arc<dyn Fn(&str, Progress) + Send + Sync>;

/// Why a stream cannot start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrepareFailure {
    /// Needs a person (its dependencies' branches conflict, a folder in the way, …): the
    /// stream is blocked with this durable verdict and not retried in this run.
    Blocked(Block),
    /// Failed (post_create failed, a git error): the stream is failed with this detail.
    Failed { detail: String },
}

/// What a finished worker left behind.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Finished {
    /// Something a person must look at before dependents start (uncommitted changes with
    /// `auto_commit` off, a worktree no longer on its branch).
    pub attention: Option<Attention>,
    /// Things the user should know (what was auto-committed, …).
    pub notes: Vec<String>,
}

pub trait Workspaces: Send {
    /// Called when `stream`'s dependencies are complete, just before its worker starts.
    fn prepare(
        &mut self,
        stream: &Stream,
        graph: &StreamGraph,
    ) -> Result<Placement, PrepareFailure>;

    /// Where to tell the progress of a long preparation (a big checkout or include copy).
    fn set_progress(&mut self, _sink: ProgressSink) {}

    /// The worker runs now (worktree mode locks the worktree, naming the stream and pid).
    fn worker_started(&mut self, stream: &str, placement: &Placement, pid: u32);

    /// The worker exited (worktree mode unlocks, and auto-commits leftovers).
    fn worker_finished(&mut self, stream: &str, placement: &Placement) -> Finished;

    /// A live process that holds `stream`'s place by its own record (worktree mode: the lock
    /// on the stream's worktree naming a live process, by pid and start time), consulted
    /// before each launch so that a worker the state store lost is never run twice.
    fn holder(&self, _stream: &Stream) -> Option<crate::proc::Found> {
        None
    }
}

/// Every stream in the project root (no `--worktrees`, and always for the `main` stream).
pub struct SharedCheckout {
    pub root: PathBuf,
}

impl Workspaces for SharedCheckout {
    fn prepare(
        &mut self,
        _stream: &Stream,
        _graph: &StreamGraph,
    ) -> Result<Placement, PrepareFailure> {
        Ok(Placement {
            dir: self.root.clone(),
            branch: None,
            base: None,
            notes: Vec::new(),
        })
    }

    fn worker_started(&mut self, _stream: &str, _placement: &Placement, _pid: u32) {}

    fn worker_finished(&mut self, _stream: &str, _placement: &Placement) -> Finished {
        Finished::default()
    }
}
