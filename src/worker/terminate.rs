//! The one routine that ends a process tree: SIGTERM to every process of it, a grace period,
//! SIGKILL to what is left, then waiting until nothing of it is alive. `stop`, the verify
//! time-out, the supervisor clearing what its worker left and `post_create`'s time limit all
//! call [`end`]; they differ only in the [`Tree`] and the grace.
//!
//! A tree is a process group and/or the processes whose environment carries a marker (the
//! descendants that left the group with `setsid` or a double fork).
//!
//! Invariants: nothing is signalled on a bare pid. A group is signalled with `killpg` only
//! while it has a live member (a group id is not reused while a member lives), and only when
//! its leader was proven to be the recorded process or is our own unreaped child. Single
//! processes are signalled through a pidfd checked against the start time the scan saw.
//! Waiting blocks on the pidfds of the processes found (woken by their exit) and rescans
//! `/proc` now and then for processes forked since the scan; a zombie counts as ended (PID 1
//! in some sandboxes never reaps).

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::proc::{Identity, Stat, group_members, marked_with, pidfd_of, signal_same};

/// How long the processes found may keep us waiting before `/proc` is read again for processes
/// they forked meanwhile (which no pidfd of ours watches).
const RESCAN: Duration = Duration::from_millis(100);
/// How long to wait for the kernel to finish off a SIGKILLed tree.
const AFTER_KILL: Duration = Duration::from_secs(10);

/// How a tree ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Nothing of it was alive: nothing was signalled.
    NotAlive,
    /// It ended after SIGTERM, within the grace period.
    Terminated,
    /// It outlived the grace period and was SIGKILLed.
    Killed,
    /// SIGKILL was sent but some of it still showed as alive after waiting.
    Lingering,
}

/// The processes to end.
#[derive(Debug, Clone)]
pub struct Tree {
    group: Option<Group>,
    /// `(variable, value)` in the environment of every process of the tree.
    marker: Option<(&'static str, String)>,
}

#[derive(Debug, Clone, Copy)]
enum Group {
    /// Another process group, signalled whole.
    Other(i32),
    /// Our own group: every member but us, one by one (a `killpg` would hit us).
    Ours,
}

impl Tree {
    /// The group `leader` leads, if the leader is provably alive (a stale record's group is
    /// never touched), and the processes carrying `marker` wherever they are.
    pub fn led_by(leader: &Identity, marker: Option<(&'static str, String)>) -> Self {
        Self {
            group: leader.is_alive().then_some(Group::Other(leader.pid)),
            marker,
        }
    }

    /// The group of our child `child`, which leads it (spawned with `process_group(0)`) and is
    /// not reaped yet, so its pid names it still; and the processes carrying `marker`.
    pub fn child_group(
        child: &std::process::Child,
        marker: Option<(&'static str, String)>,
    ) -> Self {
        Self {
            group: Some(Group::Other(child.id() as i32)),
            marker,
        }
    }

    /// The processes carrying `marker`, wherever they are.
    pub fn marked(var: &'static str, value: String) -> Self {
        Self {
            group: None,
            marker: Some((var, value)),
        }
    }

    /// Every other member of our own process group, and the processes carrying `marker`.
    pub fn our_group(marker: Option<(&'static str, String)>) -> Self {
        Self {
            group: Some(Group::Ours),
            marker,
        }
    }

    /// Its live processes now (zombies excluded; never this process).
    fn members(&self) -> Vec<Stat> {
        let me = std::process::id() as i32;
        let mut found: Vec<Stat> = match self.group {
            Some(Group::Other(g)) => in_group(g),
            Some(Group::Ours) => in_group(nix::unistd::getpgrp().as_raw()),
            None => Vec::new(),
        };
        if let Some((var, value)) = &self.marker {
            for s in marked_with(var, value) {
                if !found.iter().any(|f| f.pid == s.pid) {
                    found.push(s);
                }
            }
        }
        found.retain(|s| s.pid != me);
        found
    }

    fn signal(&self, sig: Signal) {
        let mut whole = None;
        if let Some(Group::Other(g)) = self.group
            && !group_members(g).is_empty()
        {
            // A live member holds the group id, so it is still the group we were given.
            let _ = killpg(Pid::from_raw(g), sig);
            whole = Some(g);
        }
        for s in self.members() {
            if whole != Some(s.pgrp) {
                signal_same(&s, sig);
            }
        }
    }
}

fn in_group(pgid: i32) -> Vec<Stat> {
    group_members(pgid)
        .into_iter()
        .filter_map(crate::proc::stat)
        .collect()
}

/// Ends `trees` together: SIGTERM to all, one shared grace period, SIGKILL to what is still
/// alive. Results are in the order of `trees`.
pub fn end(trees: &[Tree], grace: Duration) -> Vec<Ended> {
    let mut results: Vec<Option<Ended>> = trees
        .iter()
        .map(|t| t.members().is_empty().then_some(Ended::NotAlive))
        .collect();
    let pending = |results: &[Option<Ended>]| -> Vec<usize> {
        (0..trees.len()).filter(|&i| results[i].is_none()).collect()
    };
    let alive = pending(&results);
    for &i in &alive {
        trees[i].signal(Signal::SIGTERM);
    }
    let gone = wait_gone(trees, &alive, Instant::now() + grace, None);
    for (&i, gone) in alive.iter().zip(gone) {
        if gone {
            results[i] = Some(Ended::Terminated);
        }
    }
    let alive = pending(&results);
    for &i in &alive {
        trees[i].signal(Signal::SIGKILL);
    }
    let deadline = Instant::now() + AFTER_KILL;
    let gone = wait_gone(trees, &alive, deadline, Some(Signal::SIGKILL));
    for (&i, gone) in alive.iter().zip(gone) {
        results[i] = Some(if gone {
            Ended::Killed
        } else {
            Ended::Lingering
        });
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or(Ended::NotAlive))
        .collect()
}

/// Waits until the trees `which` are gone or `deadline` passes; says which are gone, in the
/// order of `which`. With `again`, re-sends it on each rescan to what is still alive (a
/// process forked between a scan and a SIGKILL would be missed otherwise).
fn wait_gone(
    trees: &[Tree],
    which: &[usize],
    deadline: Instant,
    again: Option<Signal>,
) -> Vec<bool> {
    loop {
        let live: Vec<Vec<Stat>> = which.iter().map(|&i| trees[i].members()).collect();
        let now = Instant::now();
        if live.iter().all(Vec::is_empty) || now >= deadline {
            return live.iter().map(Vec::is_empty).collect();
        }
        if let Some(sig) = again {
            for (&i, l) in which.iter().zip(&live) {
                if !l.is_empty() {
                    trees[i].signal(sig);
                }
            }
        }
        let all: Vec<Stat> = live.into_iter().flatten().collect();
        wait_any_exit(&all, (deadline - now).min(RESCAN));
    }
}

/// Blocks until one of `procs` exits or `timeout` passes.
fn wait_any_exit(procs: &[Stat], timeout: Duration) {
    let fds: Vec<OwnedFd> = procs.iter().filter_map(pidfd_of).collect();
    if fds.is_empty() {
        // Each exited between the scan and now (or pidfds are not supported: then this is a
        // poll of `/proc` every `timeout`).
        if procs.iter().any(still_live) {
            std::thread::sleep(timeout);
        }
        return;
    }
    wait_readable(&fds, timeout);
}

fn still_live(s: &Stat) -> bool {
    crate::proc::stat(s.pid).is_some_and(|now| now.is_live() && now.start_ticks == s.start_ticks)
}

/// Blocks until one of the pidfds `fds` is readable (its process ended) or `timeout` passes;
/// true if one is.
pub fn wait_readable(fds: &[impl AsFd], timeout: Duration) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let mut polled: Vec<PollFd<'_>> = fds
        .iter()
        .map(|fd| PollFd::new(fd, PollFlags::IN))
        .collect();
    let limit = Timespec::try_from(timeout).ok();
    loop {
        match poll(&mut polled, limit.as_ref()) {
            Ok(n) => return n > 0,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return false,
        }
    }
}

/// Blocks until our child `child` exits or `limit` passes; true if it exited (it is left to
/// be reaped by the caller). A wait on its pidfd: no polling.
pub fn wait_child(child: &std::process::Child, limit: Duration) -> bool {
    let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) else {
        return true;
    };
    // The child is not reaped, so its pid still names it.
    match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
        Ok(fd) => {
            let deadline = Instant::now() + limit;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if wait_readable(&[&fd], left) {
                    return true;
                }
                if left.is_zero() {
                    return false;
                }
            }
        }
        // No pidfds on this kernel: ask `/proc` now and then.
        Err(_) => {
            let deadline = Instant::now() + limit;
            let id = child.id() as i32;
            while crate::proc::stat(id).is_some_and(|s| s.is_live()) {
                if Instant::now() >= deadline {
                    return false;
                }
                std::thread::sleep(RESCAN);
            }
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    /// Waits (with a deadline) until `path` holds a line per expected process.
    fn pids_in(path: &std::path::Path, n: usize) -> Vec<i32> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pids: Vec<i32> = std::fs::read_to_string(path)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect();
            if pids.len() >= n || Instant::now() > deadline {
                return pids;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn alive(pid: i32) -> bool {
        crate::proc::stat(pid).is_some_and(|s| s.is_live())
    }

    #[test]
    fn ends_a_group_that_ignores_term_and_a_marked_escapee() {
        let tmp = tempfile::tempdir().unwrap();
        let pids = tmp.path().join("pids");
        let marker = format!("terminate-test-{}", std::process::id());
        // The leader and a grandchild ignore TERM; another grandchild leaves the group.
        let script = format!(
            "trap '' TERM; sleep 30 & echo $! >> {p}; setsid sleep 30 & echo $! >> {p}; \
             echo $$ >> {p}; wait",
            p = pids.display()
        );
        let mut child = std::process::Command::new("sh")
            .args(["-c", &script])
            .env("ORCHESTRATE_TEST_MARK", &marker)
            .process_group(0)
            .spawn()
            .unwrap();
        let found = pids_in(&pids, 3);
        assert_eq!(found.len(), 3, "{found:?}");
        let tree = Tree::child_group(&child, Some(("ORCHESTRATE_TEST_MARK", marker)));
        let started = Instant::now();
        let ended = end(std::slice::from_ref(&tree), Duration::from_millis(300));
        let _ = child.wait();
        assert_eq!(ended, [Ended::Killed]);
        assert!(started.elapsed() >= Duration::from_millis(300));
        for pid in found {
            assert!(!alive(pid), "{pid} survived");
        }
        assert_eq!(end(&[tree], Duration::from_secs(5)), [Ended::NotAlive]);
    }

    #[test]
    fn a_tree_that_obeys_term_ends_before_the_grace_is_over() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let tree = Tree::child_group(&child, None);
        let started = Instant::now();
        // Woken by the exit, not by the end of a 20 s grace.
        assert_eq!(end(&[tree], Duration::from_secs(20)), [Ended::Terminated]);
        assert!(started.elapsed() < Duration::from_secs(10));
        let _ = child.wait();
    }

    #[test]
    fn a_dead_leader_s_group_is_never_signalled() {
        let me = Identity::current().unwrap();
        // Our own pid with another start time: a stale record naming a reused pid.
        let stale = Identity {
            start_ticks: me.start_ticks + 1,
            ..me
        };
        let tree = Tree::led_by(&stale, None);
        assert_eq!(end(&[tree], Duration::from_millis(10)), [Ended::NotAlive]);
    }

    #[test]
    fn waiting_for_a_child_returns_at_its_exit_or_the_limit() {
        let mut quick = std::process::Command::new("true").spawn().unwrap();
        assert!(wait_child(&quick, Duration::from_secs(20)));
        let _ = quick.wait();
        let mut slow = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let started = Instant::now();
        assert!(!wait_child(&slow, Duration::from_millis(100)));
        assert!(started.elapsed() >= Duration::from_millis(100));
        let _ = slow.kill();
        let _ = slow.wait();
    }
}
