//! `start`'s view: one line per event, and on a terminal the live area (the same [`Board`] as
//! `status --watch`) drawn from the dispatcher's latest snapshot, with each running worker's
//! runtime and latest activity; and the summary when the run ends.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use super::board::{self, Board, Life, Row, WorkerCell};
use super::live::LiveArea;
use super::{OutputMode, Ui, printable as p, reason};
use crate::graph::StreamGraph;
use crate::model::{Model, State};
use crate::scheduler::{Event, ExitSummary, Reporter, RunEnd, RunStats, Unfinished};

pub struct RunView<'a> {
    ui: &'a Ui,
    area: Option<LiveArea>,
    /// Where the streams come from, for the board's first line (escaped).
    source: String,
    /// The rows of the last snapshot, without their worker cells and activity.
    rows: Vec<Row>,
    /// Each live worker: pid, attempt, since when.
    workers: HashMap<String, (i32, u32, Option<SystemTime>)>,
    /// Each running worker's latest activity (escaped).
    activity: HashMap<String, String>,
}

impl<'a> RunView<'a> {
    /// `source` is the board's first line ([`board::source_line`]).
    pub fn new(ui: &'a Ui, source: String) -> Self {
        let area = (ui.mode == OutputMode::Progress).then(|| LiveArea::start(ui.err, ui.unicode));
        Self {
            ui,
            area,
            source,
            rows: Vec::new(),
            workers: HashMap::new(),
            activity: HashMap::new(),
        }
    }

    /// Clears the live area (the summary follows as plain text).
    pub fn finish(self) {
        if let Some(area) = self.area {
            area.finish(false);
        }
    }

    /// Keeps the rows of a new snapshot.
    fn take_snapshot(&mut self, graph: &StreamGraph, model: &Model) {
        self.rows = graph
            .streams()
            .iter()
            .zip(model.views())
            .map(|(s, view)| Row {
                id: p(s.id()).into_owned(),
                depth: s.depth,
                state: view.state,
                tasks: s.record.counts,
                worker: None,
                note: board::reason_notes(view.reason.as_ref(), &s.record.blocked),
                details: view
                    .reason
                    .as_ref()
                    .map(reason::detail_lines)
                    .unwrap_or_default(),
            })
            .collect();
        let running: Vec<&str> = graph
            .streams()
            .iter()
            .zip(model.views())
            .filter(|(_, v)| matches!(v.state, State::Running | State::Preparing))
            .map(|(s, _)| s.id())
            .collect();
        self.workers.retain(|s, _| running.contains(&s.as_str()));
        self.activity.retain(|s, _| running.contains(&s.as_str()));
    }

    /// Hands the live area a board of the last snapshot with the workers' runtimes and
    /// activity.
    fn redraw(&self) {
        let Some(area) = &self.area else {
            return;
        };
        let ids: HashMap<String, &str> = self
            .workers
            .keys()
            .chain(self.activity.keys())
            .map(|s| (p(s).into_owned(), s.as_str()))
            .collect();
        let rows = self
            .rows
            .iter()
            .map(|row| {
                let mut row = row.clone();
                if row.state == State::Running
                    && let Some(stream) = ids.get(&row.id)
                {
                    if let Some(&(pid, attempt, since)) = self.workers.get(*stream) {
                        row.worker = Some(WorkerCell {
                            pid,
                            attempt,
                            life: Life::Running(since),
                            agent: Vec::new(),
                        });
                    }
                    if let Some(activity) = self.activity.get(*stream) {
                        row.note.insert(0, activity.clone());
                    }
                }
                row
            })
            .collect();
        area.show(Board::new(self.source.clone(), rows));
    }

    /// An event line; every piece of data in it was escaped where it was put in.
    fn line(&self, text: &str) {
        self.ui.info(text);
    }
}

/// "worker exited with code 0 (session …, cost $…, N turns)".
pub(super) fn exit_words(summary: &ExitSummary) -> String {
    let mut text = match summary.exit {
        None => "worker stopped".to_string(),
        Some(exit) => reason::exit_words(exit).replacen("its worker", "worker", 1),
    };
    let mut extra = Vec::new();
    if let Some(id) = &summary.session_id {
        extra.push(format!("session {}", p(id)));
    }
    if let Some(cost) = summary.cost_usd {
        extra.push(format!("cost ${cost:.4}"));
    }
    if let Some(turns) = summary.turns {
        extra.push(format!("{turns} turns"));
    }
    if !extra.is_empty() {
        let _ = write!(text, " ({})", extra.join(", "));
    }
    text
}

impl Reporter for RunView<'_> {
    fn wants_activity(&self) -> bool {
        self.ui.mode == OutputMode::Progress
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            // The bar shows `preparing` from the next snapshot; a line per launch is enough.
            Event::Preparing { .. } => {}
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
                self.line(&format!("started {} (pid {pid}{again})", p(stream)));
                self.workers
                    .insert(stream.to_string(), (pid, attempt, Some(SystemTime::now())));
                self.activity.remove(stream);
                self.redraw();
            }
            Event::Adopted {
                stream,
                pid,
                attempt,
                started_at,
            } => {
                self.line(&format!(
                    "adopted {} (pid {pid}, started by another `orchestrate start`)",
                    p(stream)
                ));
                let since = crate::state::time::parse_unix_millis(started_at)
                    .and_then(|ms| u64::try_from(ms).ok())
                    .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
                self.workers
                    .insert(stream.to_string(), (pid, attempt, since));
                self.redraw();
            }
            Event::Exited { stream, summary } => {
                self.line(&format!("{}: {}", p(stream), exit_words(summary)))
            }
            Event::Retrying {
                stream,
                attempt,
                why,
            } => {
                let mut text = format!(
                    "{}: {}; starting attempt {attempt}",
                    p(stream),
                    reason::failure_summary(why)
                );
                for l in reason::detail_lines(&crate::model::Reason::Failed(why.clone())) {
                    let _ = write!(text, "\n    {l}");
                }
                self.line(&text);
            }
            Event::Entered {
                stream,
                state,
                reason: why,
            } => {
                let mut text = format!("{} {}", p(stream), state.as_str());
                if let Some(why) = why {
                    let _ = write!(text, ": {}", reason::summary(why));
                    for l in reason::detail_lines(why) {
                        let _ = write!(text, "\n    {l}");
                    }
                }
                self.line(&text);
            }
            Event::Conflict { stream, with } => {
                self.line(&reason::conflict_line(stream, with));
            }
            Event::ConflictResolved { stream, with } => {
                self.line(&reason::conflict_resolved_line(stream, with));
            }
            Event::Note { stream, text } => match stream {
                Some(s) => self.line(&format!("{}: {}", p(s), p(&text))),
                None => self.line(&p(&text)),
            },
            Event::PrepareProgress { stream, progress } => {
                let text = progress_words(progress);
                if self.area.is_some() {
                    self.activity.insert(stream.to_string(), text);
                    self.redraw();
                } else {
                    self.line(&format!("preparing {}: {text}", p(stream)));
                }
            }
            Event::Activity { stream, text } => {
                self.activity
                    .insert(stream.to_string(), p(&text).into_owned());
                self.redraw();
            }
            Event::Snapshot { graph, model } => {
                if self.area.is_some() {
                    self.take_snapshot(graph, model);
                    self.redraw();
                }
            }
        }
    }
}

/// The end of a run in words: what is complete, what is not and why, what to do.
pub fn render_end(end: &RunEnd) -> String {
    match end {
        RunEnd::Complete { others } if others.is_empty() => "every stream is complete".into(),
        RunEnd::Complete { others } => {
            let mut text =
                "the selected streams are complete; other streams are not:\n".to_string();
            push_unfinished(&mut text, others);
            text.trim_end().to_string()
        }
        RunEnd::Incomplete(list) => {
            let mut text = format!(
                "{} stream{} not complete:\n",
                list.len(),
                if list.len() == 1 { " is" } else { "s are" }
            );
            push_unfinished(&mut text, list);
            text.push_str(
                "`orchestrate logs STREAM` shows a worker's log; `orchestrate status` the dashboard",
            );
            text
        }
        RunEnd::Interrupted(live) if live.is_empty() => "interrupted; no worker is running".into(),
        RunEnd::Interrupted(live) => {
            let names: Vec<String> = live
                .iter()
                .map(|(s, pid)| format!("{} (pid {pid})", p(s)))
                .collect();
            format!(
                "interrupted; {} worker{} keep{} running: {}. `orchestrate stop` stops them; \
                 `orchestrate start` adopts them and carries on",
                live.len(),
                if live.len() == 1 { "" } else { "s" },
                if live.len() == 1 { "s" } else { "" },
                names.join(", ")
            )
        }
    }
}

/// One line of what the run spent and how long a usage limit held it; `None` when there is
/// nothing to say (no agent reported spending, nothing was held).
pub fn render_stats(stats: &RunStats) -> Option<String> {
    let s = &stats.spending;
    let mut parts = Vec::new();
    if s.cost_usd > 0.0 || s.turns > 0 {
        let mut spent = format!(
            "spent ${:.4} over {} attempt{}, {} turns, {} input and {} output tokens",
            s.cost_usd,
            s.attempts,
            if s.attempts == 1 { "" } else { "s" },
            s.turns,
            s.input_tokens,
            s.output_tokens
        );
        if let Some(limit) = stats.budget {
            let _ = write!(spent, " (budget ${limit:.2})");
        }
        parts.push(spent);
    }
    if !stats.parked.is_zero() {
        parts.push(format!(
            "parked on a usage limit for {}",
            indicatif::HumanDuration(stats.parked)
        ));
    }
    (!parts.is_empty()).then(|| format!("this run: {}", parts.join("; ")))
}

fn push_unfinished(text: &mut String, list: &[Unfinished]) {
    for u in list {
        let _ = write!(text, "  {} ({})", p(&u.stream), u.state.as_str());
        if let Some(why) = &u.reason {
            let _ = write!(text, ": {}", reason::summary(why));
            for l in reason::detail_lines(why) {
                let _ = write!(text, "\n      {l}");
            }
            if let Some(step) = reason::next_step(&u.stream, why) {
                let _ = write!(text, "\n      → {step}");
            }
        } else if u.state == State::Ready {
            text.push_str(": not started");
        }
        text.push('\n');
    }
}

/// "checking out 12000 of 50000 files", "copying .worktreeinclude: 300.0 MiB of 1.0 GiB".
fn progress_words(progress: crate::workspace::Progress) -> String {
    use crate::git::include::size;
    use crate::workspace::Progress;
    match progress {
        Progress::Checkout { files, of } => format!("checking out {files} of {of} files"),
        Progress::Include { bytes, of } => {
            format!("copying .worktreeinclude: {} of {}", size(bytes), size(of))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::Progress;

    #[test]
    fn progress_says_how_far_and_of_what() {
        let files = Progress::Checkout {
            files: 12_000,
            of: 50_000,
        };
        assert_eq!(progress_words(files), "checking out 12000 of 50000 files");
        let bytes = Progress::Include {
            bytes: 300 << 20,
            of: 1 << 30,
        };
        assert_eq!(
            progress_words(bytes),
            "copying .worktreeinclude: 300.0 MiB of 1.0 GiB"
        );
    }
}
