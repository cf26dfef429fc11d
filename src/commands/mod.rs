//! One file per subcommand. Each turns parsed arguments into calls on the engine modules and
//! hands what it learned to `ui` for display. Only `main` exits; commands return an exit code.

mod clean;
mod context;
mod doctor;
pub mod init;
mod merge;
mod status;
mod task;

use crate::cli::{Cli, Command};
use crate::error::{Error, Result};
use crate::exit_codes;
use crate::ui::Ui;

/// Runs one parsed command line; returns the exit code on success.
pub fn run(cli: Cli, ui: &Ui) -> Result<i32> {
    let global = cli.global;
    match cli.command {
        Command::Status(args) => status::run(&global, &args, ui),
        Command::Start(_) => not_implemented("start"),
        Command::Stop(_) => not_implemented("stop"),
        Command::Logs(_) => not_implemented("logs"),
        Command::Clean(args) => clean::run(&global, &args, ui),
        Command::Merge(args) => merge::run(&global, &args, ui),
        Command::Task(command) => task::run(&global, &command, ui),
        Command::Doctor(args) => doctor::run(&global, &args, ui),
        Command::Init(args) => init::run(&global, &args, ui),
        Command::Supervise(_) => not_implemented("__supervise"),
    }
}

fn not_implemented(command: &str) -> Result<i32> {
    Err(
        Error::msg(format!("`orchestrate {command}` is not implemented yet"))
            .with_code(exit_codes::USAGE),
    )
}
