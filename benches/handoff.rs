//! Benchmark: handoff latency, the time from "the last task of a dependency was committed to the
//! database" to "the dependent's worker started", with stagger 0.
//!
//! Topologies: a chain of 10 streams and the diamond A → {B, C} → Z. Variants: the worker marks
//! its tasks completed and keeps running 5 s (completion seen from the database), or exits right
//! after (seen from the database change and the exit). The completion moment is the task's
//! `updated_at` (set inside the write transaction, millisecond resolution); the start moment is
//! the worker's first action (`date +%s.%N`). Target: median ≤ 50 ms, p95 ≤ 150 ms.
//!
//! Then the sandbox's cost: the same handoffs with `--sandbox landlock` and `--sandbox off`,
//! runs alternating in one process, and the difference of the medians. Target: ≤ 2 ms.
//!
//! Run: `cargo bench --bench handoff` (about 4 minutes; `HANDOFF_QUICK=1` for one run each,
//! `HANDOFF_SANDBOX_ONLY=1` for the sandbox's part alone).

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

/// Runs `topology` once with `--sandbox MODE`; returns every handoff latency.
fn run_once(topology: &Topology, linger_secs: u32, sandbox: &str) -> Vec<Duration> {
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
            "--sandbox",
            sandbox,
        ])
        .env("BENCH_MARKS", &marks)
        .env("ORCHESTRATE_SANDBOX_WRITABLE", &marks)
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
    if std::env::var_os("HANDOFF_SANDBOX_ONLY").is_some() {
        return sandbox_overhead(quick);
    }
    println!("## handoff latency (stagger 0)\n\n{TABLE_HEADER}");
    for (variant, linger) in [("worker keeps running 5 s", 5), ("worker exits at once", 0)] {
        for (name, topology, runs) in [("chain of 10", chain(10), 2), ("diamond", diamond(), 5)] {
            let runs = if quick { 1 } else { runs };
            let samples: Vec<Duration> = (0..runs)
                .flat_map(|_| run_once(&topology, linger, "auto"))
                .collect();
            println!("{}", Stats::of(&samples).row(&format!("{name}, {variant}")));
        }
    }
    sandbox_overhead(quick);
}

/// Handoffs with and without the sandbox, alternating so that both see the same machine.
fn sandbox_overhead(quick: bool) {
    let support = orchestrate::worker::sandbox::Support::probe();
    if support.abi().is_none() {
        println!("\nsandbox overhead: skipped, {}", support.describe());
        return;
    }
    println!(
        "\n## sandbox overhead ({}), worker exits at once\n\n{TABLE_HEADER}",
        support.describe()
    );
    for (name, topology, runs) in [("chain of 10", chain(10), 6), ("diamond", diamond(), 15)] {
        let runs = if quick { 1 } else { runs };
        let (mut on, mut off) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            on.extend(run_once(&topology, 0, "landlock"));
            off.extend(run_once(&topology, 0, "off"));
        }
        let (on, off) = (Stats::of(&on), Stats::of(&off));
        println!("{}", on.row(&format!("{name}, --sandbox landlock")));
        println!("{}", off.row(&format!("{name}, --sandbox off")));
        println!(
            "{}",
            difference(&format!("{name}: landlock − off"), &on, &off)
        );
    }
    launch_step(quick);
}

fn difference(label: &str, on: &Stats, off: &Stats) -> String {
    format!(
        "| {label} | | {:+.2} | {:+.2} | {:+.2} | {:+.2} |",
        on.min - off.min,
        on.median - off.median,
        on.p95 - off.p95,
        on.max - off.max
    )
}

/// The launch step alone, less noisy than a whole run, for the plan a stream in a worktree
/// gets: the supervisor's way (build the rule set, confine the child between fork and exec)
/// spawning `true`, the `__sandbox` step `post_create` still takes (and workers took before),
/// and `true` spawned directly; alternating.
fn launch_step(quick: bool) {
    use orchestrate::worker::sandbox::{Mode, Place, Policy, Support};
    let env = TestEnv::new();
    env.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "stream/A",
        ".claude/worktrees/A",
    ]);
    let project = orchestrate::project::Project {
        root: env.root.clone(),
    };
    let exe: std::path::PathBuf = env!("CARGO_BIN_EXE_orchestrate").into();
    let policy = Policy {
        mode: Mode::Landlock,
        support: Support::probe(),
        extra: Vec::new(),
        exe: exe.clone(),
    };
    let dir = env.root.join(".claude/worktrees/A");
    let confinement = policy
        .plan(&Place {
            project: &project,
            stream: "A",
            dir: &dir,
            db: Some(&env.db_path()),
        })
        .expect("landlock is supported")
        .confinement()
        .expect("confined");
    let time = |mut cmd: std::process::Command, confine: bool| {
        let started = std::time::Instant::now();
        let _hook = confine.then(|| {
            confinement
                .prepare(&mut std::io::sink())
                .and_then(|p| p.confine_child(&mut cmd))
                .expect("confined")
        });
        assert!(cmd.status().unwrap().success());
        started.elapsed()
    };
    let wrapped = || {
        let mut cmd = std::process::Command::new(&exe);
        cmd.arg("__sandbox")
            .args(confinement.args())
            .args(["--", "true"]);
        cmd
    };
    let plain = || std::process::Command::new("true");
    let (mut hook, mut step, mut off) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..if quick { 20 } else { 300 } {
        hook.push(time(plain(), true));
        step.push(time(wrapped(), false));
        off.push(time(plain(), false));
    }
    let (hook, step, off) = (Stats::of(&hook), Stats::of(&step), Stats::of(&off));
    println!("\n## the launch step alone: spawn until `true` exits\n\n{TABLE_HEADER}");
    println!(
        "{}",
        hook.row("rule set built, `true` confined between fork and exec")
    );
    println!("{}", step.row("`orchestrate __sandbox … -- true`"));
    println!("{}", off.row("`true`"));
    println!("{}", difference("confined in the child", &hook, &off));
    println!("{}", difference("`__sandbox` step", &step, &off));
}
