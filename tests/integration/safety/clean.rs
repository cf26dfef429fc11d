//! Promises 2 and 3 through `clean`: no commit becomes unreachable, wherever the worker left
//! HEAD (detached, another branch, reset away), and nothing removes a worktree that is in use
//! (a live worker, a `start` preparing it, any process working inside it) — not even
//! `--force`, which overrides only "uncommitted or unmerged".

use orchestrate::exit_codes;
use std::process::{Command, Stdio};

use orchestrate::config::Config;

use super::{reachable, reachable_from_refs};
use crate::start::{Fake, LONG, wait_exit};
use crate::support::{TestEnv, wait_for};
use crate::worktrees::{graph, prepare, workspaces};

/// Stream A, complete, with its worktree; `worker` is run there as the worker's git commands.
/// Returns the env, the worktree and the commit the worker made (HEAD after `worker`, or the
/// commit reset away).
fn worked(worker: &[&[&str]]) -> (TestEnv, std::path::PathBuf) {
    let mut env = TestEnv::new();
    env.add_stream("Stream-A", &[], 1, "completed");
    let g = graph(&env);
    let mut ws = workspaces(&env, Config::default());
    let a = prepare(&mut ws, &g, "Stream-A");
    for args in worker {
        env.git_in(&a.dir, args);
    }
    (env, a.dir)
}

fn commit_x() -> [&'static [&'static str]; 1] {
    [&["commit", "-q", "--allow-empty", "-m", "the worker's work X"]]
}

/// The commit the worker made, found by its message anywhere git can still reach.
fn commit_of_x(env: &TestEnv) -> String {
    let out = env.git(&[
        "log",
        "--all",
        "--reflog",
        "--format=%H",
        "--grep=the worker's work X",
    ]);
    out.lines().next().expect("X was made").to_string()
}

fn detached() -> (TestEnv, std::path::PathBuf) {
    let mut steps: Vec<&[&str]> = vec![&["checkout", "-q", "--detach"]];
    steps.extend(commit_x());
    worked(&steps)
}

#[test]
fn a_commit_on_a_detached_head_keeps_the_worktree_and_force_rescues_it() {
    let (env, wt) = detached();
    let x = commit_of_x(&env);
    let out = env.run(&["clean"]).success().stdout();
    assert!(wt.exists(), "clean removed the worktree:\n{out}");
    assert!(out.contains("detached"), "{out}");
    assert!(reachable(&env).contains(&x));

    let out = env.run(&["clean", "--force"]).success().stdout();
    assert!(!wt.exists(), "{out}");
    assert!(
        reachable_from_refs(&env).contains(&x),
        "X became unreachable:\n{out}"
    );
    let rescued = env.git(&[
        "for-each-ref",
        "--format=%(refname)",
        "refs/orchestrate/rescued/",
    ]);
    assert!(!rescued.trim().is_empty(), "{out}");
    assert!(out.contains(rescued.lines().next().unwrap()), "{out}");
}

#[test]
fn commits_on_another_branch_keep_the_worktree_and_survive_force() {
    let mut steps: Vec<&[&str]> = vec![&["switch", "-q", "-c", "side"]];
    steps.extend(commit_x());
    let (env, wt) = worked(&steps);
    let x = commit_of_x(&env);
    let out = env.run(&["clean", "--branches"]).success().stdout();
    assert!(wt.exists(), "{out}");
    assert!(out.contains("side"), "{out}");
    env.run(&["clean", "--force", "--branches"]).success();
    assert!(!wt.exists());
    assert!(reachable_from_refs(&env).contains(&x));
}

#[test]
fn commits_reset_away_keep_the_branch_and_force_rescues_them() {
    let mut steps: Vec<&[&str]> = commit_x().to_vec();
    steps.push(&["reset", "-q", "--hard", "HEAD~1"]);
    let (env, wt) = worked(&steps);
    let x = commit_of_x(&env);
    // Removing the worktree and the (merged) branch would drop both reflogs holding X.
    let out = env.run(&["clean", "--branches"]).success().stdout();
    assert!(reachable(&env).contains(&x), "X lost:\n{out}");
    assert!(out.contains("kept"), "{out}");
    let out = env
        .run(&["clean", "--force", "--branches"])
        .success()
        .stdout();
    assert!(!wt.exists(), "{out}");
    assert!(reachable_from_refs(&env).contains(&x), "X lost:\n{out}");
}

/// `clean --force` while `start` runs `post_create` in the new worktree: kept, said so.
#[test]
fn force_never_removes_a_worktree_start_is_preparing() {
    let mut fake = Fake::new(TestEnv::new());
    fake.env.add_stream("Stream-A", &[], 1, "pending");
    let entered = fake.markers.join("post_create.entered");
    let go = fake.markers.join("post_create.go");
    let script = format!(
        "sh -c 'touch {}; while [ ! -e {} ]; do sleep 0.02; done'",
        entered.display(),
        go.display()
    );
    let mut start = {
        let mut cmd = fake.cmd(&["start", "--worktrees", "--stagger", "0"]);
        cmd.env("ORCHESTRATE_POST_CREATE", &script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.spawn().unwrap()
    };
    wait_for("post_create to run", LONG, || entered.exists());
    let wt = fake.env.root.join(".claude/worktrees/Stream-A");
    let out = fake.env.run(&["clean", "--force"]).success().stdout();
    assert!(
        wt.join("README.md").exists(),
        "removed while preparing:\n{out}"
    );
    assert!(out.contains("in use"), "{out}");
    std::fs::write(&go, "").unwrap();
    assert_eq!(wait_exit(&mut start, LONG), exit_codes::OK);
    assert_eq!(fake.lines("Stream-A", "started").len(), 1);
}

/// `clean --force` while the worker runs: kept; `--force` does not override "in use".
#[test]
fn force_never_removes_a_live_worker_s_worktree() {
    let mut fake = Fake::new(TestEnv::new());
    fake.env.add_stream("Stream-A", &[], 1, "pending");
    let go = fake.markers.join("go");
    fake.set("WAIT_FOR", None, go.to_str().unwrap());
    let mut start = fake.spawn(&["start", "--worktrees", "--stagger", "0"], "start");
    wait_for("the worker to start", LONG, || {
        fake.marker("Stream-A", "started").exists()
    });
    let wt = fake.env.root.join(".claude/worktrees/Stream-A");
    let out = fake.env.run(&["clean", "--force"]).success().stdout();
    assert!(wt.join("README.md").exists(), "{out}");
    assert!(out.contains("in use"), "{out}");
    std::fs::write(&go, "").unwrap();
    assert_eq!(wait_exit(&mut start, LONG), exit_codes::OK);
}

/// A process (a shell, an editor, a build) working inside a worktree: kept, named.
#[test]
fn force_never_removes_a_worktree_a_process_works_in() {
    let (env, wt) = worked(&[]);
    let inside = wt.join("sub");
    std::fs::create_dir_all(&inside).unwrap();
    let mut sleeper = Command::new("sleep")
        .arg("60")
        .current_dir(&inside)
        .spawn()
        .unwrap();
    let out = env.run(&["clean", "--force"]).success().stdout();
    let kept = wt.exists();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert!(kept, "{out}");
    assert!(out.contains(&sleeper.id().to_string()), "{out}");
    env.run(&["clean", "--force"]).success();
    assert!(!wt.exists());
}

#[test]
fn clean_help_says_force_never_overrides_in_use() {
    let env = TestEnv::new();
    let help = env.run(&["clean", "--help"]).success().stdout();
    assert!(help.contains("in use"), "{help}");
    assert!(help.contains("never"), "{help}");
}

/// What one race of `clean --force` against `start` saw.
pub struct RaceTrial {
    /// The worker found its worktree (or its files) gone under it.
    pub pulled_from_under: bool,
    /// `clean` runs that found the worktree in use and kept it.
    pub kept_in_use: usize,
    /// `clean` runs that removed the worktree (after the worker ended).
    pub removed: usize,
    pub start_code: i32,
    pub output: String,
}

/// `start --worktrees` and `clean --force` launched together (a barrier: both wait for one
/// file), `delay_ms` apart. The worker checks, after its sleep, that its worktree is intact.
pub fn clean_races_start(delay_ms: u64) -> RaceTrial {
    let mut fake = Fake::new(TestEnv::new());
    fake.env.add_stream("Stream-A", &[], 1, "pending");
    fake.set("SLEEP", None, "0.2").set(
        "RUN",
        None,
        r#"test -f README.md && git status --porcelain >/dev/null || touch "$FAKE_MARKER/GONE""#,
    );
    // A first start creates the store and the worktree; the race is on the second run.
    let barrier = fake.markers.join("barrier");
    let wt = fake.env.root.join(".claude/worktrees/Stream-A");
    let wait = format!(
        "while [ ! -e {} ]; do sleep 0.005; done; sleep {}",
        barrier.display(),
        delay_ms as f64 / 1000.0
    );
    let mut start = fake.spawn(&["start", "--worktrees", "--stagger", "0"], "start");
    let clean = {
        let exe = env!("CARGO_BIN_EXE_orchestrate");
        let mut cmd = Command::new("sh");
        fake.env.apply_env(&mut cmd);
        cmd.current_dir(&fake.env.root)
            .arg("-c")
            .arg(format!(
                "{wait}; for i in 1 2 3 4 5; do {exe} clean --force; done"
            ))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().unwrap()
    };
    std::fs::write(&barrier, "").unwrap();
    let start_code = wait_exit(&mut start, LONG);
    let cleaned = clean.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&cleaned.stdout).into_owned();
    RaceTrial {
        kept_in_use: said.matches("it is in use").count(),
        removed: said.matches("removed worktree").count(),
        pulled_from_under: fake.markers.join("GONE").exists()
            || fake.marker("Stream-A", "run-failed").exists(),
        start_code,
        output: format!(
            "{}{}{}{}",
            fake.output_of("start", "out"),
            fake.output_of("start", "err"),
            String::from_utf8_lossy(&cleaned.stdout),
            String::from_utf8_lossy(&cleaned.stderr)
        ) + &format!("\nworktree exists: {}", wt.exists()),
    }
}

#[test]
fn clean_racing_start_never_removes_a_worktree_in_use() {
    for delay in [0, 30, 120] {
        let t = clean_races_start(delay);
        assert!(!t.pulled_from_under, "delay {delay} ms:\n{}", t.output);
        assert_eq!(
            t.start_code,
            exit_codes::OK,
            "delay {delay} ms:\n{}",
            t.output
        );
    }
}

/// Long run: `scripts/reliability/git-safety.sh clean [N]`.
#[test]
#[ignore = "long run (minutes): scripts/reliability/git-safety.sh clean"]
fn long_clean_racing_start() {
    let n = super::trials(50);
    let mut rng = super::Rng::from_env();
    let (mut pulled, mut failed, mut kept, mut removed) = (0, 0, 0, 0);
    let began = std::time::Instant::now();
    for t in 0..n {
        let delay = rng.below(400);
        let trial = clean_races_start(delay);
        kept += trial.kept_in_use;
        removed += trial.removed;
        if trial.pulled_from_under {
            pulled += 1;
            super::report(&format!(
                "trial {t} (delay {delay} ms): worktree pulled from under the worker\n{}",
                trial.output
            ));
        }
        if trial.start_code != exit_codes::OK {
            failed += 1;
            super::report(&format!(
                "trial {t} (delay {delay} ms): start exited {}\n{}",
                trial.start_code, trial.output
            ));
        }
    }
    super::report(&format!(
        "RESULT clean: {n} races ({} clean runs) in {:.0?}: {kept} found the worktree in use and \
         kept it, {removed} removed it once free; {pulled} worktrees in use removed, {failed} \
         failed starts",
        n * 5,
        began.elapsed()
    ));
    assert_eq!(pulled + failed, 0);
}
