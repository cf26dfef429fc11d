//! Benchmark: what the orchestrator costs while agents work. `start` with 8 independent streams
//! whose workers run 60 s each; CPU time of the orchestrator processes (`start` and the eight
//! supervisors) over the whole run, and their peak RSS. Targets: CPU ≤ 0.5 s, peak RSS ≤ 30 MB.
//!
//! CPU is measured as the CPU of every descendant (getrusage RUSAGE_CHILDREN) minus a baseline:
//! the same eight worker scripts run directly, without orchestrate. RSS is sampled from
//! /proc/<pid>/status (VmHWM) of `start` and each supervisor every 200 ms.
//!
//! Run: `cargo bench --bench overhead` (about 2 minutes; `OVERHEAD_SECS=10` for a shorter run).

#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::support::TestEnv;
use common::{children_cpu, worker_cmd};

const WORKERS: usize = 8;

/// Peak resident set (VmHWM) of `pid` in KiB, if it is still there.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Direct children of `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn setup() -> (TestEnv, std::path::PathBuf) {
    let mut env = TestEnv::new();
    for i in 0..WORKERS {
        env.add_task(&format!("W{i}"), "work", "pending", &[]);
    }
    let marks = env.tmp.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    (env, marks)
}

fn main() {
    let work: u64 = std::env::var("OVERHEAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);

    // Baseline: the same worker scripts, run directly, all at once.
    let (env, marks) = setup();
    let cpu_before = children_cpu();
    let script = worker_cmd();
    let mut words = script.split_whitespace();
    let (sh, path) = (words.next().unwrap(), words.next().unwrap());
    let children: Vec<_> = (0..WORKERS)
        .map(|i| {
            let mut cmd = Command::new(sh);
            env.apply_env(&mut cmd);
            cmd.arg(path)
                .current_dir(&env.root)
                .env("ORCHESTRATE_BIN", env!("CARGO_BIN_EXE_orchestrate"))
                .env("ORCHESTRATE_STREAM", format!("W{i}"))
                .env("ORCHESTRATE_DB", env.db_path())
                .env("BENCH_MARKS", &marks)
                .env("BENCH_WORK", "1")
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let baseline = children_cpu() - cpu_before;

    // The real run.
    let (env, marks) = setup();
    let cpu_before = children_cpu();
    let started = Instant::now();
    let mut start = env
        .cmd(&[
            "start",
            "--stagger",
            "0",
            "--max-parallel",
            "8",
            "--worker-cmd",
            &worker_cmd(),
        ])
        .env("BENCH_MARKS", &marks)
        // Sandboxed workers (the default) may write their marks.
        .env("ORCHESTRATE_SANDBOX_WRITABLE", &marks)
        .env("BENCH_WORK", work.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = start.id();
    let (mut start_peak, mut supervisor_peak) = (0u64, 0u64);
    let status = loop {
        if let Some(status) = start.try_wait().unwrap() {
            break status;
        }
        start_peak = start_peak.max(vm_hwm_kib(pid).unwrap_or(0));
        for child in children_of(pid) {
            supervisor_peak = supervisor_peak.max(vm_hwm_kib(child).unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(status.success(), "start failed");
    let wall = started.elapsed();
    let total = children_cpu() - cpu_before;
    let overhead = total.saturating_sub(baseline);

    println!("## overhead while waiting ({WORKERS} workers × {work} s)\n");
    println!("| measure | value | target |\n|---|---|---|");
    println!("| wall time of the run | {:.1} s | |", wall.as_secs_f64());
    println!("| CPU, all descendants | {:.3} s | |", total.as_secs_f64());
    println!(
        "| CPU, the same workers run directly (baseline) | {:.3} s | |",
        baseline.as_secs_f64()
    );
    println!(
        "| **orchestrator CPU (difference)** | **{:.3} s** | ≤ 0.5 s |",
        overhead.as_secs_f64()
    );
    println!(
        "| peak RSS, `start` | {:.1} MB | ≤ 30 MB |",
        start_peak as f64 / 1024.0
    );
    println!(
        "| peak RSS, one supervisor | {:.1} MB | |",
        supervisor_peak as f64 / 1024.0
    );
}
