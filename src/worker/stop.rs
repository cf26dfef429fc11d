//! Stopping a worker: SIGTERM to its whole process group and to every process carrying its
//! marker (descendants that left the group with `setsid` or a double fork), a grace period,
//! SIGKILL to both, then waiting until none of them is alive.
//!
//! Invariant: the group is signalled only if the recorded group leader is provably alive (same
//! pid, start time and boot id); a stale record's pid or group is never acted on. Marked
//! processes are signalled whatever the leader's state: the marker (the supervisor's pid and
//! start time, in the environment the supervisor gave its worker) is itself the proof that
//! they descend from that worker, and each is re-checked by start time right before a signal.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::model::Verdict;
use crate::proc::{Identity, group_members, marked_processes, signal_same};
use crate::state::{StateError, StateStore};

/// What `stop` did, stream by stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StopReport {
    /// Live workers signalled, and how each ended.
    pub stopped: Vec<Stopped>,
    /// Records whose process was gone (or was another process): cleaned, nothing signalled;
    /// with the number of leftover processes found by the worker's marker and ended.
    pub stale: Vec<(String, Option<i32>, usize)>,
    /// Streams whose worker is being launched right now (no supervisor recorded yet).
    pub launching: Vec<String>,
    /// Named streams with no live worker: marked stopped so no `start` launches them.
    pub held: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stopped {
    pub stream: String,
    pub pid: i32,
    pub result: StopResult,
}

/// Stops the live workers of `streams` (all when empty) and records each stream stopped
/// before signalling, so a running `start` that sees the exit does not retry it. A named
/// stream without a live worker is recorded stopped too. Never signals a process that is not
/// provably the recorded one.
pub fn stop_streams(
    store: &StateStore,
    streams: &[String],
    grace: Duration,
) -> Result<StopReport, StateError> {
    let wanted = |s: &str| streams.is_empty() || streams.iter().any(|w| w == s);
    let mut report = StopReport::default();
    let mut live = Vec::new();
    for rec in store
        .open_workers()?
        .into_iter()
        .filter(|r| wanted(&r.stream))
    {
        if !rec.is_live() && store.mark_lost(&rec)? {
            // Its supervisor is gone, but descendants carrying its marker may not be (it was
            // SIGKILLed before it could clear them).
            let ended = rec.identity.as_ref().map_or(0, |id| end_marked(id, grace));
            report.stale.push((rec.stream.clone(), rec.pgid(), ended));
        } else if rec.identity.is_none() || !rec.is_live() {
            // Being launched right now (or its supervisor recorded itself as we looked).
            report.launching.push(rec.stream.clone());
        } else {
            live.push(rec);
        }
    }
    for rec in &live {
        store.set_verdict(&rec.stream, &Verdict::Stopped)?;
    }
    for name in streams {
        let busy = live.iter().any(|r| &r.stream == name) || report.launching.contains(name);
        if !busy {
            store.set_verdict(name, &Verdict::Stopped)?;
            report.held.push(name.clone());
        }
    }
    let leaders: Vec<Identity> = live.iter().filter_map(|r| r.identity.clone()).collect();
    let results = stop_groups(&leaders, grace);
    for (rec, result) in live.iter().zip(results) {
        store.mark_stopped(rec.id)?;
        report.stopped.push(Stopped {
            stream: rec.stream.clone(),
            pid: rec.pgid().unwrap_or(0),
            result,
        });
    }
    Ok(report)
}

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

/// One worker being stopped: its group (only if the leader was alive) and its marker.
struct Target {
    pgid: Option<i32>,
    marker: String,
}

impl Target {
    fn gone(&self) -> bool {
        self.pgid.is_none_or(|g| group_members(g).is_empty())
            && marked_processes(&self.marker).is_empty()
    }

    fn signal(&self, sig: Signal) {
        // The group still has live members (or its leader was just proven alive), so its id
        // cannot have been reused.
        if let Some(g) = self.pgid
            && !group_members(g).is_empty()
        {
            let _ = killpg(Pid::from_raw(g), sig);
        }
        for s in marked_processes(&self.marker) {
            signal_same(&s, sig);
        }
    }
}

/// Stops the groups led by `leaders` together: SIGTERM to all, one shared grace period, then
/// SIGKILL to those still alive. Results are in the order of `leaders`. A leader that is not
/// alive gets `NotAlive` unless processes carrying its marker were found and ended.
pub fn stop_groups(leaders: &[Identity], grace: Duration) -> Vec<StopResult> {
    let targets: Vec<Target> = leaders
        .iter()
        .map(|l| Target {
            pgid: l.is_alive().then_some(l.pid),
            marker: l.worker_marker(),
        })
        .collect();
    let mut results: Vec<Option<StopResult>> = targets
        .iter()
        .map(|t| t.gone().then_some(StopResult::NotAlive))
        .collect();
    for (target, result) in targets.iter().zip(&results) {
        if result.is_none() {
            target.signal(Signal::SIGTERM);
        }
    }
    let deadline = Instant::now() + grace;
    loop {
        for (target, result) in targets.iter().zip(results.iter_mut()) {
            if result.is_none() && target.gone() {
                *result = Some(StopResult::Terminated);
            }
        }
        if results.iter().all(Option::is_some) || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(POLL);
    }
    for (target, result) in targets.iter().zip(results.iter_mut()) {
        if result.is_none() {
            target.signal(Signal::SIGKILL);
            let deadline = Instant::now() + AFTER_KILL;
            let mut gone = target.gone();
            while !gone && Instant::now() < deadline {
                std::thread::sleep(POLL);
                // A marked process forked between the scan and the signal: catch it too.
                target.signal(Signal::SIGKILL);
                gone = target.gone();
            }
            *result = Some(if gone {
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

/// Ends processes still carrying the marker of a worker whose record is stale (its supervisor
/// is gone): TERM, `grace`, KILL. Returns how many there were.
pub fn end_marked(leader: &Identity, grace: Duration) -> usize {
    let target = Target {
        pgid: None,
        marker: leader.worker_marker(),
    };
    let found = marked_processes(&target.marker).len();
    if found > 0 {
        end_target(&target, grace);
    }
    found
}

fn end_target(target: &Target, grace: Duration) {
    target.signal(Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while !target.gone() && Instant::now() < deadline {
        std::thread::sleep(POLL);
    }
    let deadline = Instant::now() + AFTER_KILL;
    while !target.gone() && Instant::now() < deadline {
        target.signal(Signal::SIGKILL);
        std::thread::sleep(POLL);
    }
}
