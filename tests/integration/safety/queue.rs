//! The merge queue (issue 16): `merge` builds the result away from the user's checkout, runs
//! `verify` on each step when asked, and advances the target only at the end (or after each
//! verified step with `--step`), compare-and-swap. The user's checkout is fast-forwarded only
//! when it has the target checked out and is clean; otherwise it stays byte-identical.
//!
//! Verify commands here synchronise on files in the task database's folder (which a sandboxed
//! verify may write), never on time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::merge::{UserCommits, parallel_streams, user_commit};
use crate::merge::diamond_branches;
use crate::support::{TestEnv, Watched, wait_for};
use orchestrate::exit_codes;

/// A verify that fails once the merge of Stream-C is in (C's file is there), printing why.
const FAILS_ON_C: &str =
    "if [ -e c.txt ]; then echo 'compiling…'; echo 'error: c.txt breaks the build'; exit 3; fi";

/// What the user's checkout is: every file outside `.git`, the index, and HEAD (the file).
fn checkout(env: &TestEnv) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let path = e.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if rel == ".git" {
                continue;
            }
            let kind = e.file_type().unwrap();
            if kind.is_dir() {
                walk(root, &path, out);
            } else if kind.is_symlink() {
                let to = std::fs::read_link(&path).unwrap();
                out.insert(rel, to.to_string_lossy().as_bytes().to_vec());
            } else {
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&env.root, &env.root, &mut out);
    for f in [".git/index", ".git/HEAD"] {
        out.insert(
            f.into(),
            std::fs::read(env.root.join(f)).unwrap_or_default(),
        );
    }
    out
}

fn tip(env: &TestEnv, branch: &str) -> String {
    env.git(&["rev-parse", &format!("refs/heads/{branch}")])
}

fn subjects(env: &TestEnv, branch: &str) -> Vec<String> {
    env.git(&["log", "--first-parent", "--format=%s", branch])
        .lines()
        .map(str::to_string)
        .collect()
}

/// No scratch worktree of a merge is left: git knows only the main checkout, and nothing is
/// under `.git/orchestrate/` but its own files.
fn assert_no_scratch(env: &TestEnv) {
    let list = env.git(&["worktree", "list", "--porcelain"]);
    assert_eq!(
        list.lines().filter(|l| l.starts_with("worktree ")).count(),
        1,
        "{list}"
    );
    let leftovers: Vec<String> = std::fs::read_dir(env.root.join(".git/orchestrate"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("merge-"))
                .collect()
        })
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// The folder a sandboxed verify may write to: the task database's.
fn signals(env: &TestEnv) -> PathBuf {
    env.db_path().parent().unwrap().to_path_buf()
}

/// A verify that, while `<signals>/block` exists, takes it, says it started and waits for
/// `<signals>/release`; otherwise passes at once.
fn blocking_verify(env: &TestEnv) -> String {
    let d = signals(env);
    format!(
        "if [ -e '{d}/block' ]; then rm '{d}/block'; echo \"$ORCHESTRATE_STREAM\" > '{d}/started'; \
         while [ ! -e '{d}/release' ]; do sleep 0.01; done; fi",
        d = d.display()
    )
}

fn merge_cmd(env: &TestEnv, args: &[&str], verify: &str) -> std::process::Command {
    let mut cmd = env.cmd(args);
    cmd.env("ORCHESTRATE_VERIFY", verify);
    cmd
}

fn run_merge(env: &TestEnv, args: &[&str], verify: &str) -> crate::support::Run {
    crate::support::Run(merge_cmd(env, args, verify).output().unwrap())
}

#[test]
fn a_clean_merge_that_fails_verify_changes_nothing_and_shows_the_output() {
    let env = diamond_branches(false);
    let before = checkout(&env);
    let main = tip(&env, "main");
    let run = run_merge(&env, &["merge", "--verify"], FAILS_ON_C).expect_code(exit_codes::REFUSED);
    let err = run.stderr();
    assert!(err.contains("Stream-C"), "{err}");
    assert!(err.contains("| compiling…\n"), "{err}");
    assert!(err.contains("| error: c.txt breaks the build"), "{err}");
    assert!(err.contains("exited with code 3"), "{err}");
    assert_eq!(tip(&env, "main"), main, "the target is not advanced");
    assert_eq!(
        checkout(&env),
        before,
        "the user's checkout is byte-identical"
    );
    assert_no_scratch(&env);
    let out = run.stdout();
    assert!(
        out.contains("Stream-A") && out.contains("Stream-B"),
        "{out}"
    );
}

#[test]
fn step_advances_the_target_after_each_verified_step() {
    let env = diamond_branches(false);
    let run = run_merge(&env, &["merge", "--verify", "--step"], FAILS_ON_C)
        .expect_code(exit_codes::REFUSED);
    assert!(run.stderr().contains("Stream-C"), "{}", run.stderr());
    assert_eq!(
        subjects(&env, "main"),
        [
            "Merge stream Stream-B: Stream-B work",
            "Merge stream Stream-A: Stream-A work",
            "initial"
        ]
    );
    // The clean checkout followed the target.
    assert!(env.root.join("a.txt").exists() && env.root.join("b.txt").exists());
    assert!(!env.root.join("c.txt").exists());
    assert_eq!(env.git(&["status", "--porcelain"]), "");
    assert_no_scratch(&env);
}

#[test]
fn config_merge_verify_runs_verify_without_the_flag() {
    let env = diamond_branches(false);
    let dir = env.root.join(".claude/orchestrator");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), "merge_verify = true\n").unwrap();
    let main = tip(&env, "main");
    let err = run_merge(&env, &["merge"], FAILS_ON_C)
        .expect_code(exit_codes::REFUSED)
        .stderr();
    assert!(err.contains("c.txt breaks the build"), "{err}");
    assert_eq!(tip(&env, "main"), main);
    // `--no-verify` overrides the config.
    run_merge(&env, &["merge", "--no-verify"], FAILS_ON_C).success();
    assert_eq!(subjects(&env, "main").len(), 5);
}

#[test]
fn a_dirty_checkout_is_left_alone_the_target_advanced_and_the_user_told_how() {
    let env = diamond_branches(false);
    std::fs::write(env.root.join("README.md"), "my edit\n").unwrap();
    std::fs::write(env.root.join("notes.txt"), "untracked\n").unwrap();
    let before = checkout(&env);
    let old = tip(&env, "main");
    let run = env.run(&["merge"]).success();
    assert_eq!(subjects(&env, "main").len(), 5, "the target advanced");
    assert_eq!(
        checkout(&env),
        before,
        "the dirty checkout is byte-identical"
    );
    let text = format!("{}{}", run.stdout(), run.stderr());
    let how = format!("git read-tree -m -u {} main", &old.trim()[..10]);
    assert!(text.contains("uncommitted changes"), "{text}");
    assert!(text.contains(&how), "{text}");
    // What it says works: the merged files arrive, the edit is kept.
    let words: Vec<&str> = how.split(' ').skip(1).collect();
    env.git(&words);
    assert_eq!(
        env.git(&["status", "--porcelain"]),
        " M README.md\n?? notes.txt\n"
    );
    assert!(env.root.join("z.txt").exists());
    assert_no_scratch(&env);
}

#[test]
fn a_target_not_checked_out_is_advanced_and_the_checkout_untouched() {
    let env = diamond_branches(false);
    env.git(&["switch", "-q", "-c", "elsewhere"]);
    let before = checkout(&env);
    let run = env.run(&["merge", "--into", "main"]).success();
    assert_eq!(subjects(&env, "main").len(), 5);
    assert_eq!(checkout(&env), before);
    assert_eq!(tip(&env, "elsewhere"), env.git(&["rev-parse", "HEAD"]));
    let text = run.stdout();
    assert!(text.contains("git switch main"), "{text}");
}

#[test]
fn dry_run_changes_nothing_and_says_where_verify_would_run() {
    let env = diamond_branches(false);
    let objects = env.git(&["count-objects", "-v"]);
    let before = checkout(&env);
    let refs = env.git(&["for-each-ref"]);
    let out = run_merge(&env, &["merge", "--dry-run", "--verify"], FAILS_ON_C)
        .success()
        .stdout();
    assert!(out.contains("then verify"), "{out}");
    assert!(
        out.contains("c.txt breaks the build") || out.contains("if [ -e c.txt ]"),
        "{out}"
    );
    assert_eq!(env.git(&["count-objects", "-v"]), objects);
    assert_eq!(env.git(&["for-each-ref"]), refs);
    assert_eq!(checkout(&env), before);
    assert_no_scratch(&env);
    let plain = env.run(&["merge", "--dry-run"]).success().stdout();
    assert!(!plain.contains("then verify"), "{plain}");
}

#[test]
fn a_user_commit_during_the_queue_is_never_overwritten() {
    let env = parallel_streams(2);
    let verify = blocking_verify(&env);
    std::fs::write(signals(&env).join("block"), "").unwrap();
    let mut merge = Watched::spawn(merge_cmd(&env, &["merge", "--verify"], &verify));
    let started = signals(&env).join("started");
    wait_for("the verify to start", Duration::from_secs(60), || {
        started.exists()
    });
    user_commit(&env, 0, UserCommits::InCheckout);
    let user_tip = tip(&env, "main");
    let mine = checkout(&env);
    std::fs::write(signals(&env).join("release"), "").unwrap();
    let code = merge.wait_exit(Duration::from_secs(60));
    assert_eq!(
        code,
        Some(exit_codes::REFUSED),
        "{}\n{}",
        merge.stdout(),
        merge.stderr()
    );
    let err = merge.stderr();
    assert!(
        err.contains("moved") && err.contains("`orchestrate merge` again"),
        "{err}"
    );
    assert_eq!(tip(&env, "main"), user_tip, "the user's commit stands");
    assert_eq!(checkout(&env), mine);
    assert_no_scratch(&env);
    // The next merge brings everything onto the user's commit.
    run_merge(&env, &["merge", "--verify"], &verify).success();
    let log = env.git(&["log", "--format=%s", "main"]);
    assert!(log.contains("user commit 0"), "{log}");
    assert_eq!(log.matches("Merge stream").count(), 2, "{log}");
    assert_eq!(env.git(&["status", "--porcelain"]), "");
}

#[test]
fn two_merges_at_once_one_refuses_clearly() {
    let env = parallel_streams(2);
    let verify = blocking_verify(&env);
    std::fs::write(signals(&env).join("block"), "").unwrap();
    let mut first = Watched::spawn(merge_cmd(&env, &["merge", "--verify"], &verify));
    let started = signals(&env).join("started");
    wait_for("the verify to start", Duration::from_secs(60), || {
        started.exists()
    });
    let second = run_merge(&env, &["merge"], &verify).expect_code(exit_codes::REFUSED);
    let err = second.stderr();
    assert!(err.contains("another `orchestrate merge`"), "{err}");
    std::fs::write(signals(&env).join("release"), "").unwrap();
    assert_eq!(
        first.wait_exit(Duration::from_secs(60)),
        Some(exit_codes::OK),
        "{}",
        first.stderr()
    );
    assert_eq!(subjects(&env, "main").len(), 3);
}

/// SIGKILLs a `merge --verify` while its verify runs; the target and the checkout are as they
/// were, and the scratch worktree (with the verify still running in it) is left behind.
fn killed_mid_queue() -> (TestEnv, String, BTreeMap<String, Vec<u8>>, String) {
    let env = parallel_streams(2);
    let verify = blocking_verify(&env);
    std::fs::write(signals(&env).join("block"), "").unwrap();
    let main = tip(&env, "main");
    let before = checkout(&env);
    let mut merge = Watched::spawn(merge_cmd(&env, &["merge", "--verify"], &verify));
    let started = signals(&env).join("started");
    wait_for("the verify to start", Duration::from_secs(60), || {
        started.exists()
    });
    merge.signal("KILL");
    assert_eq!(merge.wait_exit(Duration::from_secs(30)), None);
    assert_eq!(tip(&env, "main"), main);
    assert_eq!(checkout(&env), before);
    (env, verify, before, main)
}

/// Whether the blocked verify (a shell waiting for `release`) is still running.
fn old_verify_alive(env: &TestEnv) -> bool {
    let needle = format!("{}/release", signals(env).display());
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline")).is_ok_and(|c| {
            String::from_utf8_lossy(&c).contains(&needle)
                && std::fs::read_to_string(e.path().join("stat")).is_ok_and(|s| !s.contains(") Z"))
        })
    })
}

#[test]
fn sigkill_during_the_queue_changes_nothing_and_the_next_merge_works() {
    let (env, verify, _, _) = killed_mid_queue();
    assert!(
        old_verify_alive(&env),
        "the orphaned verify is still blocked"
    );
    run_merge(&env, &["merge", "--verify"], &verify).success();
    assert!(!old_verify_alive(&env), "the leftover verify was stopped");
    assert_no_scratch(&env);
    assert_eq!(subjects(&env, "main").len(), 3);
    assert_eq!(env.git(&["status", "--porcelain"]), "");
}

#[test]
fn clean_removes_the_leftover_of_a_killed_merge() {
    let (env, verify, before, main) = killed_mid_queue();
    let out = env.run(&["clean"]).success().stdout();
    assert!(out.contains("merge"), "{out}");
    assert!(!old_verify_alive(&env));
    assert_no_scratch(&env);
    assert_eq!(tip(&env, "main"), main);
    assert_eq!(checkout(&env), before);
    run_merge(&env, &["merge", "--verify"], &verify).success();
    assert_eq!(subjects(&env, "main").len(), 3);
}

#[test]
fn verify_asked_for_with_no_command_is_a_usage_error_that_changes_nothing() {
    let env = diamond_branches(false);
    let main = tip(&env, "main");
    let err = env
        .run(&["merge", "--verify"])
        .expect_code(exit_codes::USAGE)
        .stderr();
    assert!(
        err.contains("no verify command for stream Stream-A"),
        "{err}"
    );
    assert!(err.contains("verify = "), "{err}");
    assert_eq!(tip(&env, "main"), main);
    assert_no_scratch(&env);
}

#[test]
fn a_verify_out_of_time_is_ended_and_fails_the_step() {
    let env = parallel_streams(1);
    let main = tip(&env, "main");
    let mut cmd = merge_cmd(&env, &["merge", "--verify"], "echo waiting; sleep 600");
    cmd.env("ORCHESTRATE_VERIFY_TIMEOUT", "0.5");
    let run = crate::support::Run(cmd.output().unwrap()).expect_code(exit_codes::REFUSED);
    let err = run.stderr();
    assert!(err.contains("ran out of time"), "{err}");
    assert!(err.contains("waiting"), "{err}");
    assert_eq!(tip(&env, "main"), main);
    assert_no_scratch(&env);
    let alive = std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c.starts_with(b"sleep\x00600"))
            && std::fs::read_to_string(e.path().join("environ")).is_ok_and(|v| {
                v.contains(&format!("ORCHESTRATE_PROJECT_ROOT={}", env.root.display()))
            })
    });
    assert!(!alive, "the verify's process group was ended");
}

#[test]
fn a_linked_worktree_that_has_the_target_is_fast_forwarded() {
    let env = diamond_branches(false);
    env.git(&["switch", "-q", "-c", "elsewhere"]);
    let other = env.tmp.path().join("main-wt");
    env.git(&["worktree", "add", "-q", other.to_str().unwrap(), "main"]);
    let root_before = checkout(&env);
    let out = env.run(&["merge", "--into", "main"]).success().stdout();
    assert!(out.contains("is up to date with main"), "{out}");
    assert!(other.join("z.txt").exists());
    assert_eq!(env.git_in(&other, &["status", "--porcelain"]), "");
    assert_eq!(checkout(&env), root_before);
}

/// The verify runs confined like a worker: it cannot write the user's checkout (nor anything
/// outside the scratch worktree and the places a worker may write).
#[test]
fn a_merge_verify_is_sandboxed_and_cannot_write_the_checkout() {
    if crate::sandbox::landlock().is_none() {
        return;
    }
    let env = parallel_streams(1);
    let main = tip(&env, "main");
    let before = checkout(&env);
    let escape = env.root.join("escaped.txt");
    let verify = format!("echo out > '{}' && touch built.txt", escape.display());
    let err = run_merge(&env, &["merge", "--verify"], &verify)
        .expect_code(exit_codes::REFUSED)
        .stderr();
    let log = std::fs::read_to_string(env.root.join(".git/orchestrate/merge.log")).unwrap();
    assert!(err.contains("Permission denied"), "{err}\n{log}");
    assert!(!escape.exists());
    assert_eq!(tip(&env, "main"), main);
    assert_eq!(checkout(&env), before);
    // Inside its scratch worktree it may write (build output): the same merge passes.
    run_merge(
        &env,
        &["merge", "--verify"],
        "touch built.txt && test -e built.txt",
    )
    .success();
    assert_eq!(subjects(&env, "main").len(), 2);
    assert!(!env.root.join("built.txt").exists());
}

/// Times a 4-stream queue on a repository of 2,000 files: `merge`, `merge --verify` (a verify
/// that passes at once, so the scratch worktree's cost shows), and, when
/// `ORCHESTRATE_OLD_BIN` names an older build, its `merge`. Prints the figures.
#[test]
#[ignore = "a measurement, not a check: cargo test --test integration queue_timing -- --ignored --nocapture"]
fn queue_timing() {
    let time = |bin: &std::path::Path, verify: bool| {
        let env = parallel_streams(4);
        for i in 0..2_000 {
            let dir = env.root.join(format!("src/d{}", i % 40));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("f{i}.txt")), format!("{i}\n")).unwrap();
        }
        env.git(&["add", "src"]);
        env.git(&["commit", "-q", "-m", "2,000 files"]);
        let mut cmd = std::process::Command::new(bin);
        env.apply_env(&mut cmd);
        cmd.current_dir(&env.root).arg("merge");
        if verify {
            cmd.arg("--verify").env("ORCHESTRATE_VERIFY", "true");
        }
        let began = std::time::Instant::now();
        let out = cmd.output().unwrap();
        let took = began.elapsed();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(subjects(&env, "main").len(), 6);
        took
    };
    let new = std::path::Path::new(env!("CARGO_BIN_EXE_orchestrate"));
    super::report(&format!(
        "merge, 4 streams, 2,000 files: {:?}",
        time(new, false)
    ));
    super::report(&format!("merge --verify (true): {:?}", time(new, true)));
    if let Some(old) = std::env::var_os("ORCHESTRATE_OLD_BIN") {
        super::report(&format!("old merge: {:?}", time(Path::new(&old), false)));
    }
}
