//! The agent's real failure modes through `start`, with the fake worker speaking Claude's
//! stream-json (`FAKE_OUTCOMES`): a usage limit parks the run and the session resumes after the
//! reset; an overloaded API backs off only its stream; a missing session falls back to a fresh
//! one; spending caps; the verification gate. The fake worker is installed as `claude` so that
//! `orchestrate` treats it as Claude Code (resume, `--max-budget-usd`).

use orchestrate::exit_codes;
use std::path::PathBuf;

use crate::start::{Fake, LONG, write_config};
use crate::support::{TestEnv, wait_for};

/// A `claude` that is the fake worker, and the worker command that runs it.
fn as_claude(fake: &Fake) -> String {
    let bin = fake.env.tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let claude: PathBuf = bin.join("claude");
    if !claude.exists() {
        std::os::unix::fs::symlink(crate::start::FAKE_WORKER, &claude).unwrap();
    }
    format!("{} {{prompt}}", claude.display())
}

fn stream_json(fake: &Fake, id: &str) -> serde_json::Value {
    let doc = fake.env.run(&["status", "--json"]).success().json();
    doc["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap()
        .clone()
}

fn first_start(fake: &Fake, stream: &str, run: usize) -> u128 {
    let lines = fake.lines(stream, "started");
    lines[run]
        .split_whitespace()
        .last()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_usage_limit_parks_the_run_and_the_session_resumes_after_the_reset() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    env.add_stream("Stream-B", &[], 1, "pending");
    let mut fake = Fake::new(env);
    let cmd = as_claude(&fake);
    fake.set("OUTCOMES", Some("Stream-A"), "limit ok")
        .set("RESET_IN", None, "3")
        .set("SAVE_PROMPT", None, "1");
    let mut start = fake.spawn(
        &[
            "start",
            "--stagger",
            "0",
            "--retries",
            "0",
            "--max-parallel",
            "1",
            "--worker-cmd",
            &cmd,
        ],
        "start",
    );
    // Another shell sees it parked, with the limit and when it resets.
    wait_for("Stream-A to be parked", LONG, || {
        stream_json(&fake, "Stream-A")["state"] == "parked"
    });
    let a = stream_json(&fake, "Stream-A");
    assert_eq!(a["reason"]["park"]["cause"]["cause"], "usage_limit", "{a}");
    assert_eq!(a["reason"]["park"]["cause"]["limit_type"], "five_hour");
    let b = stream_json(&fake, "Stream-B");
    assert!(
        b["state"] == "parked" && b["reason"]["hit_by"] == "Stream-A",
        "the limit holds every launch: {b}"
    );
    let code = crate::start::wait_exit(&mut start, LONG);
    let out = fake.output_of("start", "out");
    assert_eq!(
        code,
        exit_codes::OK,
        "{out}\n{}",
        fake.output_of("start", "err")
    );
    // Parked is not a failed attempt: with --retries 0 the stream still completes.
    assert_eq!(fake.lines("Stream-A", "started").len(), 2);
    assert_eq!(fake.lines("Stream-A", "resumed"), ["", "fake-session"]);
    // Parked streams resume first; nothing started during the hold.
    assert!(first_start(&fake, "Stream-A", 1) < first_start(&fake, "Stream-B", 0));
    let resumed = std::fs::read_to_string(fake.marker("Stream-A", "prompt.2")).unwrap();
    assert!(
        resumed.contains("usage limit (five_hour)") && resumed.contains("attempt 2"),
        "{resumed}"
    );
    assert!(out.contains("parked on a usage limit for"), "{out}");
}

#[test]
fn a_limit_without_a_reset_time_backs_off_and_an_overloaded_api_holds_only_its_stream() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    env.add_stream("Stream-B", &[], 1, "pending");
    let mut fake = Fake::new(env);
    write_config(&fake.env, "backoff_min = 1\n");
    let cmd = as_claude(&fake);
    fake.set("OUTCOMES", Some("Stream-A"), "overloaded limit-key ok");
    let run = fake
        .run(&[
            "start",
            "--stagger",
            "0",
            "--retries",
            "0",
            "--max-parallel",
            "1",
            "--worker-cmd",
            &cmd,
        ])
        .success();
    assert_eq!(
        fake.lines("Stream-A", "started").len(),
        3,
        "{}",
        run.stderr()
    );
    assert_eq!(
        fake.lines("Stream-A", "resumed"),
        ["", "fake-session", "fake-session"]
    );
    // After the 529 only A backed off: B ran meanwhile.
    assert!(first_start(&fake, "Stream-B", 0) < first_start(&fake, "Stream-A", 1));
    assert!(run.stderr().contains("Stream-A parked"), "{}", run.stderr());
}

#[test]
fn a_session_that_cannot_be_resumed_falls_back_once_to_a_fresh_one() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    let mut fake = Fake::new(env);
    let cmd = as_claude(&fake);
    fake.set("OUTCOMES", None, "fail no-session ok")
        .set("SAVE_PROMPT", None, "1")
        .set("DUMP_ENV", None, "1");
    fake.run(&[
        "start",
        "--stagger",
        "0",
        "--retries",
        "1",
        "--worker-cmd",
        &cmd,
    ])
    .success();
    // The failure resumes; the missing session is not counted; the third run starts afresh
    // with the full prompt.
    assert_eq!(fake.lines("Stream-A", "resumed"), ["", "fake-session", ""]);
    let fresh = std::fs::read_to_string(fake.marker("Stream-A", "prompt.3")).unwrap();
    let first = std::fs::read_to_string(fake.marker("Stream-A", "prompt.1")).unwrap();
    assert_eq!(fresh, first, "the fresh session gets the full prompt again");
    let log = std::fs::read_to_string(fake.env.root.join(".claude/orchestrator/logs/Stream-A.log"))
        .unwrap();
    assert!(log.contains("the session to resume was not found"), "{log}");
    // Any agent CLI is told what happened before.
    let env_dump = std::fs::read(fake.marker("Stream-A", "env")).unwrap();
    let env_dump = String::from_utf8_lossy(&env_dump);
    assert!(
        env_dump.contains("ORCHESTRATE_PREVIOUS_SESSION=fake-session"),
        "{env_dump}"
    );
    assert!(
        env_dump.contains("ORCHESTRATE_PREVIOUS_OUTCOME=failed"),
        "{env_dump}"
    );
}

#[test]
fn spending_caps_fail_a_worker_at_its_cap_and_stop_new_launches_at_the_runs() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    let mut fake = Fake::new(env);
    let cmd = as_claude(&fake);
    fake.set("OUTCOMES", None, "budget");
    let run = fake
        .run(&[
            "start",
            "--retries",
            "3",
            "--max-budget-usd",
            "2",
            "--worker-cmd",
            &cmd,
        ])
        .expect_code(exit_codes::INCOMPLETE);
    assert_eq!(
        fake.lines("Stream-A", "started").len(),
        1,
        "no retry at the cap"
    );
    assert!(fake.lines("Stream-A", "args")[0].contains("--max-budget-usd 2"));
    assert!(
        run.stdout()
            .contains("reached its spending cap (--max-budget-usd)"),
        "{}",
        run.stdout()
    );

    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    env.add_stream("Stream-B", &["Stream-A"], 1, "pending");
    env.add_stream("Stream-C", &["Stream-B"], 1, "pending");
    let mut fake = Fake::new(env);
    fake.set("OUTCOMES", None, "ok").set("COST", None, "0.6");
    let run = fake
        .run(&[
            "start",
            "--stagger",
            "0",
            "--max-parallel",
            "1",
            "--run-budget-usd",
            "1",
        ])
        .expect_code(exit_codes::INCOMPLETE);
    assert!(
        fake.lines("Stream-C", "started").is_empty(),
        "nothing new after the budget"
    );
    let out = run.stdout();
    assert!(out.contains("Stream-C (budget reached)"), "{out}");
    assert!(out.contains("spent $1.2000 over 2 attempts"), "{out}");
    assert!(run.stderr().contains("budget is spent"), "{}", run.stderr());
    let doc = fake.env.run(&["status", "--json"]).success().json();
    assert_eq!(doc["overall"]["budget"]["limit_usd"], 1.0, "{doc}");
}

#[test]
fn a_failed_verification_sends_the_worker_back_with_the_output() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    env.add_stream("Stream-B", &["Stream-A"], 1, "pending");
    let mut fake = Fake::new(env);
    let cmd = as_claude(&fake);
    fake.set("SAVE_PROMPT", Some("Stream-A"), "1")
        .set("STREAM_JSON", None, "1")
        .set("TOUCH_FROM", Some("Stream-A"), "2 .fixed");
    let verify = "test -e .fixed || { echo 'verify: .fixed is missing'; exit 3; }";
    let run = fake
        .run(&[
            "start",
            "--stagger",
            "0",
            "--retries",
            "1",
            "--verify",
            verify,
            "--worker-cmd",
            &cmd,
        ])
        .success();
    assert_eq!(
        fake.lines("Stream-A", "started").len(),
        2,
        "{}",
        run.stderr()
    );
    assert_eq!(fake.lines("Stream-A", "resumed"), ["", "fake-session"]);
    let told = std::fs::read_to_string(fake.marker("Stream-A", "prompt.2")).unwrap();
    assert!(
        told.contains("verify: .fixed is missing") && told.contains("test -e .fixed"),
        "{told}"
    );
    // B started only once A's work passed.
    let a_second_end = fake.lines("Stream-A", "ended")[1]
        .split_whitespace()
        .last()
        .unwrap()
        .parse::<u128>()
        .unwrap();
    assert!(first_start(&fake, "Stream-B", 0) > a_second_end);
    assert!(run.stderr().contains("verify passed"), "{}", run.stderr());

    // When it keeps failing and attempts run out: failed, with the output.
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    let fake = Fake::new(env);
    let run = fake
        .run(&[
            "start",
            "--retries",
            "0",
            "--verify",
            "echo 'tests: 3 failed'; exit 1",
        ])
        .expect_code(exit_codes::INCOMPLETE);
    let out = run.stdout();
    assert!(out.contains("Stream-A (failed): verify failed"), "{out}");
    assert!(out.contains("tests: 3 failed"), "{out}");
}

#[test]
fn status_shows_a_verification_while_it_runs() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    let fake = Fake::new(env);
    let go = fake.markers.join("go");
    let verify = format!("while [ ! -e '{}' ]; do sleep 0.05; done", go.display());
    let mut start = fake.spawn(&["start", "--verify", &verify], "start");
    wait_for("Stream-A to be verifying", LONG, || {
        stream_json(&fake, "Stream-A")["state"] == "verifying"
    });
    let a = stream_json(&fake, "Stream-A");
    assert_eq!(a["actions"]["in_use"], true, "{a}");
    std::fs::write(&go, "").unwrap();
    assert_eq!(crate::start::wait_exit(&mut start, LONG), exit_codes::OK);
    assert_eq!(stream_json(&fake, "Stream-A")["state"], "complete");
}
