//! Agents as they really fail, without the real CLI: the fake worker's `FAKE_OUTCOMES` say what
//! the real Claude Code CLI says (checked against its recorded output in
//! `tests/fixtures/claude/`, read by `worker::agent`), and workers started by `start` get the
//! user's environment without a parent Claude Code session's variables.

use std::collections::BTreeMap;
use std::mem::discriminant;
use std::path::Path;
use std::process::Command;

use orchestrate::worker::agent::{Outcome, Transcript};
use orchestrate::worker::env::{MAX_RETRIES_VAR, PARENT_SESSION_VARS, WORKER_MAX_RETRIES};

use crate::start::{FAKE_WORKER, Fake};
use crate::support::TestEnv;

fn transcript(bytes: &[u8]) -> Transcript {
    let mut t = Transcript::default();
    t.feed(bytes);
    t.finish();
    t
}

fn fixture(version: &str, name: &str) -> Transcript {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/claude")
        .join(version)
        .join(format!("{name}.jsonl"));
    transcript(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// The same kind of outcome, with the same facts a scheduler acts on.
fn same_kind(a: &Outcome, b: &Outcome) -> bool {
    discriminant(a) == discriminant(b)
        && match (a, b) {
            (
                Outcome::UsageLimit {
                    resets_at: r1,
                    limit_type: l1,
                    ..
                },
                Outcome::UsageLimit {
                    resets_at: r2,
                    limit_type: l2,
                    ..
                },
            ) => r1.is_some() == r2.is_some() && l1 == l2,
            (Outcome::Transient { status: s1, .. }, Outcome::Transient { status: s2, .. }) => {
                s1 == s2
            }
            _ => true,
        }
}

/// Runs the fake worker alone, as attempt 1 of `Stream-A`, with `vars` and `args`.
fn fake_worker(dir: &Path, vars: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    Command::new(FAKE_WORKER)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("ORCHESTRATE_STREAM", "Stream-A")
        .env("ORCHESTRATE_ATTEMPT", "1")
        .envs(vars.iter().copied())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run the fake worker")
}

#[test]
fn the_fake_workers_outcomes_read_like_the_real_clis() {
    let dir = tempfile::tempdir().unwrap();
    for (word, recorded, code) in [
        ("ok", "success", 0),
        ("warning", "sub-warning", 0),
        ("limit", "sub-limit", 1),
        ("limit-key", "key-429", 1),
        ("overloaded", "overloaded", 1),
        ("server-error", "server-error", 1),
        ("budget", "budget", 1),
        ("no-session", "session-not-found", 1),
    ] {
        let out = fake_worker(dir.path(), &[("FAKE_OUTCOMES", word)], &["the prompt"]);
        assert_eq!(out.status.code(), Some(code), "{word}");
        let fake = transcript(&out.stdout);
        for version in ["2.1.197", "2.1.332"] {
            let real = fixture(version, recorded);
            assert!(
                same_kind(&fake.outcome(), &real.outcome()),
                "{word}: the fake says {:?}, {version} said {:?}",
                fake.outcome(),
                real.outcome()
            );
            assert_eq!(
                fake.warning().is_some(),
                real.warning().is_some(),
                "{word} {version}"
            );
            assert_eq!(
                fake.last_retry().and_then(|r| r.error_status),
                real.last_retry().and_then(|r| r.error_status),
                "{word} {version}"
            );
        }
    }
    let out = fake_worker(dir.path(), &[("FAKE_OUTCOMES", "no-session")], &[]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No conversation found with session ID"),
        "the CLI's stderr line too"
    );
    let out = fake_worker(dir.path(), &[("FAKE_OUTCOMES", "sideways")], &[]);
    assert_eq!(out.status.code(), Some(98), "an unknown word is refused");
}

#[test]
fn the_fake_worker_resumes_the_session_it_is_given_and_takes_one_outcome_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let markers = dir.path().join("m");
    std::fs::create_dir(&markers).unwrap();
    let m = markers.to_str().unwrap();
    let vars = [
        ("FAKE_MARKER", m),
        ("FAKE_OUTCOMES", "limit no-session ok"),
        ("FAKE_RESET_IN", "10"),
        ("FAKE_SESSION", "s-1"),
        ("FAKE_VERSION", "2.1.332"),
    ];
    let first = transcript(&fake_worker(dir.path(), &vars, &["p"]).stdout);
    let Outcome::UsageLimit {
        resets_at: Some(reset),
        ..
    } = first.outcome()
    else {
        panic!("{:?}", first.outcome());
    };
    let wait = reset
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    assert!(wait.as_secs() <= 10, "{wait:?}");
    assert_eq!(first.session_id(), Some("s-1"));

    let second = transcript(&fake_worker(dir.path(), &vars, &["--resume", "s-1", "p"]).stdout);
    assert!(matches!(second.outcome(), Outcome::SessionNotFound { .. }));
    assert_eq!(second.session_id(), Some("s-1"));

    let third = transcript(&fake_worker(dir.path(), &vars, &["-r", "s-9", "p"]).stdout);
    assert!(matches!(third.outcome(), Outcome::Success { .. }));
    assert_eq!(third.session_id(), Some("s-9"));
    assert_eq!(
        third.start().and_then(|s| s.version.as_deref()),
        Some("2.1.332")
    );
    // The last word repeats.
    let fourth = transcript(&fake_worker(dir.path(), &vars, &["p"]).stdout);
    assert!(matches!(fourth.outcome(), Outcome::Success { .. }));
    let resumed = std::fs::read_to_string(markers.join("Stream-A.resumed")).unwrap();
    assert_eq!(resumed, "\ns-1\ns-9\n\n");
}

/// The environment the fake worker of `stream` dumped.
fn dumped_env(fake: &Fake, stream: &str) -> BTreeMap<String, String> {
    let raw = std::fs::read(fake.marker(stream, "env")).expect("the worker dumped its env");
    raw.split(|&b| b == 0)
        .filter(|kv| !kv.is_empty())
        .filter_map(|kv| {
            let kv = String::from_utf8_lossy(kv);
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

#[test]
fn workers_get_the_users_environment_without_the_parent_sessions() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    let mut fake = Fake::new(env);
    fake.set("DUMP_ENV", None, "1");
    let users = [
        ("ANTHROPIC_API_KEY", "sk-ant-users-key"),
        ("ANTHROPIC_BASE_URL", "http://127.0.0.1:9"),
        ("CLAUDE_CODE_OAUTH_TOKEN", "users-token"),
        ("IS_SANDBOX", "1"),
        ("CLAUDE_CODE_USE_BEDROCK", "0"),
        ("CLAUDE_CONFIG_DIR", "/users/claude"),
    ];
    let mut cmd = fake.cmd(&["start", "--stagger", "0"]);
    for var in PARENT_SESSION_VARS {
        cmd.env(var, format!("parent-{var}"));
    }
    cmd.envs(users);
    crate::support::Run(cmd.output().unwrap()).success();
    let seen = dumped_env(&fake, "Stream-A");
    for var in PARENT_SESSION_VARS {
        assert!(!seen.contains_key(var), "{var} reached the worker");
    }
    for (k, v) in users {
        assert_eq!(seen.get(k).map(String::as_str), Some(v), "{k}");
    }
    assert_eq!(
        seen.get(MAX_RETRIES_VAR),
        Some(&WORKER_MAX_RETRIES.to_string())
    );
    assert_eq!(
        seen.get("ORCHESTRATE_STREAM").map(String::as_str),
        Some("Stream-A")
    );

    // The user's own retry budget is theirs.
    fake.env.set_stream_status("Stream-A", "pending");
    crate::support::Run(
        fake.cmd(&["start", "--stagger", "0"])
            .env(MAX_RETRIES_VAR, "10")
            .output()
            .unwrap(),
    )
    .success();
    assert_eq!(
        dumped_env(&fake, "Stream-A")
            .get(MAX_RETRIES_VAR)
            .map(String::as_str),
        Some("10")
    );
}
