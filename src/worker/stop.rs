//! Stopping a worker: SIGTERM to its whole process group, a grace period, SIGKILL to the group,
//! then waiting until no live process of the group remains.
//!
//! Invariant: nothing is signalled unless the recorded group leader is provably alive (same pid,
//! start time and boot id); a stale record is reported, never acted on.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::proc::{Identity, group_members};

/// How often group membership is re-read while waiting.
const POLL: Duration = Duration::from_millis(20);
/// How long to wait for the kernel to finish off a SIGKILLed group.
const AFTER_KILL: Duration = Duration::from_secs(10);

/// What a stop did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopResult {
    /// The group ended after SIGTERM, within the grace period.
    Terminated,
    /// The group outlived the grace period and was SIGKILLed.
    Killed,
    /// SIGKILL was sent but members still showed as alive after waiting.
    Lingering,
    /// The recorded process is not alive (or is another process): nothing was signalled.
    NotAlive,
}

/// Stops the groups led by `leaders` together: SIGTERM to all, one shared grace period, then
/// SIGKILL to those still alive. Results are in the order of `leaders`.
pub fn stop_groups(leaders: &[Identity], grace: Duration) -> Vec<StopResult> {
    let mut results: Vec<Option<StopResult>> = leaders
        .iter()
        .map(|l| (!l.is_alive()).then_some(StopResult::NotAlive))
        .collect();
    for (leader, result) in leaders.iter().zip(&results) {
        if result.is_none() {
            let _ = killpg(Pid::from_raw(leader.pid), Signal::SIGTERM);
        }
    }
    let deadline = Instant::now() + grace;
    loop {
        for (leader, result) in leaders.iter().zip(results.iter_mut()) {
            if result.is_none() && group_members(leader.pid).is_empty() {
                *result = Some(StopResult::Terminated);
            }
        }
        if results.iter().all(Option::is_some) || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(POLL);
    }
    for (leader, result) in leaders.iter().zip(results.iter_mut()) {
        if result.is_none() {
            // The group still has live members, so its id cannot have been reused.
            let _ = killpg(Pid::from_raw(leader.pid), Signal::SIGKILL);
            *result = Some(if wait_empty(leader.pid, AFTER_KILL) {
                StopResult::Killed
            } else {
                StopResult::Lingering
            });
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or(StopResult::NotAlive))
        .collect()
}

/// Waits until the group has no live member; true if it emptied within `limit`.
pub fn wait_empty(pgid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if group_members(pgid).is_empty() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}
