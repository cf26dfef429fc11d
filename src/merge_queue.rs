//! The merge queue behind `orchestrate merge`: complete streams merged one after another, in
//! dependency order, onto the target's tip, each checked by the verify command when asked, the
//! target moved only at the end (or after each verified step with `step`).
//!
//! Where things happen: each merge is made in the object database (`git::merge::turn`), never
//! in the user's checkout; a verify runs in `merge`'s scratch worktree (`git::scratch`), which
//! exists only when a verify runs and is removed whatever happens; the target moves only
//! through `git::merge::advance` (compare-and-swap, the clean checkout brought along). So a
//! conflict or a failed verify leaves the target and every checkout as they were.
//!
//! One `merge` at a time (`git::scratch::MergeLock`); the first thing a `merge` does under the
//! lock is end what a killed one left (its verify, its scratch worktree).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::git::Oid;

use crate::error::{Error, Result};
use crate::exit_codes;
use crate::git::merge::{Advanced, Checkout, Turn};
use crate::git::repo::Repo;
use crate::git::scratch::{self, MergeLock, Scratch};
use crate::git::{StreamMerge, merge};
use crate::graph::Stream;
use crate::model::VerifyRun;
use crate::project::Project;
use crate::worker::{sandbox, verify};

/// How to verify each merge.
pub struct VerifySetup<'a> {
    pub project: &'a Project,
    pub db: &'a Path,
    /// The run's verify command; a stream's own (`metadata.verify`) wins.
    pub default_command: Option<String>,
    pub timeout: Duration,
    pub policy: sandbox::Policy,
}

impl VerifySetup<'_> {
    /// The command that checks the merge of `stream`.
    pub fn command_for(&self, stream: &Stream) -> Option<String> {
        command_for(stream, self.default_command.as_deref())
    }
}

/// A stream's own verify command, else the run's; blank means none.
pub fn command_for(stream: &Stream, default: Option<&str>) -> Option<String> {
    stream
        .record
        .verify
        .as_deref()
        .or(default)
        .filter(|c| !c.trim().is_empty())
        .map(str::to_string)
}

pub struct Options<'a> {
    pub target: &'a str,
    pub verify: Option<VerifySetup<'a>>,
    /// Advance the target after each verified merge instead of once at the end.
    pub step: bool,
}

/// One merge the queue made.
#[derive(Debug, Clone)]
pub struct Step {
    pub entry: StreamMerge,
    pub commit: Oid,
    /// The verify command it passed, if one ran.
    pub verified: Option<String>,
}

/// Why the queue stopped before its end.
#[derive(Debug, Clone)]
pub enum Stop {
    Conflict(StreamMerge),
    VerifyFailed {
        entry: StreamMerge,
        run: VerifyRun,
    },
    /// The target moved meanwhile (from `expected` to `found`): it was not overwritten.
    Moved {
        expected: Oid,
        found: Oid,
    },
}

/// What a `merge` did.
#[derive(Debug, Clone)]
pub struct QueueReport {
    pub target: String,
    /// Where the target was when the queue began.
    pub begun: Oid,
    /// Merges made, in order (all of them landed on the target unless `stop` says otherwise).
    pub steps: Vec<Step>,
    /// How many of `steps` are on the target now.
    pub landed: usize,
    pub skipped: Vec<StreamMerge>,
    pub stop: Option<Stop>,
    /// The checkout that has the target, after the last advance.
    pub checkout: Option<Checkout>,
    /// Scratch worktrees of killed `merge`s that were removed first.
    pub cleaned: Vec<PathBuf>,
}

/// Runs the queue over `streams` (dependency order).
pub fn run(
    repo: &Repo,
    streams: &[&Stream],
    is_complete: impl Fn(&Stream) -> bool,
    opts: &Options<'_>,
) -> Result<QueueReport> {
    let lock = MergeLock::take(repo)?;
    let cleaned = clean_leftovers(repo, &lock)?;
    let begun = repo.require_tip(opts.target)?;
    let mut report = QueueReport {
        target: opts.target.into(),
        begun,
        steps: Vec::new(),
        landed: 0,
        skipped: Vec::new(),
        stop: None,
        checkout: None,
        cleaned,
    };
    let mut scratch = Scratch::new(repo, &lock);
    let (mut current, mut landed_at) = (begun, begun);
    for stream in streams {
        let turn = merge::turn(
            repo,
            opts.target,
            begun,
            current,
            stream,
            is_complete(stream),
        )?;
        let (entry, commit) = match turn {
            None => continue,
            Some(Turn::Skip(entry)) => {
                report.skipped.push(entry);
                continue;
            }
            Some(Turn::Conflict(entry)) => {
                report.stop = Some(Stop::Conflict(entry));
                break;
            }
            Some(Turn::Merged { entry, commit }) => (entry, commit),
        };
        let verified = match &opts.verify {
            Some(setup) => match check(repo, &mut scratch, setup, stream, &entry, commit)? {
                Ok(command) => Some(command),
                Err(run) => {
                    report.stop = Some(Stop::VerifyFailed { entry, run });
                    break;
                }
            },
            None => None,
        };
        current = commit;
        report.steps.push(Step {
            entry,
            commit,
            verified,
        });
        if opts.step && !land(repo, &mut report, &mut landed_at, current)? {
            break;
        }
    }
    drop(scratch);
    // With `step` every merge has landed already; a stop leaves the target where it is.
    if report.stop.is_none() && current != landed_at {
        land(repo, &mut report, &mut landed_at, current)?;
    }
    Ok(report)
}

/// Advances the target from `landed_at` to `to`; false (with the stop recorded) if it moved.
fn land(repo: &Repo, report: &mut QueueReport, landed_at: &mut Oid, to: Oid) -> Result<bool> {
    match merge::advance(repo, &report.target, *landed_at, to)? {
        Advanced::Done(checkout) => {
            *landed_at = to;
            report.landed = report.steps.len();
            report.checkout = Some(checkout);
            Ok(true)
        }
        Advanced::Moved { expected, found } => {
            report.stop = Some(Stop::Moved { expected, found });
            Ok(false)
        }
    }
}

/// Runs the verify of `stream`'s merge `commit` in the scratch worktree: `Ok(command)` when it
/// passed, `Err(run)` when it failed.
fn check(
    repo: &Repo,
    scratch: &mut Scratch,
    setup: &VerifySetup<'_>,
    stream: &Stream,
    entry: &StreamMerge,
    commit: Oid,
) -> Result<std::result::Result<String, VerifyRun>> {
    let Some(command) = setup.command_for(stream) else {
        return Err(no_command(&entry.stream));
    };
    scratch.check_out(repo, commit)?;
    let log = scratch::log_path(repo);
    let run = verify::run(&verify::Run {
        command: &command,
        env: verify::VerifyEnv {
            stream: stream.id(),
            dir: scratch.dir(),
            branch: &entry.branch,
            db: setup.db,
            project_root: &setup.project.root,
        },
        project: setup.project,
        policy: &setup.policy,
        timeout: setup.timeout,
        log: &log,
    })?;
    Ok(if verify::passed(&run) {
        Ok(command)
    } else {
        Err(run)
    })
}

/// `--verify` with no verify command for a stream.
pub fn no_command(stream: &str) -> Error {
    Error::msg(format!(
        "merge --verify: no verify command for stream {stream} (neither `verify` in the config \
         nor the stream's `metadata.verify`)"
    ))
    .with_hint(
        "set `verify = \"…\"` in .claude/orchestrator/config.toml (or ORCHESTRATE_VERIFY), or \
         merge without --verify",
    )
    .with_code(exit_codes::USAGE)
}

/// Ends what killed `merge`s left (their verify) and removes their scratch worktrees.
fn clean_leftovers(repo: &Repo, lock: &MergeLock) -> Result<Vec<PathBuf>> {
    let mut cleaned = Vec::new();
    for leftover in scratch::leftovers(repo, lock) {
        let others = verify::stop_leftover(&leftover.dir);
        if !others.is_empty() {
            return Err(Error::msg(format!(
                "the scratch worktree {} of a merge that was killed is in use by processes {:?}",
                leftover.dir.display(),
                others
            ))
            .with_hint("end them (or leave that folder), then run again")
            .with_code(exit_codes::REFUSED));
        }
        scratch::remove_leftover(repo, &leftover, lock)?;
        cleaned.push(leftover.dir);
    }
    Ok(cleaned)
}

/// For `clean`: ends and removes what killed `merge`s left, unless a `merge` runs now (then
/// nothing is touched and `None` is returned).
pub fn clean(repo: &Repo) -> Result<Option<Vec<PathBuf>>> {
    let lock = match MergeLock::take(repo) {
        Ok(lock) => lock,
        Err(crate::git::GitError::MergeRunning { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    clean_leftovers(repo, &lock).map(Some)
}
