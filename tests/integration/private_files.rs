//! Files that hold the worker command (which may carry keys) and agent output are the user's
//! alone (issue 12, "Smaller"): logs, the state store with its `-wal`/`-shm`, and prompt files
//! are created 0600 in 0700 folders, and ones found looser are tightened, with one message.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use orchestrate::config::Config;
use orchestrate::exit_codes;

use crate::start::{Fake, state_db};
use crate::support::TestEnv;
use crate::worktrees::{graph, prepare, workspaces};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{path:?}: {e}"))
        .permissions()
        .mode()
        & 0o777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every file that must be private after a run, with its folder.
fn private_paths(root: &Path) -> Vec<PathBuf> {
    let db = state_db(root);
    let mut paths = vec![
        root.join(".claude/orchestrator/logs/Stream-A.log"),
        db.clone(),
    ];
    for side in ["-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{side}", db.display()));
        if p.exists() {
            paths.push(p);
        }
    }
    paths
}

fn assert_private(root: &Path) {
    for file in private_paths(root) {
        assert_eq!(mode(&file), 0o600, "{file:?}");
        let dir = file.parent().unwrap();
        assert_eq!(mode(dir), 0o700, "{dir:?}");
    }
}

fn one_stream() -> Fake {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    let mut fake = Fake::new(env);
    // Incomplete on purpose: a plain `start` runs it again.
    fake.set("COMPLETE", None, "0");
    fake
}

#[test]
fn logs_and_the_state_store_are_created_private() {
    let fake = one_stream();
    let run = fake
        .run(&["start", "--retries", "0"])
        .expect_code(exit_codes::INCOMPLETE);
    assert_private(&fake.env.root);
    // Nothing was loose, so nothing is said.
    assert!(
        !run.stderr().contains("only you can read it now"),
        "{}",
        run.stderr()
    );
}

#[test]
fn the_post_create_log_is_created_private() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    let config = Config {
        post_create: Some("true".into()),
        ..Config::default()
    };
    let g = graph(&env);
    let mut ws = workspaces(&env, config);
    prepare(&mut ws, &g, "Stream-A");
    let log = env.root.join(".claude/orchestrator/logs/Stream-A.log");
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("post_create")
    );
    assert_eq!(mode(&log), 0o600);
    assert_eq!(mode(log.parent().unwrap()), 0o700);
    assert_eq!(mode(&state_db(&env.root)), 0o600);
}

#[test]
fn loose_files_from_before_are_tightened_and_said_once() {
    let fake = one_stream();
    fake.run(&["start", "--retries", "0"])
        .expect_code(exit_codes::INCOMPLETE);
    let root = &fake.env.root;
    let loose = private_paths(root);
    for file in &loose {
        set_mode(file, 0o644);
        set_mode(file.parent().unwrap(), 0o755);
    }
    let run = fake
        .run(&["start", "--retries", "0"])
        .expect_code(exit_codes::INCOMPLETE);
    let err = run.stderr();
    assert_private(root);
    let dirs: Vec<&Path> = loose.iter().map(|f| f.parent().unwrap()).collect();
    for path in loose.iter().map(PathBuf::as_path).chain(dirs) {
        let said = format!("{} was ", path.display());
        let lines = err.lines().filter(|l| l.contains(&said));
        assert_eq!(lines.count(), 1, "{path:?} in:\n{err}");
    }
    assert!(err.contains("only you can read it now"), "{err}");
    let again = fake
        .run(&["start", "--retries", "0"])
        .expect_code(exit_codes::INCOMPLETE);
    assert!(
        !again.stderr().contains("only you can read it now"),
        "{}",
        again.stderr()
    );
}

/// The markers under `<git dir>/orchestrate/` are made private from the start, so the first
/// `merge` (which keeps that folder private) has nothing loose to tighten and nothing to say.
#[test]
fn the_git_dir_folder_of_a_worktree_run_is_created_private() {
    let fake = one_stream();
    fake.run(&["start", "--worktrees", "--retries", "0"])
        .expect_code(exit_codes::INCOMPLETE);
    let ours = fake.env.root.join(".git/orchestrate");
    assert_eq!(mode(&ours), 0o700, "{ours:?}");
    let merge = fake.run(&["merge", "--dry-run"]);
    assert!(
        !merge.stderr().contains("only you can read it now"),
        "{}",
        merge.stderr()
    );
}
