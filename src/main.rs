//! Parse, set up logging, run, map to an exit code. Only this function exits the process.

use clap::Parser;

fn main() {
    // A shell asking for completions (`orchestrate completions`) is answered and exits here.
    orchestrate::cli::complete_from_env();
    let cli = orchestrate::cli::Cli::parse();
    let ui = orchestrate::ui::Ui::new(&cli.global);
    orchestrate::ui::init_tracing(&cli.global, &ui);
    let code = match orchestrate::commands::run(cli, &ui) {
        Ok(code) => code,
        Err(err) => {
            ui.error(&err);
            err.exit_code()
        }
    };
    std::process::exit(code);
}
