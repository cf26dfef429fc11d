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
//! Run: `cargo bench --bench fanout`.

#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::support::TestEnv;
use common::{children_cpu, worker_cmd};

const STREAMS: usize = 300;
const LANES: usize = 32;

fn setup() -> (TestEnv, std::path::PathBuf) {
    let mut env = TestEnv::new();
    for i in 0..STREAMS {
        env.add_task(&format!("F{i:03}"), "work", "pending", &[]);
    }
    let marks = env.tmp.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    (env, marks)
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
            .env("ORCHESTRATE_STREAM", format!("F{i:03}"))
            .env("ORCHESTRATE_DB", env.db_path())
            .env("BENCH_MARKS", &marks)
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    };
    let cpu = children_cpu();
    let started = Instant::now();
    let mut next = 0;
    let mut running: Vec<Child> = Vec::new();
    while next < STREAMS || !running.is_empty() {
        while running.len() < LANES && next < STREAMS {
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

    let per_stream = (wall.saturating_sub(base_wall)).as_secs_f64() / STREAMS as f64;
    let cpu_per_stream = total_cpu.saturating_sub(base_cpu).as_secs_f64() / STREAMS as f64;
    println!("## fan-out ({STREAMS} streams, --max-parallel {LANES}, stagger 0)\n");
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
}
