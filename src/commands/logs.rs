//! `orchestrate logs STREAM [-f] [--raw]`: a stream's worker log, with Claude Code's
//! stream-json events rendered readably; `-f` follows until the worker ends.
//!
//! A log is agent output: every line is escaped before it reaches a terminal. `--raw` prints
//! the bytes as written only when stdout is not a terminal (a file, a pipe to `jq`).

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::cli::{GlobalArgs, LogsArgs};
use crate::error::{Error, Result};
use crate::exit_codes;
use crate::graph::UnknownStreams;
use crate::project::Project;
use crate::state::StateStore;
use crate::ui::{self, Ui};
use crate::worker::{self, render};

/// How often `-f` looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

pub fn run(global: &GlobalArgs, args: &LogsArgs, ui: &Ui) -> Result<i32> {
    let project = Project::from_env(global.project.as_deref())?;
    let path = worker::log_path(&project.logs_dir(), &args.stream);
    if !path.is_file() {
        return Err(no_log(global, &project, &args.stream, &path));
    }
    let mut file = std::fs::File::open(&path).map_err(|e| read_err(&path, e))?;
    let out = Output {
        ui,
        raw: args.raw,
        bytes_as_written: args.raw && !ui.stdout_is_terminal,
    };
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = Vec::new();
    file.read_to_end(&mut buf).map_err(|e| read_err(&path, e))?;
    out.chunk(&buf, &mut pending);
    // Said once, after the log, for the refusals the last (sandboxed) run logged so far.
    let hint = worker::sandbox::refusal_hint(&String::from_utf8_lossy(&buf));
    if args.follow {
        let interrupted = crate::signals::interrupt_flag();
        let store = StateStore::open_existing(&project.state_db())?;
        while !interrupted.load(Ordering::Relaxed) {
            // Check "ended" before reading, so everything written before the end is drained.
            let ended = match &store {
                Some(s) => !s
                    .latest_workers()?
                    .iter()
                    .any(|w| w.stream == args.stream && w.is_live()),
                None => true,
            };
            buf.clear();
            let pos = file.stream_position().map_err(|e| read_err(&path, e))?;
            if std::fs::metadata(&path).is_ok_and(|m| m.len() < pos) {
                // Truncated or replaced: start over.
                file.seek(SeekFrom::Start(0))
                    .map_err(|e| read_err(&path, e))?;
            }
            file.read_to_end(&mut buf).map_err(|e| read_err(&path, e))?;
            out.chunk(&buf, &mut pending);
            if ended && buf.is_empty() {
                break;
            }
            std::thread::sleep(FOLLOW_POLL);
        }
    }
    if !pending.is_empty() {
        out.line(&pending);
    }
    if let Some(hint) = hint {
        ui.info(&format!("hint: {}", ui::printable(&hint)));
    }
    Ok(exit_codes::OK)
}

/// How log lines are printed.
struct Output<'a> {
    ui: &'a Ui,
    raw: bool,
    /// `--raw` to something that is not a terminal: the bytes exactly.
    bytes_as_written: bool,
}

impl Output<'_> {
    /// Prints the complete lines of `pending` + `chunk`, keeping a partial last line.
    fn chunk(&self, chunk: &[u8], pending: &mut Vec<u8>) {
        pending.extend_from_slice(chunk);
        while let Some(i) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            self.line(&line);
        }
    }

    /// One line of the log (with or without its line break).
    fn line(&self, line: &[u8]) {
        if self.bytes_as_written {
            self.ui.print_bytes(line);
            if !line.ends_with(b"\n") {
                self.ui.print_bytes(b"\n");
            }
            return;
        }
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\n', '\r']);
        if self.raw {
            self.ui.print(&ui::printable(text));
        } else if let Some(rendered) = render::render_line(text) {
            // A rendered event may span lines; nothing else from the agent gets through.
            self.ui.print(&ui::printable_lines(&rendered));
        }
    }
}

fn read_err(path: &Path, e: std::io::Error) -> Error {
    Error::msg(format!("cannot read log {}: {e}", path.display()))
}

/// No log at `path`: an unknown name is the error every command gives for one; a stream that
/// exists but never ran says so.
fn no_log(global: &GlobalArgs, project: &Project, stream: &str, path: &Path) -> Error {
    let mut known = super::context::known_streams(global);
    if let Ok(Some(store)) = StateStore::open_existing(&project.state_db())
        && let Ok(workers) = store.latest_workers()
    {
        known.extend(workers.into_iter().map(|w| w.stream));
    }
    if let Err(unknown) =
        UnknownStreams::check(&[stream.to_string()], known.iter().map(String::as_str))
    {
        return unknown.into();
    }
    Error::msg(format!(
        "stream `{stream}` has no log yet ({} does not exist)",
        path.display()
    ))
    .with_hint(format!(
        "no worker has run for it; `orchestrate start {}` starts it",
        ui::shell_word(stream)
    ))
}
