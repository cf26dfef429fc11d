//! The command line: global flags and one `clap::Args` struct per subcommand.
//!
//! The doc comments here *are* the help text (`orchestrate help <command>`), so they are written
//! for the user. Nothing in this file decides behaviour; `commands/` does.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Run coding-agent workers in parallel, one per stream of tasks, each on its own git worktree.
///
/// Streams and their dependencies come from Task Copilot's task database. A stream starts the
/// moment every stream it depends on is complete.
#[derive(Debug, Parser)]
#[command(
    name = "orchestrate",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Flags accepted by every command.
impl Cli {
    /// The process's command line, parsed (clap exits with its usage error on a bad one).
    pub fn from_args() -> Self {
        Self::parse()
    }
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The Task Copilot database file [default: <TASK_DB_PATH>/<WORKSPACE_ID>/tasks.db].
    ///
    /// Inside a worker, ORCHESTRATE_DB supplies it.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "ORCHESTRATE_DB",
        hide_env = true
    )]
    pub db: Option<PathBuf>,

    /// The project root [default: the nearest folder above the current one holding `.git`].
    ///
    /// Inside a worker, ORCHESTRATE_PROJECT_ROOT supplies it.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "ORCHESTRATE_PROJECT_ROOT",
        hide_env = true
    )]
    pub project: Option<PathBuf>,

    /// When to use colour (`NO_COLOR` is honoured by `auto`).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Print only results and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more detail (repeat for debug logging).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Start(StartArgs),
    Status(StatusArgs),
    Stop(StopArgs),
    Logs(LogsArgs),
    Clean(CleanArgs),
    Merge(MergeArgs),
    #[command(subcommand)]
    Task(TaskCommand),
    Doctor(DoctorArgs),
    Init(InitArgs),
    /// Internal: runs one worker as its process-group leader and records how it ended.
    #[command(name = "__supervise", hide = true)]
    Supervise(SuperviseArgs),
}

/// Run every stream whose dependencies are complete, and keep going until all are complete.
///
/// The first run sets up `.claude/orchestrator/`. Workers keep running if you press Ctrl-C;
/// `orchestrate stop` stops them, and a later `start` adopts them.
#[derive(Debug, Clone, Args)]
pub struct StartArgs {
    /// Run only these streams (refused, with the reason, if their dependencies are incomplete).
    #[arg(value_name = "STREAM")]
    pub streams: Vec<String>,

    /// Give each stream its own branch `stream/<id>` and worktree `.claude/worktrees/<id>`.
    #[arg(long)]
    pub worktrees: bool,

    /// Run every stream in the project root, even if the config turns worktrees on.
    #[arg(long, conflicts_with = "worktrees")]
    pub no_worktrees: bool,

    /// How many workers may run at once [default: 4].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_parallel: Option<u32>,

    /// How many times to restart a worker that exits with its stream incomplete [default: 1].
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,

    /// Seconds between two worker launches [default: 1].
    #[arg(long, value_name = "SECS")]
    pub stagger: Option<f64>,

    /// The worker command (shell words, no shell; placeholders {prompt}, {stream},
    /// {worktree}, {prompt_file}).
    #[arg(long, value_name = "CMD")]
    pub worker_cmd: Option<String>,

    /// Print the plan (levels, order, worktrees, branches, bases) and run nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// A command each stream's work must pass (run by `sh -c` in its worktree after its tasks
    /// are complete) before dependents start on it; a failure sends the worker back to work.
    #[arg(long, value_name = "CMD")]
    pub verify: Option<String>,

    /// A spending cap in US dollars for each Claude worker (`claude --max-budget-usd`).
    #[arg(long, value_name = "USD")]
    pub max_budget_usd: Option<f64>,

    /// A spending cap for the whole run: at 100 % nothing new starts.
    #[arg(long, value_name = "USD")]
    pub run_budget_usd: Option<f64>,

    /// Confine each worker with Landlock so it can write only to its own worktree: `auto` where
    /// the kernel supports it, `landlock` or no worker, or `off` [default: auto].
    #[arg(long, value_name = "MODE", value_parser = ["auto", "landlock", "off"])]
    pub sandbox: Option<String>,
}

/// The dashboard: overall progress, then each stream grouped by dependency depth.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Redraw live until Ctrl-C: at once when the database changes, and at least every SECS.
    #[arg(
        long,
        value_name = "SECS",
        num_args = 0..=1,
        default_missing_value = "2",
        value_parser = positive_seconds
    )]
    pub watch: Option<Duration>,

    /// Print one JSON document (format version 2, see docs/status-json.md).
    #[arg(long, conflicts_with = "watch")]
    pub json: bool,
}

/// Stop workers: SIGTERM to each worker's process group, a grace period, then SIGKILL.
///
/// Idempotent. Never signals a process that is not provably the recorded worker.
#[derive(Debug, Clone, Args)]
pub struct StopArgs {
    /// Stop only these streams [default: all].
    #[arg(value_name = "STREAM")]
    pub streams: Vec<String>,

    /// Seconds to wait after SIGTERM before SIGKILL [default: 10].
    #[arg(long, value_name = "SECS")]
    pub grace: Option<f64>,
}

/// Show a stream's worker log, rendering the agent's structured output as readable lines.
#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// The stream whose log to show.
    #[arg(value_name = "STREAM")]
    pub stream: String,

    /// Keep printing new lines until the worker ends.
    #[arg(short, long)]
    pub follow: bool,

    /// Print the log exactly as written.
    #[arg(long)]
    pub raw: bool,
}

/// Remove stream worktrees safely (and, with --branches, fully merged stream branches).
///
/// Never removes a worktree with uncommitted changes, or whose branch has commits not merged
/// into the target branch, unless --force.
#[derive(Debug, Clone, Args)]
pub struct CleanArgs {
    /// Clean only these streams [default: all].
    #[arg(value_name = "STREAM")]
    pub streams: Vec<String>,

    /// List what would be removed, and remove nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Remove even worktrees with uncommitted or unmerged work.
    #[arg(long)]
    pub force: bool,

    /// Also delete stream branches that are fully merged.
    #[arg(long)]
    pub branches: bool,
}

/// Merge completed stream branches into the target branch, in dependency order.
///
/// Stops cleanly at the first conflict, naming the files; nothing is lost.
#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// Merge only these streams [default: every complete stream].
    #[arg(value_name = "STREAM")]
    pub streams: Vec<String>,

    /// Preview every merge in memory, touching nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// The branch to merge into [default: the branch recorded when `start` ran].
    #[arg(long, value_name = "BRANCH")]
    pub into: Option<String>,
}

/// Read and update tasks, for workers that cannot call Task Copilot over MCP.
#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// List a stream's tasks (default stream: $ORCHESTRATE_STREAM, else every stream).
    List(TaskListArgs),
    /// Show one task in full.
    Show(TaskShowArgs),
    /// Set a task's status, exactly as Task Copilot would write it.
    Set(TaskSetArgs),
}

#[derive(Debug, Clone, Args)]
pub struct TaskListArgs {
    /// Only this stream's tasks.
    #[arg(long, value_name = "STREAM", env = "ORCHESTRATE_STREAM")]
    pub stream: Option<String>,

    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct TaskShowArgs {
    /// The task id (`TASK-…`).
    #[arg(value_name = "ID")]
    pub id: String,

    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct TaskSetArgs {
    /// The task id (`TASK-…`).
    #[arg(value_name = "ID")]
    pub id: String,

    /// The new status: pending, in_progress, blocked, completed or cancelled.
    #[arg(value_name = "STATUS")]
    pub status: String,

    /// Notes to record on the task.
    #[arg(long, value_name = "TEXT")]
    pub notes: Option<String>,

    /// Why the task is blocked (required with `blocked`).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

/// Check everything a run needs, and say what to fix.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {}

/// Set up `.claude/orchestrator/` and the installed files, or repair them.
#[derive(Debug, Clone, Args)]
pub struct InitArgs {}

#[derive(Debug, Clone, Args)]
pub struct SuperviseArgs {
    /// The worker record id in the state store.
    #[arg(long)]
    pub record: i64,

    /// The state store file.
    #[arg(long)]
    pub state: PathBuf,

    /// A file to give the worker as its stdin (default: /dev/null).
    #[arg(long)]
    pub stdin: Option<PathBuf>,

    /// The worker program and its arguments.
    #[arg(last = true, required = true)]
    pub argv: Vec<OsString>,
}

/// `--watch`: a number of seconds, checked as every other (`config::seconds`), and > 0 (a
/// redraw interval of 0 would never rest). `--stagger` and `--grace` are checked by
/// `Config::apply`, with the settings they override.
fn positive_seconds(text: &str) -> Result<Duration, String> {
    match crate::config::parse_seconds(text)? {
        d if d.is_zero() => Err("must be more than 0 seconds".into()),
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
