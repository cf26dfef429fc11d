//! Benchmark: `orchestrate status` (plain and `--json`) as a whole process on databases of
//! 10 × 5, 200 × 20 and 1,000 × 20 tasks in mixed states. Targets: ≤ 10 ms for 10 streams,
//! ≤ 60 ms for 20,000 tasks. Then the same 1,000 × 20 plan in a tc (v3) store, as a ratio of
//! the legacy reader's time in the same run (target ≤ 1.2×), both whole-process and for the
//! read alone (`TaskDb::snapshot`). Last, at 20,000 and 50,000 tasks, the yardstick of the
//! issue: `status` against a raw read of the same rows in the same run (the `sqlite3` shell as
//! a whole process, a bare rusqlite row loop in process; target ≤ 2× at 20,000), and what a
//! long-lived reader pays to see one task change (`TaskSource::refresh`) against a full read.
//! Run: `cargo bench --bench status_scale` (`STATUS_SCALE_ONLY_RAW=1`: only the last part).

#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]

mod common;

use std::time::{Duration, Instant};

use common::support::TestEnv;
use common::{Stats, TABLE_HEADER};
use orchestrate::taskdb::{TaskDb, TaskSource};
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
            let deps = deps_of(s);
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

/// The dependencies of stream `s` in both stores' plans.
fn deps_of(s: usize) -> Vec<String> {
    [s / 2, s / 3]
        .iter()
        .filter(|&&d| d < s)
        .map(|d| format!("Stream-{d:04}"))
        .collect()
}

/// The same plan as [`populate`] in a tc store, written as upstream's `/orchestrate generate`
/// writes it (a PRD, a `streams` row per stream, tasks with `stream_id` and metadata); the
/// blocked reason lives in `metadata.blockedReason` there.
fn populate_tc(env: &TestEnv, streams: usize, tasks: usize) {
    let mut conn = env.tc_conn();
    let tx = conn.transaction().unwrap();
    {
        tx.execute("INSERT INTO prds (id, title) VALUES (1, 'Scale')", [])
            .unwrap();
        let mut stream = tx
            .prepare("INSERT INTO streams (id, name, prd_id) VALUES (?1, ?2, 1)")
            .unwrap();
        let mut insert = tx
            .prepare(
                "INSERT INTO tasks (prd_id, stream_id, title, status, metadata)
                 VALUES (1, ?1, ?2, ?3, ?4)",
            )
            .unwrap();
        for s in 0..streams {
            let row = s as i64 + 1;
            stream.execute(params![row, format!("Stream {s}")]).unwrap();
            for t in 0..tasks {
                let status = STATES[(s * 7 + t) % STATES.len()];
                let mut meta = serde_json::json!({
                    "streamId": format!("Stream-{s:04}"),
                    "streamName": format!("Stream {s}"),
                    "dependencies": deps_of(s),
                    "files": [format!("src/mod{s}/file{t}.rs")],
                });
                if status == "blocked" {
                    meta["blockedReason"] = "waiting for credentials".into();
                }
                insert
                    .execute(params![
                        row,
                        format!("Task {t} of stream {s}"),
                        status,
                        meta.to_string()
                    ])
                    .unwrap();
            }
        }
    }
    tx.commit().unwrap();
}

/// In-process `snapshot()` of an open database, `RUNS` times after a warm-up.
fn time_reads(path: &std::path::Path) -> Vec<Duration> {
    let mut db = TaskDb::open(path, "bench").unwrap();
    let streams = db.snapshot().unwrap().streams.len();
    assert!(streams >= 1000);
    (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            let snapshot = db.snapshot().unwrap();
            let took = start.elapsed();
            assert_eq!(snapshot.streams.len(), streams);
            took
        })
        .collect()
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
    if std::env::var_os("STATUS_SCALE_KEEP").is_some() {
        return keep_for_profiling();
    }
    if std::env::var_os("STATUS_SCALE_ONLY_RAW").is_none() {
        legacy_and_tc();
    }
    against_raw();
}

fn legacy_and_tc() {
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
    tc_versus_legacy();
}

/// The v3 case: 20,000 tasks read from a tc store, against the legacy reader in the same run.
fn tc_versus_legacy() {
    let legacy = TestEnv::new();
    populate(&legacy, 1000, 20);
    let tc = TestEnv::without_db();
    tc.create_tc_db();
    populate_tc(&tc, 1000, 20);
    println!("\n## tc (v3) store against the legacy store, 1,000 streams × 20 tasks\n");
    println!(
        "| case | runs | legacy median ms | tc median ms | tc / legacy |\n|---|---|---|---|---|"
    );
    let row = |label: &str, legacy: Vec<Duration>, tc: Vec<Duration>| {
        let (l, t) = (Stats::of(&legacy), Stats::of(&tc));
        println!(
            "| {label} | {} | {:.2} | {:.2} | {:.2}× |",
            l.n,
            l.median,
            t.median,
            t.median / l.median
        );
    };
    row(
        "read (`snapshot`, in process)",
        time_reads(&legacy.db_path()),
        time_reads(&tc.tc_db_path()),
    );
    for (mode, args) in [
        ("`status`", &["status"][..]),
        ("`status --json`", &["status", "--json"][..]),
    ] {
        row(mode, time_runs(&legacy, args), time_runs(&tc, args));
    }
}

/// The rows `status` reads, as a raw read would take them: what the reader needs of each task.
const RAW_SQL: &str = "SELECT id, status, metadata, title, blocked_reason FROM tasks
    WHERE COALESCE(archived, 0) = 0";

/// The same rows read by the `sqlite3` shell, as a whole process (output captured like
/// `status`'s).
fn time_sqlite3(env: &TestEnv) -> Vec<Duration> {
    let run = || {
        let start = Instant::now();
        let out = std::process::Command::new("sqlite3")
            .arg(env.db_path())
            .arg(RAW_SQL)
            .output()
            .unwrap();
        assert!(out.status.success());
        start.elapsed()
    };
    run();
    (0..RUNS).map(|_| run()).collect()
}

/// The same rows read in process by a bare rusqlite loop (each text column looked at).
fn time_raw_reads(path: &std::path::Path) -> Vec<Duration> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let read = || {
        let start = Instant::now();
        let mut stmt = conn.prepare_cached(RAW_SQL).unwrap();
        let mut rows = stmt.query([]).unwrap();
        let mut bytes = 0usize;
        while let Some(row) = rows.next().unwrap() {
            for i in 0..5 {
                bytes += row
                    .get_ref(i)
                    .unwrap()
                    .as_bytes_or_null()
                    .unwrap()
                    .map_or(0, <[u8]>::len);
            }
        }
        std::hint::black_box(bytes);
        start.elapsed()
    };
    read();
    (0..RUNS).map(|_| read()).collect()
}

/// A long-lived reader seeing one task change: a writer sets one task's status (and
/// `updated_at`, as `orchestrate task set` does), then the reader refreshes.
fn time_refreshes(path: &std::path::Path) -> Vec<Duration> {
    let mut db = TaskDb::open(path, "bench").unwrap();
    db.refresh().unwrap();
    let writer = rusqlite::Connection::open(path).unwrap();
    (0..RUNS)
        .map(|i| {
            let status = if i % 2 == 0 { "in_progress" } else { "pending" };
            writer
                .execute(
                    "UPDATE tasks SET status = ?1,
                        updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                     WHERE id = 'TASK-0100-0000'",
                    [status],
                )
                .unwrap();
            let start = Instant::now();
            let changes = db.refresh().unwrap();
            let took = start.elapsed();
            assert_eq!(changes.streams.len(), 1, "{changes:?}");
            took
        })
        .collect()
}

/// `STATUS_SCALE_KEEP=1`: builds the 20,000-task project, leaves it on disk and prints how to
/// run `status` in it (for `perf record`), instead of timing anything.
fn keep_for_profiling() {
    let env = TestEnv::new();
    populate(&env, 1000, 20);
    println!(
        "cd {} && HOME={} TASK_DB_PATH={} {} status",
        env.root.display(),
        env.home.display(),
        env.tasks_base.display(),
        env!("CARGO_BIN_EXE_orchestrate"),
    );
    // Kept on purpose: the caller removes the temporary folder.
    std::mem::forget(env);
}

/// The yardstick: `status` and a refresh against a raw read of the same rows.
fn against_raw() {
    println!("\n## against a raw read of the same rows ({RUNS} runs each, medians)\n");
    println!(
        "| tasks | `status` ms | `sqlite3` ms | **`status` / `sqlite3`** | read in process ms | \
         raw rusqlite ms | **read / raw** | refresh after one change ms | **refresh / read** |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (streams, tasks) in [(1000, 20), (2000, 25)] {
        let env = TestEnv::new();
        populate(&env, streams, tasks);
        let median = |d: Vec<Duration>| Stats::of(&d).median;
        let status = median(time_runs(&env, &["status"]));
        let shell = median(time_sqlite3(&env));
        let read = median(time_reads(&env.db_path()));
        let raw = median(time_raw_reads(&env.db_path()));
        let refresh = median(time_refreshes(&env.db_path()));
        println!(
            "| {} | {status:.2} | {shell:.2} | **{:.2}×** | {read:.2} | {raw:.2} | **{:.2}×** | \
             {refresh:.3} | **{:.4}×** |",
            streams * tasks,
            status / shell,
            read / raw,
            refresh / read,
        );
    }
}
