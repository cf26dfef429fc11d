#!/bin/sh
# The demo's scripted worker: stands in for a coding agent so `scripts/demo.sh` runs anywhere,
# with no agent and no network. `orchestrate start` runs one per stream, in the stream's
# worktree, with ORCHESTRATE_STREAM / ORCHESTRATE_DB / ORCHESTRATE_WORKTREE set. It follows the
# worker protocol: one task at a time, in_progress → work → commit → completed.
#
# DEMO_TASK_SECONDS (default 1) is how long each task "works".
set -eu

bin=${ORCHESTRATE_BIN:-orchestrate}
stream=${ORCHESTRATE_STREAM:?"run me through orchestrate start"}
db=${ORCHESTRATE_DB:?"run me through orchestrate start"}
pause=${DEMO_TASK_SECONDS:-1}
cd "${ORCHESTRATE_WORKTREE:-.}"

task() { "$bin" --color never --db "$db" task "$@"; }

# A folder name for this stream's files: `Stream-B` → `stream-b`.
slug=$(printf '%s' "$stream" | tr 'A-Z' 'a-z' | tr -c 'a-z0-9' '-')

# This stream's open tasks: `task list` prints a header, then one task per line, id first.
open=$(task list --stream "$stream" | awk '$1 ~ /^TASK-/ && !/completed|cancelled/ { print $1 }')
echo "$stream: $(printf '%s\n' "$open" | grep -c . || true) open task(s) in $(pwd)"

# What this stream's worktree holds before it starts: its dependencies' work.
built_on=$(ls src 2>/dev/null | tr '\n' ' ')

n=0
for id in $open; do
    n=$((n + 1))
    task set "$id" in_progress
    [ "$pause" = 0 ] || sleep "$pause"
    mkdir -p "src/$slug"
    {
        echo "$stream, task $id"
        echo "built on: $built_on"
    } > "src/$slug/part-$n.txt"
    git add "src/$slug"
    git commit -q -m "$stream: task $n ($id)"
    task set "$id" completed --notes "committed $(git rev-parse --short HEAD)"
    echo "$stream: completed $id"
done
