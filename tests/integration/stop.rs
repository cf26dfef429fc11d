//! `orchestrate stop`, and Ctrl-C/SIGTERM of `start`: whole process groups end (a
//! TERM-ignoring grandchild included), stops are idempotent, and a stale record whose pid now
//! belongs to an unrelated process is never signalled.

use orchestrate::exit_codes;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use rusqlite::{Connection, params};

use crate::start::{Fake, LONG, alive, state_db, wait_exit};
use crate::support::{TestEnv, wait_for};

fn supervisor_pids(fake: &Fake) -> Vec<i32> {
    let conn = Connection::open(state_db(&fake.env.root)).unwrap();
    let mut stmt = conn
        .prepare("SELECT pid FROM workers WHERE pid IS NOT NULL")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn stop_ends_the_whole_group_including_a_term_ignoring_grandchild() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    env.add_stream("Stream-B", &["Stream-A"], 1, "pending");
    let mut fake = Fake::new(env);
    fake.set("IGNORE_TERM", None, "1")
        .set("GRANDCHILD", None, "1")
        .set("SLEEP", None, "300");
    let mut start = fake.spawn(&["start", "--stagger", "0"], "start");
    wait_for("the grandchild to exist", LONG, || {
        !fake.lines("Stream-A", "grandchild").is_empty()
    });
    let worker: i32 = fake.pid("Stream-A");
    let grandchild: i32 = fake.lines("Stream-A", "grandchild")[0].parse().unwrap();
    let supervisors = supervisor_pids(&fake);
    assert_eq!(supervisors.len(), 1);
    assert!(alive(worker) && alive(grandchild) && alive(supervisors[0]));
    let doc = fake.env.run(&["status", "--json"]).success().json();
    assert_eq!(doc["streams"][0]["state"], "running");
    assert_eq!(doc["streams"][0]["worker"]["state"], "running");
    assert_eq!(doc["streams"][0]["worker"]["pid"], supervisors[0]);
    if orchestrate::worker::sandbox::Support::probe()
        .abi()
        .is_some()
    {
        // Stopped below while confined: the supervisor's own child, in its group.
        assert_eq!(doc["streams"][0]["worker"]["sandbox"]["kind"], "landlock");
    }

    let run = fake.run(&["stop", "--grace", "0.3"]).success();
    assert!(
        run.stdout().contains("stopped Stream-A")
            && run.stdout().contains("SIGKILL after the grace period"),
        "{}",
        run.stdout()
    );
    for pid in [worker, grandchild, supervisors[0]] {
        assert!(!alive(pid), "pid {pid} survived stop");
    }

    // The running start sees the stop, does not restart A, and ends saying why.
    let code = wait_exit(&mut start, LONG);
    assert_eq!(
        code,
        exit_codes::INCOMPLETE,
        "{}",
        fake.output_of("start", "err")
    );
    let out = fake.output_of("start", "out");
    assert!(out.contains("Stream-A (stopped)"), "{out}");
    assert_eq!(fake.lines("Stream-A", "started").len(), 1, "not restarted");

    // Idempotent.
    let again = fake.run(&["stop"]).success();
    assert!(
        again.stdout().contains("no live workers"),
        "{}",
        again.stdout()
    );
    let doc = fake.env.run(&["status", "--json"]).success().json();
    assert_eq!(doc["streams"][0]["state"], "stopped");
    assert_eq!(doc["streams"][0]["worker"]["state"], "stopped");

    // A plain start leaves the stopped stream alone; naming it starts it again.
    fake.set("SLEEP", None, "0")
        .set("GRANDCHILD", None, "0")
        .set("IGNORE_TERM", None, "0");
    let run = fake
        .run(&["start", "--stagger", "0"])
        .expect_code(exit_codes::INCOMPLETE);
    assert!(
        run.stdout()
            .contains("`orchestrate start Stream-A` starts it again"),
        "{}",
        run.stdout()
    );
    assert_eq!(fake.lines("Stream-A", "started").len(), 1);
    fake.run(&["start", "--stagger", "0", "Stream-A"]).success();
    assert_eq!(fake.lines("Stream-A", "started").len(), 2);
}

#[test]
fn sigterm_to_start_returns_at_once_and_leaves_workers_running() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    let mut fake = Fake::new(env);
    fake.set("SLEEP", None, "300");
    let mut start = fake.spawn(&["start", "--stagger", "0"], "start");
    wait_for("Stream-A to start", LONG, || {
        fake.marker("Stream-A", "started").exists()
    });
    let worker: i32 = fake.pid("Stream-A");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(start.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let code = wait_exit(&mut start, LONG);
    assert_eq!(code, exit_codes::INTERRUPTED);
    let err = fake.output_of("start", "err");
    assert!(
        err.contains("1 worker keeps running: Stream-A") && err.contains("`orchestrate stop`"),
        "{err}"
    );
    assert!(alive(worker));
    fake.run(&["stop", "--grace", "5", "Stream-A"]).success();
    assert!(!alive(worker));
}

#[test]
fn a_stale_record_whose_pid_was_reused_is_never_signalled() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "completed");
    let fake = Fake::new(env);
    // A run with nothing to do creates the state store.
    fake.run(&["start"]).success();
    let mut unrelated = Command::new("sleep")
        .arg("300")
        .process_group(0)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = unrelated.id() as i32;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ticks: i64 = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let conn = Connection::open(state_db(&fake.env.root)).unwrap();
    // Same pid, another start time: a record of a worker long gone whose pid was reused.
    conn.execute(
        "INSERT INTO workers (stream, attempt, pid, pgid, start_ticks, boot_id, log_path, started_at)
         VALUES ('Stream-A', 1, ?1, ?1, ?2, ?3, '/dev/null', '2026-01-01T00:00:00.000Z')",
        params![pid, ticks - 5, boot.trim()],
    )
    .unwrap();
    let run = fake.run(&["stop", "--grace", "0"]).success();
    assert!(run.stdout().contains("stale record"), "{}", run.stdout());
    assert!(alive(pid), "the unrelated process was signalled");
    assert!(unrelated.try_wait().unwrap().is_none());
    let outcome: String = conn
        .query_row("SELECT outcome FROM workers WHERE pid = ?1", [pid], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(outcome, "lost");
    unrelated.kill().unwrap();
    unrelated.wait().unwrap();
}

#[test]
fn sigterm_is_answered_while_a_worktree_is_being_prepared() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    let fake = Fake::new(env);
    crate::start::write_config(&fake.env, "post_create = \"sleep 20\"\n");
    let mut start = fake.spawn(&["start", "--worktrees"], "start");
    let worktree = fake.env.root.join(".claude/worktrees/Stream-A");
    wait_for("the worktree to be created", LONG, || worktree.exists());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(start.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    // A deadline well under post_create's 20 s: the answer must not wait for it.
    let code = wait_exit(&mut start, std::time::Duration::from_secs(10));
    assert_eq!(
        code,
        exit_codes::INTERRUPTED,
        "{}",
        fake.output_of("start", "err")
    );
    assert!(fake.lines("Stream-A", "started").is_empty());
}
