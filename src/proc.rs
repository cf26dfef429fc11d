//! Reading `/proc`: a process's identity (pid + start time + boot id), whether it is alive,
//! which processes are in a process group, which carry a worker's marker in their
//! environment (descendants that left the group with `setsid` or a double fork), and which
//! workers of a project are alive whatever the state store says ([`found_workers`]).
//!
//! Invariant: a pid alone never proves anything. A zombie (state `Z`/`X`) is not alive — PID 1
//! in some sandboxes never reaps, and `kill(pid, 0)` succeeds on zombies — and a pid whose start
//! time or boot id differs from the record is another process that reused the number.

use std::path::{Path, PathBuf};

/// Enough to tell a recorded process apart from any later process with the same pid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub pid: i32,
    /// Field 22 of `/proc/<pid>/stat`: clock ticks after boot.
    pub start_ticks: u64,
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: String,
}

/// The fields of `/proc/<pid>/stat` we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    pub state: char,
    pub pgrp: i32,
    pub start_ticks: u64,
}

impl Stat {
    /// Running, sleeping, stopped…: anything but a zombie or a dead task.
    pub fn is_live(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses one `/proc/<pid>/stat` line. The command name (field 2) may hold spaces and
/// parentheses, so the fields after it are found from the *last* `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    // Fields from 3 (state) on.
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    let field = |n: usize| rest.get(n - 3).copied();
    Some(Stat {
        pid,
        state: field(3)?.chars().next()?,
        pgrp: field(5)?.parse().ok()?,
        start_ticks: field(22)?.parse().ok()?,
    })
}

/// `/proc/<pid>/stat` of a process, if it exists (zombies included).
pub fn stat(pid: i32) -> Option<Stat> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// This boot's id; empty if the kernel does not say (then identities never match across boots
/// because every recorded id was empty too — acceptable on such systems).
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The identity of a process now, if it exists.
pub fn identity_of(pid: i32) -> Option<Identity> {
    stat(pid).map(|s| Identity {
        pid,
        start_ticks: s.start_ticks,
        boot_id: boot_id(),
    })
}

/// The variable the supervisor puts in its worker's environment. Every descendant inherits it
/// unless it rebuilds its environment from scratch, so it finds processes that left the group.
pub const WORKER_ID_VAR: &str = "ORCHESTRATE_WORKER_ID";

impl Identity {
    /// The value of [`WORKER_ID_VAR`] for the worker whose supervisor is this process: unique
    /// on this boot (pid + start time), and derivable from the state record alone.
    pub fn worker_marker(&self) -> String {
        format!("{}-{}", self.pid, self.start_ticks)
    }

    /// The supervisor a worker marker ([`Identity::worker_marker`]) names, on this boot (a
    /// process carrying the marker is alive now, so it was set on this boot).
    pub fn from_marker(marker: &str) -> Option<Self> {
        let (pid, ticks) = marker.split_once('-')?;
        Some(Self {
            pid: pid.parse().ok()?,
            start_ticks: ticks.parse().ok()?,
            boot_id: boot_id(),
        })
    }

    /// True if this supervisor is alive or its worker tree is: processes carrying its marker
    /// outlive a supervisor that was SIGKILLed, and they are still its stream's worker.
    pub fn tree_alive(&self) -> bool {
        self.is_alive()
            || (self.boot_id == boot_id() && !marked_processes(&self.worker_marker()).is_empty())
    }

    /// This process.
    pub fn current() -> Option<Self> {
        identity_of(std::process::id() as i32)
    }

    /// True only if the pid is alive, not a zombie, and is the very process recorded.
    pub fn is_alive(&self) -> bool {
        if self.boot_id != boot_id() {
            return false;
        }
        stat(self.pid).is_some_and(|s| s.is_live() && s.start_ticks == self.start_ticks)
    }
}

/// Live (non-zombie) members of process group `pgid`, by scanning `/proc`.
pub fn group_members(pgid: i32) -> Vec<i32> {
    group_members_in(Path::new("/proc"), pgid)
}

fn group_members_in(proc_dir: &Path, pgid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir(proc_dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(stat)
        .filter(|s| s.pgrp == pgid && s.is_live())
        .map(|s| s.pid)
        .collect()
}

/// Live processes of our own user whose environment holds `WORKER_ID_VAR=<marker>`.
pub fn marked_processes(marker: &str) -> Vec<Stat> {
    marked_with(WORKER_ID_VAR, marker)
}

/// Live processes of our own user (not this one) whose environment holds `var=value`.
/// Other users' processes are skipped (their `environ` is unreadable anyway, and never ours to
/// signal); a process that exits during the scan simply drops out.
pub fn marked_with(var: &str, value: &str) -> Vec<Stat> {
    use std::os::unix::fs::MetadataExt;
    let needle = format!("{var}={value}");
    let uid = nix::unistd::geteuid().as_raw();
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let e = e.ok()?;
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            (pid != me && e.metadata().ok()?.uid() == uid).then_some(pid)
        })
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == needle.as_bytes()))
        })
        .filter_map(stat)
        .filter(Stat::is_live)
        .collect()
}

/// A worker found alive in `/proc` for one project, whatever the state store says: its
/// supervisor, or — the supervisor SIGKILLed — the orphaned worker tree that still carries the
/// supervisor's marker. Enough to rebuild its worker row, and to refuse a second launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub stream: String,
    /// The supervisor (group leader). Dead when the worker is orphaned: its marker still
    /// names it, so `stop` and the liveness checks reach the tree through the marker.
    pub leader: Identity,
    /// The state-store row the supervisor writes (`--record`), if the supervisor is alive.
    pub record: Option<i64>,
    /// A live process of it, to name: the supervisor, or an orphaned worker process.
    pub pid: i32,
    pub attempt: u32,
    /// The stream's log (the supervisor's stderr, or the worker's stdout).
    pub log: Option<PathBuf>,
    pub dir: PathBuf,
    pub branch: Option<String>,
}

/// Workers alive in `/proc` that belong to the project whose state store is `state`: live
/// `__supervise` processes writing to it, and processes of our user whose environment names a
/// stream of this project (`ORCHESTRATE_STREAM`, `ORCHESTRATE_PROJECT_ROOT`) and carries a
/// worker marker, grouped by the supervisor the marker names.
pub fn found_workers(state: &Path) -> Vec<Found> {
    let wanted = state.canonicalize().unwrap_or_else(|_| state.to_path_buf());
    let ours = |p: &Path| p == state || p == wanted;
    let mut found: Vec<Found> = Vec::new();
    for pid in own_pids() {
        let Some(seen) = examine(pid, &ours) else {
            continue;
        };
        match found.iter_mut().find(|f| f.leader == seen.leader) {
            // The supervisor itself says best where its worker runs and which row it writes.
            Some(f) if seen.record.is_some() => *f = seen,
            Some(_) => {}
            None => found.push(seen),
        }
    }
    found
}

/// Pids of our user's processes (this one included: a supervisor rebuilding the store it
/// writes to must find itself).
fn own_pids() -> Vec<i32> {
    use std::os::unix::fs::MetadataExt;
    let uid = nix::unistd::geteuid().as_raw();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let e = e.ok()?;
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            (e.metadata().ok()?.uid() == uid).then_some(pid)
        })
        .collect()
}

/// What one process says about the worker it belongs to, if it belongs to one of the store
/// `ours` accepts: a supervisor by its `--state` argument, anything else by its environment.
fn examine(pid: i32, ours: &dyn Fn(&Path) -> bool) -> Option<Found> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let var = |name: &str| {
        let prefix = format!("{name}=");
        env.split(|&b| b == 0)
            .find_map(|v| v.strip_prefix(prefix.as_bytes()))
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let stream = var("ORCHESTRATE_STREAM")?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let arg = |flag: &[u8]| {
        let i = args.iter().position(|a| *a == flag)?;
        std::str::from_utf8(args.get(i + 1)?).ok()
    };
    let (leader, record, dir, log) = if args.get(1) == Some(&b"__supervise".as_slice()) {
        if !ours(Path::new(arg(b"--state")?)) {
            return None;
        }
        let leader = identity_of(pid).filter(Identity::is_alive)?;
        let record = arg(b"--record")?.parse().ok()?;
        let dir = std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
        let log = std::fs::read_link(format!("/proc/{pid}/fd/2")).ok();
        (leader, Some(record), dir, log)
    } else {
        let root = PathBuf::from(var("ORCHESTRATE_PROJECT_ROOT")?);
        if !ours(&crate::project::Project { root }.state_db()) {
            return None;
        }
        // Zombies and dead tasks hold nothing.
        stat(pid).filter(Stat::is_live)?;
        let leader = Identity::from_marker(&var(WORKER_ID_VAR)?)?;
        let dir = var("ORCHESTRATE_WORKTREE")
            .map(PathBuf::from)
            .or_else(|| std::fs::read_link(format!("/proc/{pid}/cwd")).ok())?;
        let log = std::fs::read_link(format!("/proc/{pid}/fd/1")).ok();
        (leader, None, dir, log)
    };
    Some(Found {
        stream,
        leader,
        record,
        pid,
        attempt: var("ORCHESTRATE_ATTEMPT")
            .and_then(|a| a.parse().ok())
            .unwrap_or(1),
        log: log.filter(|l| l.is_absolute()),
        dir,
        branch: var("ORCHESTRATE_BRANCH").filter(|b| !b.is_empty()),
    })
}

/// A handle on the very process `s` describes, if it is still that live process: a pidfd
/// opened now and checked against the start time `s` recorded, so it cannot name a process
/// that reused the pid since (a pidfd keeps naming the process it was opened on).
pub fn pidfd_of(s: &Stat) -> Option<std::os::fd::OwnedFd> {
    let pid = rustix::process::Pid::from_raw(s.pid)?;
    let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()?;
    stat(s.pid)
        .is_some_and(|now| now.is_live() && now.start_ticks == s.start_ticks)
        .then_some(fd)
}

/// Sends `signal` to the process `s` describes only if that pid is still the same live process
/// (same start time), through a pidfd: a pid reused since the scan is never hit.
pub fn signal_same(s: &Stat, signal: nix::sys::signal::Signal) {
    let (Some(fd), Some(sig)) = (
        pidfd_of(s),
        rustix::process::Signal::from_named_raw(signal as i32),
    ) else {
        return;
    };
    let _ = rustix::process::pidfd_send_signal(&fd, sig);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_command_names() {
        let line = "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1234 56 rest";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.pid, 4242);
        assert_eq!(s.state, 'S');
        assert_eq!(s.pgrp, 4242);
        assert_eq!(s.start_ticks, 987654);
    }

    #[test]
    fn a_marker_names_its_supervisor() {
        let me = Identity::current().unwrap();
        assert_eq!(Identity::from_marker(&me.worker_marker()), Some(me.clone()));
        assert_eq!(Identity::from_marker("12"), None);
        assert_eq!(Identity::from_marker("a-1"), None);
        // Alive itself; a dead supervisor with no marked process left is not.
        assert!(me.tree_alive());
        let gone = Identity {
            start_ticks: me.start_ticks + 1,
            ..me
        };
        assert!(!gone.tree_alive());
    }

    #[test]
    fn zombies_are_not_live() {
        let line = "7 (sh) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0";
        assert!(!parse_stat(line).unwrap().is_live());
    }

    #[test]
    fn this_process_is_alive_and_a_changed_start_time_is_not() {
        let me = Identity::current().unwrap();
        assert!(me.is_alive());
        let other = Identity {
            start_ticks: me.start_ticks + 1,
            ..me.clone()
        };
        assert!(!other.is_alive());
        let other_boot = Identity {
            boot_id: "another-boot".into(),
            ..me
        };
        assert!(!other_boot.is_alive());
    }

    #[test]
    fn finds_a_child_by_the_marker_in_its_environment() {
        let marker = format!("test-{}", std::process::id());
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env(WORKER_ID_VAR, &marker)
            .spawn()
            .unwrap();
        // The kernel lets a vfork parent run on while the child is still inside exec, before
        // its new environment block exists: right after spawn() the marker may not be readable
        // yet (seen about once in 20 runs), so wait for it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let found = loop {
            let found = marked_processes(&marker);
            if !found.is_empty() || std::time::Instant::now() > deadline {
                break found;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        let other = marked_processes(&format!("{marker}0"));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(
            found.iter().map(|s| s.pid).collect::<Vec<_>>(),
            [child.id() as i32]
        );
        assert!(other.is_empty(), "a marker is matched whole");
        assert!(marked_processes(&marker).is_empty(), "reaped: gone");
    }
}
