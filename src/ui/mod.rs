//! Everything the user sees: results on stdout, diagnostics on stderr, colours, progress bars.
//!
//! The `ui` decides *how* things look, never *what* happens. The output mode is resolved once
//! from the terminal, `CI`, `TERM` and the flags ([`OutputMode::resolve`]), so it can be tested.

pub mod clean;
pub mod mergeback;
pub mod plan;
pub mod progress;
pub mod reason;
pub mod run;
pub mod status;
pub mod stop;
pub mod style;
pub mod tclog;

use std::io::{IsTerminal, Write};

use crate::cli::{ColorChoice, GlobalArgs};
use crate::error::Error;
pub use style::Palette;

/// How live output is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// indicatif bars on stderr.
    Progress,
    /// One plain line per event; no escape codes.
    Plain,
}

impl OutputMode {
    /// Bars only on a terminal that is not dumb, outside CI.
    pub fn resolve(stderr_is_terminal: bool, is_ci: bool, term_is_dumb: bool) -> Self {
        if stderr_is_terminal && !is_ci && !term_is_dumb {
            Self::Progress
        } else {
            Self::Plain
        }
    }
}

/// The process's view of its terminal, and the printing methods every command uses.
#[derive(Debug, Clone)]
pub struct Ui {
    pub mode: OutputMode,
    /// Colours for stdout (results) and stderr (diagnostics), each decided separately.
    pub out: Palette,
    pub err: Palette,
    pub quiet: bool,
    pub verbose: u8,
}

fn env_set(key: &str) -> bool {
    std::env::var_os(key).is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

impl Ui {
    pub fn new(global: &GlobalArgs) -> Self {
        let term_dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let colour = |is_tty: bool| match global.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_tty && !no_color && !term_dumb,
        };
        Self {
            mode: OutputMode::resolve(std::io::stderr().is_terminal(), env_set("CI"), term_dumb),
            out: Palette::new(colour(std::io::stdout().is_terminal())),
            err: Palette::new(colour(std::io::stderr().is_terminal())),
            quiet: global.quiet,
            verbose: global.verbose,
        }
    }

    /// A UI for tests: plain, no colour.
    pub fn plain() -> Self {
        Self {
            mode: OutputMode::Plain,
            out: Palette::new(false),
            err: Palette::new(false),
            quiet: false,
            verbose: 0,
        }
    }

    /// Writes a result to stdout. A closed pipe (`| head`) is not an error worth a panic.
    pub fn print(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        if !text.ends_with('\n') {
            let _ = out.write_all(b"\n");
        }
        let _ = out.flush();
    }

    /// A diagnostic line on stderr (suppressed by `-q`), printed above any progress bars.
    pub fn info(&self, text: &str) {
        if !self.quiet {
            self.eprint(text);
        }
    }

    /// A warning on stderr (shown even with `-q`).
    pub fn warn(&self, text: &str) {
        self.eprint(&format!("{} {text}", self.err.warning("warning:")));
    }

    /// Renders a failed command: the error, its causes, and the hint.
    pub fn error(&self, err: &Error) {
        let mut chain = err.chain().into_iter();
        let mut text = format!(
            "{} {}",
            self.err.error("error:"),
            chain.next().unwrap_or_default()
        );
        for cause in chain {
            text.push_str(&format!("\n  {} {cause}", self.err.dim("caused by:")));
        }
        if let Some(hint) = err.hint() {
            text.push_str(&format!("\n{} {hint}", self.err.hint("hint:")));
        }
        self.eprint(&text);
    }

    fn eprint(&self, text: &str) {
        progress::suspend(|| {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{text}");
        });
    }
}

/// Logging through `tracing`, filtered by `ORCHESTRATE_LOG` (default: warnings; `-v` info,
/// `-vv` debug), written above any progress bars.
pub fn init_tracing(global: &GlobalArgs, ui: &Ui) {
    use tracing_subscriber::EnvFilter;
    let default = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        _ => "debug",
    };
    let filter =
        EnvFilter::try_from_env("ORCHESTRATE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ui.err.enabled())
        .with_target(false)
        .without_time()
        .with_writer(|| progress::SuspendWriter)
        .try_init();
}

/// `text` with control characters shown as escapes (`\n`, `\u{1b}`), for stream ids, names
/// and reasons, which are free text from the task database: a stream id holding an escape
/// sequence must not be able to repaint the user's terminal. Plain text is borrowed as is.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// `word` quoted for a POSIX shell when it needs it, and escaped for the terminal: for the
/// commands we print for the user to run.
pub fn shell_word(word: &str) -> String {
    printable(&crate::cmdline::quote(word)).into_owned()
}

/// A flag set by Ctrl-C or SIGTERM, for synchronous loops (`status --watch`, `logs -f`).
pub fn interrupt_flag() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Registration only fails for forbidden signals, which these are not.
        let _ = signal_hook::flag::register(signal, flag.clone());
    }
    flag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_control_characters_only() {
        assert_eq!(printable("Stream-A ☃"), "Stream-A ☃");
        assert_eq!(printable("evil\u{1b}[2Jid\nx\t"), "evil\\u{1b}[2Jid\\nx\\t");
    }

    #[test]
    fn bars_only_on_a_real_terminal_outside_ci() {
        assert_eq!(
            OutputMode::resolve(true, false, false),
            OutputMode::Progress
        );
        assert_eq!(OutputMode::resolve(false, false, false), OutputMode::Plain);
        assert_eq!(OutputMode::resolve(true, true, false), OutputMode::Plain);
        assert_eq!(OutputMode::resolve(true, false, true), OutputMode::Plain);
    }
}
