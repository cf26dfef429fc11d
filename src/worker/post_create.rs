//! `post_create`: the project's set-up command, run in a stream's new worktree before its
//! first worker, with a time limit, its output appended to the stream's log.
//!
//! Invariant: when the limit passes, nothing it started keeps running. It leads its own
//! process group and its environment carries a marker ([`MARKER_VAR`], unique to this run),
//! and the one termination routine ([`super::terminate`]) ends both: SIGTERM, a grace of
//! [`GRACE`], SIGKILL.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::terminate::{self, Tree};

/// The variable that marks every process of one `post_create` run, for those that leave its
/// process group. Not the worker's marker: a `post_create` is no stream's worker.
pub const MARKER_VAR: &str = "ORCHESTRATE_POST_CREATE_ID";

/// How long a timed-out `post_create` gets between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(2);

/// A `post_create` that did not succeed.
#[derive(Debug, thiserror::Error)]
#[error("`{command}` for stream {stream} failed: {reason}")]
pub struct PostCreateError {
    pub stream: String,
    pub command: String,
    pub reason: String,
}

impl crate::error::Diagnostic for PostCreateError {
    fn hint(&self) -> Option<String> {
        Some(
            "fix `post_create` in .claude/orchestrator/config.toml; its output is in the stream's log"
                .into(),
        )
    }
}

/// Where and for whom it runs.
pub struct Run<'a> {
    pub project_root: &'a Path,
    pub stream: &'a str,
    /// The new worktree.
    pub dir: &'a Path,
    pub branch: &'a str,
    /// The stream's log.
    pub log: &'a Path,
    pub limit: Duration,
}

/// Runs `cmd` (shell words, no shell) as `run` says.
pub fn run(cmd: &str, run: &Run<'_>) -> Result<(), PostCreateError> {
    let fail = |reason: String| PostCreateError {
        stream: run.stream.into(),
        command: cmd.into(),
        reason,
    };
    let argv = crate::cmdline::split(cmd)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| fail("it is not valid shell words (unbalanced quotes?)".into()))?;
    let open = |e: std::io::Error| fail(format!("cannot open its log {}: {e}", run.log.display()));
    let mut log = crate::private_files::open_append(run.log).map_err(open)?;
    let _ = writeln!(log, "=== post_create: {cmd} (in {}) ===", run.dir.display());
    let marker = marker();
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(run.dir)
        .env("ORCHESTRATE_STREAM", run.stream)
        .env("ORCHESTRATE_WORKTREE", run.dir)
        .env("ORCHESTRATE_BRANCH", run.branch)
        .env("ORCHESTRATE_PROJECT_ROOT", run.project_root)
        .env(MARKER_VAR, &marker)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(open)?)
        .stderr(log.try_clone().map_err(open)?)
        .process_group(0)
        .spawn()
        .map_err(|e| fail(format!("cannot start `{}`: {e}", argv[0])))?;
    if !terminate::wait_child(&child, run.limit) {
        // Before the reap: until then the child's pid still names its group.
        terminate::end(
            &[Tree::child_group(&child, Some((MARKER_VAR, marker)))],
            GRACE,
        );
        let _ = child.wait();
        let secs = run.limit.as_secs_f64();
        let _ = writeln!(log, "=== post_create killed after {secs}s ===");
        return Err(fail(format!(
            "it did not finish within {secs}s (post_create_timeout); output in {}",
            run.log.display()
        )));
    }
    let status = child
        .wait()
        .map_err(|e| fail(format!("cannot wait for it: {e}")))?;
    let _ = writeln!(log, "=== post_create ended: {status} ===");
    if status.success() {
        Ok(())
    } else {
        Err(fail(format!(
            "it exited with {status}; output in {}",
            run.log.display()
        )))
    }
}

/// A value no other `post_create` run carries: our pid and start time, and a count.
fn marker() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let me = crate::proc::Identity::current()
        .map_or_else(|| std::process::id().to_string(), |me| me.worker_marker());
    format!("{me}-{}", RUNS.fetch_add(1, Ordering::Relaxed))
}
