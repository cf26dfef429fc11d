//! Benchmark: `orchestrate status` (plain and `--json`) as a whole process on databases of
//! 10 × 5, 200 × 20 and 1,000 × 20 tasks in mixed states. Targets: ≤ 10 ms for 10 streams,
//! ≤ 60 ms for 20,000 tasks. Run: `cargo bench --bench status_scale`.

#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]

mod common;

use std::time::{Duration, Instant};

use common::support::TestEnv;
use common::{Stats, TABLE_HEADER};
use rusqlite::params;

const RUNS: usize = 20;
const STATES: [&str; 5] = [
    "completed",
    "in_progress",
    "pending",
    "blocked",
    "cancelled",
];

/// `streams` streams of `tasks` tasks, each stream depending on up to two earlier ones.
fn populate(env: &TestEnv, streams: usize, tasks: usize) {
    let mut conn = env.conn();
    let tx = conn.transaction().unwrap();
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO tasks (id, title, status, blocked_reason, metadata, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
            )
            .unwrap();
        for s in 0..streams {
            let deps: Vec<String> = [s / 2, s / 3]
                .iter()
                .filter(|&&d| d < s)
                .map(|d| format!("Stream-{d:04}"))
                .collect();
            for t in 0..tasks {
                let meta = serde_json::json!({
                    "streamId": format!("Stream-{s:04}"),
                    "streamName": format!("Stream {s}"),
                    "dependencies": deps,
                    "files": [format!("src/mod{s}/file{t}.rs")],
                });
                let status = STATES[(s * 7 + t) % STATES.len()];
                let reason = (status == "blocked").then_some("waiting for credentials");
                insert
                    .execute(params![
                        format!("TASK-{s:04}-{t:04}"),
                        format!("Task {t} of stream {s}"),
                        status,
                        reason,
                        meta.to_string()
                    ])
                    .unwrap();
            }
        }
    }
    tx.commit().unwrap();
}

fn time_runs(env: &TestEnv, args: &[&str]) -> Vec<Duration> {
    // One warm-up run so the page cache holds the database and the binary.
    assert!(env.run(args).0.status.success());
    (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            let out = env.cmd(args).output().unwrap();
            let took = start.elapsed();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            took
        })
        .collect()
}

fn main() {
    println!("## status at scale ({RUNS} runs each, whole process)\n\n{TABLE_HEADER}");
    for (streams, tasks) in [(10, 5), (200, 20), (1000, 20)] {
        let env = TestEnv::new();
        populate(&env, streams, tasks);
        for (mode, args) in [
            ("plain", &["status"][..]),
            ("--json", &["status", "--json"][..]),
        ] {
            let stats = Stats::of(&time_runs(&env, args));
            println!(
                "{}",
                stats.row(&format!(
                    "{streams} streams × {tasks} tasks = {} tasks, {mode}",
                    streams * tasks
                ))
            );
        }
    }
}
