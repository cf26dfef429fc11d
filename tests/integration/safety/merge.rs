//! Promise 4: ref updates are compare-and-swap. `merge` advances the target only if it still
//! points where the merge began, so a user committing on the target meanwhile (with `git
//! commit` in the main checkout, or by a ref update from elsewhere) never loses a commit; a
//! moved target stops the merge cleanly and says what happened.

use orchestrate::exit_codes;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::support::TestEnv;

/// `n` complete streams, each with a branch holding one file of its own, forked from `main`.
pub fn parallel_streams(n: usize) -> TestEnv {
    let mut env = TestEnv::new();
    for i in 0..n {
        let s = format!("S{i:02}");
        env.add_stream(&s, &[], 1, "completed");
        env.git(&["switch", "-q", "-c", &format!("stream/{s}"), "main"]);
        std::fs::write(env.root.join(format!("{s}.txt")), format!("{s}\n")).unwrap();
        env.git(&["add", &format!("{s}.txt")]);
        env.git(&["commit", "-q", "-m", &format!("work of {s}")]);
    }
    env.git(&["switch", "-q", "main"]);
    env
}

/// How the user commits on `main` while `merge` runs.
#[derive(Debug, Clone, Copy)]
pub enum UserCommits {
    /// `git add` + `git commit` in the main checkout (takes `.git/index.lock`, retried while
    /// another git process holds it, as a person would).
    InCheckout,
    /// `git commit-tree` on the current tip + `git update-ref main NEW OLD` (compare-and-swap),
    /// as a push or fetch into the branch would: no index lock at all.
    ByRef,
}

fn git_ok(env: &TestEnv, args: &[&str]) -> bool {
    let mut cmd = Command::new("git");
    env.apply_env(&mut cmd);
    cmd.current_dir(&env.root)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// One user commit `user-<i>`, retried until git accepts it.
pub fn user_commit(env: &TestEnv, i: usize, how: UserCommits) {
    let name = format!("user-{i}.txt");
    for _ in 0..2_000 {
        let done = match how {
            UserCommits::InCheckout => {
                std::fs::write(env.root.join(&name), format!("{i}\n")).unwrap();
                git_ok(env, &["add", "--", &name])
                    && git_ok(
                        env,
                        &[
                            "commit",
                            "-q",
                            "-m",
                            &format!("user commit {i}"),
                            "--",
                            &name,
                        ],
                    )
            }
            UserCommits::ByRef => {
                let mut cmd = Command::new("git");
                env.apply_env(&mut cmd);
                let old = env.git(&["rev-parse", "refs/heads/main"]);
                let old = old.trim();
                let out = cmd
                    .current_dir(&env.root)
                    .args(["commit-tree", &format!("{old}^{{tree}}"), "-p", old, "-m"])
                    .arg(format!("user commit {i}"))
                    .output()
                    .unwrap();
                let new = String::from_utf8_lossy(&out.stdout).trim().to_string();
                git_ok(env, &["update-ref", "refs/heads/main", &new, old])
            }
        };
        if done {
            return;
        }
        // Not synchronisation: a retry of the compare-and-swap the merge queue won, after a
        // moment so that the user's commits interleave with the queue's.
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    panic!("user commit {i} never went in");
}

/// What one merge-while-committing trial saw.
#[derive(Debug)]
pub struct MergeRace {
    /// User commits (by number) no longer reachable from `main`.
    pub dropped: Vec<usize>,
    pub merged_streams: usize,
    pub merge_runs: usize,
    /// Merge runs that stopped because the target moved.
    pub stops: usize,
    /// Merge runs that left the checkout alone (the user's file staged) and said how to update.
    pub left_alone: usize,
    pub output: String,
}

/// `streams` complete streams; a user thread makes `commits` commits on `main` while
/// `orchestrate merge` runs again and again (each run starts once the user's first commit is
/// in: the barrier), until the user is done and everything is merged.
pub fn merge_while_user_commits(streams: usize, commits: usize, how: UserCommits) -> MergeRace {
    let env = Arc::new(parallel_streams(streams));
    let done = Arc::new(AtomicBool::new(false));
    let first = Arc::new(AtomicBool::new(false));
    let user = {
        let (env, done, first) = (env.clone(), done.clone(), first.clone());
        std::thread::spawn(move || {
            for i in 0..commits {
                user_commit(&env, i, how);
                first.store(true, Ordering::SeqCst);
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    while !first.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    let (mut runs, mut stops, mut output) = (0, 0, String::new());
    // While the user commits, `merge` may keep stopping (that is the point); once the user is
    // done it must get through within a few runs.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    let mut runs_after_user = 0;
    // A run that finds the user's file staged (between their `add` and `commit`) merges into
    // main and leaves the checkout alone, saying how to bring it along; later runs find it
    // behind and say it again, from the commit its index is based on: the last such command is
    // run at the end, as the user would.
    let mut update: Option<String> = None;
    let mut left_alone = 0;
    loop {
        let finished = done.load(Ordering::SeqCst);
        let run = env.run(&["merge"]);
        runs += 1;
        let (out, err) = (run.stdout(), run.stderr());
        if err.contains("moved") {
            stops += 1;
        }
        // Clean stops: the target moved, git held the index lock, or the user had staged a
        // file (between their `git add` and `git commit`).
        let clean_stop = ["moved", "index.lock", "uncommitted changes"]
            .iter()
            .any(|s| err.contains(s));
        if run.code() != exit_codes::OK && !clean_stop {
            output.push_str(&format!("unexpected exit {}:\n{out}\n{err}\n", run.code()));
        }
        if let Some(told) = out
            .lines()
            .find_map(|l| l.trim().strip_prefix("git read-tree "))
        {
            update = Some(told.to_string());
            left_alone += 1;
        }
        let tree = env.git(&["ls-tree", "--name-only", "main"]);
        let all_in = (0..streams).all(|i| tree.lines().any(|l| l == format!("S{i:02}.txt")));
        if finished && all_in {
            break;
        }
        runs_after_user += usize::from(finished);
        if runs_after_user > 10 || std::time::Instant::now() > deadline {
            output.push_str(&format!(
                "merge never got through (user done: {finished}, index.lock left: {}):\n{out}\n{err}\n",
                env.root.join(".git/index.lock").exists()
            ));
            break;
        }
    }
    user.join().unwrap();
    if let Some(args) = &update {
        let mut words = vec!["read-tree"];
        words.extend(args.split(' '));
        env.git(&words);
    }
    let log = env.git(&["log", "--format=%s", "main"]);
    let dropped = (0..commits)
        .filter(|i| !log.lines().any(|l| l == format!("user commit {i}")))
        .collect();
    let merged_streams = log
        .lines()
        .filter(|l| l.starts_with("Merge stream"))
        .count();
    // The main checkout ends as committed: merge changed it only with its own merges.
    let status = env.git(&["status", "--porcelain", "--untracked-files=no"]);
    if !status.is_empty() && matches!(how, UserCommits::InCheckout) {
        output.push_str(&format!("main checkout not clean at the end:\n{status}"));
    }
    MergeRace {
        dropped,
        merged_streams,
        merge_runs: runs,
        stops,
        left_alone,
        output,
    }
}

fn assert_none_dropped(how: UserCommits) {
    let race = merge_while_user_commits(8, 40, how);
    assert!(
        race.dropped.is_empty(),
        "dropped {:?}: {race:?}",
        race.dropped
    );
    assert_eq!(race.merged_streams, 8, "{race:?}");
    assert!(race.output.is_empty(), "{}", race.output);
}

#[test]
fn merge_never_drops_commits_made_in_the_main_checkout_meanwhile() {
    assert_none_dropped(UserCommits::InCheckout);
}

#[test]
fn merge_never_drops_commits_that_move_the_ref_meanwhile() {
    assert_none_dropped(UserCommits::ByRef);
}

/// Another git process holding the main checkout's index lock stops `merge` at once, with the
/// checkout, index and target exactly as they were, and says why.
#[test]
fn an_index_lock_held_by_another_git_stops_merge_touching_nothing() {
    let env = parallel_streams(3);
    let before = env.git(&["rev-parse", "main"]);
    let lock = env.root.join(".git/index.lock");
    std::fs::write(&lock, "").unwrap();
    let run = env.run(&["merge"]);
    std::fs::remove_file(&lock).unwrap();
    assert_ne!(run.code(), exit_codes::OK);
    assert!(run.stderr().contains("index.lock"), "{}", run.stderr());
    assert_eq!(env.git(&["rev-parse", "main"]), before);
    assert_eq!(env.git(&["status", "--porcelain"]), "");
}

/// Long run: `scripts/reliability/git-safety.sh merge [N]`.
#[test]
#[ignore = "long run (minutes): scripts/reliability/git-safety.sh merge"]
fn long_merge_racing_user_commits() {
    let n = super::trials(20);
    let began = std::time::Instant::now();
    let (mut dropped, mut runs, mut stops, mut bad, mut left) = (0, 0, 0, 0, 0);
    for t in 0..n {
        let how = if t % 2 == 0 {
            UserCommits::InCheckout
        } else {
            UserCommits::ByRef
        };
        let race = merge_while_user_commits(10, 50, how);
        dropped += race.dropped.len();
        runs += race.merge_runs;
        stops += race.stops;
        left += race.left_alone;
        if !race.dropped.is_empty() || !race.output.is_empty() || race.merged_streams != 10 {
            bad += 1;
            super::report(&format!("trial {t} ({how:?}): {race:?}"));
        }
    }
    super::report(&format!(
        "RESULT merge: {n} trials × 50 user commits in {:.0?}: {dropped} commits dropped, \
         {runs} merge runs, {stops} stopped because the target moved, {left} left the checkout \
         alone (a file staged), {bad} bad trials",
        began.elapsed()
    ));
    assert_eq!(dropped + bad, 0);
}
