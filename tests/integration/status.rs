//! `orchestrate status`: the three output modes, the database rules, errors and exit codes.

use orchestrate::exit_codes;
use serde_json::json;

use crate::support::TestEnv;

/// The acceptance case: the diamond, a malformed-JSON row and an archived stream.
fn diamond_with_noise() -> TestEnv {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 3, "completed");
    env.add_task("Stream-B", "B1", "completed", &["Stream-A"]);
    env.add_task("Stream-B", "B2", "in_progress", &[]);
    env.add_task("Stream-C", "C1", "pending", &["Stream-A: Foundation"]);
    env.add_task("Stream-C", "C2", "blocked", &["[Stream-A] Foundation"]);
    env.add_task("Stream-Z", "Z1", "pending", &["Stream-B"]);
    env.add_task("Stream-Z", "Z2", "pending", &["Stream-C"]);
    env.add_task_raw("broken row", "pending", Some("{not json"));
    env.add_task_raw("no metadata", "pending", None);
    env.add_task_raw("empty metadata", "pending", Some("{}"));
    env.add_stream("Stream-Old", &[], 2, "pending");
    env.archive_stream("Stream-Old");
    env
}

#[test]
fn json_shows_exactly_the_diamond_with_counts() {
    let env = diamond_with_noise();
    let run = env.run(&["status", "--json"]).success();
    let doc = run.json();
    assert_eq!(doc["version"], 2);
    assert_eq!(doc["workspace"], "project");
    assert_eq!(doc["db"], env.db_path().display().to_string());
    let ids: Vec<&str> = doc["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["Stream-A", "Stream-B", "Stream-C", "Stream-Z"]);

    let stream = |id: &str| {
        doc["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap()
            .clone()
    };
    let a = stream("Stream-A");
    assert_eq!(a["state"], "complete");
    assert_eq!(a["depth"], 0);
    assert_eq!(
        a["tasks"],
        json!({"total": 3, "completed": 3, "in_progress": 0, "pending": 0, "blocked": 0, "cancelled": 0})
    );
    assert_eq!(a["worker"], serde_json::Value::Null);
    // A task in progress with no live worker (an earlier worker died): `start` relaunches it,
    // so `status` says ready, not "in progress".
    let b = stream("Stream-B");
    assert_eq!(b["state"], "ready");
    assert_eq!(b["tasks"]["completed"], 1);
    assert_eq!(b["tasks"]["in_progress"], 1);
    let c = stream("Stream-C");
    assert_eq!(
        c["dependencies"],
        json!(["Stream-A"]),
        "title forms map to the stream id"
    );
    // One blocked task and one pending: the worker does what it can (`start` launches it).
    assert_eq!(c["state"], "ready");
    assert_eq!(c["tasks"]["blocked"], 1);
    assert_eq!(c["blocked_tasks"][0]["title"], "C2");
    let z = stream("Stream-Z");
    assert_eq!(z["depth"], 2);
    assert_eq!(
        z["dependencies"],
        json!(["Stream-B", "Stream-C"]),
        "union over the stream's tasks"
    );
    assert_eq!(z["state"], "waiting");
    assert_eq!(
        z["reason"],
        json!({"kind": "waiting", "on": [
            {"stream": "Stream-B", "state": "ready"},
            {"stream": "Stream-C", "state": "ready"}
        ]})
    );

    assert_eq!(doc["overall"]["streams"], 4);
    assert_eq!(doc["overall"]["complete"], 1);
    assert_eq!(doc["overall"]["tasks"]["total"], 9);
    let warnings = doc["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].as_str().unwrap().contains("not valid JSON"));
}

#[test]
fn plain_output_is_aligned_deterministic_and_free_of_escapes() {
    let env = diamond_with_noise();
    let run = env.run(&["status"]).success();
    let out = run.stdout();
    assert!(
        !out.contains('\x1b'),
        "escape codes in plain output:\n{out}"
    );
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.trim_start().starts_with("Stream-"))
        .collect();
    assert_eq!(rows.len(), 4, "{out}");
    assert!(
        rows[0].contains("Stream-A") && rows[0].contains("complete") && rows[0].contains("3/3"),
        "{out}"
    );
    assert!(
        rows[2].contains("Stream-C")
            && rows[2].contains("ready")
            && rows[2].contains("blocked tasks: C2"),
        "{out}"
    );
    assert!(
        rows[3].contains("Stream-Z")
            && rows[3].contains("waits for Stream-B (ready), Stream-C (ready)"),
        "{out}"
    );
    assert!(
        out.contains("level 0") && out.contains("level 1") && out.contains("level 2"),
        "{out}"
    );
    assert!(!out.contains("Stream-Old"), "archived stream shown:\n{out}");
    // The state column starts at the same offset on every row.
    let state_column = |row: &str| {
        let id_start = row.len() - row.trim_start().len();
        let id_end = id_start + row[id_start..].find(' ').unwrap();
        id_end + row[id_end..].find(|c: char| c != ' ').unwrap()
    };
    let offsets: Vec<usize> = rows.iter().map(|r| state_column(r)).collect();
    assert!(
        offsets.windows(2).all(|w| w[0] == w[1]),
        "misaligned:\n{out}"
    );
    assert!(
        run.stderr().contains("not valid JSON"),
        "malformed row warned about: {}",
        run.stderr()
    );
    // Same input, same output.
    assert_eq!(env.run(&["status"]).stdout(), out);
}

#[test]
fn color_always_adds_escapes_and_no_color_is_honoured() {
    let env = diamond_with_noise();
    assert!(
        env.run(&["status", "--color", "always"])
            .success()
            .stdout()
            .contains('\x1b')
    );
    let out = env.cmd(&["status"]).env("NO_COLOR", "1").output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains('\x1b'));
}

#[test]
fn a_stream_with_a_cancelled_task_completes_and_an_all_cancelled_one_is_cancelled() {
    let mut env = TestEnv::new();
    env.add_task("S1", "done", "completed", &[]);
    env.add_task("S1", "dropped", "cancelled", &[]);
    env.add_stream("S2", &[], 2, "cancelled");
    let doc = env.run(&["status", "--json"]).success().json();
    assert_eq!(doc["streams"][0]["state"], "complete");
    assert_eq!(doc["streams"][1]["state"], "cancelled");
}

#[test]
fn missing_database_says_which_path_and_how_it_was_derived() {
    let env = TestEnv::without_db();
    let run = env.run(&["status"]).expect_code(exit_codes::NO_DATABASE);
    let err = run.stderr();
    assert!(err.contains(&env.db_path().display().to_string()), "{err}");
    assert!(err.contains("WORKSPACE_ID unset"), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn workspace_id_and_db_flag_choose_the_file() {
    let mut env = TestEnv::new();
    env.add_stream("S", &[], 1, "pending");
    let run = env
        .cmd(&["status"])
        .env("WORKSPACE_ID", "elsewhere")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(exit_codes::NO_DATABASE));
    assert!(String::from_utf8_lossy(&run.stderr).contains("WORKSPACE_ID=elsewhere"));
    let db = env.db_path();
    let ok = env
        .cmd(&["status", "--db", db.to_str().unwrap()])
        .env("WORKSPACE_ID", "elsewhere")
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(exit_codes::OK),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn no_streams_and_all_archived_exit_4_with_a_hint() {
    let mut env = TestEnv::new();
    env.add_task_raw("plain task", "pending", Some("{}"));
    let run = env.run(&["status"]).expect_code(exit_codes::NO_STREAMS);
    assert!(run.stderr().contains("no stream tasks"), "{}", run.stderr());
    env.add_stream("S", &[], 1, "pending");
    env.archive_stream("S");
    env.run(&["status"]).expect_code(exit_codes::NO_STREAMS);
}

#[test]
fn not_a_task_database_exits_3() {
    let env = TestEnv::without_db();
    let path = env.db_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE other (x)")
        .unwrap();
    let run = env.run(&["status"]).expect_code(exit_codes::NO_DATABASE);
    assert!(
        run.stderr().contains("not a Task Copilot database"),
        "{}",
        run.stderr()
    );
}

#[test]
fn unknown_dependency_exits_5_naming_stream_missing_and_suggestion() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    env.add_stream("Stream-B", &["Stream-AA"], 1, "pending");
    let err = env
        .run(&["status"])
        .expect_code(exit_codes::INVALID_GRAPH)
        .stderr();
    assert!(err.contains("`Stream-B` depends on `Stream-AA`"), "{err}");
    assert!(err.contains("did you mean `Stream-A`?"), "{err}");
}

#[test]
fn three_cycle_exits_5_naming_the_cycle() {
    let mut env = TestEnv::new();
    env.add_stream("A", &["C"], 1, "pending");
    env.add_stream("B", &["A"], 1, "pending");
    env.add_stream("C", &["B"], 1, "pending");
    let err = env
        .run(&["status"])
        .expect_code(exit_codes::INVALID_GRAPH)
        .stderr();
    assert!(err.contains("A → B → C → A"), "{err}");
}

#[test]
fn stream_dependencies_key_is_unioned_with_dependencies() {
    let mut env = TestEnv::new();
    env.add_stream("A", &[], 1, "completed");
    env.add_stream("B", &[], 1, "completed");
    env.add_task_meta(
        "t",
        "pending",
        json!({"streamId": "C", "dependencies": ["A"], "streamDependencies": ["B"]}),
    );
    let doc = env.run(&["status", "--json"]).success().json();
    assert_eq!(doc["streams"][2]["dependencies"], json!(["A", "B"]));
    assert_eq!(doc["streams"][2]["state"], "ready");
}

#[test]
fn two_hundred_streams_render_in_plain_mode() {
    let mut env = TestEnv::new();
    for i in 0..200 {
        let deps: Vec<String> = if i == 0 {
            vec![]
        } else {
            vec![format!("S{:03}", (i - 1) / 2)]
        };
        let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
        env.add_task(
            &format!("S{i:03}"),
            "t",
            if i % 3 == 0 { "completed" } else { "pending" },
            &deps,
        );
    }
    let out = env.run(&["status"]).success().stdout();
    let rows = out
        .lines()
        .filter(|l| l.trim_start().starts_with("S0") || l.trim_start().starts_with("S1"))
        .count();
    assert_eq!(rows, 200, "{out}");
}

#[test]
fn help_exists_for_every_command() {
    let env = TestEnv::new();
    for cmd in [
        "start", "status", "stop", "logs", "clean", "merge", "task", "doctor", "init",
    ] {
        let run = env.run(&[cmd, "--help"]).success();
        assert!(run.stdout().contains("Usage:"), "{cmd}: {}", run.stdout());
    }
}

#[test]
fn bad_flag_exits_2() {
    let env = TestEnv::new();
    env.run(&["status", "--bogus"])
        .expect_code(exit_codes::USAGE);
}

#[test]
fn watch_redraws_when_the_database_changes_and_exits_on_ctrl_c() {
    use std::time::Duration;

    use crate::support::Watched;

    let mut env = TestEnv::new();
    let ids = env.add_stream("S", &[], 2, "pending");
    // A 60 s period: a redraw within the deadline below can only come from change detection.
    let mut watch = Watched::spawn(env.cmd(&["status", "--watch", "60"]));
    watch.wait_stdout("the first dashboard", Duration::from_secs(10), |out| {
        out.contains("0/2")
    });
    env.set_status(&ids[0], "completed");
    watch.wait_stdout(
        "a redraw after the change",
        Duration::from_secs(10),
        |out| out.contains("1/2"),
    );
    watch.signal("INT");
    assert_eq!(watch.wait_exit(Duration::from_secs(5)), Some(0));
}

#[test]
fn watch_waits_for_a_missing_database_to_appear() {
    use std::time::Duration;

    use crate::support::Watched;

    let mut env = TestEnv::without_db();
    let watch = Watched::spawn(env.cmd(&["status", "--watch", "0.2"]));
    wait_for_stderr(&watch, "does not exist");
    env.create_db();
    env.add_stream("Late", &[], 1, "pending");
    watch.wait_stdout(
        "the dashboard once the database exists",
        Duration::from_secs(10),
        |out| out.contains("Late"),
    );
}

fn wait_for_stderr(watch: &crate::support::Watched, needle: &str) {
    crate::support::wait_for(
        &format!("stderr to say `{needle}`"),
        std::time::Duration::from_secs(10),
        || watch.stderr().contains(needle),
    );
}

#[test]
fn older_schema_without_archived_column_is_read() {
    let mut env = TestEnv::without_db();
    let path = env.db_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let schema = crate::support::TASK_COPILOT_SCHEMA.replace(
        "archived INTEGER DEFAULT 0,\n    archived_at TEXT,\n    archived_by_initiative_id TEXT\n",
        "extra TEXT\n",
    );
    assert!(!schema.contains("archived INTEGER"), "schema edit applied");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(&schema)
        .unwrap();
    env.add_stream("S", &[], 2, "completed");
    let doc = env.run(&["status", "--json"]).success().json();
    assert_eq!(doc["streams"][0]["state"], "complete");
}

#[test]
fn worktree_streams_show_branch_commits_ahead_and_merge_back_hints() {
    use crate::worktrees::{commit_file, graph, prepare, workspaces};

    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    env.add_stream("Stream-B", &["Stream-A"], 1, "pending");
    let g = graph(&env);
    let mut ws = workspaces(&env, orchestrate::config::Config::default());
    let a = prepare(&mut ws, &g, "Stream-A");
    commit_file(&env, &a.dir, "a.txt", "A\n");
    commit_file(&env, &a.dir, "a2.txt", "A2\n");

    // Not complete yet: branch and commits are shown, no merge-back hints.
    let doc = env.run(&["status", "--json"]).success().json();
    let sa = &doc["streams"][0];
    assert_eq!(sa["branch"], "stream/Stream-A");
    assert_eq!(sa["commits_since_base"], 2);
    assert_eq!(sa["base"].as_str().unwrap().len(), 40);
    assert_eq!(doc["merge_back"], serde_json::Value::Null);

    env.set_stream_status("Stream-A", "completed");
    let doc = env.run(&["status", "--json"]).success().json();
    let plan = &doc["merge_back"];
    assert_eq!(plan["target"], "main");
    assert_eq!(plan["streams"][0]["stream"], "Stream-A");
    let plain = env.run(&["status"]).success().stdout();
    assert!(
        plain.contains("stream/Stream-A: 2 commits since its base"),
        "{plain}"
    );
    assert!(plain.contains("Merge-back into main"), "{plain}");
    assert!(plain.contains("merges cleanly"), "{plain}");
}

#[test]
fn stream_ids_with_terminal_escapes_are_printed_escaped() {
    let mut env = TestEnv::new();
    env.add_task("evil\u{1b}[2J\u{1b}]0;pwned\u{7}", "t", "pending", &[]);
    let out = env.run(&["status"]).success().stdout();
    assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
    assert!(out.contains("evil\\u{1b}[2J"), "{out}");
    // JSON keeps the id exactly (escaped by JSON itself).
    let doc = env.run(&["status", "--json"]).success().json();
    assert_eq!(doc["streams"][0]["id"], "evil\u{1b}[2J\u{1b}]0;pwned\u{7}");
}
