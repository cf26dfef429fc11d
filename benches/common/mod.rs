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
