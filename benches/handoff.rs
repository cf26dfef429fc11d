//! Benchmark: handoff latency, the time from "the last task of a dependency was committed to the
//! database" to "the dependent's worker started", with stagger 0.
//!
//! Topologies: a chain of 10 streams and the diamond A → {B, C} → Z. Variants: the worker marks
//! its tasks completed and keeps running 5 s (completion seen from the database), or exits right
//! after (seen from the database change and the exit). The completion moment is the task's
//! `updated_at` (set inside the write transaction, millisecond resolution); the start moment is
//! the worker's first action (`date +%s.%N`). Target: median ≤ 50 ms, p95 ≤ 150 ms.
//!
//! Run: `cargo bench --bench handoff` (about 3 minutes; `HANDOFF_QUICK=1` for one run each).

#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::support::TestEnv;
use common::{Stats, TABLE_HEADER, iso_to_epoch, read_mark, worker_cmd};

/// (stream, dependencies)
type Topology = Vec<(String, Vec<String>)>;

fn chain(n: usize) -> Topology {
    (0..n)
        .map(|i| {
            (
                format!("S{i}"),
                if i == 0 {
                    vec![]
                } else {
                    vec![format!("S{}", i - 1)]
                },
            )
        })
        .collect()
}

fn diamond() -> Topology {
    let s =
        |id: &str, deps: &[&str]| (id.to_string(), deps.iter().map(|d| d.to_string()).collect());
    vec![
        s("A", &[]),
        s("B", &["A"]),
        s("C", &["A"]),
        s("Z", &["B", "C"]),
    ]
}

/// Runs `topology` once; returns every handoff latency.
fn run_once(topology: &Topology, linger_secs: u32) -> Vec<Duration> {
    let mut env = TestEnv::new();
    for (id, deps) in topology {
        let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
        env.add_task(id, &format!("{id} task"), "pending", &deps);
    }
    let marks = env.tmp.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    // 16 slots: a worker whose stream is complete but which lingers keeps its slot, and a chain
    // of 10 lingering workers must not wait for a slot (that is not handoff latency).
    let out = env
        .cmd(&[
            "start",
            "--stagger",
            "0",
            "--max-parallel",
            "16",
            "--retries",
            "0",
            "--worker-cmd",
            &worker_cmd(),
        ])
        .env("BENCH_MARKS", &marks)
        .env("BENCH_LINGER", linger_secs.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "start failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let done: HashMap<String, f64> = {
        let conn = env.conn();
        let mut stmt = conn
            .prepare("SELECT json_extract(metadata, '$.streamId'), MAX(updated_at) FROM tasks GROUP BY 1")
            .unwrap();
        stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                iso_to_epoch(&r.get::<_, String>(1)?),
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    };
    topology
        .iter()
        .filter(|(_, deps)| !deps.is_empty())
        .map(|(id, deps)| {
            let started = read_mark(&marks.join(format!("{id}.start"))).expect("start mark");
            let ready = deps.iter().map(|d| done[d]).fold(f64::MIN, f64::max);
            Duration::from_secs_f64((started - ready).max(0.0))
        })
        .collect()
}

fn main() {
    let quick = std::env::var_os("HANDOFF_QUICK").is_some();
    println!("## handoff latency (stagger 0)\n\n{TABLE_HEADER}");
    for (variant, linger) in [("worker keeps running 5 s", 5), ("worker exits at once", 0)] {
        for (name, topology, runs) in [("chain of 10", chain(10), 2), ("diamond", diamond(), 5)] {
            let runs = if quick { 1 } else { runs };
            let samples: Vec<Duration> = (0..runs)
                .flat_map(|_| run_once(&topology, linger))
                .collect();
            println!("{}", Stats::of(&samples).row(&format!("{name}, {variant}")));
        }
    }
}
