//! The supervisor (`orchestrate __supervise`): the process-group leader of one worker. It runs
//! the worker, outlives SIGTERM, records how the worker ended in the state store, and clears
//! what the worker left running in its group.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::proc::{Identity, group_members};
use super::render::MARK;
use crate::state::StateStore;
use crate::state::time::now_rfc3339;

/// How long leftovers of a finished worker get between SIGTERM and SIGKILL.
const LEFTOVER_GRACE: Duration = Duration::from_secs(2);

/// Exit code when the worker program could not be started (as a shell would say).
pub const CANNOT_EXEC: i32 = 127;

/// Runs `argv` as the worker of `record`; returns the worker's exit code. `log` receives
/// `orchestrate`'s own lines (it is the stream's log: our stderr).
pub fn run(record: i64, state: &Path, argv: &[String], log: &mut dyn Write) -> i32 {
    // SIGTERM/SIGINT/SIGHUP reach the whole group; the supervisor must live on to record the
    // worker's end, so it only notes them. SIGKILL (from `stop` after the grace) still ends it.
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        let _ = signal_hook::flag::register(sig, std::sync::Arc::default());
    }
    // Orphans of the worker become our children, so "did it leave anything running?" is one
    // cheap `waitpid` instead of a scan of /proc, and their zombies get reaped.
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let store = match StateStore::open(state) {
        Ok(s) => Some(s),
        Err(e) => {
            let _ = writeln!(log, "{MARK} orchestrate: cannot record this worker: {e}");
            None
        }
    };
    if let (Some(store), Some(me)) = (&store, Identity::current()) {
        let _ = store.set_spawned(record, &me);
    }
    let Some((program, args)) = argv.split_first() else {
        return CANNOT_EXEC;
    };
    let mut child = match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            let msg = format!("cannot run worker program `{program}`: {e}");
            let _ = writeln!(log, "{MARK} orchestrate: {msg}");
            if let Some(store) = &store {
                let _ = store.record_exit(record, Some(CANNOT_EXEC), None, Some(&msg));
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
    if let Some(store) = &store {
        let _ = store.record_exit(record, code, signal, None);
        if let Ok(Some(rec)) = store.worker(record) {
            let info = super::render::session_info(
                &super::tail(&rec.log_path, 256 * 1024).unwrap_or_default(),
            );
            if info != super::render::SessionInfo::default() {
                let _ = store.set_session(record, &info);
            }
        }
    }
    let _ = writeln!(
        log,
        "{MARK} orchestrate: worker {text} at {}",
        now_rfc3339()
    );
    clear_leftovers();
    code.unwrap_or(128 + signal.unwrap_or(0))
}

/// Ends what the worker left running in our group (background jobs, stuck grandchildren).
fn clear_leftovers() {
    if !has_descendants() {
        return;
    }
    let me = std::process::id() as i32;
    let others = || -> Vec<i32> { group_members(me).into_iter().filter(|&p| p != me).collect() };
    let left = others();
    if left.is_empty() {
        return;
    }
    for pid in &left {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGTERM);
    }
    let deadline = std::time::Instant::now() + LEFTOVER_GRACE;
    while !others().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for pid in others() {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    wait_alone(me);
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

/// Waits (briefly) until the group holds only us, so our exit means the group is gone.
fn wait_alone(me: i32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while group_members(me).iter().any(|&p| p != me) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}
