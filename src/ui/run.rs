//! `start`'s live view: one line per event, and on a terminal a bar per stream (completed tasks
//! of total) whose message is the stream's state and its worker's latest activity.

use std::collections::HashMap;

use indicatif::{ProgressBar, ProgressStyle};

use super::{OutputMode, Ui, progress};
use crate::scheduler::{Event, Reporter};

pub struct RunView<'a> {
    ui: &'a Ui,
    bars: HashMap<String, ProgressBar>,
    /// Per stream: (state word, latest activity).
    labels: HashMap<String, (String, Option<String>)>,
}

impl<'a> RunView<'a> {
    pub fn new(ui: &'a Ui) -> Self {
        if ui.mode == OutputMode::Progress {
            progress::show();
        }
        Self {
            ui,
            bars: HashMap::new(),
            labels: HashMap::new(),
        }
    }

    /// Clears the bars (the summary follows as plain text).
    pub fn finish(self) {
        for bar in self.bars.values() {
            bar.finish_and_clear();
        }
    }

    fn set_state(&mut self, stream: &str, state: &str) {
        let entry = self
            .labels
            .entry(stream.to_string())
            .or_insert_with(|| (String::new(), None));
        entry.0 = state.to_string();
        if state != "running" {
            entry.1 = None;
        }
        self.redraw(stream);
    }

    fn redraw(&self, stream: &str) {
        if let (Some(bar), Some((state, activity))) =
            (self.bars.get(stream), self.labels.get(stream))
        {
            bar.set_message(match activity {
                Some(a) => format!("{state} · {}", super::printable(a)),
                None => state.clone(),
            });
        }
    }

    /// Event lines carry stream ids and reasons from the task database: printed escaped.
    fn line(&self, text: &str) {
        self.ui.info(&super::printable(text));
    }
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:<14} [{bar:24}] {pos}/{len} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("#>-")
}

impl Reporter for RunView<'_> {
    fn wants_activity(&self) -> bool {
        self.ui.mode == OutputMode::Progress
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Started {
                stream,
                pid,
                attempt,
            } => {
                let again = if attempt > 1 {
                    format!(", attempt {attempt}")
                } else {
                    String::new()
                };
                self.line(&format!("started {stream} (pid {pid}{again})"));
                self.set_state(stream, "running");
            }
            Event::Adopted { stream, pid } => {
                self.line(&format!(
                    "adopted {stream} (pid {pid}, started by another `orchestrate start`)"
                ));
                self.set_state(stream, "running");
            }
            Event::Exited { stream, summary } => self.line(&format!("{stream}: {summary}")),
            Event::Complete { stream } => {
                self.line(&format!("{stream} complete"));
                self.set_state(stream, "complete");
            }
            Event::Retrying {
                stream,
                attempt,
                why,
            } => {
                let first = why.lines().next().unwrap_or_default();
                self.line(&format!("{stream}: {first}; starting attempt {attempt}"));
                self.set_state(stream, "retrying");
            }
            Event::Failed { stream, reason } => {
                self.line(&format!("{stream} failed: {reason}"));
                self.set_state(stream, "failed");
            }
            Event::Skipped { stream, reason } => {
                self.line(&format!("{stream} skipped: {reason}"));
                self.set_state(stream, "skipped");
            }
            Event::Stopped { stream } => {
                self.line(&format!("{stream} stopped"));
                self.set_state(stream, "stopped");
            }
            Event::Blocked { stream, reason } => {
                self.line(&format!("{stream} blocked: {reason}"));
                self.set_state(stream, "blocked");
            }
            Event::Note { stream, text } => match stream {
                Some(s) => self.line(&format!("{s}: {text}")),
                None => self.line(&text),
            },
            Event::Activity { stream, text } => {
                if let Some(label) = self.labels.get_mut(stream) {
                    label.1 = Some(text);
                }
                self.redraw(stream);
            }
            Event::Snapshot(snapshot) => {
                if self.ui.mode != OutputMode::Progress {
                    return;
                }
                for s in &snapshot.streams {
                    let bar = self.bars.entry(s.id.clone()).or_insert_with(|| {
                        let bar = progress::area().add(ProgressBar::new(0));
                        bar.set_style(bar_style());
                        bar.set_prefix(super::printable(&s.id).into_owned());
                        bar
                    });
                    bar.set_length(u64::from(s.counts.total));
                    bar.set_position(u64::from(s.counts.completed + s.counts.cancelled));
                    self.labels
                        .entry(s.id.clone())
                        .or_insert_with(|| ("waiting".into(), None));
                }
                let ids: Vec<String> = snapshot.streams.iter().map(|s| s.id.clone()).collect();
                for id in ids {
                    self.redraw(&id);
                }
            }
        }
    }
}
