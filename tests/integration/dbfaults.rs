//! Database faults the reader must ride out: a writer holding the lock, a malformed row that
//! appears mid-run, the file replaced under a running `status --watch`; and under a running
//! `start`: the file deleted or replaced by garbage (said once, nothing judged meanwhile), a
//! read-only file (doctor says workers cannot mark tasks), the disk full.

use orchestrate::exit_codes;
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
    assert_eq!(
        code,
        exit_codes::OK,
        "{}\n{err}",
        fake.output_of("start", "out")
    );
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
    assert_eq!(code, exit_codes::OK, "{err}");
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
    assert_eq!(run.code(), exit_codes::FAILURE, "{out}");
}

/// A small tmpfs mounted at `dir` (root only), unmounted on drop.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path, kib: u64) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(ok.success(), "mount a tmpfs at {}", dir.display());
        Self(dir.to_path_buf())
    }

    /// Fills the disk to leave about `free_kib` free; returns the filler file.
    fn fill(&self, free_kib: u64) -> std::path::PathBuf {
        let n = std::fs::read_dir(&self.0).unwrap().count();
        let filler = self.0.join(format!("filler-{n}"));
        let stat = nix::sys::statvfs::statvfs(&self.0).unwrap();
        let free = stat.blocks_available() as u64 * stat.fragment_size() as u64;
        let size = free.saturating_sub(free_kib * 1024);
        std::fs::write(&filler, vec![0u8; size as usize]).unwrap();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// The disk holding `.claude/` fills while a worktree is checked out: the error says the disk
/// is full (not that state cannot be *read*), nothing half-made is left to block the stream,
/// and once space is freed the next `start` runs it.
#[test]
fn a_full_disk_is_named_and_leaves_nothing_that_blocks_a_stream() {
    if !nix::unistd::geteuid().is_root() {
        // Mounting a small file system needs root; say so loudly rather than pass.
        panic!("this test mounts a small tmpfs and must run as root");
    }
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    for i in 0..300 {
        std::fs::write(
            env.root.join(format!("f{i}.txt")),
            format!("{i}\n").repeat(500),
        )
        .unwrap();
    }
    env.git(&["add", "."]);
    env.git(&["commit", "-q", "-m", "files"]);
    let fake = Fake::new(env);
    let disk = SmallDisk::mount(&fake.env.root.join(".claude"), 4096);
    // Set up and a first state store, with room to spare.
    fake.run(&["init"]).success();
    disk.fill(400);
    let run = fake.run(&["start", "--stagger", "0", "--worktrees"]);
    let text = format!("{}{}", run.stdout(), run.stderr());
    assert_ne!(run.code(), exit_codes::OK, "{text}");
    assert!(
        !text.contains("cannot read the orchestrator state"),
        "{text}"
    );
    assert!(
        text.contains("No space left") || text.contains("disk is full"),
        "{text}"
    );
    let folder = fake.env.root.join(".claude/worktrees/Stream-A");
    assert!(!folder.exists(), "a half-made worktree was left:\n{text}");

    // The state store cannot grow either: a write says so, and says the disk is full.
    disk.fill(0);
    let run = fake.run(&["start", "--stagger", "0", "--worktrees"]);
    let text = format!("{}{}", run.stdout(), run.stderr());
    assert_ne!(run.code(), exit_codes::OK, "{text}");
    assert!(
        !text.contains("cannot read the orchestrator state"),
        "{text}"
    );
    assert!(text.contains("disk is full"), "{text}");

    for f in std::fs::read_dir(&disk.0).unwrap() {
        let f = f.unwrap().path();
        if f.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("filler"))
        {
            std::fs::remove_file(f).unwrap();
        }
    }
    fake.run(&["start", "--stagger", "0", "--worktrees"])
        .success();
    assert_eq!(fake.lines("Stream-A", "started").len(), 1);
}
