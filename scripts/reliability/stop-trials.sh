#!/bin/sh
# Long run, issue 8 item 2: three workers leaving (a) a TERM-ignoring grandchild, (b) a subshell
# sleeping, (c) a TERM-ignoring process that called setsid; `orchestrate stop` (every other
# trial after SIGKILLing `start` first); then no process carrying the trial's token may be
# alive. Each trial builds its own sandbox.
#
#   scripts/reliability/stop-trials.sh [TRIALS]          (default 20)
set -eu
cd "$(dirname "$0")/../.."
. scripts/reliability/lib.sh
long_run reliability_procs::long_stop_trials "${1:-20}"
