//! Properties of `clean` and `merge` over random worker behaviours: where the worker left HEAD
//! (its branch, detached, another branch, reset away), what it left lying around (untracked,
//! ignored and included files), a deleted admin folder, and a user committing on the target
//! meanwhile. Whatever happens: no commit becomes unreachable, no file outside the repository
//! is touched, no included file is committed.
//!
//! A few cases in the suite; `RELIABILITY_CASES=N` (scripts/reliability/git-safety.sh props)
//! for the long version.

use orchestrate::exit_codes;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use orchestrate::config::Config;
use orchestrate::workspace::Workspaces;
use proptest::prelude::*;

use super::merge::{UserCommits, user_commit};
use super::reachable;
use crate::support::TestEnv;
use crate::worktrees::{commit_file, graph, prepare, workspaces};

fn cases() -> u32 {
    std::env::var("RELIABILITY_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4)
}

/// Where the worker left HEAD.
#[derive(Debug, Clone, Copy)]
enum Head {
    /// Committed on its branch; `merged`: main has merged it since.
    OnBranch {
        merged: bool,
    },
    Detached,
    OtherBranch,
    /// Committed, then `git reset --hard HEAD~1`.
    ResetAway,
    /// Never committed.
    Untouched,
}

#[derive(Debug, Clone)]
struct Worker {
    head: Head,
    untracked: bool,
    ignored: bool,
    /// Un-ignores the copied `.env` in its worktree (commits a new `.gitignore`) and leaves
    /// it there, then finishes through `worker_finished` (auto-commit).
    unignores_include: bool,
    admin_deleted: bool,
}

fn head() -> impl Strategy<Value = Head> {
    prop_oneof![
        any::<bool>().prop_map(|merged| Head::OnBranch { merged }),
        Just(Head::Detached),
        Just(Head::OtherBranch),
        Just(Head::ResetAway),
        Just(Head::Untouched),
    ]
}

fn worker() -> impl Strategy<Value = Worker> {
    let rare = || prop::bool::weighted(0.25);
    (head(), rare(), rare(), rare(), rare()).prop_map(
        |(head, untracked, ignored, unignores_include, admin_deleted)| Worker {
            head,
            untracked,
            ignored,
            unignores_include,
            admin_deleted,
        },
    )
}

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            out.extend(files(&p));
        } else {
            out.insert(p.clone(), std::fs::read(&p).unwrap_or_default());
        }
    }
    out
}

/// A project with ignore rules, an included `.env`, a folder outside the repository (its
/// contents must never change) and one complete stream per worker.
struct Case {
    env: std::sync::Arc<TestEnv>,
    outside: PathBuf,
    outside_before: BTreeMap<PathBuf, Vec<u8>>,
    dirs: Vec<PathBuf>,
}

fn set_up(workers: &[Worker]) -> Case {
    let mut env = TestEnv::new();
    std::fs::write(env.root.join(".gitignore"), "*.ignored\n.env\n").unwrap();
    std::fs::write(env.root.join(".worktreeinclude"), ".env\n").unwrap();
    env.git(&["add", ".gitignore", ".worktreeinclude"]);
    env.git(&["commit", "-q", "-m", "rules"]);
    std::fs::write(env.root.join(".env"), "TOKEN=secret\n").unwrap();
    let outside = env.tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("precious.txt"), "the user's\n").unwrap();
    let outside_before = files(&outside);
    for i in 0..workers.len() {
        env.add_stream(&format!("S{i}"), &[], 1, "completed");
    }
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    let mut dirs = Vec::new();
    for (i, w) in workers.iter().enumerate() {
        let id = format!("S{i}");
        let p = prepare(&mut ws, &g, &id);
        act(&env, &mut ws, &p, &id, w);
        dirs.push(p.dir);
    }
    Case {
        env: std::sync::Arc::new(env),
        outside,
        outside_before,
        dirs,
    }
}

/// What the worker does in its worktree.
fn act(
    env: &TestEnv,
    ws: &mut orchestrate::git::WorktreeWorkspaces,
    p: &orchestrate::workspace::Placement,
    id: &str,
    w: &Worker,
) {
    let dir = &p.dir;
    ws.worker_started(id, p, std::process::id());
    match w.head {
        Head::OnBranch { merged } => {
            commit_file(env, dir, &format!("{id}.txt"), "work\n");
            if merged {
                env.git(&[
                    "merge",
                    "-q",
                    "--no-ff",
                    "-m",
                    "merge",
                    &format!("stream/{id}"),
                ]);
            }
        }
        Head::Detached => {
            env.git_in(dir, &["checkout", "-q", "--detach"]);
            commit_file(env, dir, &format!("{id}-detached.txt"), "work\n");
        }
        Head::OtherBranch => {
            env.git_in(dir, &["switch", "-q", "-c", &format!("side-{id}")]);
            commit_file(env, dir, &format!("{id}-side.txt"), "work\n");
        }
        Head::ResetAway => {
            commit_file(env, dir, &format!("{id}-lost.txt"), "work\n");
            env.git_in(dir, &["reset", "-q", "--hard", "HEAD~1"]);
        }
        Head::Untouched => {}
    }
    if w.untracked {
        std::fs::write(dir.join("scratch.txt"), "draft\n").unwrap();
    }
    if w.ignored {
        std::fs::write(dir.join("build.ignored"), "artefact\n").unwrap();
    }
    if w.unignores_include && matches!(w.head, Head::OnBranch { merged: false } | Head::Untouched) {
        commit_file(env, dir, ".gitignore", "*.ignored\n");
    }
    ws.worker_finished(id, p);
    if w.admin_deleted {
        let _ = std::fs::remove_dir_all(env.root.join(".git/worktrees").join(id));
    }
}

/// The three invariants, checked after every command.
fn check_invariants(case: &Case, before: &std::collections::BTreeSet<String>, what: &str) {
    let after = reachable(&case.env);
    let lost: Vec<&String> = before.difference(&after).collect();
    assert!(
        lost.is_empty(),
        "{what}: commits became unreachable: {lost:?}"
    );
    assert_eq!(
        files(&case.outside),
        case.outside_before,
        "{what}: a file outside the repository changed"
    );
    let objects = case
        .env
        .git(&["rev-list", "--all", "--reflog", "--objects"]);
    assert!(
        !objects.lines().any(|l| l.ends_with(" .env")),
        "{what}: an included file was committed"
    );
}

fn check_clean(workers: &[Worker], force: bool, branches: bool) {
    let case = set_up(workers);
    let before = reachable(&case.env);
    let mut args = vec!["clean"];
    if force {
        args.push("--force");
    }
    if branches {
        args.push("--branches");
    }
    let run = case.env.run(&args).success();
    check_invariants(&case, &before, &format!("{args:?}\n{}", run.stdout()));
    // An orphaned worktree's files are never removed, --force or not.
    for (dir, w) in case.dirs.iter().zip(workers) {
        if w.admin_deleted && w.untracked {
            assert!(dir.join("scratch.txt").exists(), "{}", run.stdout());
        }
    }
}

fn check_merge(workers: &[Worker], user_commits: usize) {
    let case = set_up(workers);
    let before = reachable(&case.env);
    let user = {
        let env = case.env.clone();
        std::thread::spawn(move || {
            for i in 0..user_commits {
                user_commit(&env, i, UserCommits::InCheckout);
            }
        })
    };
    let mut out = String::new();
    for _ in 0..200 {
        let run = case.env.run(&["merge"]);
        out = format!("{}{}", run.stdout(), run.stderr());
        // Done, or stopped at a conflict (two workers committed different `.gitignore`s).
        if user.is_finished() && matches!(run.code(), exit_codes::OK | exit_codes::REFUSED) {
            break;
        }
    }
    user.join().unwrap();
    check_invariants(&case, &before, &format!("merge\n{out}"));
    let log = case.env.git(&["log", "--format=%s", "main"]);
    for i in 0..user_commits {
        assert!(
            log.lines().any(|l| l == format!("user commit {i}")),
            "user commit {i} dropped:\n{out}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn clean_loses_no_commit_touches_nothing_outside_commits_no_include(
        workers in prop::collection::vec(worker(), 1..4),
        force in any::<bool>(),
        branches in any::<bool>(),
    ) {
        check_clean(&workers, force, branches);
    }

    #[test]
    fn merge_loses_no_commit_even_with_the_user_committing(
        workers in prop::collection::vec(worker(), 1..4),
        user_commits in 0usize..6,
    ) {
        check_merge(&workers, user_commits);
    }
}
