//! Worktree mode through the `Workspaces` seam, against real repositories: bases from
//! dependencies (diamond, conflicts), reuse, repair, awkward names, failed adds, locks,
//! auto-commit, `.worktreeinclude`, `post_create` and `.git/info/exclude`.

use std::path::Path;

use orchestrate::config::Config;
use orchestrate::git::WorktreeWorkspaces;
use orchestrate::graph::{Stream, StreamGraph};
use orchestrate::model::{Attention, Block};
use orchestrate::project::Project;
use orchestrate::taskdb::{TaskDb, TaskSource};
use orchestrate::workspace::{Placement, PrepareFailure, Workspaces};

use crate::support::TestEnv;

pub fn graph(env: &TestEnv) -> StreamGraph {
    let mut db = TaskDb::open(&env.db_path(), "test").unwrap();
    StreamGraph::build(&db.snapshot().unwrap()).unwrap()
}

pub fn workspaces(env: &TestEnv, config: Config) -> WorktreeWorkspaces {
    let project = Project {
        root: env.root.clone(),
    };
    // In-process, this test program would stand in for `orchestrate __sandbox` around
    // `post_create`: the sandboxed post_create is tested through the binary (sandbox.rs).
    let config = Config {
        sandbox: orchestrate::worker::sandbox::Mode::Off,
        ..config
    };
    WorktreeWorkspaces::new(project, config).unwrap()
}

pub fn stream<'g>(g: &'g StreamGraph, id: &str) -> &'g Stream {
    g.get(id).unwrap()
}

pub fn prepare(ws: &mut WorktreeWorkspaces, g: &StreamGraph, id: &str) -> Placement {
    ws.prepare(stream(g, id), g)
        .unwrap_or_else(|e| panic!("prepare {id}: {e:?}"))
}

/// Commits `file` with `content` in `dir`, as a worker would.
pub fn commit_file(env: &TestEnv, dir: &Path, file: &str, content: &str) {
    std::fs::write(dir.join(file), content).unwrap();
    env.git_in(dir, &["add", file]);
    env.git_in(dir, &["commit", "-q", "-m", &format!("add {file}")]);
}

fn admin_names(env: &TestEnv) -> Vec<String> {
    let dir = env.root.join(".git/worktrees");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn diamond_bases_hold_every_dependency_s_work() {
    let mut env = TestEnv::new();
    env.diamond();
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    let a = prepare(&mut ws, &g, "Stream-A");
    assert_eq!(a.dir, env.root.join(".claude/worktrees/Stream-A"));
    assert_eq!(a.branch.as_deref(), Some("stream/Stream-A"));
    let head = env.git(&["rev-parse", "HEAD"]);
    assert_eq!(a.base.as_deref(), Some(head.trim()));
    commit_file(&env, &a.dir, "a.txt", "from A\n");

    let b = prepare(&mut ws, &g, "Stream-B");
    assert!(b.dir.join("a.txt").exists(), "B starts from A's tip");
    commit_file(&env, &b.dir, "b.txt", "from B\n");
    let c = prepare(&mut ws, &g, "Stream-C");
    commit_file(&env, &c.dir, "c.txt", "from C\n");

    let z = prepare(&mut ws, &g, "Stream-Z");
    for f in ["a.txt", "b.txt", "c.txt", "README.md"] {
        assert!(z.dir.join(f).exists(), "{f} missing from Z's worktree");
    }
    // The base is a merge commit of B's and C's tips, committed on Z's branch.
    let parents = env.git(&["rev-list", "--parents", "-n1", "stream/Stream-Z"]);
    let b_tip = env.git(&["rev-parse", "stream/Stream-B"]);
    let c_tip = env.git(&["rev-parse", "stream/Stream-C"]);
    assert!(
        parents.contains(b_tip.trim()) && parents.contains(c_tip.trim()),
        "{parents}"
    );
    assert_eq!(
        z.base.as_deref(),
        Some(env.git(&["rev-parse", "stream/Stream-Z"]).trim())
    );
    // The project root stays on main and clean (worktrees and state are excluded).
    assert_eq!(env.git(&["branch", "--show-current"]).trim(), "main");
    assert_eq!(env.git(&["status", "--porcelain"]), "");
}

#[test]
fn conflicting_dependencies_block_the_stream_and_name_the_path() {
    let mut env = TestEnv::new();
    env.diamond();
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    let a = prepare(&mut ws, &g, "Stream-A");
    commit_file(&env, &a.dir, "shared.txt", "base\n");
    let b = prepare(&mut ws, &g, "Stream-B");
    commit_file(&env, &b.dir, "shared.txt", "B's version\n");
    let c = prepare(&mut ws, &g, "Stream-C");
    commit_file(&env, &c.dir, "shared.txt", "C's version\n");

    let err = ws.prepare(stream(&g, "Stream-Z"), &g).unwrap_err();
    let PrepareFailure::Blocked(Block::BaseConflict {
        branches, paths, ..
    }) = err
    else {
        panic!("expected a base conflict, got {err:?}");
    };
    assert_eq!(paths, ["shared.txt"]);
    assert_eq!(branches, ["stream/Stream-B", "stream/Stream-C"]);
    // Nothing was started on it.
    assert!(!env.root.join(".claude/worktrees/Stream-Z").exists());
    assert_eq!(env.git(&["branch", "--list", "stream/Stream-Z"]), "");
}

#[test]
fn rerun_reuses_the_worktree_and_never_resets_the_branch() {
    let mut env = TestEnv::new();
    env.diamond();
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    let a = prepare(&mut ws, &g, "Stream-A");
    commit_file(&env, &a.dir, "a.txt", "work\n");
    let tip = env.git(&["rev-parse", "stream/Stream-A"]);

    let mut again = workspaces(&env, Config::default());
    let a2 = prepare(&mut again, &g, "Stream-A");
    assert_eq!(a2.dir, a.dir);
    assert_eq!(a2.base, a.base, "the recorded base is kept");
    assert!(
        a2.notes.iter().any(|n| n.contains("reused")),
        "{:?}",
        a2.notes
    );
    assert_eq!(env.git(&["rev-parse", "stream/Stream-A"]), tip);
    assert!(a2.dir.join("a.txt").exists());

    // B's branch from an earlier run lacks A's new work: reused as is, with a note.
    let b = prepare(&mut again, &g, "Stream-B");
    commit_file(&env, &a.dir, "a2.txt", "more\n");
    let b2 = prepare(&mut again, &g, "Stream-B");
    assert_eq!(b2.base, b.base);
    assert!(
        b2.notes
            .iter()
            .any(|n| n.contains("does not contain") && n.contains("stream/Stream-A")),
        "{:?}",
        b2.notes
    );
}

#[test]
fn a_worktree_folder_deleted_by_hand_is_repaired() {
    let mut env = TestEnv::new();
    env.diamond();
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    let a = prepare(&mut ws, &g, "Stream-A");
    commit_file(&env, &a.dir, "a.txt", "committed work\n");
    std::fs::remove_dir_all(&a.dir).unwrap();

    let a2 = prepare(&mut ws, &g, "Stream-A");
    assert!(
        a2.notes.iter().any(|n| n.contains("stale")),
        "{:?}",
        a2.notes
    );
    assert!(a2.dir.join("a.txt").exists(), "committed work is back");
    let list = env.git(&["worktree", "list", "--porcelain"]);
    assert!(!list.contains("prunable"), "{list}");
    assert_eq!(list.matches("stream/Stream-A").count(), 1, "{list}");
    env.git_in(&a2.dir, &["status"]);
}

#[test]
fn names_with_spaces_and_slashes_get_valid_branches_and_folders() {
    let mut env = TestEnv::new();
    env.add_stream("api/v2 auth", &[], 1, "pending");
    env.add_stream("Ström..lock", &["api/v2 auth"], 1, "pending");
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    let p = prepare(&mut ws, &g, "api/v2 auth");
    let branch = p.branch.clone().unwrap();
    assert!(branch.starts_with("stream/api-v2-auth-"), "{branch}");
    env.git(&["check-ref-format", &format!("refs/heads/{branch}")]);
    assert_eq!(
        p.dir.parent().unwrap(),
        env.root.join(".claude/worktrees"),
        "one folder level, no slash in it"
    );
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("api/v2 auth") && n.contains(&branch))
    );
    commit_file(&env, &p.dir, "auth.txt", "x\n");

    let q = prepare(&mut ws, &g, "Ström..lock");
    let qb = q.branch.unwrap();
    env.git(&["check-ref-format", &format!("refs/heads/{qb}")]);
    assert!(
        q.dir.join("auth.txt").exists(),
        "based on the dependency's branch"
    );
    // The same id maps to the same names in another process / run.
    let again = prepare(&mut workspaces(&env, Config::default()), &g, "api/v2 auth");
    assert_eq!(again.branch.unwrap(), branch);
}

#[test]
fn a_folder_in_the_way_is_refused_and_a_failed_add_leaves_nothing_behind() {
    let mut env = TestEnv::new();
    env.diamond();
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    let in_the_way = env.root.join(".claude/worktrees/Stream-A");
    std::fs::create_dir_all(&in_the_way).unwrap();
    std::fs::write(in_the_way.join("mine.txt"), "user data\n").unwrap();
    let err = ws.prepare(stream(&g, "Stream-A"), &g).unwrap_err();
    assert!(
        matches!(&err, PrepareFailure::Blocked(Block::WorktreeInTheWay { path, .. }) if path == &in_the_way),
        "{err:?}"
    );
    assert_eq!(
        std::fs::read_to_string(in_the_way.join("mine.txt")).unwrap(),
        "user data\n"
    );
    assert!(admin_names(&env).is_empty(), "{:?}", admin_names(&env));

    // libgit2 itself fails (the worktrees folder is a file): no half-made admin dir.
    std::fs::remove_dir_all(env.root.join(".claude/worktrees")).unwrap();
    std::fs::write(env.root.join(".claude/worktrees"), "not a folder").unwrap();
    let err = ws.prepare(stream(&g, "Stream-A"), &g).unwrap_err();
    assert!(matches!(err, PrepareFailure::Failed { .. }), "{err:?}");
    assert!(admin_names(&env).is_empty(), "{:?}", admin_names(&env));
    std::fs::remove_file(env.root.join(".claude/worktrees")).unwrap();
    // What a failed libgit2 add leaves: an admin dir without `gitdir`, invisible to
    // `git worktree list`, that would make the next add fail with "directory exists".
    std::fs::create_dir_all(env.root.join(".git/worktrees/Stream-A")).unwrap();
    let a = prepare(&mut ws, &g, "Stream-A");
    assert!(a.dir.join("README.md").exists());
}

#[test]
fn a_branch_checked_out_elsewhere_is_refused() {
    let mut env = TestEnv::new();
    env.diamond();
    let g = graph(&env);
    env.git(&["branch", "stream/Stream-A"]);
    let elsewhere = env.tmp.path().join("elsewhere");
    env.git(&[
        "worktree",
        "add",
        "-q",
        elsewhere.to_str().unwrap(),
        "stream/Stream-A",
    ]);
    let mut ws = workspaces(&env, Config::default());
    let err = ws.prepare(stream(&g, "Stream-A"), &g).unwrap_err();
    let PrepareFailure::Blocked(Block::CheckedOutElsewhere { branch, path }) = err else {
        panic!("{err:?}")
    };
    assert_eq!(branch, "stream/Stream-A");
    assert!(path.ends_with("elsewhere"), "{path:?}");
}

#[test]
fn worker_lifecycle_locks_then_unlocks_and_auto_commits_leftovers() {
    let mut env = TestEnv::new();
    env.diamond();
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    let a = prepare(&mut ws, &g, "Stream-A");
    ws.worker_started("Stream-A", &a, 4242);
    let list = env.git(&["worktree", "list", "--porcelain"]);
    assert!(
        list.contains("locked orchestrate: stream Stream-A worker pid 4242"),
        "{list}"
    );
    std::fs::write(a.dir.join("left.txt"), "uncommitted\n").unwrap();
    let done = ws.worker_finished("Stream-A", &a);
    assert!(done.attention.is_none(), "{done:?}");
    assert!(
        done.notes.iter().any(|n| n.starts_with("committed 1 file")),
        "{done:?}"
    );
    assert!(
        !env.git(&["worktree", "list", "--porcelain"])
            .contains("locked")
    );
    let msg = env.git(&["log", "-1", "--format=%B", "stream/Stream-A"]);
    assert!(msg.contains("orchestrate"), "{msg}");
    assert_eq!(env.git_in(&a.dir, &["status", "--porcelain"]), "");

    let mut manual = workspaces(
        &env,
        Config {
            auto_commit: false,
            ..Config::default()
        },
    );
    std::fs::write(a.dir.join("more.txt"), "uncommitted\n").unwrap();
    let done = manual.worker_finished("Stream-A", &a);
    assert!(
        matches!(&done.attention, Some(Attention::DirtyFinish { files, .. }) if files == &["more.txt"]),
        "{done:?}"
    );
    assert!(a.dir.join("more.txt").exists());
}

#[test]
fn worktreeinclude_copies_only_really_ignored_files() {
    let mut env = TestEnv::new();
    env.diamond();
    let ignore = ".env\nsecrets/\ntarget/\nconfig/local.toml\nlink.env\n";
    let include = ".env\nsecrets/\nnotes.txt\nconfig/local.toml\nlink.env\n";
    std::fs::write(env.root.join(".gitignore"), ignore).unwrap();
    std::fs::write(env.root.join(".worktreeinclude"), include).unwrap();
    std::fs::create_dir_all(env.root.join("config")).unwrap();
    std::fs::write(env.root.join("config/app.toml"), "tracked\n").unwrap();
    env.git(&["add", ".gitignore", ".worktreeinclude", "config/app.toml"]);
    env.git(&["commit", "-q", "-m", "ignore rules"]);
    std::fs::write(env.root.join(".env"), "TOKEN=42\n").unwrap();
    std::fs::create_dir_all(env.root.join("secrets")).unwrap();
    std::fs::write(env.root.join("secrets/key.pem"), "KEY\n").unwrap();
    // Matches .worktreeinclude but is not ignored: user work, not copied.
    std::fs::write(env.root.join("notes.txt"), "draft\n").unwrap();
    std::fs::write(env.root.join("config/local.toml"), "local\n").unwrap();
    // A build folder is not walked for a name-only pattern like `.env`.
    std::fs::create_dir_all(env.root.join("target/debug")).unwrap();
    std::fs::write(env.root.join("target/debug/.env"), "build\n").unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", env.root.join("link.env")).unwrap();
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    let a = prepare(&mut ws, &g, "Stream-A");
    assert_eq!(
        std::fs::read_to_string(a.dir.join(".env")).unwrap(),
        "TOKEN=42\n"
    );
    assert!(a.dir.join("secrets/key.pem").exists());
    assert!(!a.dir.join("notes.txt").exists());
    assert_eq!(
        std::fs::read_to_string(a.dir.join("config/local.toml")).unwrap(),
        "local\n"
    );
    assert!(!a.dir.join("target").exists());
    assert!(
        std::fs::symlink_metadata(a.dir.join("link.env")).is_err(),
        "a symlink leading outside the repository is not copied"
    );
    assert!(
        a.notes
            .iter()
            .any(|n| n.contains("link.env") && n.contains("outside the repository")),
        "{:?}",
        a.notes
    );
    assert!(a.notes.iter().any(|n| n.contains(".env")), "{:?}", a.notes);
}

#[test]
fn post_create_runs_in_the_new_worktree_and_its_failure_fails_the_stream() {
    let mut env = TestEnv::new();
    env.diamond();
    let g = graph(&env);
    let ok = Config {
        post_create: Some("sh -c 'echo setup-output; touch .post-created'".into()),
        ..Config::default()
    };
    let a = prepare(&mut workspaces(&env, ok), &g, "Stream-A");
    assert!(a.dir.join(".post-created").exists());
    let log = env.root.join(".claude/orchestrator/logs/Stream-A.log");
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("setup-output")
    );

    let failing = Config {
        post_create: Some("sh -c 'echo broken-setup >&2; exit 3'".into()),
        ..Config::default()
    };
    let err = workspaces(&env, failing)
        .prepare(stream(&g, "Stream-B"), &g)
        .unwrap_err();
    let PrepareFailure::Failed { detail: reason } = err else {
        panic!("{err:?}")
    };
    assert!(reason.contains("exit status: 3"), "{reason}");
    let log = env.root.join(".claude/orchestrator/logs/Stream-B.log");
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("broken-setup")
    );

    let slow = Config {
        post_create: Some("sleep 30".into()),
        post_create_timeout: std::time::Duration::from_millis(200),
        ..Config::default()
    };
    let err = workspaces(&env, slow)
        .prepare(stream(&g, "Stream-C"), &g)
        .unwrap_err();
    assert!(
        matches!(&err, PrepareFailure::Failed { detail: reason } if reason.contains("did not finish")),
        "{err:?}"
    );
}

#[test]
fn exclude_entries_are_added_once() {
    let env = TestEnv::new();
    let exclude = env.root.join(".git/info/exclude");
    workspaces(&env, Config::default());
    workspaces(&env, Config::default());
    let text = std::fs::read_to_string(&exclude).unwrap();
    for entry in [
        "/.claude/worktrees/",
        "/.claude/orchestrator/logs/",
        "/.claude/orchestrator/state/",
    ] {
        assert_eq!(text.lines().filter(|l| *l == entry).count(), 1, "{text}");
    }
    // The state store lives under an excluded folder: the checkout stays clean.
    orchestrate::state::StateStore::open(&env.root.join(".claude/orchestrator/state/state.db"))
        .unwrap();
    assert_eq!(env.git(&["status", "--porcelain"]), "");
}

#[test]
fn the_main_stream_runs_in_the_project_root() {
    let mut env = TestEnv::new();
    env.add_stream("main", &[], 1, "pending");
    let g = graph(&env);
    let p = prepare(&mut workspaces(&env, Config::default()), &g, "main");
    assert_eq!(p.dir, env.root);
    assert_eq!(p.branch, None);
}

#[test]
fn status_and_dry_run_helpers_report_bases_without_changing_anything() {
    let mut env = TestEnv::new();
    env.diamond();
    let g = graph(&env);
    let project = Project {
        root: env.root.clone(),
    };
    let mut ws = workspaces(&env, Config::default());
    let planned = orchestrate::git::plan_placement(&project, stream(&g, "Stream-A")).unwrap();
    assert!(planned.base.starts_with("HEAD of main"), "{planned:?}");
    let z = orchestrate::git::plan_placement(&project, stream(&g, "Stream-Z")).unwrap();
    assert_eq!(
        z.base, "a merge of stream/Stream-B, stream/Stream-C once they complete",
        "dependencies that have not run yet are named, not today's HEAD"
    );
    let b = orchestrate::git::plan_placement(&project, stream(&g, "Stream-B")).unwrap();
    assert_eq!(b.base, "the tip of stream/Stream-A once it completes");
    let facts = |env: &TestEnv| {
        let store = orchestrate::state::StateStore::open(
            &env.root.join(".claude/orchestrator/state/state.db"),
        )
        .unwrap();
        orchestrate::git::branch_facts(&project, &store.worktrees().unwrap()).unwrap()
    };
    assert!(facts(&env).is_empty());

    for (id, file) in [("Stream-A", "a"), ("Stream-B", "b"), ("Stream-C", "c")] {
        let p = prepare(&mut ws, &g, id);
        commit_file(&env, &p.dir, file, file);
    }
    let status = facts(&env).remove("Stream-B").unwrap();
    assert_eq!(status.branch, "stream/Stream-B");
    assert_eq!(status.commits_since_base, Some(1));

    let objects = env.git(&["count-objects"]);
    let z = orchestrate::git::plan_placement(&project, stream(&g, "Stream-Z")).unwrap();
    assert_eq!(z.base, "merge of stream/Stream-B, stream/Stream-C");
    assert!(!z.blocked);
    assert_eq!(env.git(&["count-objects"]), objects, "planned in memory");
    assert_eq!(env.git(&["branch", "--list", "stream/Stream-Z"]), "");
}

/// A timed-out `post_create` gets SIGTERM first, then its whole tree is SIGKILLed: a
/// grandchild that ignores TERM and one that left the process group (`setsid`) included.
#[test]
fn a_timed_out_post_create_is_ended_with_everything_it_started() {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "pending");
    let g = graph(&env);
    let tmp = tempfile::tempdir().unwrap();
    let pids = tmp.path().join("pids");
    let script = format!(
        "trap 'echo post-create-got-TERM; exit 143' TERM; \
         (trap \"\" TERM; exec sleep 30) & echo $! > {p}; \
         setsid sh -c 'trap \"\" TERM; exec sleep 30' & echo $! >> {p}; \
         echo started; wait",
        p = pids.display()
    );
    let slow = Config {
        post_create: Some(format!("sh -c {}", orchestrate::cmdline::quote(&script))),
        post_create_timeout: std::time::Duration::from_secs(2),
        ..Config::default()
    };
    let err = workspaces(&env, slow)
        .prepare(stream(&g, "Stream-A"), &g)
        .unwrap_err();
    assert!(
        matches!(&err, PrepareFailure::Failed { detail } if detail.contains("did not finish")),
        "{err:?}"
    );
    let log =
        std::fs::read_to_string(env.root.join(".claude/orchestrator/logs/Stream-A.log")).unwrap();
    assert!(log.contains("started"), "{log}");
    assert!(
        log.contains("post-create-got-TERM"),
        "TERM comes first: {log}"
    );
    let pids: Vec<i32> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2);
    for pid in pids {
        let stat = orchestrate::proc::stat(pid);
        assert!(
            stat.as_ref().is_none_or(|s| !s.is_live()),
            "{pid} outlived post_create: {stat:?}"
        );
    }
}
