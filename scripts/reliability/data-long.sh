#!/bin/sh
# The long runs of the reliability suite's data half (issue 8, items 4, 5 and 6); figures go to
# RELIABILITY.md. Usage: scripts/reliability/data-long.sh [SECS] [CASES]
#   SECS   how long 16 writer processes hammer the task database while `start` and
#          `status --watch` run (default 30)
#   CASES  proptest cases for each clean/merge property (default 100)
set -eu
cd "$(dirname "$0")/../.."
SECS=${1:-30}
CASES=${2:-100}
export CARGO_INCREMENTAL=0 CARGO_PROFILE_DEV_DEBUG=line-tables-only
cargo test --test integration --no-run
echo "== write locks held 12 s (past the readers' 5 s busy timeout) during start"
cargo test --test integration reliability_data:: -- --ignored --skip writer_process 2>&1 |
    grep -E "^test |test result"
echo "== concurrent writers, ${SECS}s"
RELIABILITY_SECS=$SECS cargo test --test integration \
    reliability_data::concurrent_writers_during_start_and_status_watch -- --exact --nocapture 2>&1 |
    grep -E "concurrent writers:|^test |test result"
echo "== clean/merge properties, ${CASES} cases each"
start=$(date +%s)
TALLY=$(mktemp)
RELIABILITY_TALLY=$TALLY RELIABILITY_CASES=$CASES cargo test --test integration \
    reliability_data::nothing_lost 2>&1 | grep -E "^test |test result"
echo "properties: $((2 * CASES)) generated cases in $(($(date +%s) - start))s (with shrinking runs, if any)"
echo "outcomes (one line per worktree cleaned / stream merged):"
sort "$TALLY" | uniq -c
rm -f "$TALLY"
