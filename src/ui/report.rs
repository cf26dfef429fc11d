//! `orchestrate report`: a run's timeline as text (one row per stream, bars on a time axis
//! that fits the width given), the critical path and what bounded it, a table per stream and
//! the totals; and the same as JSON. The HTML form is `report_html.rs`, from the same
//! [`Timeline`]. Every piece of data is escaped ([`super::printable`]).

use std::fmt::Write as _;

use super::{Palette, printable as p};
use crate::model::Reason;
use crate::timeline::{Attempt, CriticalLink, SpanKind, StreamTimeline, Timeline, state_of};

/// A wait shorter than this is the dispatcher's own turn, not worth a word.
const NOTABLE_MS: i64 = 50;

/// The columns to draw in: the terminal's when stdout is one, else `COLUMNS`, else 80.
pub fn terminal_width() -> usize {
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal()
        && let Some((_, cols)) = console::Term::stdout().size_checked()
    {
        return usize::from(cols);
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|c| *c >= 40)
        .unwrap_or(80)
}

/// The line `start` ends with.
pub fn pointer(run: i64) -> String {
    format!(
        "run {run} recorded: `orchestrate report` shows its timeline and critical path; \
         `orchestrate report --html FILE` draws it"
    )
}

/// `report --json`: the timeline, versioned (see docs/start-json.md).
pub fn render_json(t: &Timeline) -> String {
    serde_json::to_string_pretty(t).expect("a timeline always serialises")
}

/// `12ms`, `1.5s`, `42s`, `3m05s`, `2h07m`.
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        m if m < 1000 => format!("{m}ms"),
        m if m < 10_000 => format!("{:.1}s", m as f64 / 1000.0),
        m if m < 60_000 => format!("{}s", m / 1000),
        m if m < 3_600_000 => format!("{}m{:02}s", m / 60_000, m % 60_000 / 1000),
        m => format!("{}h{:02}m", m / 3_600_000, m % 3_600_000 / 60_000),
    }
}

/// A state's words, from its JSON name (a state this version does not know reads as its name).
pub fn state_words(name: &str) -> String {
    state_of(name).map_or_else(
        || p(&name.replace('_', " ")).into_owned(),
        |s| s.as_str().to_string(),
    )
}

/// A state's words in its colour.
fn outcome(palette: &Palette, name: &str) -> String {
    let words = state_words(name);
    match state_of(name) {
        Some(state) => super::graph::paint_state(palette, state, &words),
        None => palette.caution(&words),
    }
}

/// Why a stream ended as it did, in words, from the reason's JSON form.
pub fn reason_words(value: &serde_json::Value) -> Option<String> {
    fn typed<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> Option<T> {
        serde_json::from_value(v.clone()).ok()
    }
    let kind = value.get("kind")?.as_str()?;
    let reason = match kind {
        "failed" => Reason::Failed(typed(value)?),
        "blocked" => Reason::Blocked(typed(value)?),
        "needs_attention" => Reason::NeedsAttention(typed(value)?),
        "stopped" => Reason::Stopped,
        "paused" => Reason::Paused,
        "skipped" => Reason::Skipped {
            dependency: value.get("dependency")?.as_str()?.to_string(),
            dependency_state: state_of(value.get("dependency_state")?.as_str()?)?,
        },
        other => return Some(p(&other.replace('_', " ")).into_owned()),
    };
    Some(super::reason::summary(&reason))
}

/// Which glyph a span draws with; higher wins a shared cell.
fn glyph(kind: &SpanKind, attempts: &[Attempt], failed: bool) -> (u8, char) {
    match kind {
        SpanKind::Attempt { attempt } => {
            let a = attempts.iter().find(|a| a.attempt == *attempt);
            let bad = a.is_some_and(|a| a.retried.is_some())
                || (failed && attempts.last().map(|l| l.attempt) == Some(*attempt));
            if bad { (5, '▓') } else { (5, '█') }
        }
        SpanKind::Preparing { .. } => (4, '+'),
        SpanKind::State { state } if state == "verifying" => (3, '▒'),
        SpanKind::State { .. } => (3, '~'),
        SpanKind::Ready => (2, '-'),
        SpanKind::Waiting => (1, '·'),
    }
}

fn paint_glyph(palette: &Palette, c: char) -> String {
    let s = c.to_string();
    match c {
        '█' | '▒' => palette.busy(&s),
        '▓' => palette.bad(&s),
        '+' | '~' => palette.caution(&s),
        '·' | '-' => palette.dim(&s),
        _ => s,
    }
}

/// One stream's bar, `width` cells over `duration` ms.
fn bar(s: &StreamTimeline, duration: i64, width: usize) -> Vec<char> {
    let failed = s.outcome == "failed";
    let mut cells = vec![(0u8, ' '); width];
    let scale = duration.max(1) as f64 / width as f64;
    for span in &s.spans {
        let g = glyph(&span.kind, &s.attempts, failed);
        let first = (span.from_ms as f64 / scale).floor() as usize;
        // A span shorter than a cell still shows in the cell it begins in.
        let last = ((span.to_ms as f64 / scale).ceil() as usize).max(first + 1);
        for cell in cells
            .iter_mut()
            .take(last.min(width))
            .skip(first.min(width - 1))
        {
            if g.0 > cell.0 {
                *cell = g;
            }
        }
    }
    cells.into_iter().map(|(_, c)| c).collect()
}

/// A round tick step so that about `width / 12` labels fit.
pub(super) fn tick_step(duration: i64, width: usize) -> i64 {
    const STEPS: [i64; 22] = [
        1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000,
        120_000, 300_000, 600_000, 1_800_000, 3_600_000, 7_200_000,
    ];
    let most = (width / 12).max(1) as i64;
    STEPS
        .into_iter()
        .find(|s| duration / s <= most)
        .unwrap_or(duration / most + 1)
}

/// The time axis: labels above their column.
fn axis(duration: i64, width: usize) -> String {
    let step = tick_step(duration, width);
    let mut line = vec![' '; width + 8];
    let mut t = 0;
    let mut free_from = 0;
    while t <= duration {
        let col = ((t as f64 / duration.max(1) as f64) * width as f64).round() as usize;
        let label = duration_label(t, step);
        if col >= free_from && col + label.len() <= line.len() {
            for (i, c) in label.chars().enumerate() {
                line[col + i] = c;
            }
            free_from = col + label.len() + 1;
        }
        t += step;
    }
    line.into_iter().collect::<String>().trim_end().to_string()
}

/// An axis label: whole units of the step's size.
pub(super) fn duration_label(t: i64, step: i64) -> String {
    match step {
        s if s < 1000 => format!("{t}ms"),
        s if s < 60_000 => format!("{}s", t / 1000),
        s if s < 3_600_000 => format!("{}m", t / 60_000),
        _ => format!("{}h", t / 3_600_000),
    }
}

/// The text report, `width` columns wide (at least 60 are used).
pub fn render_text(t: &Timeline, palette: &Palette, width: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", palette.bold(&headline(t)));
    if t.streams.is_empty() {
        out.push_str("no stream was seen in this run\n");
        return out;
    }
    let name_w = t
        .streams
        .iter()
        .map(|s| p(&s.id).chars().count())
        .max()
        .unwrap_or(0)
        .clamp(6, 20);
    let outcome_w = 16;
    let bar_w = width.max(60).saturating_sub(name_w + outcome_w + 6).max(20);
    out.push('\n');
    let _ = writeln!(out, "  {:name_w$}  {}", "", axis(t.duration_ms, bar_w));
    for s in &t.streams {
        let mark = if s.on_critical_path { "*" } else { " " };
        let cells: String = bar(s, t.duration_ms, bar_w)
            .into_iter()
            .map(|c| paint_glyph(palette, c))
            .collect();
        let _ = writeln!(
            out,
            "{mark} {}  {cells}  {}",
            fit(&p(&s.id), name_w),
            outcome(palette, &s.outcome)
        );
    }
    for line in legend(width.max(60) - 2) {
        let _ = writeln!(out, "  {}", palette.dim(&line));
    }
    out.push('\n');
    critical_section(&mut out, t, palette, width.max(60));
    out.push('\n');
    table(&mut out, t, palette, name_w, width.max(60));
    out.push('\n');
    push_wrapped(&mut out, &totals_line(t), width.max(60), "");
    out
}

/// The glyphs' meanings, in lines of at most `width` columns.
fn legend(width: usize) -> Vec<String> {
    let items = [
        "· waiting",
        "- ready",
        "+ preparing",
        "█ worker",
        "▓ retried or failed",
        "▒ verifying",
        "~ parked or another state",
        "* critical path",
    ];
    let mut lines = vec![String::new()];
    for item in items {
        let last = lines.last_mut().expect("one line at least");
        if !last.is_empty() && last.chars().count() + 2 + item.chars().count() > width {
            lines.push(item.to_string());
        } else {
            if !last.is_empty() {
                last.push_str("  ");
            }
            last.push_str(item);
        }
    }
    lines
}

/// `id` cut to `width` columns (with `…`) and padded.
fn fit(id: &str, width: usize) -> String {
    let n = id.chars().count();
    if n <= width {
        format!("{id}{}", " ".repeat(width - n))
    } else {
        let cut: String = id.chars().take(width - 1).collect();
        format!("{cut}…")
    }
}

pub(super) fn headline(t: &Timeline) -> String {
    let when = t
        .started_at
        .parse::<jiff::Timestamp>()
        .map(|ts| ts.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| p(&t.started_at).into_owned());
    let how = match (&t.outcome, t.exit_code) {
        (Some(o), Some(code)) => {
            let words = match o.as_str() {
                "complete" => "every stream complete",
                "incomplete" => "streams left incomplete",
                "interrupted" => "interrupted",
                other => other,
            };
            format!("{} (exit {code})", p(words))
        }
        _ if t.ended_at.is_none() => "not ended (still running, or its `start` was killed)".into(),
        _ => "ended".into(),
    };
    format!(
        "run {} · {when} · {} · {how}",
        t.run,
        duration(t.duration_ms)
    )
}

fn critical_section(out: &mut String, t: &Timeline, palette: &Palette, width: usize) {
    let path = &t.critical_path;
    if path.is_empty() {
        out.push_str("critical path: no stream ran\n");
        return;
    }
    let names: Vec<String> = path.iter().map(|l| p(&l.stream).into_owned()).collect();
    let text = format!(
        "{} {}, {} of the run's {}",
        palette.bold("critical path:"),
        names.join(" → "),
        duration(t.totals.critical_ms),
        duration(t.duration_ms)
    );
    push_wrapped(out, &text, width, "");
    for link in path {
        push_wrapped(out, &link_line(link, t), width, "  ");
    }
    push_wrapped(out, &bounded_by(path), width, "  ");
}

/// "Stream-B: launched 5ms after Stream-A completed; preparing 10ms; worked 1.9s (1 attempt)".
pub(super) fn link_line(link: &CriticalLink, t: &Timeline) -> String {
    let waited = link.started_ms - link.from_ms;
    let mut text = match &link.after {
        Some(dep) => {
            let others = t
                .streams
                .iter()
                .find(|s| s.id == link.stream)
                .map_or(0, |s| s.dependencies.len().saturating_sub(1));
            let last = if others > 0 {
                " (the last of its dependencies)"
            } else {
                ""
            };
            format!(
                "{}: launched {} after {} completed{last}",
                p(&link.stream),
                duration(waited),
                p(dep)
            )
        }
        None => format!(
            "{}: launched {} after the run began",
            p(&link.stream),
            duration(waited)
        ),
    };
    // A few milliseconds of "ready" are the dispatcher's own turn, not a wait worth saying.
    if link.ready_ms >= NOTABLE_MS {
        let _ = write!(
            text,
            " ({} of it ready, waiting for a slot or the stagger)",
            duration(link.ready_ms)
        );
    }
    let _ = write!(
        text,
        "; preparing {}; workers {} ({} attempt{})",
        duration(link.preparing_ms),
        duration(link.worked_ms),
        link.attempts,
        if link.attempts == 1 { "" } else { "s" }
    );
    for (state, ms) in &link.states_ms {
        let _ = write!(text, "; {} {}", state_words(state), duration(*ms));
    }
    let in_states: i64 = link.states_ms.iter().map(|(_, ms)| ms).sum();
    let other = link.finished_ms - link.started_ms - link.preparing_ms - link.worked_ms - in_states;
    if other >= NOTABLE_MS {
        let _ = write!(text, "; {} between attempts", duration(other));
    }
    text
}

/// What the critical path's time went to, largest first.
pub(super) fn bounded_by(path: &[CriticalLink]) -> String {
    let total = path.last().map_or(0, |l| l.finished_ms).max(1);
    let worked: i64 = path.iter().map(|l| l.worked_ms).sum();
    let preparing: i64 = path.iter().map(|l| l.preparing_ms).sum();
    let ready: i64 = path.iter().map(|l| l.ready_ms).sum();
    let handoffs: i64 = path
        .iter()
        .map(|l| l.started_ms - l.from_ms - l.ready_ms)
        .sum();
    let mut states: Vec<(String, i64)> = Vec::new();
    for (state, ms) in path.iter().flat_map(|l| &l.states_ms) {
        match states.iter_mut().find(|(s, _)| s == state) {
            Some((_, sum)) => *sum += ms,
            None => states.push((state.clone(), *ms)),
        }
    }
    let in_states: i64 = states.iter().map(|(_, ms)| ms).sum();
    let other = (total - worked - preparing - ready - handoffs - in_states).max(0);
    let mut parts: Vec<(i64, String)> = vec![
        (worked, "workers".into()),
        (handoffs, "handoffs and waits".into()),
        (preparing, "preparing worktrees".into()),
        (ready, "waiting for a slot or the stagger".into()),
        (other, "between attempts".into()),
    ];
    parts.extend(states.into_iter().map(|(s, ms)| (ms, state_words(&s))));
    parts.sort_by_key(|p| std::cmp::Reverse(p.0));
    // The largest part, and every other that is at least 1% of the path.
    let words: Vec<String> = parts
        .iter()
        .enumerate()
        .filter(|(i, (ms, _))| *i == 0 || *ms * 100 >= total)
        .map(|(_, part)| part)
        .map(|(ms, what)| format!("{what} {} ({}%)", duration(*ms), ms * 100 / total))
        .collect();
    format!("bounded by: {}", words.join(", "))
}

fn table(out: &mut String, t: &Timeline, palette: &Palette, name_w: usize, width: usize) {
    let _ = writeln!(
        out,
        "  {:name_w$}  {:15} {:>7} {:>6} {:>7} {:>5} {:>7} {:>8} {:>5}",
        "STREAM", "OUTCOME", "WAITED", "PREP", "WORKED", "TRIES", "HANDOFF", "COST", "TURNS"
    );
    for s in &t.streams {
        let dash = || "-".to_string();
        let words = state_words(&s.outcome);
        let pad = 15usize.saturating_sub(words.chars().count());
        let _ = writeln!(
            out,
            "{} {}  {}{} {:>7} {:>6} {:>7} {:>5} {:>7} {:>8} {:>5}",
            if s.on_critical_path { "*" } else { " " },
            fit(&p(&s.id), name_w),
            outcome(palette, &s.outcome),
            " ".repeat(pad),
            duration(s.waiting_ms + s.ready_ms),
            duration(s.preparing_ms),
            duration(s.worked_ms),
            s.attempts.len(),
            s.handoff_ms.map_or_else(dash, duration),
            s.cost_usd.map_or_else(dash, |c| format!("${c:.4}")),
            s.turns.map_or_else(dash, |n| n.to_string()),
        );
    }
    for s in &t.streams {
        let Some(words) = s.reason.as_ref().and_then(reason_words) else {
            continue;
        };
        if matches!(s.outcome.as_str(), "complete" | "waiting" | "ready") {
            continue;
        }
        let text = format!("{} {}: {words}", p(&s.id), state_words(&s.outcome));
        push_wrapped(out, &text, width, "  ");
    }
}

/// `text` as lines of at most `width` columns, broken at spaces, each after `indent` (and
/// a further two spaces after the first).
pub(super) fn push_wrapped(out: &mut String, text: &str, width: usize, indent: &str) {
    let room = width.saturating_sub(indent.len() + 2).max(30);
    let mut line = String::new();
    let mut first = true;
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > room {
            let _ = writeln!(out, "{indent}{}{line}", if first { "" } else { "  " });
            first = false;
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{indent}{}{line}", if first { "" } else { "  " });
    }
}

pub(super) fn totals_line(t: &Timeline) -> String {
    let x = &t.totals;
    let outcomes: Vec<String> = x
        .outcomes
        .iter()
        .map(|(o, n)| format!("{n} {}", state_words(o)))
        .collect();
    let mut line = format!(
        "total: {} stream{} ({}) · {} attempt{}, {} retr{} · workers {}",
        x.streams,
        if x.streams == 1 { "" } else { "s" },
        outcomes.join(", "),
        x.attempts,
        if x.attempts == 1 { "" } else { "s" },
        x.retries,
        if x.retries == 1 { "y" } else { "ies" },
        duration(x.worked_ms)
    );
    if let Some(cost) = x.cost_usd {
        let _ = write!(line, " · ${cost:.4}");
    }
    if let Some(turns) = x.turns {
        let _ = write!(line, " · {turns} turn{}", if turns == 1 { "" } else { "s" });
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(12), "12ms");
        assert_eq!(duration(1500), "1.5s");
        assert_eq!(duration(42_000), "42s");
        assert_eq!(duration(185_000), "3m05s");
        assert_eq!(duration(7_620_000), "2h07m");
    }

    #[test]
    fn the_axis_fits_and_starts_at_zero() {
        for (duration, width) in [(4001, 50), (999, 30), (7_200_000, 54), (1, 20)] {
            let a = axis(duration, width);
            assert!(a.starts_with("0"), "{a}");
            assert!(a.chars().count() <= width + 8, "{a}");
        }
    }

    #[test]
    fn unknown_states_and_reasons_read_as_their_names() {
        assert_eq!(state_words("budget_reached"), "budget reached");
        assert_eq!(state_words("needs_attention"), "needs attention");
        let future = serde_json::json!({"kind": "over_budget", "spent": 3});
        assert_eq!(reason_words(&future).as_deref(), Some("over budget"));
        let skipped = serde_json::json!({"kind": "skipped", "dependency": "A\u{1b}[2J", "dependency_state": "failed"});
        assert_eq!(
            reason_words(&skipped).as_deref(),
            Some("A\\u{1b}[2J failed")
        );
    }
}
