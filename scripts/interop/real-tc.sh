#!/usr/bin/env bash
# Runs the interop test against the real `tc` CLI (Task Copilot v3), which is not on PyPI:
#   scripts/interop/real-tc.sh [PATH-TO-UPSTREAM-tools/tc]
# With a path, installs that checkout of upstream's `tools/tc` (typer and rich come from PyPI)
# into a virtualenv under ${XDG_CACHE_HOME:-~/.cache}/orchestrate/tc-venv; without one, uses
# the `tc` on PATH (it must answer `tc version` with `tc version …`). Then runs the ignored test
# `tc_store::with_the_real_tc_cli`: a plan made with `tc prd/stream/task create`, `orchestrate
# status` from a subfolder, `orchestrate start --worktrees` with workers that complete their
# tasks with `tc task update`, and `tc task list` / `tc log` reading the database afterwards.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$#" -ge 1 ]; then
    venv="${XDG_CACHE_HOME:-$HOME/.cache}/orchestrate/tc-venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "$1"
    tc="$venv/bin/tc"
else
    tc=$(command -v tc || true)
fi
if [ -z "$tc" ] || ! "$tc" version 2>/dev/null | grep -q '^tc version '; then
    echo "no Task Copilot \`tc\` found (give the path to upstream's tools/tc to install it)" >&2
    exit 2
fi
echo "using $("$tc" version) at $tc"
TC_BIN="$tc" cargo test --locked --test integration with_the_real_tc_cli -- --ignored --nocapture
