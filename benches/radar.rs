//! Benchmark: the conflict radar's cost per branch move, with 8 streams running on a
//! repository of 5,000 files.
//!
//! Eight independent streams W0…W7 have a branch each with work in their own folder; W0 and W1
//! also both edit `src/shared.rs` (so their pair is a real conflict, merged in memory on every
//! move of either). Each move is one new commit on one stream's branch (made with git plumbing,
//! outside the timing); timed is what the dispatcher does on the next wake-up: read the tips,
//! and preview every pair involving the moved stream plus it against the target (the other
//! pairs come from the cache). Also timed: a wake-up where nothing moved (tips only). Yardstick,
//! in the same run: one `git merge-tree --write-tree` of the conflicting pair by the git CLI.
//! Target: ≤ 20 ms per move.
//!
//! Run: `cargo bench --bench radar` (`RADAR_MOVES=N` for more moves; default 48).

#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::support::TestEnv;
use common::{Stats, TABLE_HEADER};
use orchestrate::git::radar::Radar;
use orchestrate::graph::StreamGraph;
use orchestrate::taskdb::{TaskDb, TaskSource};

const FILES: usize = 5_000;
const FILE_BYTES: usize = 1_000;
const STREAMS: usize = 8;

/// Runs git in the project root with the test environment, returning trimmed stdout.
fn git(env: &TestEnv, args: &[&str], index: Option<&std::path::Path>) -> String {
    let mut cmd = Command::new("git");
    env.apply_env(&mut cmd);
    if let Some(index) = index {
        cmd.env("GIT_INDEX_FILE", index);
    }
    let out = cmd.current_dir(&env.root).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A new commit on `branch` writing `files` (path, content), without a checkout.
fn commit_on(env: &TestEnv, branch: &str, files: &[(String, String)]) {
    let index = env.tmp.path().join("bench-index");
    git(env, &["read-tree", branch], Some(&index));
    for (path, content) in files {
        let blob_file = env.tmp.path().join("blob");
        std::fs::write(&blob_file, content).unwrap();
        let blob = git(
            env,
            &["hash-object", "-w", blob_file.to_str().unwrap()],
            None,
        );
        git(
            env,
            &[
                "update-index",
                "--add",
                "--cacheinfo",
                &format!("100644,{blob},{path}"),
            ],
            Some(&index),
        );
    }
    let tree = git(env, &["write-tree"], Some(&index));
    let commit = git(
        env,
        &["commit-tree", &tree, "-p", branch, "-m", "work"],
        None,
    );
    git(
        env,
        &["update-ref", &format!("refs/heads/{branch}"), &commit],
        None,
    );
}

fn own_files(stream: usize, step: usize) -> Vec<(String, String)> {
    // Files of the stream's own folder (src/mNN/ holds files i with i % 50 == NN).
    (0..3)
        .map(|k| {
            let i = stream + 50 * (k + 3 * step) % FILES;
            (
                format!("src/m{:02}/d{:02}/f{i}.rs", i % 50, (i / 50) % 10),
                format!("// {stream} step {step} file {k}\n"),
            )
        })
        .collect()
}

fn setup() -> (TestEnv, StreamGraph) {
    let mut env = TestEnv::new();
    common::commit_big_tree(&env, FILES, FILE_BYTES);
    for s in 0..STREAMS {
        env.add_task(&format!("W{s}"), "work", "pending", &[]);
        let branch = format!("stream/W{s}");
        git(&env, &["branch", &branch, "main"], None);
        let mut files = own_files(s, 0);
        if s < 2 {
            files.push(("src/shared.rs".into(), format!("// W{s}'s version\n")));
        }
        commit_on(&env, &branch, &files);
    }
    let mut db = TaskDb::open(&env.db_path(), "bench").unwrap();
    let graph = StreamGraph::build(&db.snapshot().unwrap()).unwrap();
    (env, graph)
}

fn main() {
    let moves: usize = std::env::var("RADAR_MOVES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    let (env, graph) = setup();
    let ids: Vec<String> = (0..STREAMS).map(|s| format!("W{s}")).collect();
    let mut radar = Radar::open(&env.root, "main").unwrap();
    let first = Instant::now();
    let tips = radar.tips(ids.iter().map(String::as_str)).unwrap();
    let found = radar.scan(&graph, &tips).unwrap();
    let cold = first.elapsed();
    assert_eq!(
        found.len(),
        1,
        "W0 and W1 conflict in src/shared.rs: {found:?}"
    );

    let (mut per_move, mut conflicting, mut idle, mut yardstick) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut computed = 0;
    for m in 0..moves {
        let s = m % STREAMS;
        let mut files = own_files(s, m / STREAMS + 1);
        if s < 2 {
            files.push(("src/shared.rs".into(), format!("// W{s}'s version {m}\n")));
        }
        commit_on(&env, &format!("stream/W{s}"), &files);
        let started = Instant::now();
        let tips = radar.tips(ids.iter().map(String::as_str)).unwrap();
        let found = radar.scan(&graph, &tips).unwrap();
        let took = started.elapsed();
        assert_eq!(found.len(), 1);
        computed += radar.computed;
        per_move.push(took);
        if s < 2 {
            conflicting.push(took);
        }
        // Nothing moved since: what every other wake-up costs.
        let started = Instant::now();
        let again = radar.tips(ids.iter().map(String::as_str)).unwrap();
        assert_eq!(again, tips);
        idle.push(started.elapsed());
        let started = Instant::now();
        let out = Command::new("git")
            .current_dir(&env.root)
            .args(["merge-tree", "--write-tree", "stream/W0", "stream/W1"])
            .output()
            .unwrap();
        yardstick.push(started.elapsed());
        assert_eq!(out.status.code(), Some(1), "the CLI sees the conflict too");
    }
    let median = |v: &[Duration]| Stats::of(v).median;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "## conflict radar ({FILES} files, {STREAMS} streams, {moves} moves, load {})\n",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("{TABLE_HEADER}");
    println!(
        "{}",
        Stats::of(&per_move).row("radar: one branch move (tips + scan)")
    );
    println!(
        "{}",
        Stats::of(&conflicting).row("radar: a move of W0/W1 (a real in-memory merge)")
    );
    println!(
        "{}",
        Stats::of(&idle).row("radar: a wake-up with nothing moved (tips)")
    );
    println!(
        "{}",
        Stats::of(&yardstick).row("git CLI: `git merge-tree --write-tree` of W0, W1")
    );
    println!(
        "\nfirst scan (28 pairs + 8 against the target, cold): {:.2} ms; pairs recomputed per \
         move: {:.1} (of 36)",
        cold.as_secs_f64() * 1000.0,
        computed as f64 / moves as f64
    );
    println!(
        "ratio radar per move / one git merge-tree (medians): **{:.2}**; target ≤ 20 ms per move",
        median(&per_move) / median(&yardstick)
    );
}
