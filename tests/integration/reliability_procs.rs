//! Reliability, the process half (issue 8, items 1–3): `start` SIGKILLed at random moments and
//! run again never runs two workers of one stream and ends with every stream complete; `stop`
//! leaves no process of any worker tree alive (a TERM-ignoring grandchild, a sleeping subshell,
//! a `setsid` escapee), also after `start` was SIGKILLed; a record whose pid is now an unrelated
//! process or a zombie is never signalled, shows as dead, and its stream is retried.
//!
//! Survivors are found by a token of the test's own (`FAKE_RUN_TOKEN`) that every process of a
//! run inherits, independent of the marker `orchestrate` itself uses. The long runs
//! (`scripts/reliability/*.sh`) call the `#[ignore]`d tests here with `RELIABILITY_TRIALS`.

use orchestrate::exit_codes;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};

use crate::start::{Fake, LONG, alive, state_db, wait_exit};
use crate::support::{TestEnv, wait_for};

/// A small xorshift generator: the trials need varied timings, not quality randomness, and the
/// seed is printed so a failing schedule can be replayed (`RELIABILITY_SEED`).
pub struct Rng(pub u64);

impl Rng {
    pub fn seeded(trial: u64) -> Self {
        let base = std::env::var("RELIABILITY_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        Self((base ^ trial.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A token unique to one trial, put in the environment of everything the trial runs.
fn token() -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// Live (not zombie) processes whose environment holds `FAKE_RUN_TOKEN=<token>`, described.
fn carriers(token: &str) -> Vec<(i32, String)> {
    let needle = format!("FAKE_RUN_TOKEN={token}");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != std::process::id() as i32)
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
                env.split(|&b| b == 0)
                    .any(|entry| entry == needle.as_bytes())
            })
        })
        .filter(|&pid| alive(pid))
        .map(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .unwrap_or_default();
            (pid, cmd.trim().to_string())
        })
        .collect()
}

/// Kills what a failed trial left, so one failure does not leak processes into the next.
fn kill_all(survivors: &[(i32, String)]) {
    for (pid, _) in survivors {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

fn sigkill(child: &mut Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

fn pgrp_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat.rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(2)
        .unwrap()
        .parse()
        .unwrap()
}

pub fn start_ticks(pid: i32) -> i64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat.rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// 2. Stop leaves nothing

/// One stop trial: three streams whose workers leave (A) a TERM-ignoring grandchild, (B) a
/// subshell sleeping, (C) a TERM-ignoring process that called `setsid`; optionally SIGKILL
/// `start` first; then `orchestrate stop`. Returns the survivors (killed before returning).
fn stop_trial(kill_start_first: bool) -> Vec<(i32, String)> {
    let mut env = TestEnv::new();
    for s in ["Stream-A", "Stream-B", "Stream-C"] {
        env.add_stream(s, &[], 1, "pending");
    }
    let mut fake = Fake::new(env);
    let token = token();
    fake.set("RUN_TOKEN", None, &token)
        .set("SLEEP", None, "300")
        .set("IGNORE_TERM", Some("Stream-A"), "1")
        .set("GRANDCHILD", Some("Stream-A"), "1")
        .set("SUBSHELL", Some("Stream-B"), "1")
        .set("SETSID", Some("Stream-C"), "1");
    let mut start = fake.spawn(&["start", "--stagger", "0"], "start");
    wait_for("every worker tree to be in place", LONG, || {
        [
            ("Stream-A", "grandchild"),
            ("Stream-B", "subshell"),
            ("Stream-C", "setsid"),
        ]
        .iter()
        .all(|(s, m)| !fake.lines(s, m).is_empty())
    });
    let escapee: i32 = fake.lines("Stream-C", "setsid")[0].parse().unwrap();
    let worker_c: i32 = fake.pid("Stream-C");
    assert_ne!(
        pgrp_of(escapee),
        pgrp_of(worker_c),
        "the setsid process left the worker's group"
    );
    if kill_start_first {
        sigkill(&mut start);
    }
    let run = fake.run(&["stop", "--grace", "0.3"]);
    let mut survivors = carriers(&token)
        .into_iter()
        .filter(|(pid, _)| kill_start_first || *pid != start.id() as i32)
        .collect::<Vec<_>>();
    if !kill_start_first {
        // The running start sees its workers stopped and ends on its own; nothing it ran
        // may outlive it either.
        wait_exit(&mut start, LONG);
        for late in carriers(&token) {
            if !survivors.iter().any(|(pid, _)| *pid == late.0) {
                survivors.push(late);
            }
        }
    }
    kill_all(&survivors);
    // Reaped already either way (Child caches the status).
    start.wait().unwrap();
    run.success();
    survivors
}

#[test]
fn stop_leaves_no_process_of_any_worker_tree() {
    let survivors = stop_trial(false);
    assert!(survivors.is_empty(), "alive after stop: {survivors:?}");
}

#[test]
fn stop_leaves_nothing_after_start_was_sigkilled() {
    let survivors = stop_trial(true);
    assert!(survivors.is_empty(), "alive after stop: {survivors:?}");
}

#[test]
fn a_worker_that_exits_takes_its_setsid_escapee_with_it() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    let mut fake = Fake::new(env);
    let token = token();
    fake.set("RUN_TOKEN", None, &token).set("SETSID", None, "1");
    fake.run(&["start", "--stagger", "0"]).success();
    assert!(!fake.lines("Stream-A", "setsid").is_empty());
    let mut left = Vec::new();
    // The supervisor clears leftovers after recording the exit; give it its grace period.
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        left = carriers(&token);
        if left.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    kill_all(&left);
    assert!(left.is_empty(), "outlived its worker: {left:?}");
}

#[test]
#[ignore = "long run: scripts/reliability/stop-trials.sh"]
fn long_stop_trials() {
    let trials = trials(20);
    let started = Instant::now();
    let mut survivors = Vec::new();
    for trial in 0..trials {
        let kill_first = trial % 2 == 1;
        let left = stop_trial(kill_first);
        if !left.is_empty() {
            survivors.push(format!(
                "trial {trial} (start killed first: {kill_first}): {left:?}"
            ));
        }
    }
    report(&format!(
        "stop trials: {trials} (half with start SIGKILLed first), 3 worker trees each, {:.1} s, survivors: {}",
        started.elapsed().as_secs_f64(),
        survivors.len()
    ));
    assert!(survivors.is_empty(), "{survivors:#?}");
}

// ---------------------------------------------------------------------------------------------
// 3. Identity

/// A process whose pid a record names, recorded with another start time: "pid reused".
fn insert_record(conn: &Connection, stream: &str, pid: i32, ticks: i64) {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    conn.execute(
        "INSERT INTO workers (stream, attempt, pid, pgid, start_ticks, boot_id, log_path, started_at)
         VALUES (?1, 1, ?2, ?2, ?3, ?4, '/dev/null', '2026-01-01T00:00:00.000Z')",
        params![stream, pid, ticks, boot.trim()],
    )
    .unwrap();
}

#[test]
fn reused_pids_and_zombies_are_never_signalled_show_dead_and_are_retried() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "completed");
    env.add_stream("Stream-B", &[], 1, "completed");
    let mut fake = Fake::new(env);
    // A run with nothing to do creates the state store; then the streams have work again.
    fake.run(&["start"]).success();
    fake.env.set_stream_status("Stream-A", "pending");
    fake.env.set_stream_status("Stream-B", "pending");
    let markers = fake.markers.clone();
    fake.set("WAIT_FOR", None, markers.join("release").to_str().unwrap());

    // A: the pid now belongs to an unrelated live process (another start time).
    let mut unrelated = Command::new("sleep")
        .arg("300")
        .process_group(0)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let unrelated_pid = unrelated.id() as i32;

    // B: the pid is a zombie that leads a process group with a live member. We are its parent
    // and do not reap it yet; `killpg` of its id would hit the member, which must survive.
    let member_file = markers.join("member.pid");
    let mut zombie = Command::new("sh")
        .arg("-c")
        .arg("sleep 300 </dev/null >/dev/null 2>&1 & echo $! >\"$0\"")
        .arg(&member_file)
        .process_group(0)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let zombie_pid = zombie.id() as i32;
    wait_for("the group member's pid", LONG, || {
        std::fs::read_to_string(&member_file).is_ok_and(|s| s.ends_with('\n'))
    });
    let member: i32 = std::fs::read_to_string(&member_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_for("the leader to be a zombie", LONG, || !alive(zombie_pid));
    assert!(std::path::Path::new(&format!("/proc/{zombie_pid}")).exists());
    assert_eq!(pgrp_of(member), zombie_pid);

    let conn = Connection::open(state_db(&fake.env.root)).unwrap();
    let insert_both = || {
        insert_record(
            &conn,
            "Stream-A",
            unrelated_pid,
            start_ticks(unrelated_pid) - 5,
        );
        // The zombie's own start time: only its state tells it is dead.
        insert_record(&conn, "Stream-B", zombie_pid, start_ticks(zombie_pid));
    };
    insert_both();

    let doc = fake.env.run(&["status", "--json"]).success().json();
    for s in doc["streams"].as_array().unwrap() {
        assert_eq!(s["worker"]["state"], "lost", "{s}");
    }

    let run = fake.run(&["stop", "--grace", "0"]).success();
    assert_eq!(
        run.stdout().matches("stale record").count(),
        2,
        "{}",
        run.stdout()
    );
    assert!(alive(unrelated_pid), "the unrelated process was signalled");
    assert!(alive(member), "the zombie's group was signalled");

    // `start` retries both streams (they finish once released), signalling nothing either.
    insert_both();
    let mut start = fake.spawn(&["start", "--stagger", "0"], "start");
    wait_for("both streams to be retried", LONG, || {
        ["Stream-A", "Stream-B"]
            .iter()
            .all(|s| !fake.lines(s, "started").is_empty())
    });
    std::fs::write(markers.join("release"), "").unwrap();
    assert_eq!(
        wait_exit(&mut start, LONG),
        exit_codes::OK,
        "{}",
        fake.output_of("start", "err")
    );
    assert!(alive(unrelated_pid) && alive(member));

    unrelated.kill().unwrap();
    unrelated.wait().unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(member),
        nix::sys::signal::Signal::SIGKILL,
    );
    zombie.wait().unwrap();
}

// ---------------------------------------------------------------------------------------------
// 1. Crash and restart

const DIAMOND: [&str; 4] = ["Stream-A", "Stream-B", "Stream-C", "Stream-Z"];

/// What one crash trial saw.
struct CrashTrial {
    kills: u32,
    starts: u32,
    duplicates: Vec<String>,
    /// Workers launched per stream (more than one means a retry, not a duplicate).
    launches: Vec<usize>,
    /// Supervisors that came up after their launch was declared lost and gave up.
    abandoned: usize,
}

/// One crash trial: the diamond with workers of random length (each holding its stream's
/// exclusive marker), `start` SIGKILLed at random moments and run again until one run ends
/// by itself; that run must succeed with every stream complete.
fn crash_trial(rng: &mut Rng, max_kills: u64, max_sleep_ms: u64, worktrees: bool) -> CrashTrial {
    let mut env = TestEnv::new();
    env.diamond();
    let mut fake = Fake::new(env);
    fake.set("LOCK", None, "1");
    if worktrees {
        // Dependents need their dependencies' work committed on their branches.
        fake.set("COMMIT", None, "1");
    }
    for s in DIAMOND {
        let ms = rng.below(max_sleep_ms + 1);
        fake.set("SLEEP", Some(s), &format!("{}.{:03}", ms / 1000, ms % 1000));
    }
    let kills_wanted = 1 + rng.below(max_kills);
    let (mut kills, mut starts) = (0, 0);
    loop {
        starts += 1;
        let name = format!("start-{starts}");
        let mut args = vec!["start", "--stagger", "0"];
        if worktrees {
            args.push("--worktrees");
        }
        let mut start = fake.spawn(&args, &name);
        if u64::from(kills) < kills_wanted {
            // The fault schedule, not synchronisation. A third of the kills land right after
            // `start` writes a new worker's log header (the launch: claim, spawn, record), the
            // rest at a random moment (at once, during set-up, while workers run, or never if
            // the run ends first).
            let logs = fake.env.root.join(".claude/orchestrator/logs");
            let headers = || launch_headers(&logs);
            let on_launch = rng.below(3) == 0;
            let before = headers();
            let at = Instant::now()
                + if on_launch {
                    LONG
                } else {
                    Duration::from_millis(rng.below(max_sleep_ms * 2 + 300))
                };
            while Instant::now() < at
                && start.try_wait().unwrap().is_none()
                && !(on_launch && headers() > before)
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            if start.try_wait().unwrap().is_none() {
                sigkill(&mut start);
                kills += 1;
                continue;
            }
        }
        let code = wait_exit(&mut start, LONG);
        assert_eq!(
            code,
            exit_codes::OK,
            "{name} failed\n--- stdout\n{}\n--- stderr\n{}",
            fake.output_of(&name, "out"),
            fake.output_of(&name, "err")
        );
        break;
    }
    let doc = fake.env.run(&["status", "--json"]).success().json();
    for s in doc["streams"].as_array().unwrap() {
        assert_eq!(s["state"], "complete", "{s}");
    }
    let duplicates = std::fs::read_dir(&fake.markers)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("DUPLICATE-"))
        .collect();
    CrashTrial {
        kills,
        starts,
        duplicates,
        launches: DIAMOND
            .iter()
            .map(|s| fake.lines(s, "started").len())
            .collect(),
        abandoned: log_matches(
            &fake.env.root.join(".claude/orchestrator/logs"),
            "this launch was abandoned",
        ),
    }
}

/// The race the crash trials found (2 duplicates in 30 trials before the fix), made
/// deterministic: `start` claimed a row and spawned a supervisor, then was SIGKILLed before
/// anything recorded the supervisor; the next `start` declared the row lost and ran the stream.
/// When the first supervisor finally records itself it must give up, not run a second worker.
#[test]
fn a_supervisor_whose_launch_was_declared_lost_does_not_run_its_worker() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "completed");
    let mut fake = Fake::new(env);
    fake.run(&["start"]).success();
    fake.env.set_stream_status("Stream-A", "pending");
    fake.set("LOCK", None, "1");
    let db = state_db(&fake.env.root);
    let conn = Connection::open(&db).unwrap();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    // Claimed by a `start` that is gone (our pid with another start time), no supervisor yet.
    conn.execute(
        "INSERT INTO workers (stream, attempt, claimer_pid, claimer_ticks, boot_id, log_path, started_at)
         VALUES ('Stream-A', 1, ?1, 1, ?2, '/dev/null', '2026-01-01T00:00:00.000Z')",
        params![std::process::id(), boot.trim()],
    )
    .unwrap();
    let record = conn.last_insert_rowid();
    fake.run(&["start", "--stagger", "0"]).success();
    assert_eq!(fake.lines("Stream-A", "started").len(), 1);

    let late = fake
        .cmd(&["__supervise", "--record", &record.to_string(), "--state"])
        .arg(&db)
        .arg("--")
        .arg(crate::start::FAKE_WORKER)
        .env("ORCHESTRATE_STREAM", "Stream-A")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&late.stderr);
    assert_eq!(
        late.status.code(),
        Some(orchestrate::worker::supervise::ABANDONED),
        "{log}"
    );
    assert!(log.contains("abandoned"), "{log}");
    assert_eq!(
        fake.lines("Stream-A", "started").len(),
        1,
        "no second worker"
    );
    let (pid, outcome): (Option<i32>, String) = conn
        .query_row(
            "SELECT pid, outcome FROM workers WHERE id = ?1",
            [record],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((pid, outcome.as_str()), (None, "lost"));
}

/// How many worker launches the logs record (one header each).
fn launch_headers(logs: &Path) -> usize {
    log_matches(logs, "orchestrate worker: ")
}

/// Occurrences of `what` in every stream log.
fn log_matches(logs: &Path, what: &str) -> usize {
    std::fs::read_dir(logs)
        .map(|entries| {
            entries
                .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                .map(|text| text.matches(what).count())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn start_killed_at_random_moments_never_runs_a_stream_twice_at_once() {
    for trial in 0..3 {
        let mut rng = Rng::seeded(trial);
        let seed = rng.0;
        let t = crash_trial(&mut rng, 3, 150, false);
        assert!(
            t.duplicates.is_empty(),
            "seed {seed}: duplicates {:?}",
            t.duplicates
        );
        assert!(t.launches.iter().all(|&n| n >= 1), "seed {seed}");
    }
}

#[test]
#[ignore = "long run: scripts/reliability/crash-restart.sh"]
fn long_crash_restart_trials() {
    let trials = trials(20);
    let worktrees = std::env::var_os("RELIABILITY_WORKTREES").is_some_and(|v| v == "1");
    let started = Instant::now();
    let (mut kills, mut starts, mut relaunches, mut abandoned) = (0, 0, 0, 0);
    let mut duplicates = Vec::new();
    for trial in 0..trials {
        let mut rng = Rng::seeded(trial);
        let seed = rng.0;
        let t = crash_trial(&mut rng, 6, 800, worktrees);
        kills += t.kills;
        starts += t.starts;
        relaunches += t.launches.iter().map(|n| n - 1).sum::<usize>();
        abandoned += t.abandoned;
        if !t.duplicates.is_empty() {
            duplicates.push(format!("trial {trial} (seed {seed}): {:?}", t.duplicates));
        }
    }
    report(&format!(
        "crash/restart trials{}: {trials}, start SIGKILLed {kills} times, {starts} starts, {:.1} s, \
         launches abandoned by a late supervisor: {abandoned}, streams whose worker ran twice \
         (one after the other): {relaunches}, duplicates: {}",
        if worktrees { " (--worktrees)" } else { "" },
        started.elapsed().as_secs_f64(),
        duplicates.len()
    ));
    assert!(duplicates.is_empty(), "{duplicates:#?}");
}

// ---------------------------------------------------------------------------------------------

pub fn trials(default: u64) -> u64 {
    std::env::var("RELIABILITY_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Appends a long run's figures to `RELIABILITY_REPORT` (a file the script prints).
pub fn report(line: &str) {
    if let Some(path) = std::env::var_os("RELIABILITY_REPORT") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(Path::new(&path))
            .unwrap();
        writeln!(f, "{line}").unwrap();
    }
}
