//! Parse, set up logging, run, map to an exit code. Only this function exits the process.

fn main() {
    let cli = orchestrate::cli::Cli::from_args();
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
