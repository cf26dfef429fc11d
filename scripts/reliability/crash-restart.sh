#!/bin/sh
# Long run, issue 8 item 1: SIGKILL `orchestrate start` at random moments during the diamond
# (workers of random length, 0–0.8 s, each holding its stream's exclusive marker), run `start`
# again, repeat (1–6 kills a trial) until a run ends by itself; every stream must end complete
# and no worker may find another of its stream running (DUPLICATE-<stream> marker).
# Each trial builds its own sandbox (temporary git repository + Task Copilot database).
#
#   scripts/reliability/crash-restart.sh [TRIALS]        (default 20)
#   RELIABILITY_SEED=N replays a schedule printed by a failing trial.
#   RELIABILITY_WORKTREES=1 runs every start with --worktrees (workers commit their work).
set -eu
cd "$(dirname "$0")/../.."
. scripts/reliability/lib.sh
long_run reliability_procs::long_crash_restart_trials "${1:-20}"
