//! Rendering the dashboard: plain aligned text, the versioned JSON document, and live bars.

use std::fmt::Write as _;

use indicatif::{ProgressBar, ProgressStyle};

use super::{Palette, Ui, progress};
use crate::dashboard::{Dashboard, StreamStatus};
use crate::error::Error;
use crate::model::State as StreamState;

/// The `--json` format version; bump on any incompatible change (see docs/status-json.md).
pub const JSON_VERSION: u32 = 2;

/// The `--json` document: the dashboard's own types serialised directly (no intermediate
/// `serde_json::Value`, which cost a third of the run on 20,000 tasks).
pub fn render_json(d: &Dashboard, merge_back: Option<&crate::git::MergeBackPlan>) -> String {
    #[derive(serde::Serialize)]
    struct Document<'a> {
        version: u32,
        workspace: &'a Option<String>,
        /// Lossy: a path that is not UTF-8 must not make the document fail.
        db: std::borrow::Cow<'a, str>,
        source: &'a Option<crate::project::StoreSource>,
        overall: &'a crate::dashboard::Overall,
        streams: &'a [StreamStatus],
        warnings: &'a [String],
        merge_back: Option<&'a crate::git::MergeBackPlan>,
    }
    let doc = Document {
        version: JSON_VERSION,
        workspace: &d.workspace,
        db: d.db.to_string_lossy(),
        source: &d.source,
        overall: &d.overall,
        streams: &d.streams,
        warnings: &d.warnings,
        merge_back,
    };
    serde_json::to_string_pretty(&doc).expect("the dashboard always serialises")
}

fn state_colour(p: &Palette, state: StreamState, text: &str) -> String {
    match state {
        StreamState::Complete => p.good(text),
        StreamState::Running | StreamState::Preparing | StreamState::Verifying => p.busy(text),
        StreamState::Failed => p.bad(text),
        StreamState::Blocked
        | StreamState::NeedsAttention
        | StreamState::Stopped
        | StreamState::Skipped
        | StreamState::Paused
        | StreamState::Parked
        | StreamState::BudgetReached => p.caution(text),
        StreamState::Cancelled | StreamState::Waiting => p.dim(text),
        StreamState::Ready => text.to_string(),
    }
}

fn overall_line(d: &Dashboard) -> String {
    let o = &d.overall;
    let mut line = format!(
        "overall: {}/{} tasks done ({}%) · {}/{} streams complete",
        o.tasks.completed + o.tasks.cancelled,
        o.tasks.total,
        o.percent,
        o.complete,
        o.streams
    );
    if o.running > 0 {
        let _ = write!(line, " · {} running", o.running);
    }
    if o.failed > 0 {
        let _ = write!(line, " · {} failed", o.failed);
    }
    if o.need_a_person > 0 {
        let _ = write!(
            line,
            " · {} need{} a person",
            o.need_a_person,
            if o.need_a_person == 1 { "s" } else { "" }
        );
    }
    line
}

/// The header: which store, which file, how it was found.
fn source_line(d: &Dashboard) -> String {
    let db = match &d.workspace {
        Some(ws) => format!("workspace {ws} · {}", d.db.display()),
        None => format!("database {}", d.db.display()),
    };
    match &d.source {
        Some(src) => format!("{} · {db} ({})", src.kind.describe(), src.how),
        None => db,
    }
}

fn ascii_bar(done: u32, total: u32, width: usize) -> String {
    let filled = if total == 0 {
        0
    } else {
        (done as usize * width) / total as usize
    };
    format!("[{}{}]", "#".repeat(filled), "-".repeat(width - filled))
}

/// "pid 123 running 4m 10s", "pid 123 exited 0 after 12s", … with the attempt when retried.
fn worker_note(w: &crate::state::WorkerInfo) -> String {
    use crate::state::{WorkerState, time};
    let started = time::parse_unix_millis(&w.started_at);
    let ended = match w.state {
        WorkerState::Running => time::parse_unix_millis(&time::now_rfc3339()),
        _ => w.ended_at.as_deref().and_then(time::parse_unix_millis),
    };
    let ran = match (started, ended) {
        (Some(s), Some(e)) if e >= s => Some(human_duration(((e - s) / 1000) as u64)),
        _ => None,
    };
    let mut note = format!("pid {} ", w.pid);
    note.push_str(&match (w.state, ran) {
        (WorkerState::Running, Some(ran)) => format!("running {ran}"),
        (WorkerState::Running, None) => "running".into(),
        (WorkerState::Exited, ran) => {
            let code = w.exit_code.map(|c| format!(" {c}")).unwrap_or_default();
            ran.map_or(format!("exited{code}"), |ran| {
                format!("exited{code} after {ran}")
            })
        }
        (WorkerState::Stopped, ran) => {
            ran.map_or("stopped".into(), |ran| format!("stopped after {ran}"))
        }
        (WorkerState::Lost, _) => "lost (ended without a record)".into(),
    });
    if w.attempt > 1 {
        note.push_str(&format!(" (attempt {})", w.attempt));
    }
    let mut agent = Vec::new();
    if let Some(cost) = w.cost_usd {
        agent.push(format!("${cost:.4}"));
    }
    if let Some(turns) = w.turns {
        agent.push(format!("{turns} turns"));
    }
    if let Some(session) = &w.session_id {
        agent.push(format!("session {session}"));
    }
    if !agent.is_empty() {
        note.push_str(&format!(", {}", agent.join(", ")));
    }
    note
}

/// `42s`, `3m 05s`, `2h 07m`.
fn human_duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {:02}s", s / 60, s % 60),
        s => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}

/// What a stream's last column says: worker, why (typed reason in words), branch.
fn note(s: &StreamStatus) -> String {
    let mut parts = Vec::new();
    if let Some(w) = &s.worker {
        parts.push(worker_note(w));
    }
    if let Some(reason) = &s.reason {
        parts.push(super::reason::summary(reason));
    } else if !s.blocked_tasks.is_empty() {
        // Ready with some tasks blocked: the worker does what it can; say which wait.
        let titles: Vec<String> = s
            .blocked_tasks
            .iter()
            .map(|b| super::printable(&b.title).into_owned())
            .collect();
        parts.push(format!("blocked tasks: {}", titles.join(", ")));
    }
    if let Some(branch) = &s.branch {
        let branch = super::printable(branch);
        match s.commits_since_base {
            Some(n) => parts.push(format!(
                "{branch}: {n} commit{} since its base",
                if n == 1 { "" } else { "s" }
            )),
            None => parts.push(format!("branch {branch}")),
        }
    }
    parts.join("; ")
}

/// Plain aligned text, grouped by depth, deterministic (depth, then id); no escape codes unless
/// `palette` has colour on.
pub fn render_plain(d: &Dashboard, palette: &Palette) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", super::printable(&source_line(d)));
    let _ = writeln!(out, "{}", overall_line(d));
    let id_w = d
        .streams
        .iter()
        .map(|s| super::printable(&s.id).chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    let state_w = 11;
    let mut depth = None;
    for s in &d.streams {
        if depth != Some(s.depth) {
            depth = Some(s.depth);
            let _ = writeln!(out, "\n{}", palette.bold(&format!("level {}", s.depth)));
            let _ = writeln!(
                out,
                "  {:id_w$}  {:state_w$}  {:12}  {:>7}  {:>4}  {:>4}  {:>4}  NOTE",
                "STREAM", "STATE", "PROGRESS", "DONE", "RUN", "PEND", "BLKD"
            );
        }
        let t = &s.tasks;
        let done = t.completed + t.cancelled;
        let state = format!("{:state_w$}", s.state.as_str());
        let line = format!(
            "  {:id_w$}  {}  {}  {:>7}  {:>4}  {:>4}  {:>4}  {}",
            super::printable(&s.id),
            state_colour(palette, s.state, &state),
            ascii_bar(done, t.total, 10),
            format!("{done}/{}", t.total),
            t.in_progress,
            t.pending,
            t.blocked,
            note(s),
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("  {prefix} {bar:20.cyan/blue} {pos:>3}/{len:3} {msg}")
        .expect("the template is valid")
        .progress_chars("█▉▊▋▌▍▎▏░")
}

fn header_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg}").expect("the template is valid")
}

/// The bars of one dashboard, added to the progress area.
struct Bars {
    bars: Vec<ProgressBar>,
    /// The stream ids the bars were built for; a change rebuilds them.
    layout: Vec<(usize, String)>,
}

impl Bars {
    fn build(d: &Dashboard) -> Self {
        let area = progress::area();
        let mut bars = vec![area.add(ProgressBar::new(0).with_style(header_style()))];
        let mut depth = None;
        for s in &d.streams {
            if depth != Some(s.depth) {
                depth = Some(s.depth);
                bars.push(area.add(ProgressBar::new(0).with_style(header_style())));
            }
            bars.push(area.add(ProgressBar::new(0).with_style(bar_style())));
        }
        Self {
            bars,
            layout: layout(d),
        }
    }

    fn update(&self, d: &Dashboard, p: &Palette) {
        let id_w = d
            .streams
            .iter()
            .map(|s| super::printable(&s.id).chars().count())
            .max()
            .unwrap_or(6);
        let mut bars = self.bars.iter();
        let mut next = || bars.next().expect("one bar per line of the layout");
        let source = super::printable(&source_line(d)).into_owned();
        next().set_message(format!("{}\n{}", p.dim(&source), p.bold(&overall_line(d))));
        let mut depth = None;
        for s in &d.streams {
            if depth != Some(s.depth) {
                depth = Some(s.depth);
                next().set_message(p.bold(&format!("level {}", s.depth)));
            }
            let bar = next();
            let t = &s.tasks;
            bar.set_length(u64::from(t.total));
            bar.set_position(u64::from(t.completed + t.cancelled));
            bar.set_prefix(format!(
                "{:id_w$} {}",
                super::printable(&s.id),
                state_colour(p, s.state, &format!("{:11}", s.state.as_str()))
            ));
            bar.set_message(format!(
                "run {} pend {} blkd {}  {}",
                t.in_progress,
                t.pending,
                t.blocked,
                note(s)
            ));
        }
    }

    fn clear(self) {
        for b in self.bars {
            b.finish_and_clear();
            progress::area().remove(&b);
        }
    }
}

fn layout(d: &Dashboard) -> Vec<(usize, String)> {
    d.streams.iter().map(|s| (s.depth, s.id.clone())).collect()
}

/// Draws the dashboard once as bars on a terminal, and leaves it on screen.
pub fn draw_bars_once(d: &Dashboard, ui: &Ui) {
    progress::show();
    let bars = Bars::build(d);
    bars.update(d, &ui.err);
    for b in &bars.bars {
        b.abandon();
    }
}

/// The `--watch` view: bars on a terminal, otherwise a fresh plain dashboard per change.
pub struct LiveView<'a> {
    ui: &'a Ui,
    bars: Option<Bars>,
    last_plain: Option<String>,
}

impl<'a> LiveView<'a> {
    pub fn new(ui: &'a Ui) -> Self {
        if ui.mode == super::OutputMode::Progress {
            progress::show();
        }
        Self {
            ui,
            bars: None,
            last_plain: None,
        }
    }

    pub fn show(&mut self, d: &Dashboard) {
        if self.ui.mode == super::OutputMode::Plain {
            // In plain mode print only when something changed: a log, not a flicker.
            let text = render_plain(d, &self.ui.out);
            if self.last_plain.as_deref() != Some(text.as_str()) {
                self.ui.print(&text);
                self.last_plain = Some(text);
            }
            return;
        }
        if self.bars.as_ref().is_some_and(|b| b.layout != layout(d))
            && let Some(bars) = self.bars.take()
        {
            bars.clear();
        }
        let bars = self.bars.get_or_insert_with(|| Bars::build(d));
        bars.update(d, &self.ui.err);
    }

    /// Shows why there is nothing to draw (no database yet, no streams), and keeps waiting.
    pub fn show_problem(&mut self, err: &Error) {
        let text = format!("{err} (waiting for it to change)");
        if self.last_plain.as_deref() != Some(text.as_str()) {
            if let Some(bars) = self.bars.take() {
                bars.clear();
            }
            self.ui.info(&text);
            self.last_plain = Some(text);
        }
    }

    pub fn finish(self) {
        if let Some(bars) = self.bars {
            for b in &bars.bars {
                b.abandon();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{WorkerInfo, WorkerState};

    fn worker(state: WorkerState, exit_code: Option<i32>, attempt: u32) -> WorkerInfo {
        WorkerInfo {
            stream: "S".into(),
            pid: 42,
            state,
            started_at: "2026-01-01T00:00:00.000Z".into(),
            ended_at: Some("2026-01-01T00:03:05.000Z".into()),
            attempt,
            exit_code,
            session_id: None,
            cost_usd: None,
            turns: None,
        }
    }

    #[test]
    fn worker_notes_say_what_happened_and_for_how_long() {
        assert_eq!(
            worker_note(&worker(WorkerState::Exited, Some(0), 1)),
            "pid 42 exited 0 after 3m 05s"
        );
        assert_eq!(
            worker_note(&worker(WorkerState::Stopped, None, 2)),
            "pid 42 stopped after 3m 05s (attempt 2)"
        );
        assert_eq!(
            worker_note(&worker(WorkerState::Lost, None, 1)),
            "pid 42 lost (ended without a record)"
        );
        assert!(worker_note(&worker(WorkerState::Running, None, 1)).starts_with("pid 42 running "));
        assert_eq!(human_duration(7325), "2h 02m");
        let agent = WorkerInfo {
            session_id: Some("9f1c".into()),
            cost_usd: Some(0.4216),
            turns: Some(12),
            ..worker(WorkerState::Exited, Some(0), 1)
        };
        assert_eq!(
            worker_note(&agent),
            "pid 42 exited 0 after 3m 05s, $0.4216, 12 turns, session 9f1c"
        );
    }
}
