//! Benchmark: worktree creation and reuse on packed repositories of 5,000 files (50 MB) and
//! 50,000 files (100 MB) of distinct text, on the disk (the temporary folder) and on tmpfs
//! (`/dev/shm`).
//!
//! Creating: `WorktreeWorkspaces::prepare` (branch + worktree + base + records, as `start
//! --worktrees` does for each stream) for 4 (5k) or 1 (50k) independent streams, against
//! `git worktree add -b` run as often by the git CLI on the same repository, alternating which
//! goes first, 3 rounds. Target: ratio ≤ 1.0, goal 0.6. Reusing: `prepare` on an existing
//! valid worktree, target ≤ 20 ms each.
//!
//! Run: `cargo bench --bench worktrees`.

#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::support::TestEnv;
use common::{Stats, TABLE_HEADER};
use orchestrate::config::Config;
use orchestrate::git::WorktreeWorkspaces;
use orchestrate::graph::StreamGraph;
use orchestrate::project::Project;
use orchestrate::taskdb::{TaskDb, TaskSource};
use orchestrate::workspace::Workspaces;

/// One repository shape on one file system.
struct Case {
    fs: &'static str,
    base: PathBuf,
    files: usize,
    file_bytes: usize,
    /// Worktrees made by each side per round.
    streams: usize,
}

const ROUNDS: usize = 3;

fn cases() -> Vec<Case> {
    let disk = std::env::temp_dir();
    let tmpfs = PathBuf::from("/dev/shm");
    let mut out = Vec::new();
    for (fs, base) in [("disk", disk), ("tmpfs", tmpfs)] {
        if !base.is_dir() {
            println!("(no {} here: {fs} skipped)", base.display());
            continue;
        }
        out.push(Case {
            fs,
            base: base.clone(),
            files: 5_000,
            file_bytes: 10_000,
            streams: 4,
        });
        out.push(Case {
            fs,
            base,
            files: 50_000,
            file_bytes: 2_000,
            streams: 1,
        });
    }
    out
}

/// A repository of `case.files` files in 500 folders, packed as a clone's would be. Each file
/// is its own text (words drawn at random), so that, as in a real tree, the blobs of HEAD are
/// whole objects to inflate rather than deltas of one another.
fn big_repo(case: &Case) -> TestEnv {
    let mut env = TestEnv::new_in(&case.base);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let words: Vec<String> = (0..4096)
        .map(|_| {
            let len = 2 + next() % 8;
            (0..len)
                .map(|_| (b'a' + (next() % 26) as u8) as char)
                .collect()
        })
        .collect();
    for i in 0..case.files {
        let dir = env
            .root
            .join(format!("src/m{:02}/d{:02}", i % 50, (i / 50) % 10));
        std::fs::create_dir_all(&dir).unwrap();
        let mut text = String::with_capacity(case.file_bytes + 80);
        while text.len() < case.file_bytes {
            for _ in 0..8 {
                text.push_str(&words[(next() % 4096) as usize]);
                text.push(' ');
            }
            text.push('\n');
        }
        std::fs::write(dir.join(format!("f{i}.rs")), text).unwrap();
    }
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "many files"]);
    env.git(&["repack", "-adq"]);
    env.git(&["prune"]);
    for s in 0..case.streams {
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

fn with_git_cli(env: &TestEnv, streams: usize) -> Duration {
    let started = Instant::now();
    for s in 0..streams {
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
    println!("load before: {}", common::load());
    let mut ratios = Vec::new();
    for case in cases() {
        ratios.push(run(&case));
    }
    println!("\n## summary\n\n| file system | files | orchestrate / git CLI |\n|---|---|---|");
    for (case, ratio) in &ratios {
        println!("| {} | {} | **{ratio:.2}** |", case.0, case.1);
    }
    println!("\nload after: {}", common::load());
}

/// Creates and reuses worktrees of one case, alternating which side goes first.
fn run(case: &Case) -> ((&'static str, usize), f64) {
    let env = big_repo(case);
    let g = graph(&env);
    let (mut ours, mut theirs, mut reuse) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        if round % 2 == 0 {
            ours.push(with_orchestrate(&env, &g));
            theirs.push(with_git_cli(&env, case.streams));
        } else {
            theirs.push(with_git_cli(&env, case.streams));
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
    let n = case.streams;
    println!(
        "\n## worktree creation on {} ({}: {} files, {} MB; {n} worktrees, {ROUNDS} rounds)\n",
        case.fs,
        case.base.display(),
        case.files,
        case.files * case.file_bytes / 1_000_000
    );
    println!("{TABLE_HEADER}");
    println!(
        "{}",
        Stats::of(&ours).row(&format!("orchestrate: create {n} (prepare)"))
    );
    println!(
        "{}",
        Stats::of(&theirs).row(&format!("git CLI: `git worktree add -b` × {n}"))
    );
    println!(
        "{}",
        Stats::of(&reuse).row("orchestrate: reuse one existing worktree")
    );
    let ratio = total(&ours) / total(&theirs);
    println!(
        "\nratio orchestrate / git CLI (sum over rounds): **{ratio:.2}** (target ≤ 1.0, goal 0.6)"
    );
    ((case.fs, case.files), ratio)
}
