//! The config file as commands see it: precedence of environment over file over default, and
//! errors that name the key, the file and the line. (Flag > environment is covered by the unit
//! tests in `src/config.rs`, and by `start`'s own tests.)

use crate::support::TestEnv;
use orchestrate::exit_codes;

fn write_config(env: &TestEnv, text: &str) -> std::path::PathBuf {
    let path = env.root.join(".claude/orchestrator/config.toml");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

/// `doctor` names the worker program it resolved, which shows which setting won.
fn worker_line(env: &TestEnv, worker_env: Option<&str>) -> String {
    let mut cmd = env.cmd(&["doctor"]);
    if let Some(value) = worker_env {
        cmd.env("ORCHESTRATE_WORKER_CMD", value);
    }
    let out = String::from_utf8_lossy(&cmd.output().unwrap().stdout).into_owned();
    out.lines()
        .find(|l| l.contains("worker command"))
        .unwrap_or_else(|| panic!("no worker line:\n{out}"))
        .to_string()
}

#[test]
fn environment_beats_file_beats_default() {
    let env = TestEnv::new();
    assert!(worker_line(&env, None).contains("`claude`"));
    write_config(&env, "worker_cmd = \"from-file --x\"\n");
    assert!(worker_line(&env, None).contains("`from-file`"));
    assert!(worker_line(&env, Some("from-env {prompt}")).contains("`from-env`"));
    // An empty variable counts as unset.
    assert!(worker_line(&env, Some("")).contains("`from-file`"));
}

#[test]
fn unknown_key_is_an_error_naming_key_file_and_line() {
    let env = TestEnv::new();
    let path = write_config(&env, "# settings\nmax_parallel = 2\nmax_paralel = 3\n");
    let run = env.run(&["doctor"]).expect_code(exit_codes::FAILURE);
    let out = run.stdout();
    let expected = format!("{}:3:", path.display());
    assert!(out.contains(&expected), "{out}");
    assert!(out.contains("unknown field `max_paralel`"), "{out}");
    assert!(out.contains("✗ config"), "{out}");
}

#[test]
fn bad_value_is_an_error_naming_key_file_and_line() {
    let env = TestEnv::new();
    let path = write_config(&env, "retries = 1\n\nstagger = \"soon\"\n");
    let out = env
        .run(&["doctor"])
        .expect_code(exit_codes::FAILURE)
        .stdout();
    assert!(
        out.contains(&format!("{}:3: `stagger`", path.display())),
        "{out}"
    );

    let path = write_config(&env, "max_parallel = 0\n");
    let out = env
        .run(&["doctor"])
        .expect_code(exit_codes::FAILURE)
        .stdout();
    assert!(
        out.contains(&format!(
            "{}:1: `max_parallel`: must be a whole number ≥ 1, not 0",
            path.display()
        )),
        "{out}"
    );
}

#[test]
fn bad_environment_value_names_the_variable() {
    let env = TestEnv::new();
    let mut cmd = env.cmd(&["doctor"]);
    cmd.env("ORCHESTRATE_MAX_PARALLEL", "many");
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(exit_codes::FAILURE), "{stdout}");
    assert!(
        stdout.contains(
            "environment variable ORCHESTRATE_MAX_PARALLEL: `many` is not a whole number"
        ),
        "{stdout}"
    );
}

#[test]
fn init_warns_about_a_broken_config_and_keeps_it() {
    let env = TestEnv::without_db();
    let path = write_config(&env, "worktrees = \"yes\"\n");
    let run = env.run(&["init"]).success();
    assert!(
        run.stderr()
            .contains(&format!("{}:1: `worktrees`", path.display())),
        "{}",
        run.stderr()
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "worktrees = \"yes\"\n"
    );
}

#[test]
fn seconds_flags_are_checked_like_the_config_file() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    // `--grace 1e30` used to panic converting to a duration (exit 101).
    for args in [
        &["stop", "--grace", "1e30"][..],
        &["stop", "--grace=-1"],
        &["start", "--dry-run", "--stagger", "NaN"],
        &["status", "--watch", "0"],
    ] {
        let run = env.run(args).expect_code(exit_codes::USAGE);
        let err = run.stderr();
        assert!(
            err.contains("number of seconds") || err.contains("more than 0 seconds"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
