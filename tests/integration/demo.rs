//! `scripts/demo.sh` end to end, on the test build of the binary: the README's "run the main
//! job" command must keep working.
//! It runs with instant scripted tasks (`DEMO_TASK_SECONDS=0`), so it costs about a second.

use std::path::Path;
use std::process::Command;

#[test]
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
    // The graph and the run's timeline are shown, and the chart is written.
    assert!(stdout.contains("4 streams in 3 levels"), "{stdout}");
    assert!(stdout.contains("critical path: Stream-A → "), "{stdout}");
    assert!(sandbox.join("report.html").is_file(), "{stdout}");
}

/// The demo's scripted worker on its own: one commit per task, every task completed, in the
/// worktree it is given (what `start` will run it as).
#[test]
fn the_demo_worker_completes_its_stream_with_a_commit_per_task() {
    use crate::support::TestEnv;
    let mut env = TestEnv::new();
    let ids = env.add_stream("Stream-A", &[], 3, "pending");
    env.add_stream("Stream-B", &["Stream-A"], 2, "pending");
    let worktree = env.tmp.path().join("wt-a");
    env.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "stream/Stream-A",
        worktree.to_str().unwrap(),
    ]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/demo-worker.sh");
    let mut cmd = Command::new("sh");
    env.apply_env(&mut cmd);
    let out = cmd
        .arg(&script)
        .current_dir(&env.root)
        .env("ORCHESTRATE_BIN", env!("CARGO_BIN_EXE_orchestrate"))
        .env("ORCHESTRATE_STREAM", "Stream-A")
        .env("ORCHESTRATE_DB", env.db_path())
        .env("ORCHESTRATE_WORKTREE", &worktree)
        .env("DEMO_TASK_SECONDS", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for id in &ids {
        assert_eq!(env.status_of(id), "completed");
    }
    let log = env.git_in(&worktree, &["log", "--format=%s", "main..HEAD"]);
    assert_eq!(log.lines().count(), 3, "{log}");
    assert!(worktree.join("src/stream-a/part-3.txt").is_file());
    // Stream-B's tasks are not this worker's business.
    let b = env.run(&["task", "list", "--stream", "Stream-B"]).success();
    assert!(!b.stdout().contains("completed"), "{}", b.stdout());
}
