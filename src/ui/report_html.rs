//! `orchestrate report --html FILE`: one self-contained HTML file (inline CSS, an inline SVG
//! Gantt chart, no script, no external asset) with the same content as the text report: one
//! row per stream with a bar per span (waiting, ready, preparing, each attempt, other states),
//! the critical path drawn over it, the stream and attempt tables, and the totals.
//!
//! The document is well-formed XML (every element closed, every attribute quoted) so that a
//! test can parse it; every piece of data is escaped for the terminal first
//! ([`super::printable`]) and then for HTML.

use std::fmt::Write as _;

use super::printable as p;
use super::report::{duration, reason_words, state_words};
use crate::timeline::{Attempt, SpanKind, StreamTimeline, Timeline};

const WIDTH: i64 = 1000;
const LABEL_W: i64 = 190;
const OUTCOME_W: i64 = 130;
const PLOT_W: i64 = WIDTH - LABEL_W - OUTCOME_W - 20;
const TOP: i64 = 34;
const ROW_H: i64 = 28;
const BAR_H: i64 = 16;

const STYLE: &str = "
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif;
       color: #1d2327; margin: 24px auto; max-width: 1040px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; }
.headline { color: #50575e; margin: 0 0 16px; }
svg { background: #fff; border: 1px solid #dcdcde; border-radius: 6px; }
svg text { font: 12px system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; fill: #1d2327; }
svg .tick { stroke: #e4e6e8; }
svg .stripe { fill: #f6f7f7; }
svg .waiting { fill: #e3e6e8; }
svg .ready { fill: #b9c4ce; }
svg .preparing { fill: #f0a844; }
svg .attempt { fill: #2f7fd8; }
svg .attempt.bad { fill: #d9534f; }
svg .state { fill: #f4d35e; }
svg .state.verifying { fill: #8fb8ea; }
svg .crit-label { font-weight: 700; }
svg .crit-link { stroke: #c0392b; stroke-width: 2; stroke-dasharray: 4 3; fill: none; }
svg rect.crit { stroke: #c0392b; stroke-width: 2; }
.legend span { display: inline-block; margin-right: 14px; }
.legend i { display: inline-block; width: 12px; height: 12px; border-radius: 2px;
            vertical-align: -1px; margin-right: 4px; }
table { border-collapse: collapse; margin: 6px 0; }
th, td { padding: 3px 10px; text-align: right; border-bottom: 1px solid #eee; }
th:first-child, td:first-child, td.text, th.text { text-align: left; }
th { background: #f6f7f7; font-weight: 600; }
tr.crit td:first-child { font-weight: 700; }
.muted { color: #646970; }
";

/// `text` escaped for HTML text and attribute values (after [`super::printable`]).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in p(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The whole document.
pub fn render(t: &Timeline) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n\
         <title>orchestrate: run {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        t.run
    );
    let _ = writeln!(out, "<h1>orchestrate: run {}</h1>", t.run);
    let _ = writeln!(
        out,
        "<p class=\"headline\">{}</p>",
        escape(&super::report::headline(t))
    );
    chart(&mut out, t);
    legend(&mut out);
    critical(&mut out, t);
    streams_table(&mut out, t);
    attempts_table(&mut out, t);
    let _ = writeln!(
        out,
        "<p>{}</p>\n<p class=\"muted\">Times are from the start of the run; the critical path \
         is the chain of streams, each launched after the dependency that completed last, that \
         ends with the stream that finished last.</p>\n</body>\n</html>",
        escape(&super::report::totals_line(t))
    );
    out
}

fn x_of(ms: i64, duration: i64) -> f64 {
    LABEL_W as f64 + ms as f64 * PLOT_W as f64 / duration.max(1) as f64
}

fn chart(out: &mut String, t: &Timeline) {
    let height = TOP + ROW_H * t.streams.len() as i64 + 12;
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"timeline of run {}\">",
        t.run
    );
    axis(out, t.duration_ms, height);
    for (row, s) in t.streams.iter().enumerate() {
        stream_row(out, t, s, row as i64);
    }
    critical_links(out, t);
    out.push_str("</svg>\n");
}

fn axis(out: &mut String, duration: i64, height: i64) {
    let step = super::report::tick_step(duration, PLOT_W as usize / 7);
    let mut at = 0;
    while at <= duration {
        let x = x_of(at, duration);
        let _ = writeln!(
            out,
            "<line class=\"tick\" x1=\"{x:.1}\" y1=\"{}\" x2=\"{x:.1}\" y2=\"{}\"/>\
             <text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            TOP - 8,
            height - 6,
            TOP - 14,
            super::report::duration_label(at, step)
        );
        at += step;
    }
}

fn stream_row(out: &mut String, t: &Timeline, s: &StreamTimeline, row: i64) {
    let y = TOP + row * ROW_H;
    let id = escape(&s.id);
    if row % 2 == 1 {
        let _ = writeln!(
            out,
            "<rect class=\"stripe\" x=\"0\" y=\"{y}\" width=\"{WIDTH}\" height=\"{ROW_H}\"/>"
        );
    }
    let (label_class, star) = if s.on_critical_path {
        (" class=\"crit-label\"", "★ ")
    } else {
        ("", "")
    };
    let _ = writeln!(
        out,
        "<text{label_class} x=\"10\" y=\"{}\">{star}{}<title>{}</title></text>",
        y + ROW_H / 2 + 4,
        escape(&clip(&s.id, 24)),
        escape(&format!("{} ({})", s.id, s.name))
    );
    let failed = s.outcome == "failed";
    for span in &s.spans {
        let (class, what) = span_class(&span.kind, &s.attempts, failed);
        let x = x_of(span.from_ms, t.duration_ms);
        let w = (x_of(span.to_ms, t.duration_ms) - x).max(2.0);
        let crit = if s.on_critical_path && matches!(span.kind, SpanKind::Attempt { .. }) {
            " crit"
        } else {
            ""
        };
        let attempt = match span.kind {
            SpanKind::Attempt { attempt } | SpanKind::Preparing { attempt } => {
                format!(" data-attempt=\"{attempt}\"")
            }
            _ => String::new(),
        };
        let detail = span_detail(&span.kind, &s.attempts);
        let _ = writeln!(
            out,
            "<rect class=\"{class}{crit}\" data-stream=\"{id}\" data-kind=\"{}\"{attempt} \
             data-from-ms=\"{}\" data-to-ms=\"{}\" x=\"{x:.1}\" y=\"{}\" width=\"{w:.1}\" \
             height=\"{BAR_H}\" rx=\"3\"><title>{}: {} {}–{} ({}){}</title></rect>",
            span_kind_name(&span.kind),
            span.from_ms,
            span.to_ms,
            y + (ROW_H - BAR_H) / 2,
            id,
            escape(&what),
            duration(span.from_ms),
            duration(span.to_ms),
            duration(span.to_ms - span.from_ms),
            escape(&detail)
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\">{}</text>",
        WIDTH - OUTCOME_W,
        y + ROW_H / 2 + 4,
        escape(&state_words(&s.outcome))
    );
}

/// Lines from each critical dependency's completion to its dependent's launch.
fn critical_links(out: &mut String, t: &Timeline) {
    let row_of = |id: &str| t.streams.iter().position(|s| s.id == id);
    for link in &t.critical_path {
        let (Some(dep), Some(me)) = (link.after.as_deref().and_then(row_of), row_of(&link.stream))
        else {
            continue;
        };
        let y = |row: usize| TOP + row as i64 * ROW_H + ROW_H / 2;
        let _ = writeln!(
            out,
            "<path class=\"crit-link\" d=\"M {:.1} {} L {:.1} {}\"/>",
            x_of(link.from_ms, t.duration_ms),
            y(dep),
            x_of(link.started_ms, t.duration_ms),
            y(me)
        );
    }
}

fn span_kind_name(kind: &SpanKind) -> &'static str {
    match kind {
        SpanKind::Waiting => "waiting",
        SpanKind::Ready => "ready",
        SpanKind::Preparing { .. } => "preparing",
        SpanKind::Attempt { .. } => "attempt",
        SpanKind::State { .. } => "state",
    }
}

/// The CSS class and words of a span.
fn span_class(kind: &SpanKind, attempts: &[Attempt], failed: bool) -> (&'static str, String) {
    match kind {
        SpanKind::Waiting => ("waiting", "waiting for dependencies".into()),
        SpanKind::Ready => ("ready", "ready, waiting for a slot or the stagger".into()),
        SpanKind::Preparing { attempt } => ("preparing", format!("preparing attempt {attempt}")),
        SpanKind::State { state } if state == "verifying" => {
            ("state verifying", state_words(state))
        }
        SpanKind::State { state } => ("state", state_words(state)),
        SpanKind::Attempt { attempt } => {
            let bad = attempts
                .iter()
                .find(|a| a.attempt == *attempt)
                .is_some_and(|a| a.retried.is_some())
                || (failed && attempts.last().map(|a| a.attempt) == Some(*attempt));
            let class = if bad { "attempt bad" } else { "attempt" };
            (class, format!("attempt {attempt}"))
        }
    }
}

/// An attempt's exit, cost and turns, for its tooltip.
fn span_detail(kind: &SpanKind, attempts: &[Attempt]) -> String {
    let SpanKind::Attempt { attempt } = kind else {
        return String::new();
    };
    attempts
        .iter()
        .find(|a| a.attempt == *attempt)
        .map(|a| format!(" · {}", attempt_words(a)))
        .unwrap_or_default()
}

/// "exit 0, $0.0123, 5 turns" and the like.
fn attempt_words(a: &Attempt) -> String {
    let mut parts = vec![exit_words(a)];
    if let Some(cost) = a.cost_usd {
        parts.push(format!("${cost:.4}"));
    }
    if let Some(turns) = a.turns {
        parts.push(format!("{turns} turn{}", if turns == 1 { "" } else { "s" }));
    }
    if let Some(failure) = &a.retried {
        parts.push(format!(
            "retried: {}",
            super::reason::failure_summary(failure)
        ));
    }
    parts.join(", ")
}

fn exit_words(a: &Attempt) -> String {
    use crate::model::ExitStatus;
    match (a.exit, a.stopped, a.to_ms) {
        (_, true, _) => "stopped".into(),
        (Some(ExitStatus::Code { code }), ..) => format!("exit {code}"),
        (Some(ExitStatus::Signal { signal }), ..) => format!("killed by signal {signal}"),
        (Some(ExitStatus::Lost), ..) => "lost".into(),
        (None, _, None) => "still running".into(),
        (None, _, Some(_)) => "ended".into(),
    }
}

/// `text` cut to `n` characters with `…`.
fn clip(text: &str, n: usize) -> String {
    if text.chars().count() <= n {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(n - 1).collect::<String>())
    }
}

fn legend(out: &mut String) {
    out.push_str("<p class=\"legend\">");
    for (colour, what) in [
        ("#e3e6e8", "waiting for dependencies"),
        ("#b9c4ce", "ready (a slot, the stagger)"),
        ("#f0a844", "preparing the worktree"),
        ("#2f7fd8", "worker attempt"),
        ("#d9534f", "attempt retried or failed"),
        ("#8fb8ea", "verifying"),
        ("#f4d35e", "parked, or another state (blocked…)"),
    ] {
        let _ = write!(
            out,
            "<span><i style=\"background:{colour}\"></i>{what}</span>"
        );
    }
    out.push_str("<span>★ critical path: its bars outlined, each handoff dashed</span></p>\n");
}

fn critical(out: &mut String, t: &Timeline) {
    out.push_str("<h2>Critical path</h2>\n");
    if t.critical_path.is_empty() {
        out.push_str("<p>No stream ran.</p>\n");
        return;
    }
    let names: Vec<String> = t.critical_path.iter().map(|l| escape(&l.stream)).collect();
    let _ = writeln!(
        out,
        "<p><strong>{}</strong>: {} of the run's {}.</p>\n<ol>",
        names.join(" → "),
        duration(t.totals.critical_ms),
        duration(t.duration_ms)
    );
    for link in &t.critical_path {
        let _ = writeln!(
            out,
            "<li>{}</li>",
            escape(&super::report::link_line(link, t))
        );
    }
    let _ = writeln!(
        out,
        "</ol>\n<p>{}</p>",
        escape(&super::report::bounded_by(&t.critical_path))
    );
}

fn streams_table(out: &mut String, t: &Timeline) {
    out.push_str(
        "<h2>Streams</h2>\n<table>\n<tr><th>stream</th><th class=\"text\">name</th>\
         <th class=\"text\">outcome</th><th>waiting</th><th>ready</th><th>preparing</th>\
         <th>worked</th><th>attempts</th><th>handoff</th><th>cost</th><th>turns</th></tr>\n",
    );
    let dash = || "–".to_string();
    for s in &t.streams {
        let why = s
            .reason
            .as_ref()
            .filter(|_| !matches!(s.outcome.as_str(), "complete" | "waiting" | "ready"))
            .and_then(reason_words)
            .map(|w| format!(": {w}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<tr{}><td>{}</td><td class=\"text\">{}</td><td class=\"text\">{}{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if s.on_critical_path {
                " class=\"crit\""
            } else {
                ""
            },
            escape(&s.id),
            escape(&s.name),
            escape(&state_words(&s.outcome)),
            escape(&why),
            duration(s.waiting_ms),
            duration(s.ready_ms),
            duration(s.preparing_ms),
            duration(s.worked_ms),
            s.attempts.len(),
            s.handoff_ms.map_or_else(dash, duration),
            s.cost_usd.map_or_else(dash, |c| format!("${c:.4}")),
            s.turns.map_or_else(dash, |n| n.to_string()),
        );
    }
    out.push_str("</table>\n");
}

fn attempts_table(out: &mut String, t: &Timeline) {
    out.push_str(
        "<h2>Attempts</h2>\n<table>\n<tr><th>stream</th><th>attempt</th><th>from</th>\
         <th>to</th><th>ran</th><th class=\"text\">how it ended</th><th class=\"text\">session</th></tr>\n",
    );
    for s in &t.streams {
        for a in &s.attempts {
            let to = a.to_ms.unwrap_or(t.duration_ms);
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td class=\"text\">{}</td><td class=\"text\">{}</td></tr>",
                escape(&s.id),
                a.attempt,
                if a.adopted { " (adopted)" } else { "" },
                duration(a.from_ms),
                a.to_ms.map_or_else(|| "–".into(), duration),
                duration(to - a.from_ms),
                escape(&attempt_words(a)),
                escape(a.session_id.as_deref().unwrap_or("–")),
            );
        }
    }
    out.push_str("</table>\n");
}
