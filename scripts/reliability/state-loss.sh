#!/bin/sh
# Long run, issue 12 item 8 (promise 5): the diamond with workers of random length (each holding
# its stream's exclusive marker); 1–4 times a trial `orchestrate start` is SIGKILLed at a random
# moment and the orchestrator's state lost in a random way — nothing, the state store deleted,
# replaced by garbage, a live worker's supervisor SIGKILLed (the worker orphaned), or both —
# then `start` runs again. The run that ends by itself must exit 0 with every stream complete,
# and no worker may find another of its stream running (DUPLICATE-<stream> marker).
#
#   scripts/reliability/state-loss.sh [TRIALS]        (default 20)
#   RELIABILITY_SEED=N replays a schedule printed by a failing trial.
#   RELIABILITY_WORKTREES=1 runs every start with --worktrees (workers commit their work).
set -eu
cd "$(dirname "$0")/../.."
. scripts/reliability/lib.sh
long_run one_worker::long_state_loss_trials "${1:-20}"
