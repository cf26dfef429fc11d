//! `status` and `start` agree: after each situation that keeps a stream from going on (a base
//! conflict, a dirty finish, a failure, a stop, only blocked tasks, blocked + pending, skipped,
//! cancelled), `status --json` and `start --dry-run` show every stream in the same state, and
//! the next `start` does what they said.

use orchestrate::exit_codes;
use serde_json::Value;

use crate::start::{Fake, LONG, write_config};
use crate::support::{TestEnv, wait_for};

/// The state of every stream as `status --json` says, as the words `start --dry-run` prints.
fn status_states(fake: &Fake) -> Vec<(String, String)> {
    let doc = fake.env.run(&["status", "--json"]).success().json();
    doc["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["state"].as_str().unwrap().replace('_', " "),
            )
        })
        .collect()
}

pub fn stream<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {doc}"))
}

/// Checks that `start --dry-run` (with `extra` flags) prints each stream in the state
/// `status --json` gives it; returns the plan.
fn agree(fake: &Fake, extra: &[&str]) -> String {
    let mut args = vec!["start", "--dry-run"];
    args.extend_from_slice(extra);
    let plan = fake.run(&args).success().stdout();
    for (id, state) in status_states(fake) {
        let line = plan
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("{id} not in the plan:\n{plan}"));
        let after_id = line.trim_start()[id.len()..].trim_start();
        assert!(
            after_id.starts_with(&state),
            "status says {id} is {state}; the plan says: {line}\n{plan}"
        );
    }
    plan
}

#[test]
fn a_base_conflict_is_remembered_shown_alike_and_cleared_once_merged_by_hand() {
    let mut env = TestEnv::new();
    env.diamond();
    let mut fake = Fake::new(env);
    fake.set("COMMIT", None, "1")
        .set("COMMIT_FILE", None, "shared.txt");
    let run = fake
        .run(&["start", "--worktrees", "--stagger", "0"])
        .expect_code(exit_codes::INCOMPLETE);
    assert!(
        run.stdout().contains("Stream-Z (blocked): merging its dependencies stream/Stream-B and stream/Stream-C conflicts in: shared.txt"),
        "{}",
        run.stdout()
    );
    let doc = fake.env.run(&["status", "--json"]).success().json();
    let z = stream(&doc, "Stream-Z");
    assert_eq!(z["state"], "blocked", "{z}");
    assert_eq!(z["reason"]["kind"], "blocked");
    assert_eq!(z["reason"]["cause"], "base_conflict");
    assert_eq!(z["reason"]["paths"], serde_json::json!(["shared.txt"]));
    let plan = agree(&fake, &["--worktrees"]);
    assert!(plan.contains("conflicts in: shared.txt"), "{plan}");
    // The next start does not walk into the same conflict: Z stays blocked, never started.
    fake.run(&["start", "--worktrees", "--stagger", "0"])
        .expect_code(exit_codes::INCOMPLETE);
    assert!(fake.lines("Stream-Z", "started").is_empty());

    // Merged by hand into Z's branch: the verdict's cause is gone, Z is ready again.
    fake.env
        .git(&["branch", "stream/Stream-Z", "stream/Stream-B"]);
    let scratch = fake.env.tmp.path().join("resolve");
    fake.env.git(&[
        "worktree",
        "add",
        "-q",
        scratch.to_str().unwrap(),
        "stream/Stream-Z",
    ]);
    // The merge stops at the conflict (and fails); the resolution is committed below.
    let mut merge = std::process::Command::new("git");
    fake.env.apply_env(&mut merge);
    let stopped = merge
        .current_dir(&scratch)
        .args(["merge", "-q", "stream/Stream-C"])
        .output()
        .unwrap();
    assert!(!stopped.status.success(), "the merge conflicts");
    std::fs::write(scratch.join("shared.txt"), "both\n").unwrap();
    fake.env.git_in(&scratch, &["add", "shared.txt"]);
    fake.env
        .git_in(&scratch, &["commit", "-q", "-m", "resolve"]);
    fake.env
        .git(&["worktree", "remove", scratch.to_str().unwrap()]);
    let doc = fake.env.run(&["status", "--json"]).success().json();
    assert_eq!(stream(&doc, "Stream-Z")["state"], "ready", "{doc}");
    agree(&fake, &["--worktrees"]);
    fake.set("COMMIT", Some("Stream-Z"), "0");
    fake.run(&["start", "--worktrees", "--stagger", "0"])
        .success();
    assert_eq!(fake.lines("Stream-Z", "started").len(), 1);
}

#[test]
fn a_dirty_finish_keeps_dependents_waiting_across_starts() {
    let mut env = TestEnv::new();
    env.diamond();
    let mut fake = Fake::new(env);
    write_config(&fake.env, "auto_commit = false\n");
    fake.set("DIRTY", Some("Stream-A"), "1");
    fake.run(&["start", "--worktrees", "--stagger", "0"])
        .expect_code(exit_codes::INCOMPLETE);
    let doc = fake.env.run(&["status", "--json"]).success().json();
    assert_eq!(stream(&doc, "Stream-A")["state"], "needs_attention");
    assert_eq!(stream(&doc, "Stream-A")["reason"]["cause"], "dirty_finish");
    assert_eq!(stream(&doc, "Stream-B")["state"], "waiting");
    agree(&fake, &["--worktrees"]);
    // The next start remembers: B still does not start on a base without A's work.
    fake.run(&["start", "--worktrees", "--stagger", "0"])
        .expect_code(exit_codes::INCOMPLETE);
    assert!(fake.lines("Stream-B", "started").is_empty());
    // Committed by hand: the cause is gone and the run goes on.
    let a = fake.env.root.join(".claude/worktrees/Stream-A");
    fake.env.git_in(&a, &["add", "-A"]);
    fake.env.git_in(&a, &["commit", "-q", "-m", "leftovers"]);
    assert_eq!(
        stream(
            &fake.env.run(&["status", "--json"]).success().json(),
            "Stream-A"
        )["state"],
        "complete"
    );
    agree(&fake, &["--worktrees"]);
    fake.set("DIRTY", Some("Stream-A"), "0");
    fake.run(&["start", "--worktrees", "--stagger", "0"])
        .success();
    assert_eq!(fake.lines("Stream-Z", "started").len(), 1);
}

#[test]
fn failed_skipped_and_cancelled_streams_are_shown_alike() {
    let mut env = TestEnv::new();
    env.diamond();
    env.add_stream("Stream-X", &[], 2, "cancelled");
    env.add_stream("Stream-Y", &["Stream-X"], 1, "pending");
    let mut fake = Fake::new(env);
    fake.set("COMPLETE", Some("Stream-B"), "0")
        .set("EXIT", Some("Stream-B"), "3");
    fake.run(&["start", "--stagger", "0", "--retries", "0"])
        .expect_code(exit_codes::INCOMPLETE);
    let doc = fake.env.run(&["status", "--json"]).success().json();
    assert_eq!(stream(&doc, "Stream-B")["state"], "failed");
    assert_eq!(stream(&doc, "Stream-B")["reason"]["cause"], "exited");
    assert_eq!(stream(&doc, "Stream-Z")["state"], "skipped");
    assert_eq!(stream(&doc, "Stream-X")["state"], "cancelled");
    assert_eq!(stream(&doc, "Stream-Y")["state"], "skipped");
    let plan = agree(&fake, &[]);
    // A plain start tries a failed stream again, and says so.
    let b = plan.lines().find(|l| l.contains("Stream-B ")).unwrap();
    assert!(b.contains("starts again"), "{plan}");
}

#[test]
fn a_stop_is_remembered_and_shown_alike() {
    let mut env = TestEnv::new();
    env.diamond();
    let mut fake = Fake::new(env);
    fake.set("SLEEP", Some("Stream-A"), "300");
    let mut start = fake.spawn(&["start", "--stagger", "0"], "start");
    wait_for("Stream-A to start", LONG, || {
        fake.marker("Stream-A", "started").exists()
    });
    fake.pid("Stream-A");
    fake.run(&["stop", "Stream-A", "--grace", "5"]).success();
    let code = crate::start::wait_exit(&mut start, LONG);
    assert_eq!(
        code,
        exit_codes::INCOMPLETE,
        "{}",
        fake.output_of("start", "out")
    );
    let doc = fake.env.run(&["status", "--json"]).success().json();
    assert_eq!(stream(&doc, "Stream-A")["state"], "stopped");
    assert_eq!(stream(&doc, "Stream-B")["state"], "waiting");
    agree(&fake, &[]);
    // A plain start leaves it stopped; naming it runs it again.
    fake.run(&["start", "--stagger", "0"])
        .expect_code(exit_codes::INCOMPLETE);
    assert_eq!(fake.lines("Stream-A", "started").len(), 1);
}

#[test]
fn blocked_only_waits_for_a_person_and_blocked_plus_pending_runs() {
    let mut env = TestEnv::new();
    env.add_task("Stream-A", "needs a key", "blocked", &[]);
    env.add_task("Stream-B", "needs a key", "blocked", &[]);
    env.add_task("Stream-B", "can be done", "pending", &[]);
    let mut fake = Fake::new(env);
    fake.set("COMPLETE", None, "0");
    let doc = fake.env.run(&["status", "--json"]).success().json();
    assert_eq!(stream(&doc, "Stream-A")["state"], "blocked");
    assert_eq!(stream(&doc, "Stream-A")["reason"]["kind"], "blocked_tasks");
    assert_eq!(stream(&doc, "Stream-B")["state"], "ready");
    agree(&fake, &[]);
    fake.run(&["start", "--stagger", "0", "--retries", "0"])
        .expect_code(exit_codes::INCOMPLETE);
    assert!(
        fake.lines("Stream-A", "started").is_empty(),
        "blocked-only is not launched"
    );
    assert_eq!(
        fake.lines("Stream-B", "started").len(),
        1,
        "blocked + pending is launched"
    );
}
