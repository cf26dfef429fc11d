//! Database faults the reader must ride out: a writer holding the lock, a malformed row that
//! appears mid-run, the file replaced under a running `status --watch`; and under a running
//! `start`: the file deleted or replaced by garbage (said once, nothing judged meanwhile), a
//! read-only file (doctor says workers cannot mark tasks).

use std::time::Duration;

use crate::start::{Fake, LONG, wait_exit};
use crate::support::{TestEnv, Watched, wait_for};

#[test]
fn status_reads_while_another_process_holds_the_write_lock() {
    let mut env = TestEnv::new();
    let ids = env.add_stream("S", &[], 2, "pending");
    let writer = env.conn();
    writer.execute_batch("BEGIN EXCLUSIVE").unwrap();
    writer
        .execute(
            "UPDATE tasks SET status = 'completed' WHERE id = ?1",
            [&ids[0]],
        )
        .unwrap();
    // Uncommitted: the reader must not block or fail, and must see the committed state.
    let doc = env.run(&["status", "--json"]).success().json();
    assert_eq!(doc["streams"][0]["tasks"]["completed"], 0);
    writer.execute_batch("COMMIT").unwrap();
    let doc = env.run(&["status", "--json"]).success().json();
    assert_eq!(doc["streams"][0]["tasks"]["completed"], 1);
}

#[test]
fn watch_survives_a_malformed_row_appearing_mid_run() {
    let mut env = TestEnv::new();
    let ids = env.add_stream("S", &[], 2, "pending");
    let watch = Watched::spawn(env.cmd(&["status", "--watch", "60"]));
    watch.wait_stdout("the first dashboard", Duration::from_secs(10), |o| {
        o.contains("0/2")
    });
    env.add_task_raw("bad", "pending", Some("{\"streamId\": \"S\""));
    env.set_status(&ids[0], "completed");
    watch.wait_stdout(
        "the change after the bad row",
        Duration::from_secs(10),
        |o| o.contains("1/2"),
    );
}

#[test]
fn watch_follows_the_database_file_when_it_is_replaced() {
    let mut env = TestEnv::new();
    env.add_stream("Before", &[], 1, "pending");
    let watch = Watched::spawn(env.cmd(&["status", "--watch", "60"]));
    watch.wait_stdout("the first dashboard", Duration::from_secs(10), |o| {
        o.contains("Before")
    });

    // Build a new database beside it and rename it over the old one (a restore from backup).
    let mut other = TestEnv::new();
    other.add_stream("After", &[], 1, "completed");
    let conn = other.conn();
    conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
    drop(conn);
    let staged = env.db_path().with_extension("new");
    std::fs::copy(other.db_path(), &staged).unwrap();
    std::fs::rename(&staged, env.db_path()).unwrap();
    watch.wait_stdout("the replaced database", Duration::from_secs(10), |o| {
        o.contains("After")
    });
}

// ---------------------------------------------------------------------------------------------
// Faults under a running `start` (issue 12, "Smaller"): the task database deleted, replaced by
// garbage, read-only; the disk full.

/// A copy of the task database as one self-contained file (the test DB runs in WAL mode).
fn backup(env: &TestEnv) -> std::path::PathBuf {
    let copy = env.tmp.path().join("tasks-backup.db");
    env.conn()
        .execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
        .unwrap();
    copy
}

/// Puts `file`'s content at the database path as a new file (a restore: rename over it).
fn restore(env: &TestEnv, file: &std::path::Path) {
    let staged = env.db_path().with_extension("restoring");
    std::fs::copy(file, &staged).unwrap();
    std::fs::rename(&staged, env.db_path()).unwrap();
}

fn remove_db(env: &TestEnv) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = env.db_path().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

fn count(text: &str, what: &str) -> usize {
    text.matches(what).count()
}

#[test]
fn a_task_database_deleted_mid_run_is_said_once_and_costs_no_attempt() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    let copy = backup(&env);
    let mut fake = Fake::new(env);
    let go = fake.markers.join("go");
    fake.set("WAIT_FOR", Some("Stream-A"), go.to_str().unwrap());
    // No retries: an attempt spent while the database was gone would fail the stream.
    let mut start = fake.spawn(&["start", "--stagger", "0", "--retries", "0"], "start");
    fake.pid("Stream-A");
    remove_db(&fake.env);
    let err = || fake.output_of("start", "err");
    wait_for("start to say the database is gone", LONG, || {
        err().contains("task database") && err().contains("is gone")
    });
    // The worker cannot read or mark its tasks now; it exits with them open.
    std::fs::write(&go, "").unwrap();
    wait_for("the worker to end", LONG, || {
        !fake.lines("Stream-A", "ended").is_empty()
    });
    wait_for("start to see the exit", LONG, || {
        err().contains("Stream-A: worker exited")
    });
    assert_eq!(fake.lines("Stream-A", "started").len(), 1, "{}", err());
    restore(&fake.env, &copy);
    let code = wait_exit(&mut start, LONG);
    let err = err();
    assert_eq!(code, 0, "{}\n{err}", fake.output_of("start", "out"));
    assert_eq!(count(&err, "is gone"), 1, "{err}");
    assert_eq!(count(&err, "can be read again"), 1, "{err}");
    // The worker that ran blind is run again, and that is not counted against `--retries 0`.
    assert_eq!(fake.lines("Stream-A", "started").len(), 2, "{err}");
}

#[test]
fn a_task_database_fault_is_said_once_and_again_only_when_it_changes() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    let copy = backup(&env);
    let mut fake = Fake::new(env);
    let go = fake.markers.join("go");
    fake.set("WAIT_FOR", Some("Stream-A"), go.to_str().unwrap());
    let mut start = fake.spawn(&["start", "--stagger", "0"], "start");
    fake.pid("Stream-A");
    let err = || fake.output_of("start", "err");
    let garbage = fake.env.tmp.path().join("garbage");
    std::fs::write(&garbage, b"this is not a database\n".repeat(100)).unwrap();
    restore(&fake.env, &garbage);
    wait_for("the garbage to be noticed", LONG, || {
        err().contains("not an SQLite database")
    });
    // The fault schedule, not synchronisation: the same garbage put back again and again,
    // each a new file that wakes the watch, for about a second.
    for _ in 0..40 {
        restore(&fake.env, &garbage);
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    remove_db(&fake.env);
    wait_for("the deletion to be noticed", LONG, || {
        err().contains("is gone")
    });
    restore(&fake.env, &copy);
    wait_for("the recovery to be noticed", LONG, || {
        err().contains("can be read again")
    });
    std::fs::write(&go, "").unwrap();
    let code = wait_exit(&mut start, LONG);
    let err = err();
    assert_eq!(code, 0, "{err}");
    assert_eq!(count(&err, "not an SQLite database"), 1, "{err}");
    assert_eq!(count(&err, "is gone"), 1, "{err}");
    assert_eq!(count(&err, "can be read again"), 1, "{err}");
}

/// A read-only bind mount of `dir` (as root, file modes do not stop writes), undone on drop.
struct ReadOnly(std::path::PathBuf);

impl ReadOnly {
    fn new(dir: &std::path::Path) -> Self {
        use std::os::unix::fs::PermissionsExt;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        if nix::unistd::geteuid().is_root() {
            let run = |args: &[&str]| {
                let ok = std::process::Command::new("mount")
                    .args(args)
                    .status()
                    .unwrap();
                assert!(ok.success(), "mount {args:?}");
            };
            let d = dir.to_str().unwrap();
            run(&["--bind", d, d]);
            run(&["-o", "remount,ro,bind", d]);
        }
        Self(dir.to_path_buf())
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        if nix::unistd::geteuid().is_root() {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755));
    }
}

#[test]
fn doctor_says_workers_cannot_mark_tasks_in_a_read_only_database() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    env.run(&["init"]).success();
    // Checkpointed, so a reader needs nothing but the main file.
    env.conn()
        .pragma_update(None, "journal_mode", "DELETE")
        .unwrap();
    let _ro = ReadOnly::new(env.db_path().parent().unwrap());
    let mut cmd = env.cmd(&["doctor"]);
    cmd.env("ORCHESTRATE_WORKER_CMD", "sh -c 'exit 0'");
    let run = crate::support::Run(cmd.output().unwrap());
    let out = run.stdout();
    let line = out
        .lines()
        .find(|l| l.contains("workers cannot mark tasks"))
        .unwrap_or_else(|| panic!("no read-only finding in:\n{out}"));
    assert!(line.starts_with('✗'), "{out}");
    assert_eq!(run.code(), 1, "{out}");
}
