//! Reading `/proc`: a process's identity (pid + start time + boot id), whether it is alive,
//! which processes are in a process group, and which carry a worker's marker in their
//! environment (descendants that left the group with `setsid` or a double fork).
//!
//! Invariant: a pid alone never proves anything. A zombie (state `Z`/`X`) is not alive — PID 1
//! in some sandboxes never reaps, and `kill(pid, 0)` succeeds on zombies — and a pid whose start
//! time or boot id differs from the record is another process that reused the number.

use std::path::Path;

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
/// Other users' processes are skipped (their `environ` is unreadable anyway, and never ours to
/// signal); a process that exits during the scan simply drops out.
pub fn marked_processes(marker: &str) -> Vec<Stat> {
    use std::os::unix::fs::MetadataExt;
    let needle = format!("{WORKER_ID_VAR}={marker}");
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

/// A live `orchestrate __supervise` process, as `/proc` shows it: enough to rebuild its worker
/// row when the state store was lost under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Supervisor {
    /// The state store row it writes to (`--record`).
    pub record: i64,
    pub stream: String,
    pub attempt: u32,
    pub identity: Identity,
    /// Its stderr: the stream's log.
    pub log: Option<std::path::PathBuf>,
    pub dir: std::path::PathBuf,
    pub branch: Option<String>,
}

/// Live supervisors of our user that write to the state store at `state`.
pub fn supervisors(state: &Path) -> Vec<Supervisor> {
    use std::os::unix::fs::MetadataExt;
    let uid = nix::unistd::geteuid().as_raw();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let wanted = state.canonicalize().unwrap_or_else(|_| state.to_path_buf());
    entries
        .filter_map(|e| {
            let e = e.ok()?;
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            (e.metadata().ok()?.uid() == uid).then_some(pid)
        })
        .filter_map(|pid| supervisor(pid, state, &wanted))
        .collect()
}

fn supervisor(pid: i32, state: &Path, wanted: &Path) -> Option<Supervisor> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    if args.get(1) != Some(&b"__supervise".as_slice()) {
        return None;
    }
    let value = |flag: &[u8]| {
        let i = args.iter().position(|a| *a == flag)?;
        std::str::from_utf8(args.get(i + 1)?).ok()
    };
    let path = Path::new(value(b"--state")?);
    if path != state && path != wanted {
        return None;
    }
    let record = value(b"--record")?.parse().ok()?;
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let var = |name: &str| {
        let prefix = format!("{name}=");
        env.split(|&b| b == 0)
            .find_map(|v| v.strip_prefix(prefix.as_bytes()))
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let identity = identity_of(pid).filter(Identity::is_alive)?;
    Some(Supervisor {
        record,
        stream: var("ORCHESTRATE_STREAM")?,
        attempt: var("ORCHESTRATE_ATTEMPT")
            .and_then(|a| a.parse().ok())
            .unwrap_or(1),
        identity,
        log: std::fs::read_link(format!("/proc/{pid}/fd/2")).ok(),
        dir: std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?,
        branch: var("ORCHESTRATE_BRANCH").filter(|b| !b.is_empty()),
    })
}

/// Sends `signal` to the process `s` describes only if that pid is still the same live process
/// (same start time): a pid reused since the scan is never hit.
pub fn signal_same(s: &Stat, signal: nix::sys::signal::Signal) {
    if stat(s.pid).is_some_and(|now| now.is_live() && now.start_ticks == s.start_ticks) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(s.pid), signal);
    }
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
