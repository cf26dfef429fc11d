//! Benchmark: fan-out. 300 independent streams whose workers mark their task completed and exit
//! at once, `--max-parallel 32`, stagger 0. Reports the total wall time and the orchestration
//! overhead per stream (target ≤ 10 ms), against a baseline that runs the same 300 worker
//! scripts 32 at a time without orchestrate.
//!
//! On this 2-core machine the run is CPU-bound (300 short-lived workers, each starting two
//! `orchestrate task` processes), so the 32 lanes share two cores rather than running side by
//! side: the overhead per stream is the extra wall time amortised over the streams,
//! (wall with orchestrate − baseline wall) / 300, and the orchestrator's CPU per stream
//! (scheduler + supervisor) is reported beside it.
//!
//! At scale (`FANOUT_STREAMS=2000 FANOUT_TASKS=25`: 2,000 streams over 50,000 tasks) the plan is
//! written in one transaction and each worker marks its stream's tasks with one `sqlite3`
//! statement (`BENCH_SQL`), so the run measures the orchestrator; it reports launches per
//! second (target ≥ 50 at 2,000 streams), from the workers' own start marks.
//!
//! Run: `cargo bench --bench fanout`.

#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::support::TestEnv;
use common::{children_cpu, worker_cmd};

const LANES: usize = 32;

/// How many streams, how many tasks each (1: the original 300-stream run).
fn scale() -> (usize, usize) {
    let var = |name: &str, default| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    (var("FANOUT_STREAMS", 300), var("FANOUT_TASKS", 1))
}

/// Whether workers mark their tasks with `sqlite3` (the run at scale).
fn at_scale() -> bool {
    scale().1 > 1
}

fn stream_id(i: usize) -> String {
    format!("F{i:04}")
}

fn setup() -> (TestEnv, std::path::PathBuf) {
    let (streams, tasks) = scale();
    let mut env = TestEnv::new();
    if at_scale() {
        let mut conn = env.conn();
        let tx = conn.transaction().unwrap();
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO tasks (id, title, status, metadata, created_at, updated_at)
                     VALUES (?1, 'work', 'pending', ?2, '2026-01-01T00:00:00.000Z',
                             '2026-01-01T00:00:00.000Z')",
                )
                .unwrap();
            for s in 0..streams {
                let id = stream_id(s);
                let meta = serde_json::json!({"streamId": id, "streamName": format!("{id} work")});
                for t in 0..tasks {
                    insert
                        .execute(rusqlite::params![format!("{id}-{t:04}"), meta.to_string()])
                        .unwrap();
                }
            }
        }
        tx.commit().unwrap();
    } else {
        for i in 0..streams {
            env.add_task(&stream_id(i), "work", "pending", &[]);
        }
    }
    let marks = env.tmp.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    (env, marks)
}

/// The workers' start marks, earliest and latest.
fn start_span(marks: &std::path::Path) -> (usize, f64, f64) {
    let mut times: Vec<f64> = std::fs::read_dir(marks)
        .unwrap()
        .filter_map(|e| common::read_mark(&e.ok()?.path()))
        .collect();
    times.sort_by(f64::total_cmp);
    (times.len(), times[0], times[times.len() - 1])
}

fn baseline() -> (Duration, Duration) {
    let (env, marks) = setup();
    let script = worker_cmd();
    let mut words = script.split_whitespace();
    let (sh, path) = (words.next().unwrap(), words.next().unwrap());
    let spawn = |i: usize| -> Child {
        let mut cmd = Command::new(sh);
        env.apply_env(&mut cmd);
        cmd.arg(path)
            .current_dir(&env.root)
            .env("ORCHESTRATE_BIN", env!("CARGO_BIN_EXE_orchestrate"))
            .env("ORCHESTRATE_STREAM", stream_id(i))
            .env("ORCHESTRATE_DB", env.db_path())
            .env("BENCH_MARKS", &marks)
            .env("BENCH_SQL", if at_scale() { "1" } else { "0" })
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    };
    let cpu = children_cpu();
    let started = Instant::now();
    let mut next = 0;
    let mut running: Vec<Child> = Vec::new();
    let streams = scale().0;
    while next < streams || !running.is_empty() {
        while running.len() < LANES && next < streams {
            running.push(spawn(next));
            next += 1;
        }
        running.retain_mut(|c| c.try_wait().unwrap().is_none());
        std::thread::sleep(Duration::from_millis(1));
    }
    (started.elapsed(), children_cpu() - cpu)
}

fn main() {
    let (base_wall, base_cpu) = baseline();
    let (env, marks) = setup();
    let cpu = children_cpu();
    let started = Instant::now();
    let out = env
        .cmd(&[
            "start",
            "--stagger",
            "0",
            "--max-parallel",
            &LANES.to_string(),
            "--worker-cmd",
            &worker_cmd(),
        ])
        .env("BENCH_MARKS", &marks)
        .env("BENCH_SQL", if at_scale() { "1" } else { "0" })
        // Sandboxed workers (the default) may write their marks.
        .env("ORCHESTRATE_SANDBOX_WRITABLE", &marks)
        .output()
        .unwrap();
    let wall = started.elapsed();
    let total_cpu = children_cpu() - cpu;
    assert!(
        out.status.success(),
        "start failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (streams, tasks) = scale();
    let (started_workers, first, last) = start_span(&marks);
    assert_eq!(
        started_workers, streams,
        "every stream's worker started once"
    );
    let per_stream = (wall.saturating_sub(base_wall)).as_secs_f64() / streams as f64;
    let cpu_per_stream = total_cpu.saturating_sub(base_cpu).as_secs_f64() / streams as f64;
    println!("## fan-out ({streams} streams × {tasks} tasks, --max-parallel {LANES}, stagger 0)\n");
    println!("| measure | value | target |\n|---|---|---|");
    println!(
        "| wall time with orchestrate | {:.2} s | |",
        wall.as_secs_f64()
    );
    println!(
        "| wall time, same workers 32 at a time without orchestrate | {:.2} s | |",
        base_wall.as_secs_f64()
    );
    println!(
        "| **overhead per stream (extra wall, amortised)** | **{:.1} ms** | ≤ 10 ms |",
        per_stream * 1000.0
    );
    println!(
        "| orchestrator CPU per stream (scheduler + supervisor) | {:.1} ms | ≤ 10 ms |",
        cpu_per_stream * 1000.0
    );
    println!(
        "| **launches per second** (workers started / span of their start marks) | **{:.0}** | ≥ 50 at 2,000 streams |",
        streams as f64 / (last - first).max(1e-9)
    );
    println!(
        "| streams per second over the whole run | {:.0} | |",
        streams as f64 / wall.as_secs_f64()
    );
}
