//! `orchestrate completions SHELL`: the registration script of clap_complete's dynamic
//! completion. The shell calls `orchestrate` back for each completion (with
//! `ORCHESTRATE_COMPLETE` set, answered by `cli::complete_from_env` before anything else), so
//! flags, values and subcommands come from the one clap definition and stream names from the
//! task database, in every shell clap_complete supports.

use crate::cli::{CompletionsArgs, GlobalArgs};
use crate::error::Result;
use crate::exit_codes;
use crate::ui::Ui;

pub fn run(args: &CompletionsArgs, ui: &Ui) -> Result<i32> {
    ui.print(&crate::cli::completion_script(args.shell));
    Ok(exit_codes::OK)
}

/// The stream ids of the task database found from the current folder and the environment
/// (`ORCHESTRATE_DB`, `ORCHESTRATE_PROJECT_ROOT`, `TASK_DB_PATH`, `WORKSPACE_ID`), sorted;
/// empty when none can be read: a completion never prints an error.
pub fn stream_names_for_completion() -> Vec<String> {
    let global = GlobalArgs {
        db: std::env::var_os("ORCHESTRATE_DB").map(Into::into),
        project: std::env::var_os("ORCHESTRATE_PROJECT_ROOT").map(Into::into),
        color: crate::cli::ColorChoice::Never,
        quiet: true,
        verbose: 0,
    };
    let mut names = super::context::known_streams(&global);
    names.sort();
    names.dedup();
    names
}
