#!/usr/bin/env bash
# The whole product in one command, with no coding agent and no network: builds `orchestrate`,
# creates a throw-away git project and a Task Copilot database holding a diamond of streams
# (Stream-A → Stream-B, Stream-C → Stream-Z), and runs them with a scripted worker
# (scripts/demo-worker.sh) that marks its tasks in progress and completed and commits real work
# in its own worktree. Then it shows the dashboard, merges the branches back and cleans up.
#
# Needs a Rust toolchain and git. Environment:
#   DEMO_PROFILE=debug      build the debug binary instead of release
#   ORCHESTRATE_BIN=PATH    use this binary, build nothing (CI reuses its test build)
#   DEMO_SANDBOX=DIR        create the sandbox here (must not exist) instead of a temp folder
#   DEMO_TASK_SECONDS=N     how long each scripted task takes (default 1)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
profile=${DEMO_PROFILE:-release}

if [ -t 1 ]; then bold=$'\033[1m' dim=$'\033[2m' off=$'\033[0m'; else bold='' dim='' off=''; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$off"; }
show() { printf '%s$ %s%s\n' "$dim" "$*" "$off"; "$@"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

command -v git >/dev/null || die "git is not on PATH"

# --- 1. the binary, and the little program that writes the demo database -----------------
case $profile in
    release) cargo_profile=(--release) target_sub=release ;;
    debug) cargo_profile=() target_sub=debug ;;
    *) die "DEMO_PROFILE must be release or debug, not $profile" ;;
esac
step "Building orchestrate ($profile)"
if [ -z "${ORCHESTRATE_BIN:-}" ]; then
    # cargo shows its progress: a first build compiles libgit2 and SQLite from source.
    echo "A first build compiles libgit2 and SQLite from source: minutes on a 2-core machine (up to half an hour on a busy one); later builds take seconds."
    (cd "$repo" && cargo build "${cargo_profile[@]}" --bin orchestrate)
    ORCHESTRATE_BIN="${CARGO_TARGET_DIR:-$repo/target}/$target_sub/orchestrate"
fi
(cd "$repo" && cargo build "${cargo_profile[@]}" --example make-demo-db)
make_db="${CARGO_TARGET_DIR:-$repo/target}/$target_sub/examples/make-demo-db"
[ -x "$ORCHESTRATE_BIN" ] || die "no binary at $ORCHESTRATE_BIN"
ORCHESTRATE_BIN=$(cd "$(dirname "$ORCHESTRATE_BIN")" && pwd)/$(basename "$ORCHESTRATE_BIN")
export ORCHESTRATE_BIN
# Workers and ./watch-status call `orchestrate` by name.
export PATH="$(dirname "$ORCHESTRATE_BIN"):$PATH"
echo "using $ORCHESTRATE_BIN"

# --- 2. a sandbox: a fresh git project and its task database -------------------------------
if [ -n "${DEMO_SANDBOX:-}" ]; then
    [ ! -e "$DEMO_SANDBOX" ] || die "DEMO_SANDBOX=$DEMO_SANDBOX already exists"
    mkdir -p "$DEMO_SANDBOX"
    sandbox=$(cd "$DEMO_SANDBOX" && pwd)
else
    sandbox=$(mktemp -d "${TMPDIR:-/tmp}/orchestrate-demo.XXXXXX")
fi
project="$sandbox/shop"
# Task Copilot's layout: <TASK_DB_PATH>/<WORKSPACE_ID>/tasks.db; the workspace id defaults to
# the project folder's name, so `orchestrate` finds the database with no flags.
export TASK_DB_PATH="$sandbox/tasks"
db="$TASK_DB_PATH/shop/tasks.db"
# Git that ignores your own config (signing, hooks) and commits under a demo identity.
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME="Demo Worker" GIT_AUTHOR_EMAIL="demo@example.invalid"
export GIT_COMMITTER_NAME="Demo Worker" GIT_COMMITTER_EMAIL="demo@example.invalid"
export DEMO_TASK_SECONDS=${DEMO_TASK_SECONDS:-1}
unset WORKSPACE_ID ORCHESTRATE_WORKER_CMD ORCHESTRATE_WORKTREES

step "Creating a project in $project"
mkdir -p "$project/src"
cd "$project"
git init -q
git symbolic-ref HEAD refs/heads/main  # `git init -b` needs git 2.28
printf '# shop\n\nA demo project for orchestrate.\n' > README.md
printf 'the app\n' > src/app.txt
printf 'target/\n' > .gitignore
git add -A
git commit -q -m "Initial commit"
"$make_db" "$db"
echo "task database: $db (4 streams, 11 tasks)"

# --- 3. set-up: installed files, and the scripted worker as the worker command --------------
step "Setting up orchestrate in the project"
show orchestrate init
cp "$repo/scripts/demo-worker.sh" "$sandbox/demo-worker.sh"
cat >> .claude/orchestrator/config.toml <<EOF

# The demo's scripted worker instead of Claude Code.
worker_cmd = "sh $sandbox/demo-worker.sh"
EOF
show orchestrate doctor

step "The streams, before the run"
show orchestrate status
show orchestrate start --worktrees --dry-run

# --- 4. the run ---------------------------------------------------------------------------
step "Running every stream, each in its own worktree (Ctrl-C leaves workers running)"
started=$(date +%s)
show orchestrate start --worktrees --stagger 0
echo "the run took $(($(date +%s) - started)) s"

step "The dashboard after the run"
show orchestrate status

step "The stream graph, and where the run's time went"
show orchestrate graph
show orchestrate report
show orchestrate report --html "$sandbox/report.html"
show git worktree list
show git log --oneline --graph --all

# --- 5. merge back and clean up -----------------------------------------------------------
step "Merging the stream branches back into main, in dependency order"
show orchestrate merge --dry-run
show orchestrate merge
show git log --oneline --graph main
show ls src

step "Removing the worktrees and the merged stream branches"
show orchestrate clean --branches
show git worktree list
show git branch

step "Done"
cat <<EOF
The sandbox is $sandbox
  project:        $project
  task database:  $db
  worker logs:    $project/.claude/orchestrator/logs/
  the run's chart: $sandbox/report.html (open it in a browser)
Look around:    cd $project && orchestrate status && orchestrate logs Stream-Z
Remove it:      rm -rf $sandbox
EOF
