//! One file per subcommand. Each turns parsed arguments into calls on the engine modules and
//! hands what it learned to `ui` for display. Only `main` exits; commands return an exit code.

mod clean;
mod context;
mod logs;
mod merge;
mod start;
mod status;
mod stop;
mod supervise;
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
        Command::Start(args) => start::run(&global, &args, ui),
        Command::Stop(args) => stop::run(&global, &args, ui),
        Command::Logs(args) => logs::run(&global, &args, ui),
        Command::Clean(args) => clean::run(&global, &args, ui),
        Command::Merge(args) => merge::run(&global, &args, ui),
        Command::Task(command) => task::run(&global, &command, ui),
        Command::Doctor(_) => not_implemented("doctor"),
        Command::Init(_) => not_implemented("init"),
        Command::Supervise(args) => supervise::run(&args),
    }
}

fn not_implemented(command: &str) -> Result<i32> {
    Err(
        Error::msg(format!("`orchestrate {command}` is not implemented yet"))
            .with_code(exit_codes::USAGE),
    )
}
