//! The command line: global flags and one `clap::Args` struct per subcommand.
//!
//! The doc comments here *are* the help text (`orchestrate help <command>`), so they are written
//! for the user. Nothing in this file decides behaviour; `commands/` does.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};

/// Run coding-agent workers in parallel, one per stream of tasks.
///
/// Streams and their dependencies come from Task Copilot's task database. A stream starts the
/// moment every stream it depends on is complete. Workers share the project root unless you
/// opt in to worktrees (`start --worktrees`, or `worktrees = true` in the config): then each
/// stream gets its own branch `stream/<id>` and worktree `.claude/worktrees/<id>`.
#[derive(Debug, Parser)]
#[command(
    name = "orchestrate",
    version,
    propagate_version = true,
    max_term_width = 100,
    disable_help_subcommand = true,
    after_long_help = EXAMPLES_TOP
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The process's command line, parsed (clap exits with its usage error on a bad one).
    pub fn from_args() -> Self {
        Self::parse()
    }
}

/// Flags accepted by every command.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
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
    #[command(after_long_help = EXAMPLES_START)]
    Start(StartArgs),
    #[command(after_long_help = EXAMPLES_STATUS)]
    Status(StatusArgs),
    #[command(after_long_help = EXAMPLES_GRAPH)]
    Graph(GraphArgs),
    #[command(after_long_help = EXAMPLES_REPORT)]
    Report(ReportArgs),
    #[command(after_long_help = EXAMPLES_STOP)]
    Stop(StopArgs),
    #[command(after_long_help = EXAMPLES_LOGS)]
    Logs(LogsArgs),
    #[command(after_long_help = EXAMPLES_CLEAN)]
    Clean(CleanArgs),
    #[command(after_long_help = EXAMPLES_MERGE)]
    Merge(MergeArgs),
    #[command(subcommand, after_long_help = EXAMPLES_TASK)]
    Task(TaskCommand),
    #[command(after_long_help = EXAMPLES_DOCTOR)]
    Doctor(DoctorArgs),
    #[command(after_long_help = EXAMPLES_INIT)]
    Init(InitArgs),
    #[command(after_long_help = EXAMPLES_COMPLETIONS)]
    Completions(CompletionsArgs),
    #[command(after_long_help = EXAMPLES_MAN)]
    Man(ManArgs),
    #[command(after_long_help = EXAMPLES_HELP)]
    Help(HelpArgs),
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
    #[arg(value_name = "STREAM", add = ArgValueCandidates::new(stream_candidates))]
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
    /// {worktree}, {prompt_file}) [default: claude -p --output-format stream-json --verbose
    /// --dangerously-skip-permissions {prompt}].
    #[arg(long, value_name = "CMD")]
    pub worker_cmd: Option<String>,

    /// Print the plan (levels, order, worktrees, branches, bases) and run nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Print every event of the run as one JSON object per line on stdout, and nothing else
    /// there (format version 1, see docs/start-json.md); the summary goes to stderr.
    #[arg(long, conflicts_with = "dry_run")]
    pub json: bool,

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

    /// Streams that may run at the same time but claim the same files (`metadata.files`) run
    /// one after the other: the later waits for the earlier as if it depended on it.
    #[arg(long)]
    pub strict_files: bool,
}

/// The dashboard: overall progress, then each stream grouped by dependency depth.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Redraw live until Ctrl-C: at once when the database changes, and at least every SECS
    /// [default: 2].
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
    #[arg(value_name = "STREAM", add = ArgValueCandidates::new(stream_candidates))]
    pub streams: Vec<String>,

    /// Seconds to wait after SIGTERM before SIGKILL [default: 10].
    #[arg(long, value_name = "SECS")]
    pub grace: Option<f64>,
}

/// Show a stream's worker log, rendering the agent's structured output as readable lines.
#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// The stream whose log to show.
    #[arg(value_name = "STREAM", add = ArgValueCandidates::new(stream_candidates))]
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
/// Never removes a worktree that is in use: a live worker, a `start` preparing or launching
/// it, or any process working inside it; --force never overrides that. Never removes a worktree
/// with uncommitted changes, commits not merged into the target branch, or a HEAD that left its
/// branch, unless --force; even then no commit becomes unreachable: one that only the removed
/// worktree or branch still reaches is kept under refs/orchestrate/rescued/. Also prunes stale
/// worktree metadata and registers orphaned worktrees (whose .git/worktrees/ entry was deleted)
/// with git again, keeping their files.
#[derive(Debug, Clone, Args)]
pub struct CleanArgs {
    /// Clean only these streams [default: all].
    #[arg(value_name = "STREAM", add = ArgValueCandidates::new(stream_candidates))]
    pub streams: Vec<String>,

    /// List what would be removed, and remove nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Remove even worktrees with uncommitted or unmerged work (never one in use).
    #[arg(long)]
    pub force: bool,

    /// Also delete stream branches that are fully merged.
    #[arg(long)]
    pub branches: bool,
}

/// Merge completed stream branches into the target branch, in dependency order.
///
/// Each merge is a `--no-ff` merge commit made away from your checkout (in memory, or in a
/// scratch worktree under `.git/orchestrate/` when a verify runs). With `--verify` (or
/// `merge_verify = true`) the verify command runs on each merge there. The queue stops at the
/// first conflict (naming the files) or failed verify (showing its last lines of output); the
/// target branch moves only at the end (with `--step`: after each verified merge), and only if
/// nobody moved it meanwhile. Your checkout is fast-forwarded when it has the target checked out
/// and no uncommitted changes; otherwise it is left exactly as it is and you are told how to
/// update it.
#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// Merge only these streams [default: every complete stream].
    #[arg(value_name = "STREAM", add = ArgValueCandidates::new(stream_candidates))]
    pub streams: Vec<String>,

    /// Preview every merge in memory, touching nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// The branch to merge into [default: the branch recorded when `start` ran].
    #[arg(long, value_name = "BRANCH")]
    pub into: Option<String>,

    /// Run the verify command (config `verify`, or a stream's `metadata.verify`) on each merge,
    /// in a scratch worktree, and stop at the first that fails [config: merge_verify].
    #[arg(long, overrides_with = "no_verify")]
    pub verify: bool,

    /// Do not run the verify command, even with `merge_verify = true`.
    #[arg(long, overrides_with = "verify")]
    pub no_verify: bool,

    /// Move the target after each verified merge, so that the merges before a failure stay.
    #[arg(long)]
    pub step: bool,
}

/// Read and update tasks, for workers that cannot call Task Copilot over MCP.
#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// List a stream's tasks (default stream: $ORCHESTRATE_STREAM, else every stream).
    #[command(after_long_help = EXAMPLES_TASK_LIST)]
    List(TaskListArgs),
    /// Show one task in full.
    #[command(after_long_help = EXAMPLES_TASK_SHOW)]
    Show(TaskShowArgs),
    /// Set a task's status, exactly as Task Copilot would write it.
    #[command(after_long_help = EXAMPLES_TASK_SET)]
    Set(TaskSetArgs),
}

#[derive(Debug, Clone, Args)]
pub struct TaskListArgs {
    /// Only this stream's tasks.
    #[arg(long, value_name = "STREAM", env = "ORCHESTRATE_STREAM", add = ArgValueCandidates::new(stream_candidates))]
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

/// The stream graph: streams by level, their dependencies and states.
///
/// Works before, during and after a run; the states are the ones `status` shows.
#[derive(Debug, Clone, Args)]
pub struct GraphArgs {
    /// `text` for a terminal, `mermaid` for docs and issue trackers, `dot` for Graphviz.
    #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
    pub format: GraphFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Text,
    Mermaid,
    Dot,
}

/// A run's timeline: when each stream waited, was prepared, ran (every attempt) and ended;
/// the critical path and what bounded it; cost, turns and totals.
///
/// Every `start` records its run in the state store; `report` shows the last one.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// The run to show [default: the last one]; `start` names each run when it ends.
    #[arg(long, value_name = "N")]
    pub run: Option<i64>,

    /// Also write one self-contained HTML file (an SVG Gantt chart and the tables) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Print the timeline as one JSON document (format version 1, see docs/start-json.md).
    #[arg(long)]
    pub json: bool,
}

/// Print a shell completion script (stream names complete from the task database).
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

impl Shell {
    /// The name clap_complete knows the shell by.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bash => "bash",
            Self::Zsh => "zsh",
            Self::Fish => "fish",
            Self::Powershell => "powershell",
        }
    }
}

/// Print the manual page (roff), or write one page per command into a folder.
#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// Write `orchestrate.1` and one `orchestrate-COMMAND.1` per command into DIR.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Print the help of orchestrate or of a command (`help start`, `help task set`).
#[derive(Debug, Clone, Args)]
pub struct HelpArgs {
    /// The command (and subcommand) to explain.
    #[arg(value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// The environment variable that asks this binary for completions (the registration scripts
/// set it; see `orchestrate completions`).
pub const COMPLETE_VAR: &str = "ORCHESTRATE_COMPLETE";

/// Answers a shell's completion request and exits, if this process is one
/// ([`COMPLETE_VAR`] set); otherwise returns at once. Call before parsing.
pub fn complete_from_env() {
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(COMPLETE_VAR)
        .complete();
}

/// The registration script for `shell`: it calls `orchestrate` (found on PATH) back with
/// [`COMPLETE_VAR`] set for every completion.
pub fn completion_script(shell: Shell) -> String {
    use clap_complete::env::Shells;
    let mut buf = Vec::new();
    let shells = Shells::builtins();
    let completer = shells
        .completer(shell.name())
        .expect("clap_complete knows the four shells");
    completer
        .write_registration(
            COMPLETE_VAR,
            "orchestrate",
            "orchestrate",
            "orchestrate",
            &mut buf,
        )
        .expect("writing to memory cannot fail");
    String::from_utf8_lossy(&buf).into_owned()
}

/// The manual pages: `orchestrate` first, then each visible command (`task` with its own).
pub fn man_pages() -> Vec<(String, String)> {
    fn render(cmd: clap::Command, title: &str) -> String {
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd)
            .title(title.to_string())
            .render(&mut buf)
            .expect("writing to memory cannot fail");
        String::from_utf8_lossy(&buf).into_owned()
    }
    fn walk(cmd: &clap::Command, name: &str, out: &mut Vec<(String, String)>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let full = format!("{name}-{}", sub.get_name());
            let page = sub.clone().bin_name(full.replace('-', " "));
            out.push((full.clone(), render(page, &full)));
            walk(sub, &full, out);
        }
    }
    let mut cmd = Cli::command();
    cmd.build();
    let mut out = vec![(
        "orchestrate".to_string(),
        render(cmd.clone(), "orchestrate"),
    )];
    walk(&cmd, "orchestrate", &mut out);
    out
}

/// The long help of `path` (`["task", "set"]`), or of orchestrate itself; `None` if no such
/// command.
pub fn long_help(path: &[String]) -> Option<String> {
    let mut cmd = Cli::command();
    cmd.build();
    let mut name = "orchestrate".to_string();
    for word in path {
        let sub = cmd.find_subcommand(word)?.clone();
        name = format!("{name} {}", sub.get_name());
        cmd = sub.bin_name(name.clone());
    }
    Some(cmd.render_long_help().to_string())
}

/// Stream ids for completion, read from the task database this folder (or ORCHESTRATE_DB)
/// leads to; none when it cannot be read. `--db` typed on the same line is not seen: the
/// completer is handed no parsed arguments.
fn stream_candidates() -> Vec<CompletionCandidate> {
    crate::commands::stream_names_for_completion()
        .into_iter()
        .map(CompletionCandidate::new)
        .collect()
}

const EXAMPLES_TOP: &str = "\
Examples:
  orchestrate init                      set up .claude/orchestrator/ in this project
  orchestrate start --worktrees         run every stream, each on its own branch and worktree
  orchestrate status --watch            the dashboard, redrawn live
  orchestrate graph                     the streams by level, with their states
  orchestrate report --html run.html    the last run's timeline, as a chart
  orchestrate help start                explain one command";

const EXAMPLES_START: &str = "\
Examples:
  orchestrate start                     every stream, in the project root
  orchestrate start --worktrees         each stream on branch stream/<id>, in its own worktree
  orchestrate start Stream-B Stream-C   just these (refused if their dependencies are incomplete)
  orchestrate start --dry-run           print the plan, run nothing
  orchestrate start --json | jq .event  one JSON object per event, for CI and tools
  orchestrate start --worker-cmd 'my-agent --task-file {prompt_file}'";

const EXAMPLES_STATUS: &str = "\
Examples:
  orchestrate status                    the dashboard, once
  orchestrate status --watch            redraw live, every 2 s and at once on a change
  orchestrate status --watch 10         at least every 10 s
  orchestrate status --json | jq '.streams[] | {id, state}'";

const EXAMPLES_GRAPH: &str = "\
Examples:
  orchestrate graph                     levels, edges and states, for a terminal
  orchestrate graph --format mermaid    paste into a Markdown file or an issue
  orchestrate graph --format dot | dot -Tsvg > streams.svg";

const EXAMPLES_REPORT: &str = "\
Examples:
  orchestrate report                    the last run: bars per stream, critical path, totals
  orchestrate report --run 3            an earlier run
  orchestrate report --html run.html    one self-contained file with an SVG chart
  orchestrate report --json | jq .critical_path";

const EXAMPLES_STOP: &str = "\
Examples:
  orchestrate stop                      stop every worker (SIGTERM, 10 s, then SIGKILL)
  orchestrate stop Stream-C --grace 30  one stream, with 30 s to finish
  orchestrate start Stream-C            run a stopped stream again";

const EXAMPLES_LOGS: &str = "\
Examples:
  orchestrate logs Stream-A             the worker's log, agent output made readable
  orchestrate logs Stream-A -f          follow it until the worker ends
  orchestrate logs Stream-A --raw       exactly as written";

const EXAMPLES_CLEAN: &str = "\
Examples:
  orchestrate clean --dry-run           list what would be removed
  orchestrate clean --branches          remove worktrees and merged stream branches
  orchestrate clean Stream-C --force    remove one even with unmerged work";

const EXAMPLES_MERGE: &str = "\
Examples:
  orchestrate merge --dry-run           preview every merge in memory, and where verify runs
  orchestrate merge                     merge complete streams, in dependency order
  orchestrate merge --verify            verify each merge first (config `verify`); all or nothing
  orchestrate merge --verify --step     keep the verified merges before a failure
  orchestrate merge --into release      into another branch (need not be checked out)";

const EXAMPLES_TASK: &str = "\
Examples:
  orchestrate task list --stream Stream-A
  orchestrate task show TASK-123
  orchestrate task set TASK-123 completed --notes 'tests pass'";

const EXAMPLES_TASK_LIST: &str = "\
Examples:
  orchestrate task list                 this worker's stream ($ORCHESTRATE_STREAM), or all
  orchestrate task list --stream Stream-A --json";

const EXAMPLES_TASK_SHOW: &str = "\
Examples:
  orchestrate task show TASK-123
  orchestrate task show TASK-123 --json";

const EXAMPLES_TASK_SET: &str = "\
Examples:
  orchestrate task set TASK-123 in_progress
  orchestrate task set TASK-123 completed --notes 'added the endpoint and its tests'
  orchestrate task set TASK-123 blocked --reason 'needs an API key'";

const EXAMPLES_DOCTOR: &str = "\
Examples:
  orchestrate doctor                    check the set-up; exit 1 if a run is blocked
  orchestrate --db ~/.claude/tasks/shop/tasks.db doctor";

const EXAMPLES_INIT: &str = "\
Examples:
  orchestrate init                      install, or repair, the set-up
  git add .claude/commands/orchestrate.md .claude/orchestrator/config.toml";

const EXAMPLES_COMPLETIONS: &str = "\
Examples:
  orchestrate completions bash > ~/.local/share/bash-completion/completions/orchestrate
  source <(orchestrate completions bash)              try it in this shell
  orchestrate completions zsh > ~/.zfunc/_orchestrate   (with fpath+=~/.zfunc)
  orchestrate completions fish > ~/.config/fish/completions/orchestrate.fish";

const EXAMPLES_MAN: &str = "\
Examples:
  orchestrate man | man -l -                          read it now
  orchestrate man --out-dir ~/.local/share/man/man1   install every page";

const EXAMPLES_HELP: &str = "\
Examples:
  orchestrate help                      the overview
  orchestrate help start                one command
  orchestrate help task set             a subcommand";

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

    /// Confine the worker with this Landlock ABI (`sandbox::Confinement::args` writes these).
    #[arg(long)]
    pub abi: Option<u32>,

    /// The confined worker's temp dir (TMPDIR).
    #[arg(long, requires = "abi")]
    pub tmpdir: Option<PathBuf>,

    /// A path the confined worker may write.
    #[arg(long = "write", value_name = "PATH", requires = "abi")]
    pub writable: Vec<PathBuf>,

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

    /// Every visible command's long help teaches by example.
    #[test]
    fn every_command_has_an_example() {
        fn walk(cmd: &clap::Command, path: &mut Vec<String>, missing: &mut Vec<String>) {
            let help = long_help(path).expect("a command found by walking");
            if !help.contains("Examples:\n  orchestrate") {
                missing.push(format!("orchestrate {}", path.join(" ")));
            }
            for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
                path.push(sub.get_name().to_string());
                walk(sub, path, missing);
                path.pop();
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), &mut Vec::new(), &mut missing);
        assert!(missing.is_empty(), "no example in: {missing:?}");
    }

    #[test]
    fn defaults_are_shown() {
        let start = long_help(&["start".into()]).unwrap();
        // The help wraps; compare without line breaks.
        let flat = start.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains(&format!("[default: {}]", crate::config::DEFAULT_WORKER_CMD)),
            "{start}"
        );
        let status = long_help(&["status".into()]).unwrap();
        assert!(status.contains("[default: 2]"), "{status}");
        let top = long_help(&[]).unwrap();
        assert!(
            top.contains("Global options:") && top.contains("--worktrees"),
            "{top}"
        );
    }
}
