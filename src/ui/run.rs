//! `start`'s live view: one line per event, and on a terminal a bar per stream (completed
//! tasks of total) drawn from the dispatcher's latest snapshot (the model's states), with the
//! worker's latest activity; and the summary when the run ends.

use std::collections::HashMap;
use std::fmt::Write as _;

use indicatif::{ProgressBar, ProgressStyle};

use super::{OutputMode, Ui, printable as p, progress, reason};
use crate::model::State;
use crate::scheduler::{Event, ExitSummary, Reporter, RunEnd, RunStats, Unfinished};

pub struct RunView<'a> {
    ui: &'a Ui,
    bars: HashMap<String, ProgressBar>,
    /// Per stream: its state word and its worker's latest activity.
    labels: HashMap<String, (State, Option<String>)>,
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
            progress::area().remove(bar);
        }
    }

    fn redraw(&self, stream: &str) {
        if let (Some(bar), Some((state, activity))) =
            (self.bars.get(stream), self.labels.get(stream))
        {
            bar.set_message(match activity {
                Some(a) if *state == State::Running => format!("{} · {}", state.as_str(), p(a)),
                _ => state.as_str().to_string(),
            });
        }
    }

    /// An event line; every piece of data in it was escaped where it was put in.
    fn line(&self, text: &str) {
        self.ui.info(text);
    }
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:<14} [{bar:24}] {pos}/{len} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("#>-")
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
            }
            Event::Adopted { stream, pid } => self.line(&format!(
                "adopted {} (pid {pid}, started by another `orchestrate start`)",
                p(stream)
            )),
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
            Event::Note { stream, text } => match stream {
                Some(s) => self.line(&format!("{}: {}", p(s), p(&text))),
                None => self.line(&p(&text)),
            },
            Event::Activity { stream, text } => {
                if let Some(label) = self.labels.get_mut(stream) {
                    label.1 = Some(text);
                }
                self.redraw(stream);
            }
            Event::Snapshot { graph, model } => {
                if self.ui.mode != OutputMode::Progress {
                    return;
                }
                for (s, view) in graph.streams().iter().zip(model.views()) {
                    let bar = self.bars.entry(s.id().to_string()).or_insert_with(|| {
                        let bar = progress::area().add(ProgressBar::new(0));
                        bar.set_style(bar_style());
                        bar.set_prefix(p(s.id()).into_owned());
                        bar
                    });
                    let counts = s.record.counts;
                    bar.set_length(u64::from(counts.total));
                    bar.set_position(u64::from(counts.completed + counts.cancelled));
                    let label = self
                        .labels
                        .entry(s.id().to_string())
                        .or_insert((view.state, None));
                    if label.0 != view.state {
                        *label = (view.state, None);
                    }
                }
                let ids: Vec<String> = graph.streams().iter().map(|s| s.id().to_string()).collect();
                for id in ids {
                    self.redraw(&id);
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
