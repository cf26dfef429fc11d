//! Everything the user sees: results on stdout, diagnostics on stderr, colours, progress bars.
//!
//! The `ui` decides *how* things look, never *what* happens. The output mode is resolved once
//! from the terminal, `CI`, `TERM` and the flags ([`OutputMode::resolve`]), so it can be tested.

pub mod board;
pub mod clean;
pub mod doctor;
pub mod events;
pub mod graph;
pub mod live;
pub mod mergeback;
pub mod plan;
pub mod progress;
pub mod reason;
pub mod report;
pub mod report_html;
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
    /// Whether stdout is a terminal (a one-shot `status` is fitted to its width; `logs --raw`
    /// escapes what it prints there).
    pub stdout_is_terminal: bool,
    /// Whether the terminal's character set is UTF-8 (Unicode bars), else ASCII.
    pub unicode: bool,
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
            stdout_is_terminal: std::io::stdout().is_terminal(),
            unicode: unicode_locale(|key| std::env::var_os(key)) && !term_dumb,
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
            stdout_is_terminal: false,
            unicode: false,
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

    /// Writes bytes to stdout exactly as given (`logs --raw` when stdout is not a terminal).
    pub fn print_bytes(&self, bytes: &[u8]) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(bytes);
        let _ = out.flush();
    }

    /// A diagnostic line on stderr (suppressed by `-q`), printed above any progress bars.
    /// Diagnostics embed data (stream ids, paths, agent output): the text is escaped here,
    /// keeping its line breaks, so no caller can let a control character through.
    pub fn info(&self, text: &str) {
        if !self.quiet {
            self.eprint(&printable_lines(text));
        }
    }

    /// A warning on stderr (shown even with `-q`); escaped like [`Ui::info`].
    pub fn warn(&self, text: &str) {
        self.eprint(&format!(
            "{} {}",
            self.err.warning("warning:"),
            printable_lines(text)
        ));
    }

    /// Renders a failed command: the error, its causes, and the hint. Every part is escaped
    /// (errors name streams, branches and paths); the colours are ours, added after.
    pub fn error(&self, err: &Error) {
        let mut chain = err.chain().into_iter();
        let mut text = format!(
            "{} {}",
            self.err.error("error:"),
            printable_lines(&chain.next().unwrap_or_default())
        );
        for cause in chain {
            text.push_str(&format!(
                "\n  {} {}",
                self.err.dim("caused by:"),
                printable_lines(&cause)
            ));
        }
        if let Some(hint) = err.hint() {
            text.push_str(&format!(
                "\n{} {}",
                self.err.hint("hint:"),
                printable_lines(hint)
            ));
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
pub fn init_tracing(global: &GlobalArgs, _ui: &Ui) {
    use tracing_subscriber::EnvFilter;
    let default = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        _ => "debug",
    };
    let filter =
        EnvFilter::try_from_env("ORCHESTRATE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // No colour codes from the formatter: the writer escapes every control character in the
    // event (which may quote data), and could not tell the formatter's codes from the data's.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
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

/// `text` escaped like [`printable`], except that line breaks are kept: for diagnostics and
/// rendered log lines, which may span lines but must not carry any other control character.
pub fn printable_lines(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\n') {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.split('\n')
            .map(printable)
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// `value` as pretty-printed JSON with every control character escaped. serde_json escapes
/// U+0000–U+001F, as JSON requires, but leaves DEL and the C1 controls (U+007F–U+009F) raw, and
/// a terminal takes U+009B for an escape sequence's start. They can only stand inside strings,
/// where `\uXXXX` means the same character, so the document's meaning is unchanged.
pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    let text = serde_json::to_string_pretty(value).expect("our documents always serialise");
    if !text.chars().any(|c| c.is_control() && c != '\n') {
        return text;
    }
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' {
                format!("\\u{:04x}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Whether the locale's character set is UTF-8 (`LC_ALL`, else `LC_CTYPE`, else `LANG`, the
/// first one set wins, as in C's `setlocale`): Unicode bar glyphs only then.
pub fn unicode_locale(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|key| var(key).filter(|v| !v.is_empty()))
        .is_some_and(|v| {
            let v = v.to_string_lossy().to_ascii_lowercase();
            v.contains("utf-8") || v.contains("utf8")
        })
}

/// `word` quoted for a POSIX shell when it needs it, exact when pasted and with no control
/// character but the line break ([`crate::cmdline::quote`]): for the commands we print for the
/// user to run.
pub fn shell_word(word: &str) -> String {
    crate::cmdline::quote(word).into_owned()
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
    fn json_escapes_c1_controls_and_keeps_its_meaning() {
        let value = serde_json::json!({"id": "a\u{9b}2J\u{7f}\u{1b}b"});
        let text = json(&value);
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn printable_lines_keeps_line_breaks_only() {
        assert_eq!(printable_lines("a\nb"), "a\nb");
        assert_eq!(printable_lines("a\u{1b}[2J\nb\r\t"), "a\\u{1b}[2J\nb\\r\\t");
    }

    #[test]
    fn unicode_follows_the_first_locale_variable_set() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == k)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        assert!(unicode_locale(env(&[("LANG", "en_US.UTF-8")])));
        assert!(unicode_locale(env(&[("LC_ALL", "C.utf8"), ("LANG", "C")])));
        assert!(!unicode_locale(env(&[
            ("LC_ALL", "C"),
            ("LANG", "en_US.UTF-8")
        ])));
        assert!(!unicode_locale(env(&[])));
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
