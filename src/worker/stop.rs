//! Stopping workers: `stop`'s policy (who is stopped, what is recorded) over the one
//! termination routine ([`super::terminate`]): SIGTERM to a worker's whole process group and
//! to every process carrying its marker (descendants that left the group with `setsid` or a
//! double fork), a grace period, SIGKILL to both, then waiting until none of them is alive.
//!
//! Invariant: the group is signalled only if the recorded group leader is provably alive (same
//! pid, start time and boot id); a stale record's pid or group is never acted on. Marked
//! processes are signalled whatever the leader's state: the marker (the supervisor's pid and
//! start time, in the environment the supervisor gave its worker) is itself the proof that
//! they descend from that worker, and each is re-checked by start time right before a signal.

use std::time::Duration;

use super::terminate::{self, Ended, Tree};
use crate::model::Verdict;
use crate::proc::{Identity, WORKER_ID_VAR, marked_processes};
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
    pub result: Ended,
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

/// Stops the groups led by `leaders` together, and the processes carrying their markers: the
/// one termination routine with one shared grace. Results are in the order of `leaders`. A
/// leader that is not alive gets `NotAlive` unless processes carrying its marker were found
/// and ended.
pub fn stop_groups(leaders: &[Identity], grace: Duration) -> Vec<Ended> {
    let trees: Vec<Tree> = leaders
        .iter()
        .map(|l| Tree::led_by(l, Some((WORKER_ID_VAR, l.worker_marker()))))
        .collect();
    terminate::end(&trees, grace)
}

/// Ends processes still carrying the marker of a worker whose record is stale (its supervisor
/// is gone): TERM, `grace`, KILL. Returns how many there were.
pub fn end_marked(leader: &Identity, grace: Duration) -> usize {
    let marker = leader.worker_marker();
    let found = marked_processes(&marker).len();
    if found > 0 {
        terminate::end(&[Tree::marked(WORKER_ID_VAR, marker)], grace);
    }
    found
}
