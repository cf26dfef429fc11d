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
