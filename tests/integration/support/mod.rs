//! The test environment: a temporary git repository, a Task Copilot database in the real
//! schema, and the built `orchestrate` binary run with a hermetic environment.

#![allow(
    dead_code,
    reason = "each test module uses a different part of the harness"
)]

pub mod api;

use orchestrate::exit_codes;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod tc;

use rusqlite::{Connection, params};
use serde_json::{Value, json};

/// The Task Copilot schema (the `tasks` table with every documented column, plus neighbours).
pub use orchestrate::taskdb::TASK_COPILOT_SCHEMA;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// How a Rust program that panicked exits: never one of `orchestrate::exit_codes`.
pub const PANICKED: i32 = 101;

/// Waits until `cond` holds, polling every 10 ms, or panics after `timeout` with `what`.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A temporary project with a git repository and a task database.
pub struct TestEnv {
    pub tmp: tempfile::TempDir,
    /// The project root (a git repository with one commit on `main`).
    pub root: PathBuf,
    /// `HOME` for every process run here.
    pub home: PathBuf,
    /// `TASK_DB_PATH`.
    pub tasks_base: PathBuf,
    pub workspace: String,
    task_seq: u64,
}

impl TestEnv {
    /// A project `project` with a git repository and an empty Task Copilot database at
    /// `<tmp>/tasks/project/tasks.db`.
    pub fn new() -> Self {
        let env = Self::without_db();
        env.create_db();
        env
    }

    /// Like [`TestEnv::new`] but no database file.
    pub fn without_db() -> Self {
        Self::without_db_in(&std::env::temp_dir())
    }

    /// Like [`TestEnv::new`], in a temporary folder under `base` (another file system).
    pub fn new_in(base: &Path) -> Self {
        let env = Self::without_db_in(base);
        env.create_db();
        env
    }

    fn without_db_in(base: &Path) -> Self {
        let tmp = tempfile::tempdir_in(base).expect("temp dir");
        let base = tmp.path().canonicalize().expect("canonical temp dir");
        let root = base.join("project");
        let home = base.join("home");
        let tasks_base = base.join("tasks");
        for dir in [&root, &home, &tasks_base] {
            std::fs::create_dir_all(dir).expect("create dir");
        }
        let env = Self {
            tmp,
            root,
            home,
            tasks_base,
            workspace: "project".into(),
            task_seq: 0,
        };
        env.git(&["init", "-q", "-b", "main"]);
        std::fs::write(env.root.join("README.md"), "# test project\n").unwrap();
        env.git(&["add", "README.md"]);
        env.git(&["commit", "-q", "-m", "initial"]);
        env
    }

    pub fn db_path(&self) -> PathBuf {
        self.tasks_base.join(&self.workspace).join("tasks.db")
    }

    pub fn create_db(&self) {
        let path = self.db_path();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch(TASK_COPILOT_SCHEMA).unwrap();
    }

    /// A writing connection, as Task Copilot's server holds one.
    pub fn conn(&self) -> Connection {
        let conn = Connection::open(self.db_path()).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn
    }

    /// Inserts a task with raw `metadata` text (may be malformed or NULL); returns its id.
    pub fn add_task_raw(&mut self, title: &str, status: &str, metadata: Option<&str>) -> String {
        self.task_seq += 1;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let id = format!("TASK-{:08x}-0000-4000-8000-{:012x}", self.task_seq, n);
        let now = format!("2026-01-09T12:00:{:02}.000Z", self.task_seq % 60);
        self.conn()
            .execute(
                "INSERT INTO tasks (id, title, status, metadata, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![id, title, status, metadata, now],
            )
            .unwrap();
        id
    }

    /// Inserts a stream task with `dependencies`; returns its id.
    pub fn add_task(&mut self, stream: &str, title: &str, status: &str, deps: &[&str]) -> String {
        let meta = json!({"streamId": stream, "streamName": format!("{stream} work"), "dependencies": deps});
        self.add_task_raw(title, status, Some(&meta.to_string()))
    }

    /// Inserts a task with arbitrary metadata JSON.
    pub fn add_task_meta(&mut self, title: &str, status: &str, meta: Value) -> String {
        self.add_task_raw(title, status, Some(&meta.to_string()))
    }

    /// Adds `n` tasks to `stream`, all `status`.
    pub fn add_stream(
        &mut self,
        stream: &str,
        deps: &[&str],
        n: usize,
        status: &str,
    ) -> Vec<String> {
        (0..n)
            .map(|i| self.add_task(stream, &format!("{stream} task {i}"), status, deps))
            .collect()
    }

    /// The diamond A → {B, C} → Z, every task pending, two tasks a stream.
    pub fn diamond(&mut self) {
        self.add_stream("Stream-A", &[], 2, "pending");
        self.add_stream("Stream-B", &["Stream-A"], 2, "pending");
        self.add_stream("Stream-C", &["Stream-A"], 2, "pending");
        self.add_stream("Stream-Z", &["Stream-B", "Stream-C"], 2, "pending");
    }

    pub fn set_status(&self, task_id: &str, status: &str) {
        self.conn()
            .execute(
                "UPDATE tasks SET status = ?2, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ') WHERE id = ?1",
                params![task_id, status],
            )
            .unwrap();
    }

    /// Sets every task of `stream` to `status`.
    pub fn set_stream_status(&self, stream: &str, status: &str) {
        self.conn()
            .execute(
                "UPDATE tasks SET status = ?2 WHERE json_valid(metadata)
                   AND json_extract(metadata, '$.streamId') = ?1",
                params![stream, status],
            )
            .unwrap();
    }

    pub fn archive_stream(&self, stream: &str) {
        self.conn()
            .execute(
                "UPDATE tasks SET archived = 1 WHERE json_valid(metadata)
                   AND json_extract(metadata, '$.streamId') = ?1",
                params![stream],
            )
            .unwrap();
    }

    /// The status of one task, read back.
    pub fn status_of(&self, task_id: &str) -> String {
        self.conn()
            .query_row("SELECT status FROM tasks WHERE id = ?1", [task_id], |r| {
                r.get(0)
            })
            .unwrap()
    }

    /// The hermetic environment every child process gets.
    pub fn apply_env(&self, cmd: &mut Command) {
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("TASK_DB_PATH", &self.tasks_base)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Test Author")
            .env("GIT_AUTHOR_EMAIL", "author@example.invalid")
            .env("GIT_COMMITTER_NAME", "Test Committer")
            .env("GIT_COMMITTER_EMAIL", "committer@example.invalid")
            .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
            .env("TERM", "dumb")
            .env("ORCHESTRATE_LOG", "warn");
    }

    /// The built binary, in the project root, with the hermetic environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_orchestrate"));
        self.apply_env(&mut cmd);
        cmd.current_dir(&self.root).args(args);
        cmd
    }

    /// Runs the binary to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        Run(self.cmd(args).output().expect("run orchestrate"))
    }

    /// Runs git in `dir` (hermetic), panicking on failure; returns stdout.
    pub fn git_in(&self, dir: &Path, args: &[&str]) -> String {
        let mut cmd = Command::new("git");
        self.apply_env(&mut cmd);
        let out = cmd.current_dir(dir).args(args).output().expect("run git");
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs git in the project root.
    pub fn git(&self, args: &[&str]) -> String {
        self.git_in(&self.root, args)
    }
}

/// A finished run with assertion helpers that print everything on failure.
pub struct Run(pub Output);

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }

    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }

    /// Asserts the exit code, showing both streams if it differs.
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code(),
            code,
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }

    pub fn success(self) -> Self {
        self.expect_code(exit_codes::OK)
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.0.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\n--- stderr\n{}",
                self.stdout(),
                self.stderr()
            )
        })
    }
}

/// A running child whose stdout and stderr are collected in the background, for tests that
/// watch a long-running command (`status --watch`, `logs -f`, `start`).
pub struct Watched {
    pub child: std::process::Child,
    stdout: std::sync::Arc<std::sync::Mutex<String>>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    /// The threads collecting stdout and stderr; done when the pipes close.
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Watched {
    pub fn spawn(mut cmd: Command) -> Self {
        use std::io::Read;
        use std::process::Stdio;
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut readers = Vec::new();
        let mut collect = |mut pipe: Box<dyn Read + Send>| {
            let buf = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
            let sink = buf.clone();
            readers.push(std::thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    sink.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&chunk[..n]));
                }
            }));
            buf
        };
        let stdout = collect(Box::new(child.stdout.take().unwrap()));
        let stderr = collect(Box::new(child.stderr.take().unwrap()));
        Self {
            child,
            stdout,
            stderr,
            readers,
        }
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stdout satisfies `cond`, with the output in the panic message.
    pub fn wait_stdout(&self, what: &str, timeout: Duration, cond: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + timeout;
        while !cond(&self.stdout()) {
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}\n--- stdout\n{}\n--- stderr\n{}",
                self.stdout(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `signal` (e.g. `libc`'s SIGINT = 2) via `kill`.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits for the exit (with a deadline), returning the exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Its last lines may still be in the pipes: read them before answering (a
                // loaded machine once ran the test's checks before the collector's last read).
                wait_for("the output pipes to close", timeout, || {
                    self.readers
                        .iter()
                        .all(std::thread::JoinHandle::is_finished)
                });
                return status.code();
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!(
                    "process did not exit within {timeout:?}\n--- stdout\n{}\n--- stderr\n{}",
                    self.stdout(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cmd` run under an address-space limit of `kib` KiB (`ulimit -v`, inherited by everything it
/// starts): a runaway allocation fails instead of taking the machine's memory.
pub fn with_memory_limit(cmd: &Command, kib: u64) -> Command {
    let mut limited = Command::new("sh");
    limited
        .env_clear()
        .arg("-c")
        .arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\""))
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => limited.env(key, v),
            None => limited.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        limited.current_dir(dir);
    }
    limited
}
