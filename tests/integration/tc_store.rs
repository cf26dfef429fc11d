//! tc's v3 store (`.copilot/tasks.db`): found walking up (from a subfolder, from inside a stream
//! worktree), chosen against the legacy store by the "Which one" rules, read with its PRD and
//! stream scope, paused streams and cross-stream `task_dependencies`, written by `task set` as
//! `tc task update` writes, and told what a run does through `agent_log`. Workers complete
//! tasks with a stand-in for `tc task update` (tests/fixtures/fake-tc.sh) or `orchestrate task
//! set`; the real `tc` is exercised by the ignored test at the end.

use orchestrate::exit_codes;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::agreement::stream;
use crate::start::{Fake, LONG, wait_exit};
use crate::support::{TestEnv, wait_for};

/// A project with an empty tc store and no legacy database.
fn tc_env() -> TestEnv {
    let env = TestEnv::without_db();
    env.create_tc_db();
    env
}

fn status_json_in(env: &TestEnv, dir: &Path) -> Value {
    let mut cmd = env.cmd(&["status", "--json"]);
    cmd.current_dir(dir);
    crate::support::Run(cmd.output().unwrap()).success().json()
}

fn ids(doc: &Value) -> Vec<String> {
    let mut ids: Vec<String> = doc["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[test]
fn status_finds_the_store_from_the_root_a_subfolder_and_a_stream_worktree() {
    let env = tc_env();
    let plan = env.tc_diamond();
    env.tc_update(plan.tasks_of("Stream-A")[0], "completed");
    let sub = env.root.join("src/deep");
    std::fs::create_dir_all(&sub).unwrap();
    let wt = env.root.join(".claude/worktrees/Stream-A");
    env.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "stream/Stream-A",
        wt.to_str().unwrap(),
    ]);
    for dir in [&env.root, &sub, &wt] {
        let doc = status_json_in(&env, dir);
        assert_eq!(doc["source"]["kind"], "tc", "{doc:#}");
        assert_eq!(doc["source"]["found_by"], "walk_up");
        assert_eq!(
            doc["source"]["path"],
            env.tc_db_path().to_str().unwrap(),
            "from {}",
            dir.display()
        );
        assert_eq!(ids(&doc), ["Stream-A", "Stream-B", "Stream-C", "Stream-Z"]);
        let a = stream(&doc, "Stream-A");
        assert_eq!(a["name"], "Stream-A work");
        assert_eq!(a["tasks"]["completed"], 1);
        assert_eq!(
            stream(&doc, "Stream-Z")["dependencies"],
            json!(["Stream-B", "Stream-C"])
        );
    }
    // The header says which store and how it was found.
    let mut cmd = env.cmd(&["status"]);
    cmd.current_dir(&sub);
    let out = crate::support::Run(cmd.output().unwrap())
        .success()
        .stdout();
    let header = out.lines().next().unwrap();
    assert!(
        header.starts_with("tc (Task Copilot v3) store · database "),
        "{out}"
    );
    assert!(header.contains("found walking up from"), "{out}");
}

#[test]
fn the_diamond_runs_end_to_end_with_worktrees_and_tc_s_log_shows_the_run() {
    let env = tc_env();
    let plan = env.tc_diamond();
    // A task with an agent, so that tc's own completion row appears too.
    env.tc_conn()
        .execute(
            "UPDATE tasks SET agent = 'me' WHERE id = ?1",
            [plan.tasks_of("Stream-C")[0]],
        )
        .unwrap();
    let mut fake = Fake::new(env);
    fake.set("COMMIT", None, "1");
    // A and Z complete their tasks the way tc users' agents do; B and C with orchestrate.
    for s in ["Stream-A", "Stream-Z"] {
        fake.set("TC", Some(s), &TestEnv::fake_tc());
    }
    let run = fake
        .run(&["start", "--worktrees", "--stagger", "0"])
        .success();
    assert!(
        run.stdout().contains("every stream is complete"),
        "{}",
        run.stderr()
    );
    assert!(!run.stderr().contains("agent_log"), "{}", run.stderr());
    let z = fake.env.root.join(".claude/worktrees/Stream-Z");
    for s in ["Stream-A", "Stream-B", "Stream-C", "Stream-Z"] {
        assert!(z.join(format!("{s}.txt")).is_file(), "Z lacks {s}'s work");
    }
    assert!(fake.time("Stream-A", "ended") <= fake.time("Stream-B", "started"));
    assert!(fake.time("Stream-C", "ended") <= fake.time("Stream-Z", "started"));

    let env = &fake.env;
    for (stream, tasks) in &plan.tasks {
        for &task in tasks {
            assert_eq!(
                env.tc_task_field(task, "status").as_deref(),
                Some("completed")
            );
            let updated = env.tc_task_field(task, "updated_at").unwrap();
            assert_eq!(
                updated.len(),
                19,
                "{stream}: `{updated}` is datetime('now')"
            );
        }
    }
    let log = env.tc_log();
    for (stream, row) in &plan.streams {
        let of = |action: &str| {
            log.iter()
                .filter(|(agent, sid, _, a, _)| {
                    agent == "orchestrate" && *sid == Some(*row) && a == action
                })
                .count()
        };
        assert_eq!(of("worker_started"), 1, "{stream}: {log:#?}");
        assert_eq!(of("worker_exited"), 1, "{stream}: {log:#?}");
        assert_eq!(of("stream_complete"), 1, "{stream}: {log:#?}");
    }
    let started = log
        .iter()
        .find(|r| r.3 == "worker_started" && r.1 == Some(plan.stream_row("Stream-B")))
        .unwrap();
    let details = started.4.as_deref().unwrap();
    assert!(
        details.starts_with("Stream-B: worker started (attempt 1, pid "),
        "{details}"
    );
    // tc's own rule for a completion by a task with an agent, written by `orchestrate task set`.
    let c0 = plan.tasks_of("Stream-C")[0];
    assert!(
        log.iter()
            .any(|r| r.0 == "me" && r.2 == Some(c0) && r.3 == "completed"),
        "{log:#?}"
    );
    let doc = env.run(&["status", "--json"]).success().json();
    assert_eq!(stream(&doc, "Stream-Z")["branch"], "stream/Stream-Z");
}

#[test]
fn both_stores_present_the_one_with_stream_tasks_is_used_and_two_are_refused() {
    // Legacy has streams, tc's store is empty: legacy, and the header says why.
    let mut env = TestEnv::new();
    env.create_tc_db();
    env.add_stream("Legacy-S", &[], 1, "pending");
    let doc = env.run(&["status", "--json"]).success().json();
    assert_eq!(doc["source"]["kind"], "legacy");
    assert_eq!(doc["source"]["found_by"], "legacy_path");
    assert!(
        doc["source"]["how"]
            .as_str()
            .unwrap()
            .contains(".copilot/tasks.db also exists but holds no stream tasks"),
        "{doc:#}"
    );
    assert_eq!(ids(&doc), ["Legacy-S"]);

    // Both have streams: refused, naming both, exit 3, with the --db hint.
    let plan = env.tc_plan(&[("Tc-S", &[])], 1);
    let run = env.run(&["status"]).expect_code(exit_codes::NO_DATABASE);
    let err = run.stderr();
    assert!(err.contains(env.tc_db_path().to_str().unwrap()), "{err}");
    assert!(err.contains(env.db_path().to_str().unwrap()), "{err}");
    assert!(
        err.contains("hint: say which one to use with `--db FILE`"),
        "{err}"
    );

    // `--db` and ORCHESTRATE_DB name either kind, told apart by tables.
    let tc = env.tc_db_path();
    let doc = env
        .run(&["--db", tc.to_str().unwrap(), "status", "--json"])
        .success()
        .json();
    assert_eq!(
        (
            doc["source"]["kind"].as_str(),
            doc["source"]["found_by"].as_str()
        ),
        (Some("tc"), Some("flag"))
    );
    assert_eq!(ids(&doc), ["Tc-S"]);
    let mut cmd = env.cmd(&["status", "--json"]);
    cmd.env("ORCHESTRATE_DB", env.db_path());
    let doc = crate::support::Run(cmd.output().unwrap()).success().json();
    assert_eq!(
        (
            doc["source"]["kind"].as_str(),
            doc["source"]["found_by"].as_str()
        ),
        (Some("legacy"), Some("env"))
    );

    // Legacy emptied: tc's store is used.
    env.archive_stream("Legacy-S");
    let doc = env.run(&["status", "--json"]).success().json();
    assert_eq!(doc["source"]["kind"], "tc");
    assert_eq!(ids(&doc), ["Tc-S"]);
    assert_eq!(plan.tasks_of("Tc-S").len(), 1);
}

#[test]
fn neither_store_found_says_where_both_were_looked_for() {
    let env = TestEnv::without_db();
    let err = env
        .run(&["status"])
        .expect_code(exit_codes::NO_DATABASE)
        .stderr();
    assert!(
        err.contains("no tc .copilot/tasks.db found walking up from"),
        "{err}"
    );
    assert!(err.contains("the legacy store's path"), "{err}");
    assert!(err.contains("run `tc init`"), "{err}");
}

#[test]
fn paused_streams_are_shown_never_launched_and_archived_ones_are_out() {
    let env = tc_env();
    let plan = env.tc_plan(
        &[
            ("Stream-A", &[]),
            ("Stream-P", &[]),
            ("Stream-Q", &["Stream-P"]),
            ("Stream-X", &[]),
        ],
        1,
    );
    let conn = env.tc_conn();
    conn.execute(
        "UPDATE streams SET status = 'paused' WHERE id = ?1",
        [plan.stream_row("Stream-P")],
    )
    .unwrap();
    conn.execute(
        "UPDATE streams SET status = 'archived' WHERE id = ?1",
        [plan.stream_row("Stream-X")],
    )
    .unwrap();
    // A second, archived PRD: its streams are out of scope.
    let old = env.tc_prd("Old feature", "archived");
    let row = env.tc_stream("Old work", Some(old), "active");
    env.tc_task(
        Some(old),
        Some(row),
        "old task",
        "pending",
        Some(json!({"streamId": "Stream-Old"})),
    );
    drop(conn);

    let doc = env.run(&["status", "--json"]).success().json();
    assert_eq!(ids(&doc), ["Stream-A", "Stream-P", "Stream-Q"]);
    assert_eq!(stream(&doc, "Stream-P")["state"], "paused");
    assert_eq!(stream(&doc, "Stream-P")["reason"]["kind"], "paused");
    assert_eq!(stream(&doc, "Stream-Q")["state"], "waiting");
    let plain = env.run(&["status"]).success().stdout();
    assert!(
        plain
            .lines()
            .any(|l| l.contains("Stream-P") && l.contains("paused")),
        "{plain}"
    );

    let fake = Fake::new(env);
    let run = fake
        .run(&["start", "--stagger", "0"])
        .expect_code(exit_codes::INCOMPLETE);
    assert!(
        fake.lines("Stream-P", "started").is_empty(),
        "a paused stream never starts"
    );
    assert!(fake.lines("Stream-Q", "started").is_empty());
    assert_eq!(fake.lines("Stream-A", "started").len(), 1);
    let out = run.stdout();
    assert!(
        out.contains("Stream-P (paused): paused in the task store"),
        "{out}"
    );
    assert!(
        out.contains("Stream-Q (waiting): waits for Stream-P (paused)"),
        "{out}"
    );
    // Neither the archived stream nor the archived PRD's was touched.
    assert!(fake.lines("Stream-X", "started").is_empty());
    assert!(fake.lines("Stream-Old", "started").is_empty());
}

#[test]
fn a_cross_stream_task_dependency_is_a_stream_dependency() {
    let env = tc_env();
    let plan = env.tc_plan(&[("Stream-A", &[]), ("Stream-B", &[])], 2);
    let (a, b) = (plan.tasks_of("Stream-A"), plan.tasks_of("Stream-B"));
    env.tc_dep(b[1], a[0]); // across streams: B depends on A
    env.tc_dep(a[1], a[0]); // within a stream: nothing
    // A task without streamId in B's row joins B (named by `streams.name`).
    env.tc_task(
        Some(plan.prd),
        Some(plan.stream_row("Stream-B")),
        "late",
        "pending",
        None,
    );
    // A task of no stream, and an edge to it: neither is a stream.
    let loose = env.tc_task(Some(plan.prd), None, "loose", "pending", None);
    env.tc_dep(a[0], loose);

    let doc = env.run(&["status", "--json"]).success().json();
    assert_eq!(ids(&doc), ["Stream-A", "Stream-B"]);
    assert_eq!(stream(&doc, "Stream-A")["dependencies"], json!([]));
    let b_doc = stream(&doc, "Stream-B");
    assert_eq!(b_doc["dependencies"], json!(["Stream-A"]));
    assert_eq!(b_doc["depth"], 1);
    assert_eq!(b_doc["tasks"]["total"], 3);
    let listed = env
        .run(&["task", "list", "--stream", "Stream-B", "--json"])
        .success()
        .json();
    let titles: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Stream-B task 0", "Stream-B task 1", "late"]);

    // The edge makes a cycle with metadata pointing back: reported, not ignored.
    env.tc_task(
        Some(plan.prd),
        Some(plan.stream_row("Stream-A")),
        "back",
        "pending",
        Some(json!({"streamId": "Stream-A", "dependencies": ["Stream-B"]})),
    );
    let err = env
        .run(&["status"])
        .expect_code(exit_codes::INVALID_GRAPH)
        .stderr();
    assert!(err.contains("dependency cycle"), "{err}");
}

#[test]
fn task_set_writes_what_tc_task_update_writes_and_reads_back() {
    let env = tc_env();
    let plan = env.tc_plan(&[("Stream-A", &[])], 2);
    let [t0, t1] = [plan.tasks_of("Stream-A")[0], plan.tasks_of("Stream-A")[1]];
    env.tc_conn()
        .execute("UPDATE tasks SET agent = 'me' WHERE id = ?1", [t1])
        .unwrap();

    let list = env
        .run(&["task", "list", "--stream", "Stream-A"])
        .success()
        .stdout();
    assert!(
        list.lines().nth(1).unwrap().starts_with(&format!("{t0} ")),
        "{list}"
    );

    env.run(&["task", "set", &t0.to_string(), "in_progress"])
        .success();
    assert_eq!(
        env.tc_task_field(t0, "status").as_deref(),
        Some("in_progress")
    );
    let out = env
        .run(&[
            "task",
            "set",
            &format!("#{t0}"),
            "blocked",
            "--reason",
            "need the API key",
        ])
        .success()
        .stdout();
    assert!(out.contains("in_progress → blocked"), "{out}");
    let meta: Value = serde_json::from_str(&env.tc_task_field(t0, "metadata").unwrap()).unwrap();
    assert_eq!(meta["blockedReason"], "need the API key");
    assert_eq!(
        meta["streamId"], "Stream-A",
        "a shallow merge keeps every other key"
    );
    assert_eq!(meta["files"], json!(["src/Stream-A.rs"]));
    let doc = env.run(&["status", "--json"]).success().json();
    assert_eq!(
        stream(&doc, "Stream-A")["blocked_tasks"][0]["reason"],
        "need the API key"
    );

    env.run(&[
        "task",
        "set",
        &t1.to_string(),
        "completed",
        "--notes",
        "done, tests pass",
    ])
    .success();
    let shown = env
        .run(&["task", "show", &t1.to_string(), "--json"])
        .success()
        .json();
    assert_eq!(shown["status"], "completed");
    assert_eq!(shown["notes"], "done, tests pass");
    assert_eq!(shown["stream"], "Stream-A");
    assert_eq!(shown["assigned_agent"], "me");
    let updated = shown["updated_at"].as_str().unwrap();
    assert!(
        updated.len() == 19 && updated.as_bytes()[10] == b' ',
        "datetime('now'), as tc writes it: {updated}"
    );
    let log = env.tc_log();
    let stream_row = Some(plan.stream_row("Stream-A"));
    assert!(
        log.contains(&(
            "orchestrate".into(),
            stream_row,
            Some(t0),
            "blocked".into(),
            Some("need the API key".into())
        )),
        "{log:#?}"
    );
    assert!(
        log.contains(&("me".into(), stream_row, Some(t1), "completed".into(), None)),
        "{log:#?}"
    );
    assert!(
        log.contains(&(
            "me".into(),
            stream_row,
            Some(t1),
            "note".into(),
            Some("done, tests pass".into())
        )),
        "{log:#?}"
    );
    assert_eq!(log.len(), 3, "{log:#?}");

    // tc's own update is read back at once.
    env.tc_update(t0, "completed");
    let doc = env.run(&["status", "--json"]).success().json();
    assert_eq!(stream(&doc, "Stream-A")["state"], "complete");

    // Ids are integers; a legacy-style id is a usage error; an unknown one is not found.
    let err = env
        .run(&["task", "set", "TASK-1", "completed"])
        .expect_code(exit_codes::USAGE)
        .stderr();
    assert!(err.contains("not a task id of a tc store"), "{err}");
    let err = env
        .run(&["task", "set", "999", "completed"])
        .expect_code(exit_codes::FAILURE)
        .stderr();
    assert!(err.contains("no task 999"), "{err}");
    // Metadata that is not an object is never overwritten by a merge.
    env.tc_conn()
        .execute("UPDATE tasks SET metadata = '[1]' WHERE id = ?1", [t1])
        .unwrap();
    env.run(&["task", "set", &t1.to_string(), "completed", "--notes", "x"])
        .expect_code(exit_codes::FAILURE);
    assert_eq!(env.tc_task_field(t1, "metadata").as_deref(), Some("[1]"));
}

#[test]
fn a_foreign_or_partial_store_exits_3_and_doctor_agrees() {
    let env = TestEnv::without_db();
    std::fs::create_dir_all(env.root.join(".copilot")).unwrap();
    rusqlite::Connection::open(env.tc_db_path())
        .unwrap()
        .execute_batch(
            "CREATE TABLE streams (id INTEGER PRIMARY KEY, name TEXT);
             CREATE TABLE tasks (id INTEGER PRIMARY KEY, title TEXT, status TEXT, metadata TEXT);",
        )
        .unwrap();
    let err = env
        .run(&["status"])
        .expect_code(exit_codes::NO_DATABASE)
        .stderr();
    assert!(
        err.contains("looks like a tc (Task Copilot v3) store but lacks table `prds`"),
        "{err}"
    );
    assert!(err.contains("`tasks`.prd_id, stream_id"), "{err}");
    assert!(!err.contains("no such column"), "{err}");
    let out = env
        .run(&["doctor"])
        .expect_code(exit_codes::FAILURE)
        .stdout();
    let schema = out.lines().find(|l| l.contains(" schema ")).unwrap();
    assert!(schema.starts_with('✗'), "{out}");
    assert!(schema.contains("lacks table `prds`"), "{out}");
    assert!(!out.contains("✓ schema"), "{out}");
    // The same file named with --db: the same answer.
    let path = env.tc_db_path();
    env.run(&["--db", path.to_str().unwrap(), "task", "list"])
        .expect_code(exit_codes::NO_DATABASE);
}

#[test]
fn doctor_names_the_store_and_flags_copies_that_worktrees_would_get() {
    let env = tc_env();
    env.tc_diamond();
    env.run(&["init"]).success();
    // Two programs called `tc`: Task Copilot's, and another (Linux's traffic control is one).
    let bin = env.tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake_tc = |version: &str| {
        let script = bin.join("tc");
        std::fs::write(&script, format!("#!/bin/sh\necho '{version}'\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    let doctor = || {
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        let mut cmd = env.cmd(&["doctor"]);
        cmd.env("ORCHESTRATE_WORKER_CMD", "sh -c 'exit 0'")
            .env("PATH", path);
        crate::support::Run(cmd.output().unwrap())
            .success()
            .stdout()
    };
    fake_tc("tc version 1.3.0");
    let out = doctor();
    let db = out.lines().find(|l| l.contains(" task database ")).unwrap();
    assert!(db.contains("tc (Task Copilot v3) store"), "{out}");
    assert!(db.contains("found walking up from"), "{out}");
    let cli = out.lines().find(|l| l.contains(" tc CLI ")).unwrap();
    assert!(
        cli.starts_with('✓') && cli.contains("tc version 1.3.0 at"),
        "{out}"
    );
    assert!(!out.contains("tc store copies"), "{out}");
    fake_tc("Object \"version\" is unknown, try \"tc help\".");
    let out = doctor();
    let cli = out.lines().find(|l| l.contains(" tc CLI ")).unwrap();
    assert!(
        cli.starts_with('!') && cli.contains("is not Task Copilot's CLI"),
        "{out}"
    );

    std::fs::write(env.root.join(".worktreeinclude"), ".copilot/\n").unwrap();
    let out = doctor();
    let copies = out.lines().find(|l| l.contains("tc store copies")).unwrap();
    assert!(
        copies.starts_with('!') && copies.contains(".worktreeinclude` lists"),
        "{out}"
    );

    std::fs::remove_file(env.root.join(".worktreeinclude")).unwrap();
    env.git(&["add", "-f", ".copilot/tasks.db"]);
    let out = doctor();
    let copies = out.lines().find(|l| l.contains("tc store copies")).unwrap();
    assert!(copies.contains("`.copilot/` is tracked by git"), "{out}");
}

#[test]
fn a_long_lived_reader_tolerates_tc_adding_columns_and_writing_meanwhile() {
    use orchestrate::taskdb::{TaskDb, TaskSource};
    let env = TestEnv::without_db();
    std::fs::create_dir_all(env.root.join(".copilot")).unwrap();
    let schema = orchestrate::taskdb::TC_SCHEMA.replace("    guard TEXT,\n", "");
    assert!(!schema.contains("guard"), "schema edit applied");
    let conn = rusqlite::Connection::open(env.tc_db_path()).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.execute_batch(&schema).unwrap();
    drop(conn);
    let plan = env.tc_plan(&[("Stream-A", &[])], 2);
    let mut db = TaskDb::open(&env.tc_db_path(), "test").unwrap();
    assert_eq!(db.snapshot().unwrap().streams[0].counts.total, 2);
    // What tc does on every open, then a write.
    for table in ["tasks", "prds", "work_products"] {
        env.tc_conn()
            .execute_batch(&format!("ALTER TABLE {table} ADD COLUMN guard TEXT"))
            .unwrap();
    }
    env.tc_update(plan.tasks_of("Stream-A")[0], "completed");
    assert!(db.has_changed().unwrap());
    let snap = db.snapshot().unwrap();
    assert_eq!(snap.streams[0].counts.completed, 1);
    assert_eq!(db.tasks(Some("Stream-A")).unwrap().len(), 2);
}

#[test]
fn concurrent_tc_writers_while_start_runs() {
    let env = tc_env();
    let plan = env.tc_diamond();
    // Noise: a stream of an archived PRD that tc keeps writing to, out of orchestrate's scope.
    let old = env.tc_prd("Old", "archived");
    let row = env.tc_stream("Noise", Some(old), "active");
    let noise: Vec<i64> = (0..4)
        .map(|i| env.tc_task(Some(old), Some(row), &format!("noise {i}"), "pending", None))
        .collect();
    let mut fake = Fake::new(env);
    fake.set("TC", None, &TestEnv::fake_tc());
    let mut start = fake.spawn(&["start", "--stagger", "0"], "start");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let path = fake.env.tc_db_path();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.busy_timeout(Duration::from_secs(5)).unwrap();
            let mut writes = 0u32;
            // Bounded: at most 2,000 short transactions, each as tc writes (update + log).
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && writes < 2000 {
                let task = noise[writes as usize % noise.len()];
                conn.execute_batch(&format!(
                    "BEGIN IMMEDIATE;
                     UPDATE tasks SET status = 'in_progress', updated_at = datetime('now') WHERE id = {task};
                     INSERT INTO agent_log (agent, stream_id, task_id, action) VALUES ('noise', {row}, {task}, 'tick');
                     COMMIT;"
                ))
                .unwrap();
                writes += 1;
            }
            writes
        })
    };
    let code = wait_exit(&mut start, LONG);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = writer.join().unwrap();
    let err = fake.output_of("start", "err");
    assert_eq!(code, exit_codes::OK, "{err}");
    assert!(writes > 0);
    assert!(!err.contains("agent_log"), "no failed log write: {err}");
    let log = fake.env.tc_log();
    for (stream, row) in &plan.streams {
        assert!(
            log.iter()
                .any(|r| r.0 == "orchestrate" && r.1 == Some(*row) && r.3 == "stream_complete"),
            "{stream}"
        );
    }
    wait_for("nothing left running", LONG, || {
        fake.env.run(&["status", "--json"]).json()["overall"]["running"] == 0
    });
}

/// The real `tc` CLI: a plan made with `tc prd create`, `tc stream create` and `tc task create
/// --metadata …` is run with no flags, workers complete their tasks with `tc task update`, and
/// `tc task list` and `tc log` read the database afterwards and show orchestrate's entries.
#[test]
#[ignore = "needs the real tc CLI on PATH (scripts/interop/real-tc.sh installs it and runs this)"]
fn with_the_real_tc_cli() {
    let tc = std::env::var("TC_BIN").unwrap_or_else(|_| "tc".into());
    let env = TestEnv::without_db();
    let run_tc = |env: &TestEnv, args: &[&str]| -> String {
        let mut cmd = Command::new(&tc);
        env.apply_env(&mut cmd);
        // rich wraps table cells to the terminal's width.
        cmd.env("COLUMNS", "250");
        let out = cmd
            .current_dir(&env.root)
            .args(args)
            .output()
            .expect("run tc");
        assert!(
            out.status.success(),
            "tc {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let id_of = |json: String| -> i64 {
        serde_json::from_str::<Value>(&json).unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    run_tc(&env, &["init"]);
    let prd = id_of(run_tc(
        &env,
        &["prd", "create", "--title", "Feature", "--json"],
    ))
    .to_string();
    let plan = [
        ("Stream-A", "Foundation", vec![]),
        ("Stream-B", "API", vec!["Stream-A"]),
        ("Stream-C", "UI", vec!["Stream-A"]),
        ("Stream-Z", "Integration", vec!["Stream-B", "Stream-C"]),
    ];
    for (stream, name, deps) in &plan {
        let row = id_of(run_tc(
            &env,
            &["stream", "create", "--name", name, "--prd", &prd, "--json"],
        ))
        .to_string();
        for i in 0..2 {
            let meta = json!({"streamId": stream, "streamName": name, "files": [format!("src/{stream}.rs")],
                              "dependencies": deps}).to_string();
            run_tc(
                &env,
                &[
                    "task",
                    "create",
                    "--title",
                    &format!("{name} {i}"),
                    "--prd",
                    &prd,
                    "--stream",
                    &row,
                    "--metadata",
                    &meta,
                    "--json",
                ],
            );
        }
    }
    let sub = env.root.join("src");
    std::fs::create_dir_all(&sub).unwrap();
    let doc = status_json_in(&env, &sub);
    assert_eq!(doc["source"]["kind"], "tc");
    assert_eq!(ids(&doc), ["Stream-A", "Stream-B", "Stream-C", "Stream-Z"]);

    let mut fake = Fake::new(env);
    fake.set("TC", None, &tc).set("COMMIT", None, "1");
    let run = fake
        .run(&["start", "--worktrees", "--stagger", "0"])
        .success();
    assert!(
        run.stdout().contains("every stream is complete"),
        "{}",
        run.stderr()
    );
    let env = &fake.env;
    let tasks: Value = serde_json::from_str(&run_tc(env, &["task", "list", "--json"])).unwrap();
    assert!(
        tasks
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "completed"),
        "{tasks:#}"
    );
    let log: Value = serde_json::from_str(&run_tc(
        env,
        &["log", "--agent", "orchestrate", "--limit", "500", "--json"],
    ))
    .unwrap();
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "worker_started").count(),
        4,
        "{log:#}"
    );
    assert_eq!(
        actions.iter().filter(|a| **a == "stream_complete").count(),
        4,
        "{log:#}"
    );
    let text = run_tc(env, &["log", "--agent", "orchestrate"]);
    assert!(text.contains("worker_started"), "{text}");
}
