//! What a person sees, command by command: no control character from the data reaches a
//! terminal; a name that matches no stream is one error everywhere; a failure's reason is its
//! last attempt's, as real lines; the merge-back preview and the end of a run say precisely
//! what they mean. (Real terminals are in `terminal.rs`.)

use orchestrate::exit_codes::{INCOMPLETE, NO_STREAMS, OK};
use serde_json::json;

use crate::start::{Fake, LONG};
use crate::support::{Run, TestEnv, Watched};

/// A stream id that would retitle the window, clear the screen, move the cursor and ring.
const EVIL_ID: &str = "Evil\u{1b}]0;pwned\u{7}\u{1b}[2J\r\u{8}X";
/// Free text with colour, a clear-screen, a C1 control, a tab and a carriage return.
const EVIL_TEXT: &str = "text \u{1b}[31mred\u{1b}[0m \u{1b}[2J \u{9b}1m\ttab\r";
/// How `EVIL_ID` looks once escaped.
const EVIL_ID_SHOWN: &str = "Evil\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\r\\u{8}X";

/// `text` without our own colour codes (`ESC [ digits ; … m`).
fn strip_sgr(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("\u{1b}[") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let params = after
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(after.len());
        if after[params..].starts_with('m') {
            rest = &after[params + 1..];
        } else {
            // Not a colour: keep the ESC so the check below finds it.
            out.push_str("\u{1b}[");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// No control character but the line break in what `args` printed (colour codes aside when
/// `colour`).
fn assert_clean(args: &[&str], run: &Run, colour: bool) {
    for (name, text) in [("stdout", run.stdout()), ("stderr", run.stderr())] {
        let seen = if colour {
            strip_sgr(&text)
        } else {
            text.clone()
        };
        if let Some(c) = seen.chars().find(|c| c.is_control() && *c != '\n') {
            panic!(
                "{args:?} printed the control character {c:?} on {name} (exit {}):\n{text:?}",
                run.code()
            );
        }
    }
}

/// A project whose data is hostile everywhere: ids, names, titles, notes, descriptions,
/// blocked reasons, and the worker's output. Streams: EVIL fails (its worker prints
/// `EVIL_TEXT`), After depends on it (skipped), Stuck has only a blocked task, Fine completes
/// with a commit (worktree mode: branches, merge-back).
fn hostile_project() -> (Fake, String) {
    let mut env = TestEnv::new();
    let meta = |stream: &str, deps: &[&str]| json!({"streamId": stream, "streamName": EVIL_TEXT, "dependencies": deps});
    let evil_task = env.add_task_meta(EVIL_TEXT, "pending", meta(EVIL_ID, &[]));
    env.add_task_meta("second", "pending", meta(EVIL_ID, &[]));
    env.add_task_meta("after", "pending", meta("After", &[EVIL_ID]));
    let stuck = env.add_task_meta(EVIL_TEXT, "blocked", meta("Stuck", &[]));
    env.add_task_meta("fine", "pending", meta("Fine", &[]));
    for id in [&evil_task, &stuck] {
        env.conn()
            .execute(
                "UPDATE tasks SET blocked_reason = ?2, notes = ?2, description = ?2,
                 assigned_agent = ?2 WHERE id = ?1",
                [id.as_str(), EVIL_TEXT],
            )
            .unwrap();
    }
    let mut fake = Fake::new(env);
    fake.set("COMPLETE", Some(EVIL_ID), "0")
        .set("EXIT", Some(EVIL_ID), "3")
        .set("SAY", Some(EVIL_ID), EVIL_TEXT)
        .set("COMMIT", Some("Fine"), "1");
    (fake, evil_task)
}

#[test]
fn no_control_character_from_the_data_reaches_a_terminal_from_any_command() {
    let (fake, evil_task) = hostile_project();
    let commands: Vec<Vec<&str>> = vec![
        vec!["start", "--worktrees", "--dry-run"],
        vec!["start", "--worktrees", "--stagger", "0", "--retries", "1"],
        vec!["status"],
        vec!["status", "--json"],
        vec!["task", "list"],
        vec!["task", "list", "--stream", EVIL_ID],
        vec!["task", "list", "--stream", "Nope\u{1b}[2J"],
        vec!["task", "show", evil_task.as_str()],
        vec!["task", "show", "TASK-\u{1b}]0;x\u{7}"],
        vec!["logs", EVIL_ID],
        vec!["logs", "Nope\u{1b}[2J"],
        vec!["start", "Nope\u{1b}]0;x\u{7}"],
        vec!["stop", EVIL_ID],
        vec!["merge", "--dry-run"],
        vec!["merge", EVIL_ID],
        vec!["clean", "--dry-run"],
        vec!["doctor"],
        vec!["stop"],
        vec![
            "start",
            "--worktrees",
            "--stagger",
            "0",
            "--retries",
            "0",
            EVIL_ID,
        ],
        vec!["merge"],
        vec!["clean", "--branches"],
        vec!["status"],
    ];
    for colour in ["never", "always"] {
        for args in &commands {
            let mut all = vec!["--color", colour];
            all.extend(args.iter().copied());
            let run = fake.run(&all);
            assert!(
                run.code() >= 0 && run.code() != crate::support::PANICKED,
                "{all:?} crashed\n{}",
                run.stderr()
            );
            assert_clean(&all, &run, colour == "always");
        }
    }
    // The data did reach those commands, escaped: they were not clean for saying nothing.
    let said = |args: &[&str]| {
        let run = fake.run(args);
        run.stdout() + &run.stderr()
    };
    for args in [
        vec!["status"],
        vec!["task", "list"],
        vec!["logs", EVIL_ID],
        vec!["start", "--worktrees", "--dry-run"],
    ] {
        let out = said(&args);
        assert!(out.contains(EVIL_ID_SHOWN), "{args:?}: {out}");
    }
    assert!(said(&["logs", EVIL_ID]).contains("text \\u{1b}[31mred"));
    assert!(said(&["task", "show", &evil_task]).contains("\\u{9b}1m\\ttab"));
    // `logs --raw` into a pipe is the log as written, bytes and all.
    let raw = fake.run(&["logs", "--raw", EVIL_ID]).success();
    assert!(raw.stdout().contains(EVIL_TEXT), "{:?}", raw.stdout());

    // `status --watch` (plain, not a terminal) prints the same escaped dashboard.
    let mut watch = Watched::spawn(fake.cmd(&["--color", "always", "status", "--watch", "60"]));
    watch.wait_stdout("the dashboard", LONG, |out| out.contains("overall:"));
    watch.signal("INT");
    assert_eq!(watch.wait_exit(LONG), Some(OK));
    for (name, text) in [("stdout", watch.stdout()), ("stderr", watch.stderr())] {
        let seen = strip_sgr(&text);
        assert!(
            !seen.chars().any(|c| c.is_control() && c != '\n'),
            "status --watch {name}: {text:?}"
        );
    }
}

#[test]
fn a_name_that_matches_no_stream_is_one_error_in_every_command() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    env.add_stream("Other", &[], 1, "pending");
    let fake = Fake::new(env);
    for args in [
        vec!["start", "Stream-Q"],
        vec!["start", "--dry-run", "Stream-Q"],
        vec!["stop", "Stream-Q"],
        vec!["clean", "Stream-Q"],
        vec!["logs", "Stream-Q"],
        vec!["task", "list", "--stream", "Stream-Q"],
        vec!["merge", "Stream-Q"],
        vec!["merge", "--dry-run", "Stream-Q"],
    ] {
        let run = fake.run(&args).expect_code(NO_STREAMS);
        let err = run.stderr();
        assert!(
            err.starts_with("error: no stream named `Stream-Q` (did you mean `Stream-A`?)\n")
                && err.contains("hint: the streams are: Other, Stream-A"),
            "{args:?}:\n{err}"
        );
    }
}

#[test]
fn a_failure_quotes_its_last_attempt_as_real_lines_after_three_starts() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    let mut fake = Fake::new(env);
    fake.set("COMPLETE", None, "0").set("EXIT", None, "3");
    let last_line = "fake worker for Stream-A exiting with 3";
    let mut run = None;
    for _ in 0..3 {
        run = Some(
            fake.run(&["start", "--stagger", "0", "--retries", "1"])
                .expect_code(INCOMPLETE),
        );
    }
    let run = run.unwrap();
    assert_eq!(
        fake.lines("Stream-A", "started").len(),
        6,
        "two attempts a start"
    );
    // The retry line: the reason, then the log line on a line of its own.
    let err = run.stderr();
    assert!(
        err.contains(&format!(
            "Stream-A: failed after 1 attempt: its worker exited with code 3; starting attempt 2\n    {last_line}\n"
        )),
        "{err}"
    );
    // The final summary: once, as a real line.
    let out = run.stdout();
    assert!(
        out.contains(&format!(
            "Stream-A (failed): failed after 2 attempts: its worker exited with code 3\n      {last_line}\n"
        )),
        "{out}"
    );
    assert_eq!(out.matches(last_line).count(), 1, "{out}");
    assert!(!out.contains("\\n"), "{out}");
    // status --json: the typed reason of the last attempt alone.
    let doc = fake.run(&["status", "--json"]).success().json();
    assert_eq!(
        doc["streams"][0]["reason"],
        json!({
            "kind": "failed", "cause": "exited", "attempts": 2,
            "exit": {"how": "code", "code": 3},
            "agent_error": null,
            "log_lines": [last_line],
        })
    );
    // status: the note, and the log line under the row; no literal "\n".
    let plain = fake.run(&["status"]).success().stdout();
    assert!(
        plain.contains("failed after 2 attempts: its worker exited with code 3\n")
            && plain.contains(&format!("\n      {last_line}\n")),
        "{plain}"
    );
    assert_eq!(plain.matches(last_line).count(), 1, "{plain}");
    assert!(!plain.contains("\\n"), "{plain}");
}

#[test]
fn merge_back_says_ahead_of_what_and_a_failed_stream_without_commits_is_not_merged() {
    let mut env = TestEnv::new();
    env.add_stream("Done", &[], 1, "pending");
    env.add_stream("Broken", &[], 1, "pending");
    let mut fake = Fake::new(env);
    fake.set("COMMIT", Some("Done"), "1")
        .set("COMPLETE", Some("Broken"), "0")
        .set("EXIT", Some("Broken"), "1");
    let run = fake
        .run(&["start", "--worktrees", "--stagger", "0", "--retries", "0"])
        .expect_code(INCOMPLETE);
    for out in [run.stdout(), fake.run(&["status"]).success().stdout()] {
        assert!(
            out.contains("(stream/Broken) 0 commits ahead of main: no commits, not complete"),
            "{out}"
        );
        assert!(!out.contains("already merged"), "{out}");
        assert!(
            out.contains("(stream/Done) 1 commit ahead of main: merges cleanly"),
            "{out}"
        );
        assert!(!out.contains("stream/Broken\n"), "not offered: {out}");
    }
    let plain = fake.run(&["status"]).success().stdout();
    assert!(
        plain.contains("stream/Done: 1 commit since its base"),
        "{plain}"
    );
    let doc = fake.run(&["status", "--json"]).success().json();
    let previews: Vec<_> = doc["merge_back"]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["stream"].clone(), s["preview"]["kind"].clone()))
        .collect();
    assert!(
        previews.contains(&(json!("Broken"), json!("no_commits"))),
        "{previews:?}"
    );

    // Merged, then `clean --branches`: the deleted branches are not shown any more.
    fake.run(&["merge"]).success();
    let clean = fake.run(&["clean", "--branches"]).success();
    assert!(
        clean.stdout().contains("deleted branch stream/Done"),
        "{}",
        clean.stdout()
    );
    let doc = fake.run(&["status", "--json"]).success().json();
    let done = doc["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "Done")
        .unwrap()
        .clone();
    assert_eq!(done["branch"], serde_json::Value::Null, "{doc}");
    let plain = fake.run(&["status"]).success().stdout();
    assert!(!plain.contains("stream/Done"), "{plain}");
}

#[test]
fn starting_one_stream_does_not_call_every_stream_complete_while_another_is_stopped() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    env.add_stream("Stream-B", &[], 1, "pending");
    let fake = Fake::new(env);
    let out = fake.run(&["start", "Stream-A"]).success().stdout();
    assert!(
        out.contains(
            "the selected streams are complete; other streams are not:\n  Stream-B (ready): not started"
        ),
        "{out}"
    );
    fake.run(&["stop", "Stream-B"]).success();
    let out = fake.run(&["start", "Stream-A"]).success().stdout();
    assert!(!out.contains("every stream is complete"), "{out}");
    assert!(
        out.contains(
            "the selected streams are complete; other streams are not:\n  Stream-B (stopped): stopped by the user\n      → `orchestrate start Stream-B` starts it again"
        ),
        "{out}"
    );
}
