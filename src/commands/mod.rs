//! One file per subcommand. Each turns parsed arguments into calls on the engine modules and
//! hands what it learned to `ui` for display. Only `main` exits; commands return an exit code.

mod clean;
mod completions;
mod context;
mod doctor;
mod graph;
mod help;
pub mod init;
mod logs;
mod man;
mod merge;
mod report;
pub mod sandbox;
mod start;
mod status;
mod stop;
mod supervise;
mod task;

pub use completions::stream_names_for_completion;

use crate::cli::{Cli, Command};
use crate::error::Result;
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
        Command::Doctor(args) => doctor::run(&global, &args, ui),
        Command::Init(args) => init::run(&global, &args, ui),
        Command::Graph(args) => graph::run(&global, &args, ui),
        Command::Report(args) => report::run(&global, &args, ui),
        Command::Completions(args) => completions::run(&args, ui),
        Command::Man(args) => man::run(&args, ui),
        Command::Help(args) => help::run(&args, ui),
        Command::Supervise(args) => supervise::run(&args),
    }
}
