//! `scripts/demo.sh` end to end, on the test build of the binary: the README's "run the main
//! job" command must keep working.
//!
//! Ignored until `start`, `merge` and `clean` exist on main; enable it by removing the
//! `#[ignore]` (or run it now with `cargo test --test integration demo -- --ignored`).

use std::path::Path;
use std::process::Command;

#[test]
#[ignore = "needs `start`, `merge` and `clean`; remove this line once they land on main"]
fn the_demo_runs_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = tmp.path().join("sandbox");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/demo.sh");
    let out = Command::new("bash")
        .arg(&script)
        .env("ORCHESTRATE_BIN", env!("CARGO_BIN_EXE_orchestrate"))
        .env("DEMO_PROFILE", "debug")
        .env("DEMO_SANDBOX", &sandbox)
        .env("DEMO_TASK_SECONDS", "0")
        .env("TERM", "dumb")
        .env_remove("WORKSPACE_ID")
        .env_remove("ORCHESTRATE_LOG")
        .output()
        .expect("run scripts/demo.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo failed ({})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    let project = sandbox.join("shop");
    // Every stream's work reached main, and Stream-Z was built on Stream-B's and Stream-C's.
    for stream in ["stream-a", "stream-b", "stream-c", "stream-z"] {
        assert!(
            project.join("src").join(stream).is_dir(),
            "{stream} not merged\n{stdout}"
        );
    }
    let z = std::fs::read_to_string(project.join("src/stream-z/part-1.txt")).unwrap();
    assert!(z.contains("stream-b") && z.contains("stream-c"), "{z}");
    // Clean removed the worktrees and the merged branches.
    let worktrees = project.join(".claude/worktrees");
    let left = std::fs::read_dir(&worktrees).map_or(0, |d| d.count());
    assert_eq!(
        left,
        0,
        "worktrees left in {}\n{stdout}",
        worktrees.display()
    );
    assert!(
        stdout.contains(&format!("The sandbox is {}", sandbox.display())),
        "{stdout}"
    );
}
