//! Parse, set up logging, run, map to an exit code. Only this function exits the process.

fn main() {
    // A sandboxed `post_create` (or `merge`'s verify) passes through `__sandbox`: it skips the
    // parser and the logging set-up, which cost it more than the rest together (BENCHMARKS.md,
    // the sandbox).
    if let Some(code) = orchestrate::commands::sandbox::run_if_called() {
        std::process::exit(code);
    }
    // A shell asking for completions (`orchestrate completions`) is answered and exits here.
    orchestrate::cli::complete_from_env();
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
