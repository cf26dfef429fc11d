//! The verification gate: when a stream's worker exits with its tasks complete and a verify
//! command applies (`verify`, `--verify`, a stream's `metadata.verify`), the command runs in
//! the stream's worktree under a supervisor (so `status` shows `verifying`, `stop` can end it,
//! and its exit is recorded even if `start` is gone), with a time limit, its output in the
//! stream's log. Passed: the stream is done for its dependents. Failed: the worker goes back
//! to work, resumed and told the command and the output's last lines, counting as an attempt;
//! when attempts run out the stream fails with "verify failed".

use std::path::Path;

use tokio::time::Instant;

use super::dispatcher::{Exited, Scheduler, Slot, Verifying};
use super::event::Event;
use crate::error::{Error, Result};
use crate::model::{ExitStatus, Failure, Verdict, VerifyFact, VerifyRun};
use crate::state::{Claim, NewWorker, RowKind, WorkerRecord};
use crate::worker::prompt::Happened;
use crate::worker::{self, render};
use crate::workspace::Placement;

use crate::worker::verify::{TIMEOUT_GRACE, VerifyEnv, output_lines};

impl Scheduler<'_> {
    /// After a worker finished its stream's tasks: starts the verify command if one applies
    /// and has not passed since.
    pub(super) fn maybe_verify(&mut self, stream: &str, exited: &Exited) -> Result<()> {
        self.verify_work(stream, exited.attempt, &exited.log, &exited.placement)
    }

    /// Starts the verification a finished worker's work is owed (one of an earlier `start`
    /// that ended before it ran it): from the stream's latest worker row.
    pub(super) fn verify_owed(&mut self, stream: &str) -> Result<()> {
        let Some(rec) = self
            .store
            .latest_workers()?
            .into_iter()
            .find(|w| w.stream == stream)
        else {
            return Ok(());
        };
        let placement = Placement::of_record(&rec, &self.settings.project.root);
        self.verify_work(stream, rec.attempt, &rec.log_path, &placement)
    }

    fn verify_work(
        &mut self,
        stream: &str,
        attempt: u32,
        log: &Path,
        placement: &Placement,
    ) -> Result<()> {
        let run = self.run_of(stream);
        let Some(command) = run.verify_cmd.clone() else {
            run.verify = VerifyFact::NotRequired;
            return Ok(());
        };
        run.verify = VerifyFact::Pending;
        let new = NewWorker {
            stream,
            attempt,
            log_path: log,
            log_offset: std::fs::metadata(log).map_or(0, |m| m.len()),
            kind: RowKind::Verify,
            command: &command,
            dir: &placement.dir,
            branch: placement.branch.as_deref(),
            base: placement.base.as_deref(),
        };
        let record = match self.store.claim(&new, &self.me)? {
            Claim::Granted(id) => id,
            // Another `start` runs something for this stream right now: watch it.
            Claim::Taken(rec) => {
                match rec.kind {
                    RowKind::Verify => self.watch_adopted_verify(*rec),
                    RowKind::Worker => self.watch_adopted(*rec),
                }
                return Ok(());
            }
        };
        match self.spawn_verify(stream, record, &command, &new) {
            Ok(slot) => {
                self.run_of(stream).slot = Slot::Verifying(Box::new(slot));
                Ok(())
            }
            Err(e) => {
                self.store.record_spawn_failure(record, &format!("{e:?}"))?;
                let verify = VerifyRun {
                    command,
                    exit: Some(ExitStatus::Code { code: 127 }),
                    output_lines: vec![format!("{e:?}")],
                    attempts: attempt,
                };
                self.fail(stream, Failure::VerifyFailed { verify })
            }
        }
    }

    fn spawn_verify(
        &mut self,
        stream: &str,
        record: i64,
        command: &str,
        new: &NewWorker<'_>,
    ) -> Result<Verifying> {
        let spawn_err = |source| worker::WorkerError::Spawn {
            stream: stream.to_string(),
            source,
        };
        worker::append_log_line(
            new.log_path,
            &format!("{} orchestrate: verify: {command}", render::MARK),
        )
        .map_err(|source| worker::WorkerError::Log {
            path: new.log_path.to_path_buf(),
            source,
        })?;
        // Confined like the stream's worker.
        let sandbox = self
            .settings
            .sandbox
            .plan(&worker::sandbox::Place {
                project: &self.settings.project,
                stream,
                dir: new.dir,
                db: Some(&self.settings.db_path),
            })
            .map_err(Error::from)?;
        self.store.set_sandbox(record, sandbox.applied())?;
        let argv = worker::verify::argv(command);
        let file = worker::open_log_append(new.log_path)?;
        let s = &self.settings;
        let confinement = sandbox.confinement();
        let mut cmd =
            self.supervisor(record, (None, confinement.as_ref()), &argv, new.dir, file)?;
        let env = VerifyEnv {
            stream,
            dir: new.dir,
            branch: new.branch.unwrap_or(""),
            db: &s.db_path,
            project_root: &s.project.root,
        };
        cmd.envs(env.vars()).env("ORCHESTRATE_BIN", &s.exe);
        let child = cmd.spawn().map_err(spawn_err)?;
        let identity = self.watch_spawned(child, record, stream)?;
        Ok(Verifying {
            record,
            identity,
            deadline: Instant::now() + self.settings.verify_timeout,
            timed_out: false,
            adopted: false,
        })
    }

    /// A verification an earlier `start` left running: watch it.
    pub(super) fn watch_adopted_verify(&mut self, rec: WorkerRecord) {
        let Some(identity) = rec.identity.clone() else {
            return;
        };
        let timeout = self.settings.verify_timeout;
        let run = self.run_of(&rec.stream);
        run.verify = VerifyFact::Pending;
        run.slot = Slot::Verifying(Box::new(Verifying {
            record: rec.id,
            identity,
            deadline: Instant::now() + timeout,
            timed_out: false,
            adopted: true,
        }));
    }

    /// Stops verifications that ran out of time (their exit is then judged as a failure).
    pub(super) async fn time_out_verifications(&mut self) {
        let now = Instant::now();
        let late: Vec<crate::proc::Identity> = self
            .runs
            .values_mut()
            .filter_map(|r| match &mut r.slot {
                Slot::Verifying(v) if !v.timed_out && v.deadline <= now => {
                    v.timed_out = true;
                    Some(v.identity.clone())
                }
                _ => None,
            })
            .collect();
        if late.is_empty() {
            return;
        }
        let _ =
            tokio::task::spawn_blocking(move || worker::stop::stop_groups(&late, TIMEOUT_GRACE))
                .await;
    }

    /// A verification ended.
    pub(super) fn on_verify_exit(&mut self, stream: &str, record: i64) -> Result<()> {
        let Slot::Verifying(v) = std::mem::take(&mut self.run_of(stream).slot) else {
            return Ok(());
        };
        let Some(mut rec) = self.store.worker(record)? else {
            return Ok(());
        };
        if rec.ended_at.is_none() {
            if rec.is_live() {
                self.run_of(stream).slot = Slot::Verifying(v);
                return Ok(());
            }
            self.store.mark_lost(&rec)?;
            rec = self.store.worker(record)?.unwrap_or(rec);
        }
        self.judge_verify_row(&rec, v.timed_out)
    }

    /// Passed, back to the worker, or failed: what a finished verification means.
    pub(super) fn judge_verify_row(&mut self, rec: &WorkerRecord, timed_out: bool) -> Result<()> {
        let stream = rec.stream.as_str();
        self.store.set_finalized(rec.id)?;
        if !timed_out && rec.exit_code == Some(0) {
            self.run_of(stream).verify = VerifyFact::Passed;
            self.reporter.event(Event::Note {
                stream: Some(stream),
                text: format!(
                    "verify passed: {}",
                    rec.command.as_deref().unwrap_or_default()
                ),
            });
            return Ok(());
        }
        let run = self.run_of(stream);
        run.failures += 1;
        let failures = run.failures;
        let verify = VerifyRun {
            command: rec.command.clone().unwrap_or_default(),
            exit: (!timed_out).then(|| super::exits::exit_status(rec)),
            output_lines: output_lines(&rec.log_path, rec.log_offset),
            attempts: failures,
        };
        if failures <= self.settings.retries {
            self.run_of(stream).happened = Some(Happened::Verify(verify.clone()));
            self.set_verdict(stream, Verdict::VerifyFailed { verify })
        } else {
            self.fail(stream, Failure::VerifyFailed { verify })
        }
    }
}
