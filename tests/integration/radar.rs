//! File claims (`metadata.files`) and the conflict radar: overlapping claims are named before
//! anything starts and in `status`; `--strict-files` runs such streams one after the other; a
//! conflict between two running streams' branches is reported while they run, and never holds
//! anything back.

use serde_json::{Value, json};

use crate::start::{Fake, LONG};
use crate::support::TestEnv;

/// B and C (no dependencies) both claim `src/x.rs` (one as a folder, one hostile path too);
/// D claims something else and has a malformed `files`.
fn claimants() -> TestEnv {
    let mut env = TestEnv::new();
    let task = |stream: &str, files: Value| json!({"streamId": stream, "streamName": stream, "files": files});
    env.add_task_meta(
        "B's task",
        "pending",
        task("Stream-B", json!(["./src/x.rs", "b\u{1b}[31m.rs"])),
    );
    env.add_task_meta("C's task", "pending", task("Stream-C", json!(["src/"])));
    env.add_task_meta("D's task", "pending", task("Stream-D", json!(["d.rs"])));
    env.add_task_meta("D's other", "pending", task("Stream-D", json!({"no": 1})));
    env
}

fn stream<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {doc}"))
}

#[test]
fn overlapping_claims_are_named_before_anything_starts_and_in_status() {
    let fake = Fake::new(claimants());
    let plan = fake.run(&["start", "--dry-run"]).success();
    let out = plan.stdout();
    assert!(
        out.contains("Stream-B and Stream-C may run at the same time and both claim src/x.rs"),
        "{out}"
    );
    assert!(
        out.contains("--strict-files runs them one after the other"),
        "{out}"
    );
    // A malformed `files` is a warning, never a failed read.
    assert!(
        plan.stderr()
            .contains("`metadata.files` that is not a list of paths"),
        "{}",
        plan.stderr()
    );

    let doc = fake.env.run(&["status", "--json"]).success().json();
    assert_eq!(
        doc["file_claims"],
        json!([{"earlier": "Stream-B", "later": "Stream-C", "paths": ["src/x.rs"]}])
    );
    assert_eq!(stream(&doc, "Stream-C")["state"], "ready");
    let plain = fake.env.run(&["status"]).success();
    assert!(
        plain
            .stderr()
            .contains("Stream-B and Stream-C may run at the same time and both claim src/x.rs"),
        "{}",
        plain.stderr()
    );

    // Without --strict-files both run, after the warning.
    let run = fake.run(&["start", "--stagger", "0"]).success();
    assert!(
        run.stderr().contains("both claim src/x.rs"),
        "{}",
        run.stderr()
    );
    assert_eq!(fake.lines("Stream-C", "started").len(), 1);
    // Both complete: the claims no longer matter.
    let doc = fake.env.run(&["status", "--json"]).success().json();
    assert_eq!(doc["file_claims"], json!([]));
}

#[test]
fn strict_files_run_claimants_one_after_the_other_and_say_why() {
    let fake = Fake::new(claimants());
    let plan = fake
        .run(&["start", "--dry-run", "--strict-files"])
        .success()
        .stdout();
    let c = plan
        .lines()
        .find(|l| l.trim_start().starts_with("Stream-C "))
        .unwrap_or_else(|| panic!("{plan}"));
    assert!(
        c.contains("waiting")
            && c.contains("waits for Stream-B (ready; both claim src/x.rs: --strict-files)"),
        "{plan}"
    );
    assert!(
        plan.contains("the later of each pair waits for the earlier"),
        "{plan}"
    );

    // B's worker holds on until told; C must not start meanwhile.
    let go = fake.markers.join("go");
    let mut fake = fake;
    fake.set("WAIT_FOR", Some("Stream-B"), go.to_str().unwrap());
    let mut start = fake.spawn(&["start", "--strict-files", "--stagger", "0"], "strict");
    crate::support::wait_for("B and D to start", LONG, || {
        !fake.lines("Stream-B", "started").is_empty()
            && !fake.lines("Stream-D", "completed").is_empty()
    });
    let doc = fake.env.run(&["status", "--json"]).success().json();
    let c = stream(&doc, "Stream-C");
    assert_eq!(c["state"], "waiting", "{c}");
    assert_eq!(
        c["reason"]["on"],
        json!([{"stream": "Stream-B", "state": "running", "claims": ["src/x.rs"]}])
    );
    assert!(fake.lines("Stream-C", "started").is_empty());
    std::fs::write(&go, "").unwrap();
    let status = start.wait().unwrap();
    assert!(status.success(), "{}", fake.output_of("strict", "err"));
    assert!(
        fake.time("Stream-C", "started") > fake.time("Stream-B", "ended"),
        "C started after B ended"
    );
}

/// Nanoseconds since the epoch, as the fake worker's markers write them.
fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A worker snippet: wait for `file` in the marker folder (bounded: 20 s).
fn await_marker(file: &str) -> String {
    format!(
        "i=0; while [ ! -e \"$FAKE_MARKER/{file}\" ] && [ $i -lt 1000 ]; do sleep 0.02; i=$((i+1)); done"
    )
}

/// The JSON lines of `start --json` that are `conflict` events.
fn conflict_events(out: &str, kind: &str) -> Vec<Value> {
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == kind)
        .collect()
}

#[test]
fn a_conflict_between_running_streams_is_reported_while_they_run_and_blocks_nothing() {
    let mut env = TestEnv::new();
    env.diamond();
    let mut fake = Fake::new(env);
    // B writes x.rs; C writes its own x.rs once B is done, says when, and keeps running until
    // the test lets it finish.
    fake.set("COMMIT", None, "1")
        .set("COMMIT_FILE", Some("Stream-B"), "x.rs")
        .set("COMMIT", Some("Stream-C"), "0")
        .set(
            "RUN",
            Some("Stream-C"),
            &format!(
                "{}; printf 'C version\\n' > x.rs && git add x.rs && git commit -q -m 'C edits x.rs' \
                 && date +%s%N > \"$FAKE_MARKER/c-committed\"; {}",
                await_marker("c-may-commit"),
                await_marker("go")
            ),
        );
    let mut start = fake.spawn(
        &["start", "--worktrees", "--json", "--stagger", "0"],
        "radar",
    );
    crate::support::wait_for("B to complete", LONG, || {
        !fake.lines("Stream-B", "completed").is_empty()
    });
    std::fs::write(fake.markers.join("c-may-commit"), "").unwrap();
    crate::support::wait_for("C's commit", LONG, || {
        fake.markers.join("c-committed").exists()
    });
    let committed: u128 = std::fs::read_to_string(fake.markers.join("c-committed"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    crate::support::wait_for("the conflict event", LONG, || {
        !conflict_events(&fake.output_of("radar", "out"), "conflict").is_empty()
    });
    let seen = now_ns();
    // One wake-up is 100 ms; the rest is a loaded machine's slack.
    assert!(
        seen.saturating_sub(committed) < 2_000_000_000,
        "reported {} ms after C's commit",
        (seen - committed) / 1_000_000
    );
    let events = conflict_events(&fake.output_of("radar", "out"), "conflict");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["stream"], "Stream-B");
    assert_eq!(
        events[0]["with"],
        json!({"stream": "Stream-C", "branch": "stream/Stream-C", "paths": ["x.rs"]})
    );
    // C is still running, and another shell sees the same prediction.
    assert!(fake.lines("Stream-C", "ended").is_empty());
    let doc = fake.env.run(&["status", "--json"]).success().json();
    let c = stream(&doc, "Stream-C");
    assert_eq!(c["state"], "running", "{c}");
    assert_eq!(
        c["conflicts_with"],
        json!([{"stream": "Stream-B", "branch": "stream/Stream-B", "paths": ["x.rs"]}])
    );
    assert_eq!(
        stream(&doc, "Stream-B")["conflicts_with"][0]["stream"],
        "Stream-C"
    );
    let plain = fake.env.run(&["status"]).success().stdout();
    assert!(
        plain.contains("will conflict with Stream-B in x.rs"),
        "{plain}"
    );

    // The radar held nothing back: C finishes; Z's own base merge is the blocking verdict.
    std::fs::write(fake.markers.join("go"), "").unwrap();
    let code = crate::start::wait_exit(&mut start, LONG);
    assert_eq!(code, 6, "{}", fake.output_of("radar", "err"));
    assert_eq!(fake.lines("Stream-C", "completed").len(), 1);
    let doc = fake.env.run(&["status", "--json"]).success().json();
    assert_eq!(stream(&doc, "Stream-Z")["reason"]["cause"], "base_conflict");
}

#[test]
fn a_conflict_with_the_target_is_shown_and_goes_away_when_resolved_and_never_blocks() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    env.add_stream("Stream-Z", &["Stream-A"], 1, "pending");
    let mut fake = Fake::new(env);
    let z_go = fake.markers.join("z-go");
    fake.set("COMMIT", None, "1")
        .set("COMMIT_FILE", Some("Stream-A"), "x.rs")
        .set("WAIT_FOR", Some("Stream-Z"), z_go.to_str().unwrap());
    let mut start = fake.spawn(
        &["start", "--worktrees", "--json", "--stagger", "0"],
        "target",
    );
    crate::support::wait_for("A to complete", LONG, || {
        !fake.lines("Stream-A", "completed").is_empty()
    });
    // The user commits their own x.rs on the target meanwhile.
    std::fs::write(fake.env.root.join("x.rs"), "the user's\n").unwrap();
    fake.env.git(&["add", "x.rs"]);
    fake.env.git(&["commit", "-q", "-m", "user edits x.rs"]);
    crate::support::wait_for("the conflict with the target", LONG, || {
        conflict_events(&fake.output_of("target", "out"), "conflict")
            .iter()
            .any(|e| e["stream"] == "Stream-A" && e["with"]["stream"].is_null())
    });
    // Z (on A) starts all the same.
    crate::support::wait_for("Z to start", LONG, || {
        !fake.lines("Stream-Z", "started").is_empty()
    });
    let doc = fake.env.run(&["status", "--json"]).success().json();
    assert_eq!(
        stream(&doc, "Stream-A")["conflicts_with"],
        json!([{"stream": null, "branch": "main", "paths": ["x.rs"]}])
    );
    // Resolved on the target (the user takes A's version): the prediction goes away.
    let theirs = fake.env.git(&["show", "stream/Stream-A:x.rs"]);
    std::fs::write(fake.env.root.join("x.rs"), theirs).unwrap();
    fake.env.git(&["commit", "-q", "-am", "take A's x.rs"]);
    crate::support::wait_for("the conflict to be resolved", LONG, || {
        !conflict_events(&fake.output_of("target", "out"), "conflict_resolved").is_empty()
    });
    std::fs::write(&z_go, "").unwrap();
    assert_eq!(crate::start::wait_exit(&mut start, LONG), 0);
    let doc = fake.env.run(&["status", "--json"]).success().json();
    assert_eq!(stream(&doc, "Stream-A")["conflicts_with"], json!([]));
}

/// tc's store reads `metadata.files` the same way (one typed parse for both stores).
#[test]
fn a_tc_store_s_file_claims_are_read_too() {
    let env = TestEnv::without_db();
    env.create_tc_db();
    let prd = env.tc_prd("Feature", "active");
    let row = env.tc_stream("Work", Some(prd), "active");
    for (stream, files) in [
        ("Stream-B", json!(["src/x.rs"])),
        ("Stream-C", json!(["src/x.rs", "c.rs"])),
        ("Stream-C", json!(7)),
    ] {
        env.tc_task(
            Some(prd),
            Some(row),
            "task",
            "pending",
            Some(json!({"streamId": stream, "files": files})),
        );
    }
    let doc = env.run(&["status", "--json"]).success().json();
    assert_eq!(doc["source"]["kind"], "tc");
    assert_eq!(
        doc["file_claims"],
        json!([{"earlier": "Stream-B", "later": "Stream-C", "paths": ["src/x.rs"]}])
    );
    assert!(
        doc["warnings"].as_array().unwrap().iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("`metadata.files` that is not a list")),
        "{doc}"
    );
}
