//! `orchestrate task list / show / set`: the agent-agnostic task interface.

use orchestrate::exit_codes;
use serde_json::json;

use std::time::Duration;

use crate::support::{TestEnv, wait_for};

#[test]
fn set_round_trips_and_writes_like_task_copilot() {
    let mut env = TestEnv::new();
    let meta = json!({"streamId": "S", "custom": {"keep": true}, "files": ["a.rs"]});
    let id = env.add_task_meta("Build the thing", "pending", meta.clone());
    let run = env
        .run(&["task", "set", &id, "in_progress", "--notes", "started"])
        .success();
    assert!(
        run.stdout().contains("pending → in_progress"),
        "{}",
        run.stdout()
    );

    let (status, notes, updated, stored_meta): (String, String, String, String) = env
        .conn()
        .query_row(
            "SELECT status, notes, updated_at, metadata FROM tasks WHERE id = ?1",
            [&id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(status, "in_progress");
    assert_eq!(notes, "started");
    // ISO-8601 UTC with milliseconds, e.g. 2026-01-09T12:34:56.789Z.
    let bytes = updated.as_bytes();
    assert_eq!(updated.len(), 24, "{updated}");
    assert_eq!(
        (bytes[4], bytes[10], bytes[19], bytes[23]),
        (b'-', b'T', b'.', b'Z'),
        "{updated}"
    );
    assert_ne!(
        updated, "2026-01-09T12:00:01.000Z",
        "updated_at was refreshed"
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stored_meta).unwrap(),
        meta,
        "metadata kept"
    );

    let shown = env.run(&["task", "show", &id, "--json"]).success().json();
    assert_eq!(shown["status"], "in_progress");
    assert_eq!(shown["stream"], "S");
}

#[test]
fn blocked_needs_a_reason_and_records_it() {
    let mut env = TestEnv::new();
    let id = env.add_task("S", "t", "in_progress", &[]);
    let run = env
        .run(&["task", "set", &id, "blocked"])
        .expect_code(exit_codes::USAGE);
    assert!(run.stderr().contains("needs a reason"), "{}", run.stderr());
    assert_eq!(
        env.status_of(&id),
        "in_progress",
        "nothing written on refusal"
    );
    env.run(&[
        "task",
        "set",
        &id,
        "blocked",
        "--reason",
        "needs an API key",
    ])
    .success();
    let doc = env.run(&["status", "--json"]).success().json();
    assert_eq!(
        doc["streams"][0]["blocked_tasks"][0]["reason"],
        "needs an API key"
    );
}

#[test]
fn refuses_archived_unknown_and_bad_status() {
    let mut env = TestEnv::new();
    let id = env.add_task("Old", "t", "pending", &[]);
    env.archive_stream("Old");
    let run = env
        .run(&["task", "set", &id, "completed"])
        .expect_code(exit_codes::FAILURE);
    assert!(
        run.stderr().contains("cannot update an archived task"),
        "{}",
        run.stderr()
    );
    assert_eq!(env.status_of(&id), "pending");

    let run = env
        .run(&["task", "set", "TASK-nope", "completed"])
        .expect_code(exit_codes::FAILURE);
    assert!(
        run.stderr().contains("no task TASK-nope"),
        "{}",
        run.stderr()
    );

    let run = env
        .run(&["task", "set", &id, "done"])
        .expect_code(exit_codes::USAGE);
    assert!(
        run.stderr().contains("unknown task status `done`"),
        "{}",
        run.stderr()
    );
}

#[test]
fn list_defaults_to_the_workers_stream_and_lists_ids_first() {
    let mut env = TestEnv::new();
    let a = env.add_stream("A", &[], 2, "pending");
    env.add_stream("B", &[], 1, "pending");
    let out = env
        .cmd(&["task", "list"])
        .env("ORCHESTRATE_STREAM", "A")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ids: Vec<&str> = stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(ids, a, "{stdout}");
    let all = env.run(&["task", "list", "--json"]).success().json();
    assert_eq!(all.as_array().unwrap().len(), 3);
    let run = env
        .run(&["task", "list", "--stream", "Nope"])
        .expect_code(exit_codes::NO_STREAMS);
    assert!(
        run.stderr().contains("no stream named `Nope`")
            && run.stderr().contains("the streams are: A, B"),
        "{}",
        run.stderr()
    );
}

#[test]
fn set_waits_out_a_writer_holding_the_lock() {
    let mut env = TestEnv::new();
    let id = env.add_task("S", "t", "pending", &[]);
    let conn = env.conn();
    conn.execute_batch("BEGIN IMMEDIATE; UPDATE tasks SET notes = 'held' WHERE id = 'x';")
        .unwrap();
    let mut child = env
        .cmd(&["task", "set", &id, "completed"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the child has the database open (it is then inside its busy wait: the lock is
    // ours), check it wrote nothing, then release the lock and let the write through.
    let fd_dir = format!("/proc/{}/fd", child.id());
    let db = env.db_path();
    wait_for(
        "the child to open the database",
        Duration::from_secs(10),
        || {
            std::fs::read_dir(&fd_dir)
                .map(|fds| {
                    fds.flatten()
                        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|p| p == db))
                })
                .unwrap_or(false)
        },
    );
    assert_eq!(env.status_of(&id), "pending");
    conn.execute_batch("COMMIT").unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(env.status_of(&id), "completed");
}

#[test]
fn orchestrate_db_env_points_workers_at_the_database() {
    let mut env = TestEnv::new();
    let id = env.add_task("S", "t", "pending", &[]);
    let out = env
        .cmd(&["task", "set", &id, "completed"])
        .env("WORKSPACE_ID", "wrong")
        .env("ORCHESTRATE_DB", env.db_path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.status_of(&id), "completed");
}
