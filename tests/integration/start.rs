//! `orchestrate start` with the fake worker (`tests/fixtures/fake-worker.sh`): the diamond,
//! retries and failure, `--max-parallel 1`, refusals, `--dry-run`, a missing program, and
//! adoption after `start` is SIGKILLed. Synchronised on marker files, never on sleeps.

use orchestrate::exit_codes;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{TestEnv, wait_for};

pub const FAKE_WORKER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fake-worker.sh");
pub const LONG: Duration = Duration::from_secs(60);

/// A test project plus a marker folder for the fake worker.
pub struct Fake {
    pub env: TestEnv,
    pub markers: PathBuf,
    vars: Vec<(String, String)>,
}

impl Fake {
    pub fn new(env: TestEnv) -> Self {
        let markers = env.tmp.path().join("markers");
        std::fs::create_dir_all(&markers).unwrap();
        Self {
            env,
            markers,
            vars: vec![("FAKE_COMPLETE".into(), "1".into())],
        }
    }

    /// Sets a fake-worker variable (`FAKE_X`), or a per-stream one with `stream`.
    pub fn set(&mut self, var: &str, stream: Option<&str>, value: &str) -> &mut Self {
        let key = match stream {
            Some(s) => format!(
                "FAKE_{var}_{}",
                s.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
            ),
            None => format!("FAKE_{var}"),
        };
        self.vars.push((key, value.into()));
        self
    }

    pub fn marker(&self, stream: &str, what: &str) -> PathBuf {
        self.markers.join(format!("{stream}.{what}"))
    }

    /// Lines of a marker file (empty if absent).
    pub fn lines(&self, stream: &str, what: &str) -> Vec<String> {
        std::fs::read_to_string(self.marker(stream, what))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// The worker's pid from its `pid` marker, waiting for it: the fake worker writes `started`
    /// before `pid`, so a test that saw `started` may be a moment early.
    pub fn pid(&self, stream: &str) -> i32 {
        let mut pid = None;
        wait_for(&format!("{stream}'s pid marker"), LONG, || {
            pid = self
                .lines(stream, "pid")
                .first()
                .and_then(|l| l.trim().parse().ok());
            pid.is_some()
        });
        pid.expect("set by the wait")
    }

    /// The timestamp (ns) on the last line of a marker.
    pub fn time(&self, stream: &str, what: &str) -> u128 {
        let lines = self.lines(stream, what);
        let last = lines
            .last()
            .unwrap_or_else(|| panic!("no {stream}.{what} marker"));
        last.split_whitespace().last().unwrap().parse().unwrap()
    }

    /// `orchestrate ARGS` with the fake worker as the worker command.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.env.cmd(args);
        cmd.env(
            "ORCHESTRATE_WORKER_CMD",
            format!("{FAKE_WORKER} {{prompt}}"),
        )
        .env("FAKE_MARKER", &self.markers)
        // The marker folder is outside the project: a sandboxed worker may write it.
        .env("ORCHESTRATE_SANDBOX_WRITABLE", &self.markers);
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> crate::support::Run {
        crate::support::Run(self.cmd(args).output().expect("run orchestrate"))
    }

    /// Starts `orchestrate ARGS` in the background, stdout and stderr to files.
    pub fn spawn(&self, args: &[&str], name: &str) -> Child {
        let out = std::fs::File::create(self.out_path(name, "out")).unwrap();
        let err = std::fs::File::create(self.out_path(name, "err")).unwrap();
        self.cmd(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn orchestrate")
    }

    pub fn out_path(&self, name: &str, which: &str) -> PathBuf {
        self.env.tmp.path().join(format!("{name}.{which}"))
    }

    pub fn output_of(&self, name: &str, which: &str) -> String {
        std::fs::read_to_string(self.out_path(name, which)).unwrap_or_default()
    }
}

/// Waits for a child to exit, with a deadline; returns its exit code.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> i32 {
    let mut code = None;
    wait_for("orchestrate to exit", timeout, || {
        code = child.try_wait().unwrap().map(|s| s.code().unwrap_or(-1));
        code.is_some()
    });
    code.unwrap()
}

/// True if `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        let state = s
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().next());
        !matches!(state, Some("Z" | "X") | None)
    })
}

pub fn state_db(root: &Path) -> PathBuf {
    root.join(".claude/orchestrator/state/state.db")
}

fn diamond() -> Fake {
    let mut env = TestEnv::new();
    env.diamond();
    Fake::new(env)
}

#[test]
fn diamond_completes_in_order_with_b_and_c_overlapping() {
    let mut fake = diamond();
    // B and C each wait for the other to start: they can only finish if they overlap.
    let b_started = fake.marker("Stream-B", "started");
    let c_started = fake.marker("Stream-C", "started");
    fake.set("WAIT_FOR", Some("Stream-B"), c_started.to_str().unwrap())
        .set("WAIT_FOR", Some("Stream-C"), b_started.to_str().unwrap());
    let run = fake.run(&["start", "--stagger", "0"]).success();
    assert!(
        run.stdout().contains("every stream is complete"),
        "{}",
        run.stdout()
    );
    let err = run.stderr();
    for s in ["Stream-A", "Stream-B", "Stream-C", "Stream-Z"] {
        assert!(err.contains(&format!("started {s} (pid ")), "{err}");
        assert!(err.contains(&format!("{s} complete")), "{err}");
        assert_eq!(fake.lines(s, "started").len(), 1, "{s} started once");
    }
    let t = |s, w| fake.time(s, w);
    assert!(t("Stream-A", "completed") <= t("Stream-B", "started"));
    assert!(t("Stream-A", "completed") <= t("Stream-C", "started"));
    assert!(t("Stream-B", "started") < t("Stream-C", "ended"));
    assert!(t("Stream-C", "started") < t("Stream-B", "ended"));
    assert!(t("Stream-B", "completed") <= t("Stream-Z", "started"));
    assert!(t("Stream-C", "completed") <= t("Stream-Z", "started"));

    // The state store recorded every worker's exit; status shows it.
    let doc = fake.env.run(&["status", "--json"]).success().json();
    for s in doc["streams"].as_array().unwrap() {
        assert_eq!(s["state"], "complete");
        assert_eq!(s["worker"]["state"], "exited", "{s}");
        assert_eq!(s["worker"]["exit_code"], 0);
    }
}

#[test]
fn failing_worker_is_retried_then_failed_and_dependents_skipped() {
    let mut fake = diamond();
    fake.set("COMPLETE", Some("Stream-B"), "0")
        .set("EXIT", Some("Stream-B"), "3");
    let run = fake
        .run(&["start", "--stagger", "0", "--retries", "1"])
        .expect_code(exit_codes::INCOMPLETE);
    assert_eq!(fake.lines("Stream-B", "started").len(), 2, "one retry");
    assert!(
        fake.lines("Stream-Z", "started").is_empty(),
        "Z must not start"
    );
    assert_eq!(fake.lines("Stream-C", "started").len(), 1);
    let out = run.stdout();
    assert!(
        out.contains("Stream-B (failed): failed after 2 attempts"),
        "{out}"
    );
    assert!(out.contains("exited with code 3"), "{out}");
    assert!(
        out.contains("fake worker for Stream-B exiting with 3"),
        "{out}"
    );
    assert!(out.contains("Stream-Z (skipped): Stream-B failed"), "{out}");
    let doc = fake.env.run(&["status", "--json"]).success().json();
    let b = doc["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "Stream-B")
        .unwrap()
        .clone();
    assert_eq!(b["state"], "failed");
    assert_eq!(b["worker"]["attempt"], 2);
}

#[test]
fn max_parallel_one_serialises_the_workers() {
    let fake = diamond();
    fake.run(&["start", "--stagger", "0", "--max-parallel", "1"])
        .success();
    let mut spans: Vec<(u128, u128)> = ["Stream-A", "Stream-B", "Stream-C", "Stream-Z"]
        .iter()
        .map(|s| (fake.time(s, "started"), fake.time(s, "ended")))
        .collect();
    spans.sort();
    for pair in spans.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "workers overlapped: {spans:?}");
    }
}

#[test]
fn named_streams_with_incomplete_dependencies_are_refused() {
    let fake = diamond();
    let run = fake
        .run(&["start", "Stream-B"])
        .expect_code(exit_codes::REFUSED);
    assert!(
        run.stderr().contains("Stream-B waits for Stream-A"),
        "{}",
        run.stderr()
    );
    let run = fake
        .run(&["start", "Stream-Nope"])
        .expect_code(exit_codes::NO_STREAMS);
    assert!(
        run.stderr().contains("no stream named `Stream-Nope`")
            && run.stderr().contains("the streams are: Stream-A"),
        "{}",
        run.stderr()
    );
    // Naming the dependency too is fine; only those two run.
    fake.run(&["start", "--stagger", "0", "Stream-A", "Stream-B"])
        .success();
    assert!(fake.lines("Stream-C", "started").is_empty());
    assert_eq!(fake.lines("Stream-B", "started").len(), 1);
}

#[test]
fn dry_run_prints_the_plan_and_starts_nothing() {
    let fake = diamond();
    let run = fake.run(&["start", "--dry-run"]).success();
    let out = run.stdout();
    assert!(out.contains("4 streams in 3 levels"), "{out}");
    let a = out.find("Stream-A").unwrap();
    let z = out.find("Stream-Z").unwrap();
    assert!(a < z, "{out}");
    assert!(out.contains("level 2:"), "{out}");
    assert!(out.contains("nothing was started"), "{out}");
    assert!(std::fs::read_dir(&fake.markers).unwrap().next().is_none());
    assert!(!state_db(&fake.env.root).exists());
}

#[test]
fn a_missing_worker_program_fails_its_stream_clearly() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    let fake = Fake::new(env);
    let run = fake
        .run(&["start", "--worker-cmd", "no-such-agent-cli -p {prompt}"])
        .expect_code(exit_codes::INCOMPLETE);
    assert!(
        run.stdout().contains("Stream-A (failed)")
            && run
                .stdout()
                .contains("cannot run the worker program `no-such-agent-cli`: not found"),
        "{}",
        run.stdout()
    );
}

#[test]
fn start_adopts_a_live_worker_after_being_killed_and_starts_no_duplicate() {
    let mut fake = diamond();
    let go = fake.markers.join("go");
    fake.set("WAIT_FOR", Some("Stream-A"), go.to_str().unwrap());
    let mut first = fake.spawn(&["start", "--stagger", "0"], "first");
    wait_for("Stream-A to start", LONG, || {
        fake.marker("Stream-A", "started").exists()
    });
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let worker_pid: i32 = fake.pid("Stream-A");
    assert!(alive(worker_pid), "the worker outlives a killed start");

    let mut second = fake.spawn(&["start", "--stagger", "0"], "second");
    wait_for("the second start to adopt Stream-A", LONG, || {
        fake.output_of("second", "err").contains("adopted Stream-A")
    });
    std::fs::write(&go, "").unwrap();
    let code = wait_exit(&mut second, LONG);
    assert_eq!(
        code,
        exit_codes::OK,
        "stderr: {}",
        fake.output_of("second", "err")
    );
    assert_eq!(
        fake.lines("Stream-A", "started").len(),
        1,
        "no duplicate worker"
    );
    assert_eq!(fake.lines("Stream-Z", "started").len(), 1);
}

#[test]
fn an_agent_error_result_is_the_failure_reason() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    let mut fake = Fake::new(env);
    fake.set("COMPLETE", None, "0")
        .set("EXIT", None, "1")
        .set("STREAM_JSON", None, "1");
    let run = fake
        .run(&["start", "--retries", "0"])
        .expect_code(exit_codes::INCOMPLETE);
    assert!(
        run.stdout().contains(
            "Stream-A (failed): failed after 1 attempt: its worker exited with code 1; the agent said: API Error: fake failure"
        ),
        "{}",
        run.stdout()
    );
}

#[test]
fn a_stream_left_with_only_blocked_tasks_ends_the_run_with_the_reason() {
    let mut env = TestEnv::new();
    let ids = env.add_stream("Stream-A", &[], 2, "completed");
    env.conn()
        .execute(
            "UPDATE tasks SET status = 'blocked', blocked_reason = 'needs an API key' WHERE id = ?1",
            [&ids[1]],
        )
        .unwrap();
    env.add_stream("Stream-B", &["Stream-A"], 1, "pending");
    let fake = Fake::new(env);
    let run = fake.run(&["start"]).expect_code(exit_codes::INCOMPLETE);
    let out = run.stdout();
    assert!(
        out.contains("Stream-A (blocked)") && out.contains("needs an API key"),
        "{out}"
    );
    assert!(
        out.contains("Stream-B (waiting): waits for Stream-A"),
        "{out}"
    );
    assert!(std::fs::read_dir(&fake.markers).unwrap().next().is_none());
}

#[test]
fn two_concurrent_starts_launch_one_worker_per_stream() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    let mut fake = Fake::new(env);
    let go = fake.markers.join("go");
    fake.set("WAIT_FOR", None, go.to_str().unwrap());
    let mut one = fake.spawn(&["start"], "one");
    let mut two = fake.spawn(&["start"], "two");
    wait_for("both starts to see Stream-A running", LONG, || {
        let said = |n| {
            let err = fake.output_of(n, "err");
            err.contains("started Stream-A") || err.contains("adopted Stream-A")
        };
        said("one") && said("two")
    });
    std::fs::write(&go, "").unwrap();
    assert_eq!(wait_exit(&mut one, LONG), exit_codes::OK);
    assert_eq!(wait_exit(&mut two, LONG), exit_codes::OK);
    assert_eq!(fake.lines("Stream-A", "started").len(), 1);
}

#[test]
fn an_exit_is_recorded_while_no_start_runs() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    let mut fake = Fake::new(env);
    let go = fake.markers.join("go");
    fake.set("WAIT_FOR", None, go.to_str().unwrap())
        .set("EXIT", None, "5");
    let mut start = fake.spawn(&["start"], "start");
    wait_for("Stream-A to start", LONG, || {
        fake.marker("Stream-A", "started").exists()
    });
    start.kill().unwrap();
    start.wait().unwrap();
    std::fs::write(&go, "").unwrap();
    let conn = rusqlite::Connection::open(state_db(&fake.env.root)).unwrap();
    let mut code: Option<i32> = None;
    wait_for("the supervisor to record the exit", LONG, || {
        code = conn
            .query_row(
                "SELECT exit_code FROM workers WHERE stream = 'Stream-A' AND ended_at IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .ok();
        code.is_some()
    });
    assert_eq!(code, Some(5));
}

#[test]
fn worktree_mode_runs_each_stream_on_its_dependencies_work() {
    let mut fake = diamond();
    fake.set("COMMIT", None, "1");
    let run = fake
        .run(&["start", "--worktrees", "--stagger", "0"])
        .success();
    assert!(
        run.stdout().contains("every stream is complete"),
        "{}",
        run.stderr()
    );
    let z = fake.env.root.join(".claude/worktrees/Stream-Z");
    for s in ["Stream-A", "Stream-B", "Stream-C", "Stream-Z"] {
        assert!(
            z.join(format!("{s}.txt")).is_file(),
            "Z's worktree lacks {s}'s work"
        );
    }
    // Dependents started only after their dependency's worker had exited.
    assert!(fake.time("Stream-A", "ended") <= fake.time("Stream-B", "started"));
    assert!(
        run.stdout().contains("Merge-back into main"),
        "{}",
        run.stdout()
    );
    assert!(run.stdout().contains("stream/Stream-A"), "{}", run.stdout());
    let doc = fake.env.run(&["status", "--json"]).success().json();
    assert_eq!(doc["streams"][3]["branch"], "stream/Stream-Z");
}

#[test]
fn worktree_mode_dry_run_names_branches_and_bases() {
    let fake = diamond();
    let out = fake
        .run(&["start", "--worktrees", "--dry-run"])
        .success()
        .stdout();
    assert!(out.contains("on branch stream/Stream-B"), "{out}");
    assert!(out.contains("base:"), "{out}");
    assert!(!fake.env.root.join(".claude/worktrees").exists(), "{out}");
}

#[test]
fn a_cycle_or_unknown_dependency_is_an_error_before_anything_starts() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &["Stream-B"], 1, "pending");
    env.add_stream("Stream-B", &["Stream-A"], 1, "pending");
    let fake = Fake::new(env);
    let run = fake.run(&["start"]).expect_code(exit_codes::INVALID_GRAPH);
    assert!(
        run.stderr().contains("Stream-A → Stream-B → Stream-A"),
        "{}",
        run.stderr()
    );
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &["Stream-Q"], 1, "pending");
    let fake2 = Fake::new(env);
    fake2.run(&["start"]).expect_code(exit_codes::INVALID_GRAPH);
    for f in [&fake, &fake2] {
        assert!(std::fs::read_dir(&f.markers).unwrap().next().is_none());
    }
}

#[test]
fn dependents_of_an_all_cancelled_stream_are_skipped() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 2, "cancelled");
    env.add_stream("Stream-B", &["Stream-A"], 1, "pending");
    let fake = Fake::new(env);
    let run = fake.run(&["start"]).expect_code(exit_codes::INCOMPLETE);
    assert!(
        run.stdout()
            .contains("Stream-B (skipped): Stream-A was cancelled"),
        "{}",
        run.stdout()
    );
    assert!(fake.lines("Stream-B", "started").is_empty());
}

/// Writes the project's config file (before the first run, so set-up keeps it).
pub fn write_config(env: &TestEnv, text: &str) {
    let dir = env.root.join(".claude/orchestrator");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), text).unwrap();
}

#[test]
fn worktree_mode_dependents_wait_for_a_worker_that_left_changes_uncommitted() {
    let mut fake = diamond();
    write_config(&fake.env, "auto_commit = false\n");
    fake.set("DIRTY", Some("Stream-A"), "1");
    let run = fake
        .run(&["start", "--worktrees", "--stagger", "0"])
        .expect_code(exit_codes::INCOMPLETE);
    let out = run.stdout();
    assert!(
        out.contains("Stream-A (needs attention): finished with uncommitted changes")
            && out.contains("Stream-B (waiting): waits for Stream-A (needs attention)"),
        "{out}\n{}",
        run.stderr()
    );
    assert!(fake.lines("Stream-B", "started").is_empty());
}
