//! Launching one stream: claim it in the state store (so no second `start` launches it and
//! nothing removes its worktree meanwhile), make sure no worker of it is alive that the store
//! does not know (`/proc`, the worktree lock), prepare where it runs, render its prompt, and
//! spawn its supervisor.

use std::path::Path;
use std::process::Stdio;

use tokio::time::Instant;

use super::dispatcher::{Running, Scheduler, Slot};
use super::event::Event;
use crate::cmdline;
use crate::error::{Error, Result};
use crate::graph::Stream;
use crate::model::{Failure, Verdict};
use crate::proc::{Found, Identity, found_workers, identity_of};
use crate::signals::Signals;
use crate::state::{Claim, NewWorker, RowKind};
use crate::taskdb::TaskSource;
use crate::worker::agent::Transcript;
use crate::worker::prompt::Happened;
use crate::worker::{self, WorkerCommand, prompt};
use crate::workspace::{Placement, PrepareFailure};

impl Scheduler<'_> {
    /// Claims, prepares and spawns one worker; false if a signal arrived meanwhile.
    pub(super) async fn launch(&mut self, stream_id: &str, signals: &mut Signals) -> Result<bool> {
        let stream = self
            .graph
            .get(stream_id)
            .expect("ready streams are in the graph")
            .clone();
        // `stop STREAM` may have stopped it before it ever ran: that verdict wins.
        if let Some(v @ Verdict::Stopped) = self.store.verdicts()?.remove(stream_id) {
            self.run_of(stream_id).verdict = Some(v);
            return Ok(true);
        }
        let attempt = self.run_of(stream_id).attempts + 1;
        self.run_of(stream_id).attempts = attempt;
        self.next_launch = Some(Instant::now() + self.settings.stagger);
        let log = worker::log_path(&self.settings.project.logs_dir(), stream_id);
        let new = NewWorker {
            stream: stream_id,
            attempt,
            log_path: &log,
            log_offset: std::fs::metadata(&log).map_or(0, |m| m.len()),
            kind: RowKind::Worker,
            command: &self.settings.worker_cmd,
            dir: &self.settings.project.root,
            branch: None,
            base: None,
        };
        let record = match self.store.claim(&new, &self.me)? {
            Claim::Granted(id) => id,
            Claim::Taken(rec) => {
                // Another `start` launched it a moment ago: watch it instead.
                self.watch_adopted(*rec);
                return Ok(true);
            }
        };
        // The store says nobody runs it; `/proc` and the worktree lock have the last word.
        if let Some(found) = self.holder(&stream)? {
            self.store.hand_over(record, &found)?;
            self.reporter.event(Event::Note {
                stream: Some(stream_id),
                text: format!(
                    "a worker of this stream is already running (pid {}) though the state store \
                     did not record it; watching it instead of starting another",
                    found.pid
                ),
            });
            if let Some(rec) = self.store.worker(record)? {
                self.watch(rec);
            }
            return Ok(true);
        }
        if !self.still_launchable(stream_id)? {
            self.store.release_claim(record)?;
            return Ok(true);
        }
        self.run_of(stream_id).slot = Slot::Preparing;
        self.reporter.event(Event::Preparing {
            stream: stream_id,
            attempt,
        });
        // Back from a park or a failed verification: the launch is the answer to that verdict.
        if matches!(
            self.run_of(stream_id).verdict,
            Some(Verdict::Parked { .. } | Verdict::VerifyFailed { .. })
        ) {
            self.clear_verdict(stream_id)?;
        }
        let prepared = {
            let workspaces = self.workspaces.clone();
            let (stream, graph) = (stream.clone(), self.graph.clone());
            let mut job = tokio::task::spawn_blocking(move || {
                workspaces
                    .lock()
                    .expect("no panics while holding the workspaces")
                    .prepare(&stream, &graph)
            });
            loop {
                tokio::select! {
                    r = &mut job => break r.map_err(|e| {
                        Error::msg(format!("preparing {stream_id} failed: {e}"))
                    })?,
                    Some((stream, progress)) = self.progress_rx.recv() => {
                        self.reporter.event(Event::PrepareProgress { stream: &stream, progress });
                    }
                    // The claim stays with this (exiting) process: a later `start` sees its
                    // claimer dead and takes the stream over.
                    _ = signals.recv() => return Ok(false),
                }
            }
        };
        let placement = match prepared {
            Ok(p) => p,
            Err(failure) => {
                self.store
                    .record_spawn_failure(record, "its worktree could not be prepared")?;
                self.run_of(stream_id).slot = Slot::Idle;
                match failure {
                    PrepareFailure::Blocked(block) => {
                        self.set_verdict(stream_id, Verdict::Blocked { block })?
                    }
                    PrepareFailure::Failed { detail } => {
                        self.fail(stream_id, Failure::Prepare { detail })?
                    }
                }
                return Ok(true);
            }
        };
        self.store.set_placement(
            record,
            &placement.dir,
            placement.branch.as_deref(),
            placement.base.as_deref(),
        )?;
        let started = self.start_prepared(&stream, attempt, record, placement, &log);
        if let Err(e) = started {
            self.run_of(stream_id).slot = Slot::Idle;
            return Err(e);
        }
        Ok(true)
    }

    /// A live worker of `stream` the state store does not account for (its store was lost, or
    /// its supervisor SIGKILLed and its row declared lost): found in `/proc` by its marker and
    /// environment, or named, with its start time, by the lock on the stream's worktree.
    fn holder(&self, stream: &Stream) -> Result<Option<Found>> {
        for found in found_workers(self.store.path()) {
            if found.stream != stream.id() {
                continue;
            }
            // A supervisor with its row here is accounted for: our claim was granted, so its
            // row is ended (the worker finished, or the launch was given up) and it is leaving.
            if let Some(id) = found.record
                && self
                    .store
                    .worker(id)?
                    .is_some_and(|r| r.stream == found.stream)
            {
                continue;
            }
            return Ok(Some(found));
        }
        Ok(self
            .workspaces
            .lock()
            .expect("no panics while holding the workspaces")
            .holder(stream))
    }

    /// Whether the model still launches `stream` on fresh facts, read after the claim: another
    /// `start` may have run it to completion (or given it a verdict) since this run last read
    /// the task database, and its worker's end, which freed the claim, came after its tasks
    /// were marked.
    fn still_launchable(&mut self, stream: &str) -> Result<bool> {
        if !self.refresh_with(&[stream.to_string()]) {
            return Ok(false);
        }
        let mut verdicts = self.store.verdicts()?;
        for (id, run) in &mut self.runs {
            run.verdict = verdicts.remove(id);
        }
        Ok(self.model().get(stream).is_some_and(|v| v.actions.launch))
    }

    /// Renders the prompt and spawns the claimed stream's supervisor.
    fn start_prepared(
        &mut self,
        stream: &Stream,
        attempt: u32,
        record: i64,
        placement: Placement,
        log: &Path,
    ) -> Result<()> {
        let stream_id = stream.id();
        for note in &placement.notes {
            self.reporter.event(Event::Note {
                stream: Some(stream_id),
                text: note.clone(),
            });
        }
        let abandon = |s: &mut Self, failure: Failure| -> Result<()> {
            // The row records why nothing ran; the verdict carries the typed failure.
            let why = serde_json::to_string(&failure).expect("failures serialise");
            s.store.record_spawn_failure(record, &why)?;
            s.run_of(stream_id).slot = Slot::Idle;
            s.fail(stream_id, failure)
        };
        let tasks = self.db.tasks(Some(stream_id))?;
        let command = WorkerCommand::parse(&self.settings.worker_cmd)?;
        let resume = self.resume_of(stream_id, &command);
        let text = match &resume {
            Some((_, happened)) => prompt::render_resume(
                &self.settings.resume_template,
                &prompt::ResumeVars {
                    stream_id,
                    stream_name: &stream.record.name,
                    attempt,
                    tasks: &tasks,
                    worktree: &placement.dir,
                    branch: placement.branch.as_deref(),
                    happened,
                },
            ),
            None => prompt::render(
                &self.settings.prompt_template,
                &prompt::PromptVars {
                    stream_id,
                    stream_name: &stream.record.name,
                    dependencies: &stream.dependencies,
                    tasks: &tasks,
                    worktree: &placement.dir,
                    branch: placement.branch.as_deref(),
                    db: &self.settings.db_path,
                    task_commands: self.db.kind().task_commands(),
                },
            ),
        };
        let prompt_file = worker::prompt_path(&self.settings.project.run_dir(), stream_id);
        let filled = command.fill(&worker::Values {
            prompt: &text,
            stream: stream_id,
            worktree: &placement.dir,
            prompt_file: &prompt_file,
        });
        let filled = match filled {
            Ok(mut f) => {
                // Claude's own options go right after the program.
                let mut extra = Vec::new();
                if let Some((session, _)) = &resume {
                    extra.extend(["--resume".to_string(), session.clone()]);
                }
                if let (true, Some(usd)) = (command.is_claude(), self.settings.max_budget_usd) {
                    extra.extend(["--max-budget-usd".to_string(), usd.to_string()]);
                }
                f.argv.splice(1..1, extra);
                f
            }
            // Retrying cannot help: the prompt stays as long.
            Err(e) => {
                let program = command.program().to_string();
                let detail = format!("{:?}", Error::from(e));
                return abandon(self, Failure::CannotRun { program, detail });
            }
        };
        let argv = &filled.argv;
        if cmdline::find_program(&argv[0], &placement.dir).is_none() {
            // Retrying cannot help: fail at once, with the fix.
            let detail = format!(
                "not found on PATH or relative to {}; set the worker command with --worker-cmd, ORCHESTRATE_WORKER_CMD or worker_cmd in the config",
                placement.dir.display()
            );
            let program = argv[0].clone();
            return abandon(self, Failure::CannotRun { program, detail });
        }
        // Arguments and environment are C strings: a NUL byte (task data is free text) made
        // the spawn fail with a bare "nul byte found in provided data", once per retry.
        let with_nul = if stream_id.contains('\0') {
            Some("its stream id")
        } else if stream.record.name.contains('\0') {
            Some("its stream name")
        } else if argv.iter().any(|a| a.contains('\0')) {
            Some("its worker command or prompt (task titles, descriptions)")
        } else {
            None
        };
        if let Some(what) = with_nul {
            return abandon(self, Failure::BadTaskData { what: what.into() });
        }
        let sandbox = self.settings.sandbox.plan(&worker::sandbox::Place {
            project: &self.settings.project,
            stream: stream_id,
            dir: &placement.dir,
            db: Some(&self.settings.db_path),
        });
        let sandbox = match sandbox {
            Ok(plan) => plan,
            // Required but not enforceable here: retrying cannot help either.
            Err(e) => {
                let (program, detail) = (argv[0].clone(), format!("{:?}", Error::from(e)));
                return abandon(self, Failure::CannotRun { program, detail });
            }
        };
        self.store.set_sandbox(record, sandbox.applied())?;
        if let Err(e) = worker::write_prompt(&prompt_file, &text) {
            let program = argv[0].clone();
            let detail = format!("{:?}", Error::from(e));
            return abandon(self, Failure::CannotRun { program, detail });
        }
        let resumed = resume.is_some();
        match self.spawn(
            stream,
            attempt,
            &placement,
            (&filled, &sandbox),
            log,
            record,
            resumed,
        ) {
            Ok(identity) => {
                self.workspaces
                    .lock()
                    .expect("no panics while holding the workspaces")
                    .worker_started(stream_id, &placement, identity.pid as u32);
                self.reporter.event(Event::Started {
                    stream: stream_id,
                    pid: identity.pid,
                    attempt,
                });
                let warned = self.warned();
                let run = self.run_of(stream_id);
                run.fresh_next = false;
                // New work: whatever passed before must pass again.
                if run.verify_cmd.is_some() {
                    run.verify = crate::model::VerifyFact::Pending;
                }
                run.launched_while_warned = warned;
                run.slot = Slot::Running(Box::new(Running {
                    record,
                    identity,
                    attempt,
                    placement,
                    read_to: std::fs::metadata(log).map_or(0, |m| m.len()),
                    log: log.to_path_buf(),
                    adopted: false,
                    via_claimer: false,
                    last_activity: None,
                    transcript: Transcript::default(),
                    resumed,
                }));
                Ok(())
            }
            Err(e) => {
                let detail = format!("{e:?}");
                abandon(
                    self,
                    Failure::CannotRun {
                        program: argv[0].clone(),
                        detail,
                    },
                )
            }
        }
    }

    /// The session to resume and what to tell it, when this launch resumes one: a Claude
    /// worker, resume on, an earlier session, and no word that it is gone.
    fn resume_of(&mut self, stream: &str, command: &WorkerCommand) -> Option<(String, Happened)> {
        let on = self.settings.resume && command.is_claude();
        let run = self.run_of(stream);
        if !on || run.fresh_next {
            return None;
        }
        Some((run.session.clone()?, run.happened.clone()?))
    }

    /// What the log header says about earlier attempts of the stream.
    fn earlier_attempts(&self, stream: &str, resumed: bool) -> Vec<String> {
        let Ok(rows) = self.store.attempts_of(stream) else {
            return Vec::new();
        };
        // The row of this very launch is the last one.
        let earlier = &rows[..rows.len().saturating_sub(1)];
        if earlier.is_empty() {
            return Vec::new();
        }
        let spent = crate::facts::Spending::of(earlier);
        let mut lines = vec![format!(
            "earlier attempts: {}, spent ${:.4}, {} turns, {} input and {} output tokens",
            earlier.len(),
            spent.cost_usd,
            spent.turns,
            spent.input_tokens,
            spent.output_tokens
        )];
        match (
            resumed,
            self.runs.get(stream).and_then(|r| r.session.as_deref()),
        ) {
            (true, Some(session)) => lines.push(format!("resumes session {session}")),
            (false, Some(session)) => {
                lines.push(format!("starts a fresh session (the last was {session})"))
            }
            _ => {}
        }
        lines
    }

    #[expect(clippy::too_many_arguments, reason = "one launch's facts, passed once")]
    fn spawn(
        &self,
        stream: &Stream,
        attempt: u32,
        placement: &Placement,
        (filled, sandbox): (&worker::Filled, &worker::sandbox::Plan),
        log: &Path,
        record: i64,
        resumed: bool,
    ) -> Result<Identity> {
        let earlier = self.earlier_attempts(stream.id(), resumed);
        let file = worker::open_log(
            log,
            &worker::Header {
                stream: stream.id(),
                name: &stream.record.name,
                dependencies: &stream.dependencies,
                attempt,
                command: &self.settings.worker_cmd,
                dir: &placement.dir,
                branch: placement.branch.as_deref(),
                earlier: &earlier,
                sandbox: &sandbox.header(),
            },
        )?;
        let spawn_err = |source| worker::WorkerError::Spawn {
            stream: stream.id().to_string(),
            source,
        };
        let prompt = filled
            .prompt_on_stdin
            .then_some(filled.prompt_file.as_path());
        let confinement = sandbox.confinement();
        let s = &self.settings;
        let mut cmd = self.supervisor(
            record,
            (prompt, confinement.as_ref()),
            &filled.argv,
            &placement.dir,
            file,
        )?;
        cmd.env("ORCHESTRATE_STREAM", stream.id())
            .env("ORCHESTRATE_STREAM_NAME", &stream.record.name)
            .env("ORCHESTRATE_WORKTREE", &placement.dir)
            .env(
                "ORCHESTRATE_BRANCH",
                placement.branch.as_deref().unwrap_or(""),
            )
            .env("ORCHESTRATE_DB", &s.db_path)
            .env("ORCHESTRATE_PROJECT_ROOT", &s.project.root)
            .env("ORCHESTRATE_BIN", &s.exe)
            .env("ORCHESTRATE_ATTEMPT", attempt.to_string())
            .env("ORCHESTRATE_PROMPT_FILE", &filled.prompt_file);
        // So that any agent CLI can resume the way Claude workers do.
        if let Some(run) = self.runs.get(stream.id()) {
            if let Some(session) = &run.session {
                cmd.env("ORCHESTRATE_PREVIOUS_SESSION", session);
            }
            if let Some(happened) = &run.happened {
                cmd.env("ORCHESTRATE_PREVIOUS_OUTCOME", happened.word());
            }
        }
        let child = cmd.spawn().map_err(spawn_err)?;
        self.watch_spawned(child, record, stream.id())
    }

    /// `orchestrate __supervise --record R --state DB [--stdin F] [--abi N --write PATH…] --
    /// ARGV…` in `dir`: the leader of a new process group, stdin `/dev/null`, its output (and
    /// the worker's) appended to `log` (a stream's log file, opened by the caller). The worker's
    /// stdin is `stdin`; a `confinement` confines it (the supervisor does, in its child).
    pub(super) fn supervisor(
        &self,
        record: i64,
        (stdin, confinement): (Option<&Path>, Option<&worker::sandbox::Confinement>),
        argv: &[String],
        dir: &Path,
        log: std::fs::File,
    ) -> Result<tokio::process::Command> {
        let err_log = log.try_clone().map_err(|source| worker::WorkerError::Log {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut cmd = tokio::process::Command::new(&self.settings.exe);
        cmd.arg("__supervise")
            .arg("--record")
            .arg(record.to_string())
            .arg("--state")
            .arg(self.store.path());
        if let Some(stdin) = stdin {
            cmd.arg("--stdin").arg(stdin);
        }
        if let Some(confinement) = confinement {
            cmd.args(confinement.args());
        }
        cmd.arg("--")
            .args(argv)
            .current_dir(dir)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err_log));
        Ok(cmd)
    }

    /// Records a just-spawned supervisor and watches for its exit (the dispatcher hears of it
    /// through `exits_tx`).
    pub(super) fn watch_spawned(
        &self,
        mut child: tokio::process::Child,
        record: i64,
        stream: &str,
    ) -> Result<Identity> {
        let pid = child.id().map(|p| p as i32).unwrap_or(0);
        // The child is not reaped until we wait, so its /proc entry is readable even if it
        // already exited.
        let identity = identity_of(pid).ok_or_else(|| {
            Error::msg(format!(
                "the supervisor of {stream} (pid {pid}) vanished at once"
            ))
        })?;
        self.store.set_spawned(record, &identity)?;
        let tx = self.exits_tx.clone();
        tokio::spawn(async move {
            let _ = child.wait().await;
            let _ = tx.send(record);
        });
        Ok(identity)
    }
}
