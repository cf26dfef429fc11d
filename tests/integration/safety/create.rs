//! Promise 1: a worktree is handed to a worker only when it is complete.
//!
//! `start --worktrees` is SIGKILLed while libgit2 checks out a 3,000-file tree into a new
//! worktree; the next `start` must finish or redo the checkout before its worker runs. The
//! worker is careless on purpose: it records what `git status` shows when it begins (a complete
//! worktree shows nothing) and then commits everything it finds (`git add -A`), so a worktree
//! handed over with files missing would commit their deletion.

use orchestrate::exit_codes;
use std::path::Path;

use orchestrate::config::Config;
use orchestrate::workspace::Workspaces;

use crate::start::{Fake, LONG};
use crate::support::{TestEnv, wait_for};
use crate::worktrees::{graph, prepare, workspaces};

/// Files in the tree the kill interrupts: enough that its checkout takes a while.
pub const FILES: usize = 3_000;

/// The careless worker: note a worktree that is not as committed, then commit everything.
pub const CARELESS: &str = r#"if [ -n "$(git status --porcelain)" ]; then git status --porcelain >"$FAKE_MARKER/$ORCHESTRATE_STREAM.incomplete"; fi; git add -A && { git diff --cached --quiet || git commit -qm 'everything I found'; }"#;

/// A project whose `main` holds `n` small files in 30 folders, and one stream A.
pub fn many_files(n: usize) -> TestEnv {
    let mut env = TestEnv::new();
    for i in 0..n {
        let dir = env.root.join(format!("src/d{:02}", i % 30));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("f{i}.txt")), format!("file {i}\n")).unwrap();
    }
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "many files"]);
    env.add_stream("Stream-A", &[], 1, "pending");
    env
}

/// Regular files under `dir`, not counting the worktree's `.git` file.
pub fn files_under(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => files_under(&e.path()),
            Ok(_) if e.file_name() == ".git" => 0,
            Ok(_) => 1,
            Err(_) => 0,
        })
        .sum()
}

/// What one kill-and-restart trial saw.
#[derive(Debug)]
pub struct KillTrial {
    /// Files in the worktree right after the kill (fewer than [`FILES`] and the README: the
    /// checkout was cut).
    pub files_at_kill: usize,
    /// What the worker found not as committed when it began (empty: a complete worktree).
    pub handed_incomplete: String,
    /// Files deleted on the stream's branch relative to `main`.
    pub deletions: Vec<String>,
    pub restart_code: i32,
    pub restart_output: String,
}

impl KillTrial {
    pub fn landed_mid_checkout(&self) -> bool {
        self.files_at_kill <= FILES
    }
}

/// Starts `start --worktrees`, SIGKILLs it once the new worktree holds more than `threshold`
/// files, runs `start` again to the end and reports what the worker was handed.
pub fn kill_during_checkout(env: TestEnv, threshold: usize) -> KillTrial {
    let mut fake = Fake::new(env);
    fake.set("RUN", None, CARELESS);
    let wt = fake.env.root.join(".claude/worktrees/Stream-A");
    let mut first = fake.spawn(&["start", "--worktrees", "--stagger", "0"], "first");
    wait_for("the checkout to begin", LONG, || {
        files_under(&wt) > threshold || first.try_wait().unwrap().is_some()
    });
    let _ = first.kill();
    let _ = first.wait();
    let files_at_kill = files_under(&wt);
    // A worker the first `start` already launched runs on; let it end before starting again.
    if fake.marker("Stream-A", "started").exists() {
        wait_for("the first worker to end", LONG, || {
            fake.marker("Stream-A", "ended").exists()
        });
    }
    let again = fake.run(&["start", "--worktrees", "--stagger", "0"]);
    let deletions = fake.env.git(&[
        "diff",
        "--name-only",
        "--diff-filter=D",
        "main",
        "stream/Stream-A",
    ]);
    KillTrial {
        files_at_kill,
        handed_incomplete: std::fs::read_to_string(fake.marker("Stream-A", "incomplete"))
            .unwrap_or_default(),
        deletions: deletions.lines().map(str::to_string).collect(),
        restart_code: again.code(),
        restart_output: format!("{}\n{}", again.stdout(), again.stderr()),
    }
}

#[test]
fn a_checkout_cut_by_sigkill_is_finished_before_any_worker_sees_it() {
    // The kill must land while files are still being written; on a fast machine the first
    // tries may be too late, so give it a few.
    for attempt in 1..=4 {
        let trial = kill_during_checkout(many_files(FILES), 50);
        if !trial.landed_mid_checkout() {
            super::report(&format!(
                "attempt {attempt}: the checkout finished before the kill; again"
            ));
            continue;
        }
        assert_eq!(
            trial.restart_code,
            exit_codes::OK,
            "{}",
            trial.restart_output
        );
        let first: Vec<&str> = trial.handed_incomplete.lines().take(10).collect();
        assert!(
            first.is_empty(),
            "the worker was handed an incomplete worktree; git status began with:\n{}",
            first.join("\n")
        );
        assert!(
            trial.deletions.is_empty(),
            "{} files deleted on stream/Stream-A, e.g. {:?}",
            trial.deletions.len(),
            &trial.deletions[..trial.deletions.len().min(5)]
        );
        return;
    }
    panic!("no kill landed during the checkout in 4 tries");
}

/// A worktree made by an older version and cut mid-checkout has no marker, but its index was
/// never written: it is finished (missing files recreated) and said so, never reused as is.
#[test]
fn a_worktree_without_an_index_is_finished_not_reused() {
    let env = many_files(200);
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    let a = prepare(&mut ws, &g, "Stream-A");
    // What a kill during libgit2's checkout leaves: some files, no index.
    let admin = env.root.join(".git/worktrees/Stream-A");
    std::fs::remove_file(admin.join("index")).unwrap();
    for i in 0..100 {
        let _ = std::fs::remove_file(a.dir.join(format!("src/d{:02}/f{i}.txt", i % 30)));
    }
    let mut again = workspaces(&env, Config::default());
    let a2 = prepare(&mut again, &g, "Stream-A");
    assert!(
        a2.notes.iter().any(|n| n.contains("incomplete")),
        "{:?}",
        a2.notes
    );
    assert_eq!(files_under(&a2.dir), 201, "200 files and the README");
    assert_eq!(env.git_in(&a2.dir, &["status", "--porcelain"]), "");
}

/// Cut before its registration was complete (folder and `.git` file written, the admin folder
/// not yet): the creation marker proves the folder ours and unseen, so it is made again.
#[test]
fn a_registration_cut_short_is_made_again() {
    let env = many_files(20);
    let wt = env.root.join(".claude/worktrees/Stream-A");
    let admin = env.root.join(".git/worktrees/Stream-A");
    std::fs::create_dir_all(&wt).unwrap();
    std::fs::create_dir_all(&admin).unwrap();
    std::fs::write(admin.join("commondir"), "../..\n").unwrap();
    std::fs::write(wt.join(".git"), format!("gitdir: {}\n", admin.display())).unwrap();
    let marker = env.root.join(".git/orchestrate/incomplete/Stream-A");
    std::fs::create_dir_all(marker.parent().unwrap()).unwrap();
    std::fs::write(&marker, format!("{}\n", wt.display())).unwrap();
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    let a = prepare(&mut ws, &g, "Stream-A");
    assert_eq!(files_under(&a.dir), 21);
    assert_eq!(env.git_in(&a.dir, &["status", "--porcelain"]), "");
    assert!(!marker.exists(), "complete: the marker is gone");
    // Without the marker, the same leftovers are someone's: refused, not removed.
    std::fs::remove_dir_all(&admin).unwrap();
    let mut again = workspaces(&env, Config::default());
    let err = again
        .prepare(crate::worktrees::stream(&g, "Stream-A"), &g)
        .unwrap_err();
    assert!(format!("{err:?}").contains("WorktreeInTheWay"), "{err:?}");
    assert!(a.dir.join("README.md").exists());
}

/// Killed while libgit2 wrote the new worktree's index: the lock it left behind is ours (the
/// marker says so) and does not stop the next `start` (found by the long run).
#[test]
fn an_index_lock_left_by_a_killed_checkout_does_not_block_the_stream() {
    let env = many_files(20);
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    let a = prepare(&mut ws, &g, "Stream-A");
    let marker = env.root.join(".git/orchestrate/incomplete/Stream-A");
    std::fs::create_dir_all(marker.parent().unwrap()).unwrap();
    std::fs::write(&marker, format!("{}\n", a.dir.display())).unwrap();
    let lock = env.root.join(".git/worktrees/Stream-A/index.lock");
    std::fs::write(&lock, "half an index").unwrap();
    let mut again = workspaces(&env, Config::default());
    let a2 = prepare(&mut again, &g, "Stream-A");
    assert!(
        a2.notes.iter().any(|n| n.contains("incomplete")),
        "{:?}",
        a2.notes
    );
    assert!(!lock.exists() && !marker.exists());
    assert_eq!(env.git_in(&a2.dir, &["status", "--porcelain"]), "");
}

/// `start` SIGKILLed while libgit2 created the stream's branch leaves the branch's lock file
/// (`refs/heads/stream/<slug>.lock`) and no branch. Found by the state-loss long run with
/// `--worktrees`: every later `start` failed the stream ("failed to lock file"). The creation's
/// marker, written before the branch, proves the lock ours.
#[test]
fn a_branch_lock_left_by_a_killed_creation_does_not_block_the_stream() {
    let env = many_files(5);
    let g = graph(&env);
    let marker = env.root.join(".git/orchestrate/branching/Stream-A");
    std::fs::create_dir_all(marker.parent().unwrap()).unwrap();
    std::fs::write(&marker, "stream/Stream-A\n").unwrap();
    let lock = env.root.join(".git/refs/heads/stream/Stream-A.lock");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    std::fs::write(&lock, "").unwrap();
    let mut ws = workspaces(&env, Config::default());
    let a = prepare(&mut ws, &g, "Stream-A");
    assert!(!lock.exists() && !marker.exists());
    assert_eq!(env.git_in(&a.dir, &["status", "--porcelain"]), "");
    assert_eq!(
        env.git_in(&a.dir, &["branch", "--show-current"]).trim(),
        "stream/Stream-A"
    );
}

/// A branch lock that no creation of ours left (no marker) may be another git's: it is left
/// alone, and the stream fails saying which lock and what to do.
#[test]
fn a_branch_lock_of_another_git_is_left_alone_and_named() {
    let env = many_files(5);
    let g = graph(&env);
    let lock = env.root.join(".git/refs/heads/stream/Stream-A.lock");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    std::fs::write(&lock, "").unwrap();
    let mut ws = workspaces(&env, Config::default());
    let err = ws
        .prepare(crate::worktrees::stream(&g, "Stream-A"), &g)
        .unwrap_err();
    let text = format!("{err:?}");
    assert!(
        text.contains("Stream-A.lock") && text.contains("remove"),
        "{text}"
    );
    assert!(lock.exists());
}

/// A file the user changed in such a worktree is never overwritten: it is refused instead.
#[test]
fn finishing_an_old_incomplete_worktree_never_overwrites_a_changed_file() {
    let env = many_files(20);
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    let a = prepare(&mut ws, &g, "Stream-A");
    std::fs::remove_file(env.root.join(".git/worktrees/Stream-A/index")).unwrap();
    std::fs::write(a.dir.join("src/d01/f1.txt"), "someone's edit\n").unwrap();
    let mut again = workspaces(&env, Config::default());
    let err = again
        .prepare(crate::worktrees::stream(&g, "Stream-A"), &g)
        .unwrap_err();
    assert!(format!("{err:?}").contains("f1.txt"), "{err:?}");
    assert_eq!(
        std::fs::read_to_string(a.dir.join("src/d01/f1.txt")).unwrap(),
        "someone's edit\n"
    );
}

/// Long run: `scripts/reliability/git-safety.sh create [N]`.
#[test]
#[ignore = "long run (minutes): scripts/reliability/git-safety.sh create"]
fn long_sigkill_during_worktree_creation() {
    let trials: usize = std::env::var("RELIABILITY_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let mut rng = super::Rng::from_env();
    let (mut landed, mut handed_incomplete, mut with_deletions) = (0, 0, 0);
    let started = std::time::Instant::now();
    for t in 0..trials {
        // A random instant: before the first file, during the checkout, or after it.
        let from: usize = std::env::var("RELIABILITY_FROM")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let threshold = from + rng.below((FILES + 200).saturating_sub(from) as u64) as usize;
        let trial = kill_during_checkout(many_files(FILES), threshold.min(FILES));
        landed += usize::from(trial.landed_mid_checkout());
        if !trial.handed_incomplete.is_empty() {
            handed_incomplete += 1;
            super::report(&format!(
                "trial {t}: handed incomplete:\n{}",
                trial.handed_incomplete
            ));
        }
        if !trial.deletions.is_empty() || trial.restart_code != exit_codes::OK {
            with_deletions += 1;
            super::report(&format!(
                "trial {t}: {} deletions, restart exit {}\n{}",
                trial.deletions.len(),
                trial.restart_code,
                trial.restart_output
            ));
        }
    }
    super::report(&format!(
        "RESULT create: {trials} trials in {:.0?}, {landed} kills landed mid-checkout, \
         {handed_incomplete} incomplete worktrees handed to a worker, {with_deletions} trials \
         with deletions or a failed restart",
        started.elapsed()
    ));
    assert_eq!(handed_incomplete + with_deletions, 0);
}
