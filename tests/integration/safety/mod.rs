//! The safety promises of PRODUCT.md ("what `orchestrate` never does") that concern git, each
//! attacked the way the adversarial trial of issue 12 attacked it: SIGKILL at an instant found
//! by polling, two commands at once, a user working in the main checkout meanwhile, hostile
//! workers and hostile repository contents. One module per promise; the long runs are the
//! `#[ignore]`d tests here, run by `scripts/reliability/git-safety.sh`.

mod base;
mod clean;
mod create;
mod include;
mod merge;
mod orphan;
mod props;
mod queue;

use std::collections::BTreeSet;

use crate::support::TestEnv;

/// Every commit a git user can still reach: from any ref, any worktree's HEAD, any reflog.
pub fn reachable(env: &TestEnv) -> BTreeSet<String> {
    env.git(&["rev-list", "--all", "--reflog"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// Commits reachable from refs alone (what survives reflog expiry and worktree removal).
pub fn reachable_from_refs(env: &TestEnv) -> BTreeSet<String> {
    let refs = env.git(&["for-each-ref", "--format=%(objectname)"]);
    if refs.trim().is_empty() {
        return BTreeSet::new();
    }
    let mut args = vec!["rev-list"];
    args.extend(refs.lines());
    env.git(&args).lines().map(str::to_string).collect()
}

/// A line of a long run's report (its figures, a failing trial's facts), on stderr, which the
/// script keeps.
#[expect(
    clippy::print_stderr,
    reason = "long runs report their figures on stderr"
)]
pub fn report(text: &str) {
    // Continuation lines indented, so the script can keep them with their first line.
    eprintln!("{}", text.replace('\n', "\n  | "));
}

/// How many trials a long run makes (`RELIABILITY_TRIALS`), `default` otherwise.
pub fn trials(default: usize) -> usize {
    std::env::var("RELIABILITY_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small xorshift generator seeded from `RELIABILITY_SEED` or the clock (printed, so a
/// failing long run can be replayed).
pub struct Rng(u64);

impl Rng {
    pub fn from_env() -> Self {
        let seed = std::env::var("RELIABILITY_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        report(&format!("RELIABILITY_SEED={seed}"));
        Self(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
