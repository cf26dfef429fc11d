//! Benchmark: what the orchestrator costs while agents work. `start` with 8 independent streams
//! whose workers run 60 s each; CPU time of the orchestrator processes (`start` and the eight
//! supervisors) over the whole run, and their peak RSS. Targets: CPU ≤ 0.5 s, peak RSS ≤ 30 MB.
//!
//! CPU is measured as the CPU of every descendant (getrusage RUSAGE_CHILDREN) minus a baseline:
//! the same eight worker scripts run directly, without orchestrate. RSS is sampled from
//! /proc/<pid>/status (VmHWM) of `start` and each supervisor every 200 ms.
//!
//! Run: `cargo bench --bench overhead` (about 2 minutes; `OVERHEAD_SECS=10` for a shorter run).
//!
//! `OVERHEAD_SCALE=1` measures instead `start`'s own CPU at 2,000 streams / 50,000 tasks while
//! the database is written as 2,000 workers would write it, each updating a task every 3 s
//! (667 updates a second, from one writer in this process; target ≤ 10 % of one core), against
//! the same `start` over the same span with no writes. Eight streams run lingering workers; the
//! writes go to the other streams' tasks (status flipped between `pending` and `in_progress`,
//! `updated_at` set as `orchestrate task set` sets it).

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

/// CPU time (user + system) of process `pid` so far.
fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of the line, 11 and 12 after the name and state.
    let ticks = f[11] + f[12];
    // USER_HZ: 100 on every Linux this runs on (the kernel reports clock ticks in it).
    Duration::from_millis(ticks * 10)
}

const SCALE_STREAMS: usize = 2000;
const SCALE_TASKS: usize = 25;
const SCALE_RUNNING: usize = 8;

/// 2,000 streams × 25 tasks with ids `F0000-0000`…, written in one transaction.
fn scale_setup() -> (TestEnv, std::path::PathBuf) {
    let env = TestEnv::new();
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
        for s in 0..SCALE_STREAMS {
            let id = format!("F{s:04}");
            let meta = serde_json::json!({"streamId": id, "streamName": format!("{id} work")});
            for t in 0..SCALE_TASKS {
                insert
                    .execute(rusqlite::params![format!("{id}-{t:04}"), meta.to_string()])
                    .unwrap();
            }
        }
    }
    tx.commit().unwrap();
    let marks = env.tmp.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    (env, marks)
}

/// Writes as 2,000 workers would for `span`, to the tasks of streams that are not running;
/// returns how many updates it made.
fn write_like_workers(db: &std::path::Path, span: Duration, running: &[String]) -> usize {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.busy_timeout(Duration::from_secs(30)).unwrap();
    let mut update = conn
        .prepare(
            "UPDATE tasks SET status = ?1, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE id = ?2",
        )
        .unwrap();
    let gap = Duration::from_secs(3) / SCALE_STREAMS as u32;
    let started = Instant::now();
    let mut n = 0usize;
    while started.elapsed() < span {
        // Paced to the rate, not to the gap after each write (writes take time too).
        let due = started + gap * n as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let stream = format!("F{:04}", (n * 7919) % SCALE_STREAMS);
        if running.contains(&stream) {
            n += 1;
            continue;
        }
        let status = if (n / SCALE_STREAMS).is_multiple_of(2) {
            "in_progress"
        } else {
            "pending"
        };
        update
            .execute(rusqlite::params![
                status,
                format!("{stream}-{:04}", n % SCALE_TASKS)
            ])
            .unwrap();
        n += 1;
    }
    n
}

/// `start`'s own CPU while the database is written as 2,000 workers would write it.
fn at_scale(span: Duration) {
    let (env, marks) = scale_setup();
    let mut start = env
        .cmd(&[
            "start",
            "--stagger",
            "0",
            "--max-parallel",
            &SCALE_RUNNING.to_string(),
            "--worker-cmd",
            &worker_cmd(),
        ])
        .env("BENCH_MARKS", &marks)
        .env("ORCHESTRATE_SANDBOX_WRITABLE", &marks)
        .env("BENCH_WORK", "100000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = start.id();
    let launched = Instant::now();
    let running = loop {
        let names: Vec<String> = std::fs::read_dir(&marks)
            .unwrap()
            .filter_map(|e| {
                Some(
                    e.ok()?
                        .file_name()
                        .to_str()?
                        .strip_suffix(".start")?
                        .to_string(),
                )
            })
            .collect();
        if names.len() == SCALE_RUNNING {
            break names;
        }
        assert!(
            launched.elapsed() < Duration::from_secs(300),
            "the workers never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // Settled: the launches' work is done.
    std::thread::sleep(Duration::from_secs(2));
    let quiet_from = (Instant::now(), cpu_of(pid));
    std::thread::sleep(span);
    let quiet = (cpu_of(pid) - quiet_from.1).as_secs_f64() / quiet_from.0.elapsed().as_secs_f64();
    let busy_from = (Instant::now(), cpu_of(pid));
    let writes = write_like_workers(&env.db_path(), span, &running);
    let busy_wall = busy_from.0.elapsed().as_secs_f64();
    let busy = (cpu_of(pid) - busy_from.1).as_secs_f64() / busy_wall;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    start.wait().unwrap();
    assert!(env.cmd(&["stop"]).output().unwrap().status.success());

    println!(
        "## `start` while 2,000 workers write ({SCALE_STREAMS} streams × {SCALE_TASKS} tasks)\n"
    );
    println!("| measure | value | target |\n|---|---|---|");
    println!(
        "| updates written | {writes} in {busy_wall:.1} s ({:.0}/s) | 2,000 workers every 3 s = 667/s |",
        writes as f64 / busy_wall
    );
    println!(
        "| **`start`'s CPU while written** | **{:.1} % of one core** | ≤ 10 % |",
        busy * 100.0
    );
    println!(
        "| `start`'s CPU over the same span, no writes | {:.1} % of one core | |",
        quiet * 100.0
    );
}

fn main() {
    if std::env::var_os("OVERHEAD_SCALE").is_some() {
        let secs = std::env::var("OVERHEAD_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(30);
        at_scale(Duration::from_secs(secs));
        return;
    }
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
