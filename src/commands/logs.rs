//! `orchestrate logs STREAM [-f] [--raw]`: a stream's worker log, with Claude Code's
//! stream-json events rendered readably; `-f` follows until the worker ends.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::cli::{GlobalArgs, LogsArgs};
use crate::error::{Error, Result};
use crate::exit_codes;
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
        return Err(unknown_stream(&project, &args.stream, &path));
    }
    let mut file = std::fs::File::open(&path).map_err(|e| read_err(&path, e))?;
    let mut pending = String::new();
    let show = |chunk: &str, pending: &mut String| {
        pending.push_str(chunk);
        while let Some(i) = pending.find('\n') {
            let line: String = pending.drain(..=i).collect();
            print_line(ui, line.trim_end_matches(['\n', '\r']), args.raw);
        }
    };
    let mut buf = String::new();
    file.read_to_string(&mut buf)
        .map_err(|e| read_err(&path, e))?;
    show(&buf, &mut pending);
    // Said once, after the log, for the refusals the last (sandboxed) run logged so far.
    let hint = worker::sandbox::refusal_hint(&buf);
    if args.follow {
        let interrupted = ui::interrupt_flag();
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
            file.read_to_string(&mut buf)
                .map_err(|e| read_err(&path, e))?;
            show(&buf, &mut pending);
            if ended && buf.is_empty() {
                break;
            }
            std::thread::sleep(FOLLOW_POLL);
        }
    }
    if !pending.is_empty() {
        print_line(ui, &pending, args.raw);
    }
    if let Some(hint) = hint {
        ui.info(&format!("hint: {hint}"));
    }
    Ok(exit_codes::OK)
}

fn print_line(ui: &Ui, line: &str, raw: bool) {
    if raw {
        ui.print(line);
    } else if let Some(text) = render::render_line(line) {
        ui.print(&text);
    }
}

fn read_err(path: &Path, e: std::io::Error) -> Error {
    Error::msg(format!("cannot read log {}: {e}", path.display()))
}

/// Streams with a log, for the error about one without.
fn known_streams(logs_dir: &Path) -> Vec<String> {
    let mut known: Vec<String> = std::fs::read_dir(logs_dir)
        .map(|entries| {
            entries
                .filter_map(|e| {
                    let p: PathBuf = e.ok()?.path();
                    (p.extension()? == "log").then(|| p.file_stem()?.to_str().map(String::from))?
                })
                .collect()
        })
        .unwrap_or_default();
    known.sort();
    known
}

fn unknown_stream(project: &Project, stream: &str, path: &Path) -> Error {
    let known = known_streams(&project.logs_dir());
    let hint = if known.is_empty() {
        "no worker has run in this project yet; `orchestrate start` starts them".to_string()
    } else {
        format!("streams with a log: {}", known.join(", "))
    };
    Error::msg(format!(
        "no log for stream `{stream}` ({} does not exist)",
        path.display()
    ))
    .with_hint(hint)
    .with_code(exit_codes::NO_STREAMS)
}
