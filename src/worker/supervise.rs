//! The supervisor (`orchestrate __supervise`): the process-group leader of one worker. It runs
//! the worker (confined by the sandbox when its command line carries a confinement: only the
//! worker is, between fork and exec, never the supervisor), outlives SIGTERM, records how the
//! worker ended in the state store, and clears what the worker left running: in its group, and
//! anywhere else if it carries the worker's marker ([`WORKER_ID_VAR`], so `setsid` escapees are
//! found too).

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::render::MARK;
use super::sandbox::{Confinement, SandboxError};
use super::terminate::{self, Tree};
use crate::proc::{Identity, WORKER_ID_VAR};
use crate::state::StateStore;
use crate::state::time::now_rfc3339;

/// How long leftovers of a finished worker get between SIGTERM and SIGKILL.
const LEFTOVER_GRACE: Duration = Duration::from_secs(2);

/// Exit code when the worker program could not be started (as a shell would say).
pub const CANNOT_EXEC: i32 = 127;

/// Exit code when the launch was given up before the worker ran: the `start` that claimed it
/// died first and a later `start` already declared the row lost (and may run the stream).
pub const ABANDONED: i32 = 125;

/// Runs `argv` as the worker of `record`, its stdin the file `stdin` (the prompt, when it was
/// too long to be an argument) or `/dev/null`, confined by `confinement` when given; returns
/// the worker's exit code. `log` receives `orchestrate`'s own lines (it is the stream's log:
/// our stderr).
pub fn run(
    record: i64,
    state: &Path,
    argv: &[OsString],
    stdin: Option<&Path>,
    confinement: Option<&Confinement>,
    log: &mut dyn Write,
) -> i32 {
    crate::signals::outlive_stop_signals();
    // Orphans of the worker become our children, so "did it leave anything running?" is one
    // cheap `waitpid` instead of a scan of /proc, and their zombies get reaped.
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let mut store = match StateStore::open(state) {
        Ok(s) => Some(s),
        Err(e) => {
            let _ = writeln!(log, "{MARK} orchestrate: cannot record this worker: {e}");
            None
        }
    };
    let me = Identity::current();
    if let (Some(store), Some(me)) = (&store, &me) {
        // Only while the row is unfinished: if our `start` was SIGKILLed between spawning us
        // and recording our identity, a later `start` saw a dead claimer, marked the row lost
        // and may already run this stream. Running the worker now would be a duplicate.
        if let Ok(false) = store.confirm_spawned(record, me) {
            let _ = writeln!(
                log,
                "{MARK} orchestrate: this launch was abandoned (its `start` died before the worker \
                 ran and a later `start` took the stream over); not running the worker"
            );
            return ABANDONED;
        }
    }
    let marker = me.as_ref().map(Identity::worker_marker);
    let mut child = match spawn(argv, stdin, confinement, marker.as_deref(), log) {
        Ok(child) => child,
        Err(msg) => {
            let _ = writeln!(log, "{MARK} orchestrate: {msg}");
            if let (Some(store), Some(me)) = (&store, &me) {
                let _ = store.record_exit(record, me, Some(CANNOT_EXEC), None, Some(&msg));
            }
            return CANNOT_EXEC;
        }
    };
    if let Some(store) = &store {
        let _ = store.set_worker_pid(record, child.id() as i32);
    }
    let status = child.wait();
    let (code, signal, text) = match status {
        Ok(st) => (
            st.code(),
            st.signal(),
            match (st.code(), st.signal()) {
                (Some(c), _) => format!("exited with code {c}"),
                (_, Some(s)) => format!("was killed by signal {s}"),
                _ => "ended".to_string(),
            },
        ),
        Err(e) => (None, None, format!("could not be waited for: {e}")),
    };
    if let Some(store) = &mut store {
        // The store may have been deleted or set aside while the worker ran (hours): write the
        // exit where `status` and the next `start` look, not into a file nobody reads.
        let _ = store.reopen_if_replaced();
    }
    if let (Some(store), Some(me)) = (&store, &me) {
        let _ = store.record_exit(record, me, code, signal, None);
        if let Ok(Some(rec)) = store.worker(record) {
            let report = agent_report(&rec.log_path, rec.log_offset);
            if report != crate::state::AgentReport::default() {
                let _ = store.set_agent_report(record, &report);
            }
        }
    }
    let _ = writeln!(
        log,
        "{MARK} orchestrate: worker {text} at {}",
        now_rfc3339()
    );
    clear_leftovers(marker.as_deref());
    code.unwrap_or(128 + signal.unwrap_or(0))
}

/// Starts the worker: our direct child, in our group, confined between fork and exec when
/// `confinement` says so (`sandbox/confine.rs`). `Err` says why it could not start, either way.
fn spawn(
    argv: &[OsString],
    stdin: Option<&Path>,
    confinement: Option<&Confinement>,
    marker: Option<&str>,
    log: &mut dyn Write,
) -> Result<Child, String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("no worker program to run".into());
    };
    let mut worker = Command::new(program);
    worker.args(args).stdin(worker_stdin(stdin)?);
    super::env::prepare(&mut worker, |var| std::env::var_os(var));
    if let Some(marker) = marker {
        worker.env(WORKER_ID_VAR, marker);
    }
    let sandboxed = |e: SandboxError| format!("{:?}", crate::error::Error::from(e));
    let hook = match confinement {
        Some(c) => Some(
            c.prepare(log)
                .and_then(|prepared| prepared.confine_child(&mut worker))
                .map_err(sandboxed)?,
        ),
        None => None,
    };
    worker
        .spawn()
        .map_err(|e| match hook.and_then(|hook| hook.refusal(worker)) {
            Some(why) => sandboxed(SandboxError::Restrict(why)),
            None => format!(
                "cannot run worker program `{}`: {e}",
                program.to_string_lossy()
            ),
        })
}

/// The worker's stdin: a file, or nothing. Never ours: a worker in its own process group that
/// reads a terminal is stopped (SIGTTIN).
fn worker_stdin(path: Option<&Path>) -> Result<Stdio, String> {
    Ok(match path {
        Some(path) => Stdio::from(
            std::fs::File::open(path)
                .map_err(|e| format!("cannot open the prompt file {}: {e}", path.display()))?,
        ),
        None => Stdio::null(),
    })
}

/// What the agent reported about this run, from its part of the log (its structured output,
/// when it prints one).
fn agent_report(log: &Path, offset: u64) -> crate::state::AgentReport {
    const MAX: u64 = 4 << 20;
    let len = std::fs::metadata(log).map_or(0, |m| m.len());
    let mut t = super::agent::Transcript::default();
    if let Some(bytes) = super::read_from(log, offset.max(len.saturating_sub(MAX)), MAX) {
        t.feed(&bytes);
        t.finish();
    }
    let usage = t.finished().map(|f| f.usage).unwrap_or_default();
    let tokens = |n: u64| (n > 0).then_some(n);
    crate::state::AgentReport {
        session_id: t.session_id().map(String::from),
        cost_usd: usage.cost_usd,
        turns: usage.turns,
        version: t.start().and_then(|s| s.version.clone()),
        input_tokens: tokens(
            usage.input_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens,
        ),
        output_tokens: tokens(usage.output_tokens),
    }
}

/// Ends what the worker left running: in our group (background jobs, stuck grandchildren) and,
/// by its marker, outside it (`setsid`, double forks), with the one termination routine.
fn clear_leftovers(marker: Option<&str>) {
    // Every descendant is our child or a descendant of one (we are a subreaper), so no
    // children at all means nothing to scan for.
    if !has_descendants() {
        return;
    }
    let tree = Tree::our_group(marker.map(|m| (WORKER_ID_VAR, m.to_string())));
    terminate::end(&[tree], LEFTOVER_GRACE);
    // Reap them, or they stay zombies until we exit (harmless: a zombie counts as ended).
    has_descendants();
}

/// Reaps exited descendants; true if some are still alive.
fn has_descendants() -> bool {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return true,
            Ok(_) => continue,
            // ECHILD: no children at all.
            Err(_) => return false,
        }
    }
}
