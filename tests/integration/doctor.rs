//! `orchestrate doctor`: a healthy project passes with exit 0; each kind of breakage is a ✗
//! with a fix and exit 1; notes (!) do not fail the run.

use orchestrate::exit_codes;
use std::process::Command;

use crate::support::{Run, TestEnv};

/// `doctor` with a worker command that exists everywhere (`sh`).
fn doctor(env: &TestEnv) -> Run {
    let mut cmd = env.cmd(&["doctor"]);
    cmd.env("ORCHESTRATE_WORKER_CMD", "sh -c 'exit 0'");
    Run(cmd.output().unwrap())
}

fn line<'a>(out: &'a str, title: &str) -> &'a str {
    out.lines()
        .find(|l| {
            l.split_once(' ')
                .is_some_and(|(mark, rest)| mark.chars().count() == 1 && rest.starts_with(title))
        })
        .unwrap_or_else(|| panic!("no `{title}` line in:\n{out}"))
}

fn healthy() -> TestEnv {
    let mut env = TestEnv::new();
    env.diamond();
    env.run(&["init"]).success();
    env
}

#[test]
fn a_healthy_project_passes() {
    let env = healthy();
    let out = doctor(&env).success().stdout();
    assert!(!out.contains('✗'), "{out}");
    for title in [
        "project root",
        "git ",
        "git repository",
        "worktree support",
        "task database",
        "schema",
        "stream metadata",
        "dependencies",
        "config",
        "worker command",
        "worktree folder",
        "runtime folders",
        "installed files",
        "state store",
    ] {
        assert!(line(&out, title).starts_with('✓'), "{title}:\n{out}");
    }
    assert!(
        line(&out, "stream metadata").contains("4 streams, 8 tasks"),
        "{out}"
    );
    assert!(
        line(&out, "task database").contains("TASK_DB_PATH"),
        "{out}"
    );
    assert!(out.contains("Everything a run needs is in place."), "{out}");
}

#[test]
fn a_missing_database_blocks_and_says_how_the_path_was_derived() {
    let env = TestEnv::without_db();
    env.run(&["init"]).success();
    let out = doctor(&env).expect_code(exit_codes::FAILURE).stdout();
    let db = line(&out, "task database");
    assert!(db.starts_with('✗'), "{out}");
    assert!(db.contains("does not exist"), "{out}");
    assert!(db.contains("WORKSPACE_ID unset"), "{out}");
    assert!(
        db.contains("no tc .copilot/tasks.db found walking up"),
        "{out}"
    );
    assert!(out.contains("fix: in a tc project run `tc init`"), "{out}");
    assert!(out.contains("set WORKSPACE_ID"), "{out}");
    assert!(out.contains("1 problem blocks a run"), "{out}");
}

#[test]
fn a_file_that_is_not_a_task_database_fails_the_schema_check() {
    let env = TestEnv::without_db();
    let path = env.db_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE notes (id TEXT);")
        .unwrap();
    let out = doctor(&env).expect_code(exit_codes::FAILURE).stdout();
    assert!(line(&out, "schema").starts_with('✗'), "{out}");
    let schema = line(&out, "schema");
    assert!(schema.contains("lacks table `tasks`"), "{out}");
    assert!(
        schema.contains("neither a legacy Task Copilot store nor a tc"),
        "{out}"
    );
}

#[test]
fn no_streams_cycles_and_unknown_dependencies_block() {
    let mut env = TestEnv::new();
    env.add_task_raw("plain task", "pending", Some("{}"));
    let out = doctor(&env).expect_code(exit_codes::FAILURE).stdout();
    assert!(line(&out, "stream metadata").starts_with('✗'), "{out}");

    env.add_task("Stream-A", "a", "pending", &["Stream-B"]);
    env.add_task("Stream-B", "b", "pending", &["Stream-A"]);
    let out = doctor(&env).expect_code(exit_codes::FAILURE).stdout();
    let deps = line(&out, "dependencies");
    assert!(deps.starts_with('✗'), "{out}");
    assert!(deps.contains("dependency cycle"), "{out}");

    let mut env = TestEnv::new();
    env.add_task("Stream-A", "a", "pending", &[]);
    env.add_task("Stream-B", "b", "pending", &["Stream-AA"]);
    let out = doctor(&env).expect_code(exit_codes::FAILURE).stdout();
    assert!(
        line(&out, "dependencies").contains("did you mean `Stream-A`"),
        "{out}"
    );
}

#[test]
fn a_missing_worker_program_blocks() {
    let env = healthy();
    let mut cmd = env.cmd(&["doctor"]);
    cmd.env("ORCHESTRATE_WORKER_CMD", "no-such-agent-cli -p {prompt}");
    let run = Run(cmd.output().unwrap()).expect_code(exit_codes::FAILURE);
    let out = run.stdout();
    let worker = line(&out, "worker command");
    assert!(worker.starts_with('✗'), "{out}");
    assert!(worker.contains("`no-such-agent-cli`"), "{out}");
    assert!(out.contains("fix: install it"), "{out}");
}

#[test]
fn root_with_a_permission_skipping_worker_is_refused_unless_sandboxed() {
    if !nix::unistd::geteuid().is_root() {
        return; // The check only applies to root; its logic is unit-tested in doctor.rs.
    }
    let env = healthy();
    let bin = env.tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let claude = bin.join("claude");
    std::fs::write(&claude, "#!/bin/sh\nexit 0\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&claude, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let run = |sandbox: Option<&str>| {
        let mut cmd: Command = env.cmd(&["doctor"]);
        cmd.env("PATH", &path);
        if let Some(v) = sandbox {
            cmd.env("IS_SANDBOX", v);
        }
        Run(cmd.output().unwrap())
    };
    let out = run(None).expect_code(exit_codes::FAILURE).stdout();
    assert!(line(&out, "running as root").starts_with('✗'), "{out}");
    assert!(out.contains("IS_SANDBOX=1"), "{out}");
    let out = run(Some("1")).success().stdout();
    assert!(!out.contains("running as root"), "{out}");
}

#[test]
fn damaged_set_up_and_unset_project_are_notes_not_blockers() {
    let mut env = TestEnv::new();
    env.diamond();
    let out = doctor(&env).success().stdout();
    let installed = line(&out, "installed files");
    assert!(installed.starts_with('!'), "{out}");
    assert!(installed.contains("not set up yet"), "{out}");

    env.run(&["init"]).success();
    std::fs::remove_file(env.root.join(".claude/orchestrator/worker-prompt.md")).unwrap();
    std::fs::write(
        env.root.join(".claude/orchestrator/config.toml"),
        "retries = 2\n",
    )
    .unwrap();
    let out = doctor(&env).success().stdout();
    let installed = line(&out, "installed files");
    assert!(installed.starts_with('!'), "{out}");
    assert!(installed.contains("worker-prompt.md is missing"), "{out}");
    assert!(
        installed.contains("edited by you (kept): .claude/orchestrator/config.toml"),
        "{out}"
    );
    assert!(out.contains("`orchestrate init` repairs them"), "{out}");
    // doctor changes nothing.
    assert!(
        !env.root
            .join(".claude/orchestrator/worker-prompt.md")
            .exists()
    );
}

#[test]
fn a_corrupt_state_store_is_a_note_that_it_is_rebuilt() {
    let env = healthy();
    let store = env.root.join(".claude/orchestrator/state/state.db");
    let text = "this is not sqlite, just text long enough to not be an empty database file......";
    std::fs::write(&store, text).unwrap();
    // Every command that opens the store sets it aside and rebuilds it, `stop` included: the
    // old advice ("stop the workers first, then move it aside") could not be followed.
    let out = doctor(&env).success().stdout();
    let state = line(&out, "state store");
    assert!(state.starts_with('!'), "{out}");
    assert!(
        state.contains("corrupt") && state.contains("set aside"),
        "{out}"
    );
    assert!(state.contains("rebuilt from the running workers"), "{out}");
    assert!(!out.contains("orchestrate stop"), "{out}");
    // Doctor changes nothing.
    assert_eq!(std::fs::read_to_string(&store).unwrap(), text);
}

#[test]
fn outside_any_project_the_root_check_fails() {
    let env = TestEnv::without_db();
    let lonely = env.tmp.path().join("lonely");
    std::fs::create_dir_all(&lonely).unwrap();
    let mut cmd = env.cmd(&["doctor"]);
    cmd.current_dir(&lonely);
    let run = Run(cmd.output().unwrap()).expect_code(exit_codes::FAILURE);
    assert!(
        line(&run.stdout(), "project root").starts_with('✗'),
        "{}",
        run.stdout()
    );
}

#[test]
fn configured_target_branch_and_post_create_must_exist() {
    let env = healthy();
    let config = env.root.join(".claude/orchestrator/config.toml");
    std::fs::write(
        &config,
        "target_branch = \"release\"\npost_create = \"no-such-setup-tool --deps\"\n",
    )
    .unwrap();
    let out = doctor(&env).expect_code(exit_codes::FAILURE).stdout();
    assert!(line(&out, "target branch").starts_with('✗'), "{out}");
    assert!(out.contains("git branch release"), "{out}");
    assert!(
        line(&out, "post_create").contains("`no-such-setup-tool`"),
        "{out}"
    );

    env.git(&["branch", "release"]);
    std::fs::write(
        &config,
        "target_branch = \"release\"\npost_create = \"sh -c true\"\n",
    )
    .unwrap();
    let out = doctor(&env).success().stdout();
    assert!(line(&out, "target branch").starts_with('✓'), "{out}");
    assert!(line(&out, "post_create").starts_with('✓'), "{out}");
}

#[test]
fn an_unknown_worker_placeholder_is_a_note() {
    let env = healthy();
    let mut cmd = env.cmd(&["doctor"]);
    cmd.env("ORCHESTRATE_WORKER_CMD", "sh -c 'exit 0' {promt}");
    let out = Run(cmd.output().unwrap()).success().stdout();
    assert!(line(&out, "worker placeholders").starts_with('!'), "{out}");
    assert!(out.contains("{promt}"), "{out}");
}
