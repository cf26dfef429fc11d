#!/bin/sh
# Long run, issue 12 item 9 (promise 9): two `orchestrate start`s released at the same instant
# (both spin on a file, then exec) on the diamond, half the trials with --worktrees (a quarter
# with a slow post_create); each worker holds its stream's exclusive marker. Every trial must
# end with both starts exiting 0, every stream complete and launched exactly once, no worktree
# folder left broken, and a third `start` afterwards exiting 0.
#
#   scripts/reliability/two-starts.sh [TRIALS]        (default 20)
set -eu
cd "$(dirname "$0")/../.."
. scripts/reliability/lib.sh
long_run one_worker::long_two_starts_at_once "${1:-20}"
