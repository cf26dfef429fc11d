//! Benchmark: worktree creation and reuse on a repository of 5,000 files (about 50 MB).
//!
//! Creating: `WorktreeWorkspaces::prepare` (branch + worktree + base + records, as `start
//! --worktrees` does for each stream) for 8 independent streams, against `git worktree add -b`
//! run 8 times by the git CLI on the same repository, alternating which goes first, 3 rounds.
//! Target: ratio ≤ 1.0. Reusing: `prepare` on an existing valid worktree, target ≤ 20 ms each.
//!
//! Run: `cargo bench --bench worktrees`.

#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]

mod common;

use std::time::{Duration, Instant};

use common::support::TestEnv;
use common::{Stats, TABLE_HEADER};
use orchestrate::config::Config;
use orchestrate::git::WorktreeWorkspaces;
use orchestrate::graph::StreamGraph;
use orchestrate::project::Project;
use orchestrate::taskdb::{TaskDb, TaskSource};
use orchestrate::workspace::Workspaces;

const FILES: usize = 5_000;
const FILE_BYTES: usize = 10_000;
const STREAMS: usize = 8;
const ROUNDS: usize = 3;

fn big_repo() -> TestEnv {
    let mut env = TestEnv::new();
    common::commit_big_tree(&env, FILES, FILE_BYTES);
    for s in 0..STREAMS {
        env.add_task(&format!("W{s}"), "work", "pending", &[]);
    }
    env
}

fn graph(env: &TestEnv) -> StreamGraph {
    let mut db = TaskDb::open(&env.db_path(), "bench").unwrap();
    StreamGraph::build(&db.snapshot().unwrap()).unwrap()
}

fn remove_all(env: &TestEnv) {
    for dir in [".claude/worktrees", ".claude/cli-worktrees"] {
        let _ = std::fs::remove_dir_all(env.root.join(dir));
    }
    env.git(&["worktree", "prune"]);
    let branches = env.git(&["branch", "--format=%(refname:short)"]);
    for b in branches
        .lines()
        .filter(|b| b.starts_with("stream/") || b.starts_with("cli/"))
    {
        env.git(&["branch", "-q", "-D", b]);
    }
}

fn with_orchestrate(env: &TestEnv, g: &StreamGraph) -> Duration {
    let mut ws = WorktreeWorkspaces::new(
        Project {
            root: env.root.clone(),
        },
        Config::default(),
    )
    .unwrap();
    let started = Instant::now();
    for s in g.streams() {
        ws.prepare(s, g).unwrap();
    }
    started.elapsed()
}

fn with_git_cli(env: &TestEnv) -> Duration {
    let started = Instant::now();
    for s in 0..STREAMS {
        env.git(&[
            "worktree",
            "add",
            "-q",
            "-b",
            &format!("cli/W{s}"),
            &format!(".claude/cli-worktrees/W{s}"),
            "HEAD",
        ]);
    }
    started.elapsed()
}

fn main() {
    let env = big_repo();
    let g = graph(&env);
    let (mut ours, mut theirs, mut reuse) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        if round % 2 == 0 {
            ours.push(with_orchestrate(&env, &g));
            theirs.push(with_git_cli(&env));
        } else {
            theirs.push(with_git_cli(&env));
            ours.push(with_orchestrate(&env, &g));
        }
        // Reuse: every worktree exists and is valid now.
        let mut ws = WorktreeWorkspaces::new(
            Project {
                root: env.root.clone(),
            },
            Config::default(),
        )
        .unwrap();
        for s in g.streams() {
            let started = Instant::now();
            ws.prepare(s, &g).unwrap();
            reuse.push(started.elapsed());
        }
        remove_all(&env);
    }
    let total = |v: &[Duration]| v.iter().sum::<Duration>().as_secs_f64();
    println!(
        "## worktree creation ({FILES} files, {} MB, {STREAMS} worktrees, {ROUNDS} rounds)\n",
        FILES * FILE_BYTES / 1_000_000
    );
    println!("{TABLE_HEADER}");
    println!(
        "{}",
        Stats::of(&ours).row("orchestrate: create 8 (prepare)")
    );
    println!(
        "{}",
        Stats::of(&theirs).row("git CLI: `git worktree add -b` × 8")
    );
    println!(
        "{}",
        Stats::of(&reuse).row("orchestrate: reuse one existing worktree")
    );
    println!(
        "\nratio orchestrate / git CLI (sum over rounds): **{:.2}** (target ≤ 1.0)",
        total(&ours) / total(&theirs)
    );
}
