//! The real Claude Code CLI (`ORCHESTRATE_TEST_CLAUDE`) against the API stand-in
//! (`support::api`): a worker that completes its stream through `orchestrate start`; the lines
//! the CLI prints when the API refuses (usage limit, overload), a budget runs out or a session to
//! resume is missing, each read back with `worker::agent`; and a session refused by a usage
//! limit, resumed with its history. Skipped, saying why, when the variable is unset.

use orchestrate::exit_codes;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, UNIX_EPOCH};

use orchestrate::worker::agent::{LimitStatus, LimitType, Outcome, Transcript};
use serde_json::Value;

use crate::support::TestEnv;
use crate::support::api::{self, Api, Kind, Reply, claude_env, real_claude, unix_in};

/// The worker protocol as one Bash call: every task of the stream completed, one commit.
pub const PROTOCOL: &str = r#"set -e
for id in $("$ORCHESTRATE_BIN" --db "$ORCHESTRATE_DB" task list --stream "$ORCHESTRATE_STREAM" | tail -n +2 | awk '{print $1}'); do
  "$ORCHESTRATE_BIN" --db "$ORCHESTRATE_DB" task set "$id" completed --notes "done by claude"
done
printf '%s\n' "$ORCHESTRATE_STREAM" > "$ORCHESTRATE_STREAM.txt"
git add "$ORCHESTRATE_STREAM.txt"
git commit -q -m "work of $ORCHESTRATE_STREAM""#;

/// A fake API key: the CLI sends it as `x-api-key`; the stand-in accepts anything.
pub const API_KEY: &str = "sk-ant-api03-standin";
/// A fake subscription token (`Authorization: Bearer`), for the subscription's code paths.
const OAUTH_TOKEN: &str = "sk-ant-oat01-standin";

/// `claude ARGS` run directly in the project, with the hermetic environment and `vars` (the
/// authentication among them).
fn claude(bin: &Path, env: &TestEnv, api: &Api, vars: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(bin);
    env.apply_env(&mut cmd);
    cmd.envs(claude_env(api))
        .envs(vars.iter().copied())
        .current_dir(&env.root)
        .args(args)
        .stdin(std::process::Stdio::null());
    cmd.output().expect("run claude")
}

fn headless<'a>(prompt: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "-p",
        prompt,
        "--output-format",
        "stream-json",
        "--verbose",
        "--dangerously-skip-permissions",
    ];
    args.extend_from_slice(extra);
    args
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn read(out: &Output) -> Transcript {
    let mut t = Transcript::default();
    t.feed(&out.stdout);
    t.finish();
    t
}

fn show(out: &Output) -> String {
    format!(
        "rc {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn real_claude_completes_a_stream_through_start() {
    let Some(bin) = real_claude("real_claude_completes_a_stream_through_start") else {
        return;
    };
    let mut env = TestEnv::new();
    let task = env.add_task("Stream-A", "Write the thing", "pending", &[]);
    let api = Api::start(api::worker_turns(PROTOCOL));
    let worker = format!(
        "'{}' -p {{prompt}} --output-format stream-json --verbose --dangerously-skip-permissions",
        bin.display()
    );
    let run = crate::support::Run(
        env.cmd(&["start", "--stagger", "0", "--retries", "0"])
            .env("ORCHESTRATE_WORKER_CMD", &worker)
            .envs(claude_env(&api))
            .env("ANTHROPIC_API_KEY", API_KEY)
            .output()
            .expect("run orchestrate"),
    )
    .success();
    assert!(
        run.stdout().contains("every stream is complete"),
        "{}",
        run.stdout()
    );
    assert_eq!(env.status_of(&task), "completed");
    assert!(
        env.git(&["log", "--format=%s"])
            .contains("work of Stream-A")
    );

    // Two turns of one session: the tool call, then the final text after its result.
    let main = api.main_requests();
    assert_eq!(main.len(), 2, "{main:#?}");
    let session = main[0].session_id().expect("session header").to_string();
    assert_eq!(main[1].session_id(), Some(session.as_str()));
    assert!(main[1].answers_a_tool_call());
    // It carries the history: the tool call and what the command printed.
    let history = main[1].transcript();
    assert!(history.contains("task set"), "{history}");
    assert!(
        history.contains("pending → completed (Write the thing)"),
        "{history}"
    );

    // The worker's record holds what the agent reported.
    let doc = env.run(&["status", "--json"]).success().json();
    let w = &doc["streams"][0]["worker"];
    assert_eq!(w["session_id"], session.as_str(), "{doc}");
    assert_eq!(w["turns"], 2, "{doc}");
    assert!(w["cost_usd"].as_f64().is_some_and(|c| c > 0.0), "{doc}");
    if orchestrate::worker::sandbox::Support::probe()
        .abi()
        .is_some()
    {
        // It ran in the sandbox (the default where the kernel has Landlock).
        assert_eq!(w["sandbox"]["kind"], "landlock", "{doc}");
    }

    // And the parser reads the log the same way.
    let log = std::fs::read(env.root.join(".claude/orchestrator/logs/Stream-A.log")).unwrap();
    let mut t = Transcript::default();
    t.feed(&log);
    t.finish();
    assert_eq!(t.session_id(), Some(session.as_str()));
    assert!(
        matches!(t.outcome(), Outcome::Success { text: Some(ref s) } if s == "Done."),
        "{:?}",
        t.outcome()
    );
}

#[test]
fn real_claude_reports_a_rejected_subscription_limit() {
    let Some(bin) = real_claude("real_claude_reports_a_rejected_subscription_limit") else {
        return;
    };
    let env = TestEnv::new();
    let reset = unix_in(3600);
    let api = Api::start(move |_: &api::Request| Reply::usage_limit(reset, "five_hour"));
    let out = claude(
        &bin,
        &env,
        &api,
        &[("CLAUDE_CODE_OAUTH_TOKEN", OAUTH_TOKEN)],
        &headless("do it", &[]),
    );
    assert_eq!(
        out.status.code(),
        Some(exit_codes::FAILURE),
        "{}",
        show(&out)
    );
    // No retry: a rejected subscription limit ends the run at once.
    assert_eq!(api.count(Kind::Main), 1);

    let lines = lines(&out);
    let event = lines
        .iter()
        .find(|l| l["type"] == "rate_limit_event")
        .unwrap_or_else(|| panic!("no rate_limit_event\n{}", show(&out)));
    let info = &event["rate_limit_info"];
    assert_eq!(info["status"], "rejected", "{event}");
    assert_eq!(info["resetsAt"], reset, "{event}");
    assert_eq!(info["rateLimitType"], "five_hour", "{event}");
    let result = lines.last().unwrap();
    assert_eq!(result["type"], "result", "{}", show(&out));
    assert_eq!(result["is_error"], true);
    assert_eq!(result["api_error_status"], 429);

    let t = read(&out);
    let rejection = t.rejection().expect("a rejected rate_limit_event");
    assert_eq!(rejection.status, LimitStatus::Rejected);
    assert_eq!(rejection.limit_type, Some(LimitType::FiveHour));
    match t.outcome() {
        Outcome::UsageLimit {
            resets_at,
            limit_type,
            ..
        } => {
            assert_eq!(resets_at, Some(UNIX_EPOCH + Duration::from_secs(reset)));
            assert_eq!(limit_type, Some(LimitType::FiveHour));
        }
        other => panic!("expected a usage limit, got {other:?}\n{}", show(&out)),
    }
}

#[test]
fn real_claude_overload_ends_as_a_transient_failure() {
    let Some(bin) = real_claude("real_claude_overload_ends_as_a_transient_failure") else {
        return;
    };
    let env = TestEnv::new();
    let api = Api::start(|_: &api::Request| Reply::overloaded());
    // One retry (about half a second) instead of ten over three minutes.
    let out = claude(
        &bin,
        &env,
        &api,
        &[
            ("ANTHROPIC_API_KEY", API_KEY),
            ("CLAUDE_CODE_MAX_RETRIES", "1"),
        ],
        &headless("do it", &[]),
    );
    assert_eq!(
        out.status.code(),
        Some(exit_codes::FAILURE),
        "{}",
        show(&out)
    );
    assert_eq!(api.count(Kind::Main), 2, "the first try and one retry");
    let t = read(&out);
    let retry = t.last_retry().expect("an api_retry line");
    assert_eq!(retry.error_status, Some(529));
    assert_eq!(retry.attempt, 1);
    assert!(
        matches!(t.outcome(), Outcome::Transient { status: 529, .. }),
        "{:?}\n{}",
        t.outcome(),
        show(&out)
    );
}

#[test]
fn real_claude_budget_and_missing_session_are_told_apart() {
    let Some(bin) = real_claude("real_claude_budget_and_missing_session_are_told_apart") else {
        return;
    };
    let env = TestEnv::new();
    let api = Api::start(api::worker_turns("true"));
    let key = &[("ANTHROPIC_API_KEY", API_KEY)];

    let out = claude(
        &bin,
        &env,
        &api,
        key,
        &headless("do it", &["--max-budget-usd", "0.0000001"]),
    );
    assert_eq!(
        out.status.code(),
        Some(exit_codes::FAILURE),
        "{}",
        show(&out)
    );
    assert!(
        matches!(read(&out).outcome(), Outcome::BudgetExceeded { .. }),
        "{:?}\n{}",
        read(&out).outcome(),
        show(&out)
    );

    let missing = "0b6f3c1e-4d2a-4c8e-9f00-000000000001";
    let out = claude(
        &bin,
        &env,
        &api,
        key,
        &headless("go on", &["--resume", missing]),
    );
    assert_eq!(
        out.status.code(),
        Some(exit_codes::FAILURE),
        "{}",
        show(&out)
    );
    let t = read(&out);
    assert!(
        matches!(t.outcome(), Outcome::SessionNotFound { .. }),
        "{:?}\n{}",
        t.outcome(),
        show(&out)
    );
    assert_eq!(t.session_id(), Some(missing));
}

#[test]
fn real_claude_resumes_a_limited_session_with_its_history() {
    let Some(bin) = real_claude("real_claude_resumes_a_limited_session_with_its_history") else {
        return;
    };
    let env = TestEnv::new();
    let reset = unix_in(3600);
    let api = Api::start(api::worker_turns("echo resumed-work"));
    api.push(Reply::usage_limit(reset, "five_hour"));
    let sub = &[("CLAUDE_CODE_OAUTH_TOKEN", OAUTH_TOKEN)];

    let first = claude(
        &bin,
        &env,
        &api,
        sub,
        &headless("first prompt: build it", &[]),
    );
    assert_eq!(
        first.status.code(),
        Some(exit_codes::FAILURE),
        "{}",
        show(&first)
    );
    let limited = read(&first);
    assert!(matches!(limited.outcome(), Outcome::UsageLimit { .. }));
    let session = limited
        .session_id()
        .expect("init names the session")
        .to_string();

    // After the reset: the same session, from the same directory and HOME.
    let second = claude(
        &bin,
        &env,
        &api,
        sub,
        &headless(
            "check the task list and git log, then continue",
            &["--resume", &session],
        ),
    );
    assert_eq!(
        second.status.code(),
        Some(exit_codes::OK),
        "{}",
        show(&second)
    );
    let resumed = read(&second);
    assert_eq!(resumed.session_id(), Some(session.as_str()));
    assert!(matches!(resumed.outcome(), Outcome::Success { .. }));

    let main = api.main_requests();
    assert_eq!(
        main.len(),
        3,
        "the refused turn, then a tool call and the final text"
    );
    for request in &main {
        assert_eq!(request.session_id(), Some(session.as_str()));
    }
    // The resumed conversation still holds the prompt the limit refused.
    let history = main[1].transcript();
    assert!(history.contains("first prompt: build it"), "{history}");
    assert!(
        history.contains("check the task list and git log"),
        "{history}"
    );
    assert!(main[2].transcript().contains("resumed-work"));
}

/// Records what the real CLI prints in each case into `tests/fixtures/claude/<version>/`, the
/// recordings `worker::agent`'s unit tests and the fake worker are checked against. Run by hand:
/// `ORCHESTRATE_TEST_CLAUDE=… cargo test --test integration capture_transcripts -- --ignored`.
#[test]
#[ignore = "regenerates the recorded transcripts in tests/fixtures/claude/: ORCHESTRATE_TEST_CLAUDE=… cargo test --test integration capture_transcripts -- --ignored"]
fn capture_transcripts() {
    let Some(bin) = real_claude("capture_transcripts") else {
        return;
    };
    let version =
        String::from_utf8(Command::new(&bin).arg("--version").output().unwrap().stdout).unwrap();
    let version = version
        .split_whitespace()
        .next()
        .expect("a version")
        .to_string();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/claude")
        .join(&version);
    std::fs::create_dir_all(&dir).unwrap();
    let env = TestEnv::new();
    let key = ("ANTHROPIC_API_KEY", API_KEY);
    let sub = ("CLAUDE_CODE_OAUTH_TOKEN", OAUTH_TOKEN);
    let record = |name: &str, api: &Api, vars: &[(&str, &str)], args: &[&str]| {
        let out = claude(&bin, &env, api, vars, args);
        std::fs::write(dir.join(format!("{name}.jsonl")), &out.stdout).unwrap();
        read(&out).session_id().map(String::from)
    };
    let ok = Api::start(api::worker_turns("echo hello"));
    let session = record("success", &ok, &[key], &headless("do it", &[])).unwrap();
    for name in ["resumed", "resumed-again"] {
        record(
            name,
            &ok,
            &[key],
            &headless("go on", &["--resume", &session]),
        );
    }
    let budget = ["--max-budget-usd", "0.0000001"];
    record("budget", &ok, &[key], &headless("do it", &budget));
    let missing = ["--resume", "0b6f3c1e-4d2a-4c8e-9f00-000000000001"];
    record(
        "session-not-found",
        &ok,
        &[key],
        &headless("go on", &missing),
    );

    let reset = unix_in(3600);
    let one_retry = ("CLAUDE_CODE_MAX_RETRIES", "1");
    for (name, reply, vars) in [
        (
            "sub-limit",
            Reply::usage_limit(reset, "five_hour"),
            vec![sub],
        ),
        ("key-429", Reply::rate_limited(), vec![key, one_retry]),
        ("overloaded", Reply::overloaded(), vec![key, one_retry]),
        (
            "server-error",
            Reply::server_error(),
            vec![key, ("CLAUDE_CODE_MAX_RETRIES", "0")],
        ),
    ] {
        let api = Api::start(move |_: &api::Request| reply.clone());
        record(name, &api, &vars, &headless("do it", &[]));
    }
    let mut turns = api::worker_turns("echo hello");
    let warning = Api::start(move |r: &api::Request| {
        turns(r)
            .unified("allowed_warning", reset, "five_hour")
            .header("anthropic-ratelimit-unified-5h-utilization", "0.92")
            .header("anthropic-ratelimit-unified-5h-surpassed-threshold", "0.9")
            .header("anthropic-ratelimit-unified-5h-reset", reset.to_string())
            .header("anthropic-ratelimit-unified-5h-status", "allowed_warning")
    });
    record("sub-warning", &warning, &[sub], &headless("do it", &[]));
}

/// `orchestrate start ARGS` with the real CLI as the worker, against the stand-in, as a
/// subscription (`CLAUDE_CODE_OAUTH_TOKEN`: its usage limits carry a reset time) or with an API
/// key.
fn start_with_claude(
    env: &TestEnv,
    bin: &Path,
    api: &Api,
    auth: (&str, &str),
    args: &[&str],
) -> crate::support::Run {
    let worker = format!(
        "'{}' -p {{prompt}} --output-format stream-json --verbose --dangerously-skip-permissions",
        bin.display()
    );
    crate::support::Run(
        env.cmd(args)
            .env("ORCHESTRATE_WORKER_CMD", &worker)
            .envs(claude_env(api))
            .env(auth.0, auth.1)
            .output()
            .expect("run orchestrate"),
    )
}

/// The main-loop requests of the session whose first prompt names `stream`.
fn session_of(api: &Api, stream: &str) -> Vec<api::Request> {
    let main = api.main_requests();
    let Some(first) = main
        .iter()
        .find(|r| r.transcript().contains(&format!("**{stream}**")))
    else {
        return Vec::new();
    };
    let session = first.session_id().map(String::from);
    main.into_iter()
        .filter(|r| r.session_id().map(String::from) == session)
        .collect()
}

#[test]
fn real_claude_parks_on_a_usage_limit_and_resumes_the_session_after_the_reset() {
    let Some(bin) =
        real_claude("real_claude_parks_on_a_usage_limit_and_resumes_the_session_after_the_reset")
    else {
        return;
    };
    let mut env = TestEnv::new();
    env.diamond();
    let mut turns = api::worker_turns(PROTOCOL);
    let mut limited = false;
    // Stream B's first request hits the five-hour limit, resetting 8 s later.
    let api = Api::start(move |req: &api::Request| {
        if !limited && req.transcript().contains("**Stream-B**") {
            limited = true;
            return Reply::usage_limit(unix_in(8), "five_hour");
        }
        turns(req)
    });
    let run = start_with_claude(
        &env,
        &bin,
        &api,
        ("CLAUDE_CODE_OAUTH_TOKEN", OAUTH_TOKEN),
        &["start", "--worktrees", "--stagger", "0", "--retries", "0"],
    )
    .success();
    assert!(
        run.stdout().contains("every stream is complete"),
        "{}",
        run.stdout()
    );
    assert!(
        run.stdout().contains("parked on a usage limit for"),
        "{}\n{}",
        run.stdout(),
        run.stderr()
    );
    assert!(run.stderr().contains("Stream-B parked"), "{}", run.stderr());
    // B's session: the refused request, then the resumed ones, all one session, and the
    // resumed conversation still holds the prompt the limit refused.
    let b = session_of(&api, "Stream-B");
    assert!(b.len() >= 3, "{b:#?}");
    let resumed = b.last().unwrap().transcript();
    assert!(resumed.contains("**Stream-B**"), "{resumed}");
    assert!(resumed.contains("usage limit (five_hour)"), "{resumed}");
    let log =
        std::fs::read_to_string(env.root.join(".claude/orchestrator/logs/Stream-B.log")).unwrap();
    assert!(log.contains("resumes session"), "{log}");
}

#[test]
fn real_claude_gets_a_failed_verification_in_its_resumed_session() {
    let Some(bin) = real_claude("real_claude_gets_a_failed_verification_in_its_resumed_session")
    else {
        return;
    };
    let mut env = TestEnv::new();
    env.add_task("Stream-A", "Write the thing", "pending", &[]);
    let fix = "printf 'ok\\n' > fixed.txt && git add fixed.txt && git commit -q -m fix";
    let api = Api::start(move |req: &api::Request| {
        if req.answers_a_tool_call() {
            Reply::text("Done.")
        } else if req.transcript().contains("verify: fixed.txt is missing") {
            Reply::bash(fix)
        } else {
            Reply::bash(PROTOCOL)
        }
    });
    let verify = "test -e fixed.txt || { echo 'verify: fixed.txt is missing'; exit 1; }";
    let run = start_with_claude(
        &env,
        &bin,
        &api,
        ("ANTHROPIC_API_KEY", API_KEY),
        &[
            "start",
            "--stagger",
            "0",
            "--retries",
            "1",
            "--verify",
            verify,
        ],
    )
    .success();
    assert!(run.stderr().contains("verify passed"), "{}", run.stderr());
    let a = session_of(&api, "Stream-A");
    assert_eq!(
        a.len(),
        4,
        "two turns, then two in the resumed session: {a:#?}"
    );
    let told = a[2].transcript();
    assert!(
        told.contains("verify: fixed.txt is missing") && told.contains("test -e fixed.txt"),
        "{told}"
    );
    assert!(env.root.join("fixed.txt").exists());
}

#[test]
fn real_claude_run_budget_stops_new_launches() {
    let Some(bin) = real_claude("real_claude_run_budget_stops_new_launches") else {
        return;
    };
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    env.add_stream("Stream-B", &["Stream-A"], 1, "pending");
    let api = Api::start(api::worker_turns(PROTOCOL));
    let run = start_with_claude(
        &env,
        &bin,
        &api,
        ("ANTHROPIC_API_KEY", API_KEY),
        &[
            "start",
            "--stagger",
            "0",
            "--max-parallel",
            "1",
            "--run-budget-usd",
            "0.000001",
        ],
    )
    .expect_code(exit_codes::INCOMPLETE);
    assert!(
        run.stdout().contains("Stream-B (budget reached)"),
        "{}",
        run.stdout()
    );
    assert!(session_of(&api, "Stream-B").is_empty(), "B never started");
}
