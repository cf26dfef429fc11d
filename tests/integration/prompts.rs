//! What reaches a worker (PRODUCT.md, "Safety", promise 7; issue 12 items 10 and 11 and the
//! shell placeholders): templates are filled in one pass, so text from the database arrives as
//! written however many placeholders it holds; prompts of any size arrive whole (on stdin and
//! in a file past the safe argument size); and a placeholder inside a shell script is refused
//! before anything runs.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use orchestrate::exit_codes;
use rusqlite::params;
use serde_json::json;

use crate::start::{FAKE_WORKER, Fake};
use crate::support::{Run, TestEnv, with_memory_limit};

/// A fake worker that saves the prompt it was given and completes nothing.
fn saving(env: TestEnv) -> Fake {
    let mut fake = Fake::new(env);
    fake.set("SAVE_PROMPT", None, "1")
        .set("COMPLETE", None, "0");
    fake
}

fn read(path: &PathBuf) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path:?}: {e}"))
}

/// `n` tasks of `stream` in one transaction (one `add_task` each would take seconds).
fn add_many(env: &TestEnv, stream: &str, n: usize) -> Vec<String> {
    let mut conn = env.conn();
    let tx = conn.transaction().unwrap();
    let meta = json!({"streamId": stream, "streamName": "large", "dependencies": []}).to_string();
    let ids: Vec<String> = (0..n)
        .map(|i| format!("TASK-{i:08x}-0000-4000-8000-00000000{i:04x}"))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        tx.execute(
            "INSERT INTO tasks (id, title, status, metadata, created_at, updated_at)
             VALUES (?1, ?2, 'pending', ?3, '2026-01-09T12:00:00.000Z', '2026-01-09T12:00:00.000Z')",
            params![id, format!("{stream} task number {i} of a large stream"), meta],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    ids
}

#[test]
fn text_from_the_database_is_never_filled_again() {
    let mut env = TestEnv::new();
    let title = "use {stream}, {worktree}, {prompt}, {prompt_file} and {{db}} {{tasks}} as written";
    env.add_task_meta(
        title,
        "pending",
        json!({"streamId": "Stream-B", "streamName": "{{stream_id}} {stream}", "dependencies": []}),
    );
    let fake = saving(env);
    fake.run(&["start", "--retries", "0"])
        .expect_code(exit_codes::INCOMPLETE);
    let prompt = read(&fake.marker("Stream-B", "prompt"));
    assert!(prompt.contains(title), "{prompt}");
    assert!(
        prompt.contains("**Stream-B** ({{stream_id}} {stream})"),
        "{prompt}"
    );
    // Small prompts still travel as the argument, and the file is offered too.
    assert_eq!(fake.lines("Stream-B", "argc"), ["1"]);
    let file = PathBuf::from(&fake.lines("Stream-B", "prompt-path")[0]);
    assert_eq!(read(&file), prompt);
}

#[test]
fn an_18_kb_row_of_placeholders_starts_with_bounded_memory() {
    // One row: a stream id made of `{{stream_name}}`, a name made of `{{tasks}}` and a title
    // made of `{{branch}}`. Filled in a chain of `replace`s, each expansion multiplied the
    // next: 3 × 10 × 1000 copies of the title, then 800 branch texts in each (> 1 GB).
    let mut env = TestEnv::new();
    let id = "{{stream_name}}".repeat(10);
    let name = "{{tasks}}".repeat(1000);
    let title = "{{branch}}".repeat(800);
    env.add_task_meta(
        &title,
        "pending",
        json!({"streamId": id, "streamName": name, "dependencies": []}),
    );
    let row = id.len() + name.len() + title.len();
    assert!((17_000..19_000).contains(&row), "{row}");
    let fake = saving(env);
    // 1 GiB of address space is plenty for a correct `start`, and far too little for the
    // expansion (which aborted with `memory allocation of 3284745216 bytes failed`).
    let mut cmd = with_memory_limit(&fake.cmd(&["start", "--retries", "0"]), 1 << 20);
    Run(cmd.output().unwrap()).expect_code(exit_codes::INCOMPLETE);
    let prompt = read(&fake.marker(&id, "prompt"));
    assert!(prompt.len() < 3 * row, "{} bytes", prompt.len());
    assert!(prompt.contains(&format!("**{id}** ({name})")), "{prompt}");
    assert!(prompt.contains(&format!("[pending] {title}\n")), "{prompt}");
    assert_eq!(
        prompt.matches(&id).count(),
        3,
        "the template names it three times"
    );
}

#[test]
fn a_2500_task_stream_reaches_the_worker_whole() {
    let env = TestEnv::new();
    let ids = add_many(&env, "Stream-L", 2500);
    let fake = saving(env);
    let run = fake
        .run(&["start", "--retries", "0"])
        .expect_code(exit_codes::INCOMPLETE);
    assert!(
        !run.stdout().contains("Argument list too long"),
        "{}",
        run.stdout()
    );
    // Past the safe argument size the `{prompt}` word is left out and the prompt comes on
    // stdin, as `claude -p` reads it without an argument.
    assert_eq!(fake.lines("Stream-L", "argc"), ["0"], "{}", run.stderr());
    let prompt = read(&fake.marker("Stream-L", "prompt"));
    assert!(prompt.len() > 200_000, "{} bytes", prompt.len());
    for id in &ids {
        assert!(
            prompt.contains(&format!("- `{id}` [pending]")),
            "{id} missing"
        );
    }
    assert!(
        prompt.contains("## Protocol (mandatory)"),
        "the template's end"
    );
    // The same text is in ORCHESTRATE_PROMPT_FILE, readable by the user only.
    let file = PathBuf::from(&fake.lines("Stream-L", "prompt-path")[0]);
    assert_eq!(read(&file), prompt);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{file:?}");
    let dir = std::fs::metadata(file.parent().unwrap()).unwrap();
    assert_eq!(dir.permissions().mode() & 0o777, 0o700);
}

#[test]
fn the_prompt_file_placeholder_names_the_whole_prompt() {
    let env = TestEnv::new();
    let ids = add_many(&env, "Stream-L", 2500);
    let fake = saving(env);
    let mut cmd = fake.cmd(&["start", "--retries", "0"]);
    cmd.env(
        "ORCHESTRATE_WORKER_CMD",
        format!("{FAKE_WORKER} {{prompt_file}}"),
    );
    Run(cmd.output().unwrap()).expect_code(exit_codes::INCOMPLETE);
    let path = read(&fake.marker("Stream-L", "prompt"));
    assert_eq!(fake.lines("Stream-L", "prompt-path"), [path.as_str()]);
    let prompt = read(&PathBuf::from(&path));
    assert!(ids.iter().all(|id| prompt.contains(id.as_str())));
}

#[test]
fn a_large_prompt_inside_a_longer_word_fails_with_the_fix() {
    let env = TestEnv::new();
    add_many(&env, "Stream-L", 2500);
    let fake = saving(env);
    let mut cmd = fake.cmd(&["start", "--retries", "0"]);
    cmd.env(
        "ORCHESTRATE_WORKER_CMD",
        format!("{FAKE_WORKER} --prompt={{prompt}}"),
    );
    let run = Run(cmd.output().unwrap()).expect_code(exit_codes::INCOMPLETE);
    let out = run.stdout();
    assert!(
        out.contains("--prompt={prompt}") && out.contains("{prompt_file}"),
        "{out}"
    );
    assert!(fake.lines("Stream-L", "started").is_empty());
}

/// A stream id a shell would run: `$(…)`, `;` and a backquote.
const HOSTILE: &str = "$(touch PWNED); touch PWNED2 `touch PWNED3`";

fn hostile() -> Fake {
    let mut env = TestEnv::new();
    env.add_task(HOSTILE, "hostile", "pending", &[]);
    env.run(&["init"]).success();
    saving(env)
}

fn pwned(fake: &Fake) -> Vec<String> {
    let mut found = Vec::new();
    for dir in [
        &fake.env.root,
        &fake.markers,
        &fake.env.tmp.path().to_path_buf(),
    ] {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("PWNED") {
                found.push(name);
            }
        }
    }
    found
}

#[test]
fn a_placeholder_inside_a_shell_script_is_refused_by_start_and_doctor() {
    let fake = hostile();
    for script in [
        format!("sh -c '{FAKE_WORKER} {{stream}}'"),
        format!("env FOO=1 bash -ec 'exec {FAKE_WORKER} {{prompt}}'"),
        "python3 -c 'import os; os.system(\"{stream}\")'".to_string(),
    ] {
        for args in [&["start"][..], &["start", "--dry-run"]] {
            let mut cmd = fake.cmd(args);
            cmd.env("ORCHESTRATE_WORKER_CMD", &script);
            let run = Run(cmd.output().unwrap()).expect_code(exit_codes::USAGE);
            let err = run.stderr();
            assert!(err.contains("runs as code"), "{script}: {err}");
            assert!(err.contains("ORCHESTRATE_STREAM"), "{script}: {err}");
        }
        let mut cmd = fake.env.cmd(&["doctor"]);
        cmd.env("ORCHESTRATE_WORKER_CMD", &script);
        let out = Run(cmd.output().unwrap())
            .expect_code(exit_codes::FAILURE)
            .stdout();
        let line = out
            .lines()
            .find(|l| l.contains("worker placeholders"))
            .unwrap_or_else(|| panic!("{out}"));
        assert!(line.starts_with('✗'), "{out}");
        assert!(out.contains("ORCHESTRATE_"), "{out}");
    }
    assert!(fake.lines(HOSTILE, "started").is_empty());
    assert_eq!(pwned(&fake), Vec::<String>::new());
}

#[test]
fn a_placeholder_after_the_script_reaches_the_worker_verbatim() {
    let fake = hostile();
    let mut cmd = fake.cmd(&["start", "--retries", "0"]);
    // The safe form: the script names `$1`, the id is a whole argument of its own.
    cmd.env(
        "ORCHESTRATE_WORKER_CMD",
        format!("sh -c 'exec \"$0\" \"$1\"' {FAKE_WORKER} {{stream}}"),
    );
    Run(cmd.output().unwrap()).expect_code(exit_codes::INCOMPLETE);
    assert_eq!(read(&fake.marker(HOSTILE, "prompt")), HOSTILE);
    assert_eq!(pwned(&fake), Vec::<String>::new());
}

#[test]
fn a_stream_name_too_long_for_the_environment_fails_with_a_hint() {
    // The name is in ORCHESTRATE_STREAM_NAME, and Linux refuses one variable past 128 KiB.
    let mut env = TestEnv::new();
    let name = "n".repeat(200 * 1024);
    env.add_task_meta(
        "t",
        "pending",
        json!({"streamId": "Stream-N", "streamName": name, "dependencies": []}),
    );
    let fake = saving(env);
    let run = fake
        .run(&["start", "--retries", "0"])
        .expect_code(exit_codes::INCOMPLETE);
    let out = run.stdout();
    assert!(
        out.contains("Argument list too long"),
        "{}",
        &out[..out.len().min(2000)]
    );
    assert!(
        out.contains("larger than the system allows"),
        "{}",
        &out[..out.len().min(2000)]
    );
    assert!(fake.lines("Stream-N", "started").is_empty());
}
