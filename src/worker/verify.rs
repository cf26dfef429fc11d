//! A verify command: how it is run wherever it runs. The scheduler runs it on a stream's
//! finished work under a supervisor (`scheduler/verify.rs`); `merge` runs it on each merge in its
//! scratch worktree, waiting for it ([`run`]). Both use what is here: the command (`sh -c`),
//! its environment, the sandbox plan of the folder it runs in, its own process group, the time
//! limit ended by the one termination routine (`stop::stop_groups`), and its output's last
//! lines taken from the log it wrote to.
//!
//! Invariant: a verify `merge` starts carries [`MERGE_SCRATCH_VAR`] (the scratch worktree's
//! path) in its environment, so one left running by a `merge` that was killed is found and
//! ended ([`stop_leftover`]) before its folder is removed.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{WorkerError, render, sandbox};
use crate::model::{ExitStatus, VerifyRun};
use crate::project::Project;

/// Lines of a failed verification's output kept for the verdict and for display.
pub const OUTPUT_LINES: usize = 30;
/// How long a verification that ran out of time gets between SIGTERM and SIGKILL.
pub const TIMEOUT_GRACE: Duration = Duration::from_secs(5);
/// Set to the scratch worktree in the environment of a verify `merge` runs.
pub const MERGE_SCRATCH_VAR: &str = "ORCHESTRATE_MERGE_SCRATCH";

/// The argv a verify command runs as: `sh -c COMMAND`.
pub fn argv(command: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), command.into()]
}

/// What a verify command finds in its environment.
pub struct VerifyEnv<'a> {
    pub stream: &'a str,
    pub dir: &'a Path,
    pub branch: &'a str,
    pub db: &'a Path,
    pub project_root: &'a Path,
}

impl VerifyEnv<'_> {
    pub fn vars(&self) -> Vec<(&'static str, OsString)> {
        vec![
            ("ORCHESTRATE_STREAM", self.stream.into()),
            ("ORCHESTRATE_WORKTREE", self.dir.into()),
            ("ORCHESTRATE_BRANCH", self.branch.into()),
            ("ORCHESTRATE_DB", self.db.into()),
            ("ORCHESTRATE_PROJECT_ROOT", self.project_root.into()),
            ("ORCHESTRATE_VERIFY", "1".into()),
        ]
    }
}

/// The last lines of a verification's output (from its offset in the log).
pub fn output_lines(log: &Path, offset: u64) -> Vec<String> {
    let len = std::fs::metadata(log).map_or(0, |m| m.len());
    let text = super::tail(log, len.saturating_sub(offset).min(64 * 1024)).unwrap_or_default();
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with(render::MARK) && !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    let keep = lines.len().saturating_sub(OUTPUT_LINES);
    lines.drain(..keep);
    lines
}

/// One verify `merge` runs and waits for.
pub struct Run<'a> {
    pub command: &'a str,
    pub env: VerifyEnv<'a>,
    pub project: &'a Project,
    pub policy: &'a sandbox::Policy,
    pub timeout: Duration,
    /// Where its output is appended.
    pub log: &'a Path,
}

/// Runs the verify in its folder, confined as a worker there would be, in its own process
/// group, and waits for it (at most its time limit). `Ok` with how it ended; `exit: None` when it
/// ran out of time (its group was then ended).
pub fn run(v: &Run<'_>) -> Result<VerifyRun, WorkerError> {
    let log_err = |source| WorkerError::Log {
        path: v.log.to_path_buf(),
        source,
    };
    // Taken before our own line, as the scheduler does: `output_lines` drops the first line
    // it reads as possibly partial, and that is then ours.
    let offset = std::fs::metadata(v.log).map_or(0, |m| m.len());
    super::append_log_line(
        v.log,
        &format!(
            "{} orchestrate merge: verify {} in {}: {}",
            render::MARK,
            v.env.stream,
            v.env.dir.display(),
            v.command
        ),
    )
    .map_err(log_err)?;
    let plan = v
        .policy
        .plan(&sandbox::Place {
            project: v.project,
            stream: v.env.stream,
            dir: v.env.dir,
            db: Some(v.env.db),
        })
        .map_err(WorkerError::Sandbox)?;
    let argv = plan.direct_launch(argv(v.command));
    let out = super::open_log_append(v.log)?;
    let err = out.try_clone().map_err(log_err)?;
    let spawn_err = |source| WorkerError::Spawn {
        stream: v.env.stream.to_string(),
        source,
    };
    let mut child = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .envs(v.env.vars())
        .env(MERGE_SCRATCH_VAR, v.env.dir)
        .current_dir(v.env.dir)
        .process_group(0)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(spawn_err)?;
    let identity = crate::proc::identity_of(child.id() as i32);
    let deadline = Instant::now() + v.timeout;
    let exit = loop {
        match child.try_wait().map_err(spawn_err)? {
            Some(status) => break Some(exit_status(status)),
            None if Instant::now() >= deadline => {
                if let Some(id) = &identity {
                    super::stop::stop_groups(std::slice::from_ref(id), TIMEOUT_GRACE);
                }
                let _ = child.wait();
                break None;
            }
            // A verify runs for seconds to minutes; a short poll costs nothing next to it.
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    Ok(VerifyRun {
        command: v.command.to_string(),
        exit,
        output_lines: output_lines(v.log, offset),
        attempts: 1,
    })
}

/// Whether a finished verify passed.
pub fn passed(run: &VerifyRun) -> bool {
    run.exit == Some(ExitStatus::Code { code: 0 })
}

fn exit_status(status: std::process::ExitStatus) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitStatus::Code { code },
        (_, Some(signal)) => ExitStatus::Signal { signal },
        _ => ExitStatus::Lost,
    }
}

/// Ends every verify a killed `merge` left running in its scratch worktree `dir` (found by
/// [`MERGE_SCRATCH_VAR`]), whole process groups, through the one termination routine. Returns
/// the other live processes working inside `dir` (not ours to end): while there are any, the
/// folder must not be removed.
pub fn stop_leftover(dir: &Path) -> Vec<u32> {
    let inside = crate::git::occupants::inside(dir);
    let wanted = format!("{MERGE_SCRATCH_VAR}={}", dir.display());
    let (ours, others): (Vec<u32>, Vec<u32>) = inside.into_iter().partition(|pid| {
        std::fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == wanted.as_bytes()))
    });
    let mut groups: Vec<i32> = ours
        .iter()
        .filter_map(|&pid| crate::proc::stat(pid as i32).map(|s| s.pgrp))
        .collect();
    groups.sort_unstable();
    groups.dedup();
    let leaders: Vec<crate::proc::Identity> = groups
        .into_iter()
        .filter_map(crate::proc::identity_of)
        .collect();
    super::stop::stop_groups(&leaders, TIMEOUT_GRACE);
    // A member whose group leader had already exited is not reached through its group.
    for pid in ours {
        if let Some(stat) = crate::proc::stat(pid as i32).filter(crate::proc::Stat::is_live) {
            crate::proc::signal_same(&stat, nix::sys::signal::Signal::SIGKILL);
        }
    }
    others
}
