#!/bin/sh
# Long runs, issue 12 (git half): the safety promises 1-4, 6 and 8 of PRODUCT.md attacked
# over and over; figures go to RELIABILITY.md. Each trial builds its own sandbox (temporary
# git repository + Task Copilot database) and drives the real binary with the fake worker.
#
#   scripts/reliability/git-safety.sh [WHAT] [N]
#     create  SIGKILL `start --worktrees` at a random instant of a 3,000-file worktree's
#             creation, run `start` again: no worker is ever handed an incomplete worktree
#             (N trials, default 50)
#     clean   `clean --force` (5 times in a row) racing `start --worktrees`, a random delay
#             apart: no worktree in use is ever removed (N races, default 50)
#     merge   `merge` run again and again while a user makes 50 commits on main (half the
#             trials with `git commit` in the checkout, half by compare-and-swap ref updates):
#             none dropped (N trials, default 20)
#     props   the clean/merge properties over random worker behaviours (N cases each,
#             default 100)
#     all     all four (the default), each with its default N
#   RELIABILITY_SEED=S replays the random instants of a run (printed at its start);
#   RELIABILITY_FROM=K (create) draws the kill instants from K files on (K=2900: its last
#   moments: verify, includes, marking it complete, the launch).
set -eu
cd "$(dirname "$0")/../.."
WHAT=${1:-all}
cargo test --test integration --no-run
run() { # test name, trials
    echo "== $1 ($2)"
    start=$(date +%s)
    RELIABILITY_TRIALS=$2 cargo test --test integration "$1" -- --ignored --exact --nocapture 2>&1 |
        grep -E "RESULT|RELIABILITY_SEED|^trial|^  \||^test |test result"
    echo "   $(($(date +%s) - start)) s"
}
props() {
    echo "== properties ($1 cases each)"
    start=$(date +%s)
    RELIABILITY_CASES=$1 cargo test --test integration safety::props 2>&1 | grep -E "^test |test result|minimal failing"
    echo "   $(($(date +%s) - start)) s"
}
case $WHAT in
create) run safety::create::long_sigkill_during_worktree_creation "${2:-50}" ;;
clean) run safety::clean::long_clean_racing_start "${2:-50}" ;;
merge) run safety::merge::long_merge_racing_user_commits "${2:-20}" ;;
props) props "${2:-100}" ;;
all)
    run safety::create::long_sigkill_during_worktree_creation 50
    run safety::clean::long_clean_racing_start 50
    run safety::merge::long_merge_racing_user_commits 20
    props 100
    ;;
*) echo "usage: $0 [create|clean|merge|props|all] [N]" >&2; exit 2 ;;
esac
