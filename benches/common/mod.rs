//! Shared by the benchmark programs: timing statistics and the test harness's sandbox.

#![allow(dead_code, reason = "each benchmark uses a different part")]

use std::time::Duration;

#[path = "../../tests/integration/support/mod.rs"]
pub mod support;

/// min / median / p95 / max of a sample, in milliseconds.
pub struct Stats {
    pub n: usize,
    pub min: f64,
    pub median: f64,
    pub p95: f64,
    pub max: f64,
}

impl Stats {
    pub fn of(samples: &[Duration]) -> Self {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        let pick = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
        Self {
            n: ms.len(),
            min: ms[0],
            median: pick(0.5),
            p95: pick(0.95),
            max: ms[ms.len() - 1],
        }
    }

    pub fn row(&self, label: &str) -> String {
        format!(
            "| {label} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
            self.n, self.min, self.median, self.p95, self.max
        )
    }
}

pub const TABLE_HEADER: &str =
    "| case | runs | min ms | median ms | p95 ms | max ms |\n|---|---|---|---|---|---|";

/// The benchmarks' scripted worker (`benches/fixtures/bench-worker.sh`) as a worker command.
pub fn worker_cmd() -> String {
    format!(
        "sh {}/benches/fixtures/bench-worker.sh",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Seconds since the epoch of an ISO-8601 UTC timestamp `YYYY-MM-DDTHH:MM:SS.sssZ`
/// (checked against `date -d @1767962096 -u`: 2026-01-09T12:34:56Z).
pub fn iso_to_epoch(ts: &str) -> f64 {
    let n = |a: usize, b: usize| ts[a..b].parse::<i64>().expect("numeric timestamp field");
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs: f64 = ts[17..ts.len() - 1].parse().expect("seconds");
    (days * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60) as f64 + secs
}

/// A marker file's content as seconds since the epoch (`date +%s.%N`).
pub fn read_mark(path: &std::path::Path) -> Option<f64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// CPU time (user + system) of every reaped descendant of this process so far.
pub fn children_cpu() -> Duration {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    let tv =
        |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    tv(usage.user_time()) + tv(usage.system_time())
}

/// The machine's load averages (1, 5, 15 min) and cores, to print beside the figures.
pub fn load() -> String {
    let avg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let parts: Vec<&str> = avg.split_whitespace().take(3).collect();
    format!("{} on {cores} cores", parts.join(" "))
}

/// Writes `files` source files of about `bytes` each under `src/mNN/dNN/` in `env`'s root
/// and commits them: the 5,000-file repository of the git benchmarks.
pub fn commit_big_tree(env: &support::TestEnv, files: usize, bytes: usize) {
    for i in 0..files {
        let dir = env
            .root
            .join(format!("src/m{:02}/d{:02}", i % 50, (i / 50) % 10));
        std::fs::create_dir_all(&dir).unwrap();
        let line = format!("// file {i}: {}\n", "x".repeat(60));
        std::fs::write(
            dir.join(format!("f{i}.rs")),
            line.repeat(bytes / line.len()),
        )
        .unwrap();
    }
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", &format!("{files} files")]);
}
