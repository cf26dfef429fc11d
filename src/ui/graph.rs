//! `orchestrate graph`: the streams by level with their dependency edges and the model's
//! states, as text for a terminal, as Mermaid (docs, issue trackers) and as Graphviz DOT.
//!
//! Every piece of data is escaped for where it goes: [`super::printable`] for the terminal;
//! Mermaid gets generated node ids (`s0`, `s1`, …) and labels whose every character outside a
//! small safe set is an entity code (`#34;`), so no name can close a label or start a
//! directive; DOT gets quoted ids and labels with `"` and `\` escaped.

use std::fmt::Write as _;

use super::{Palette, printable as p};
use crate::graph::StreamGraph;
use crate::model::{Model, State};
use crate::timeline::state_name;

/// A state's words in its colour on a terminal (the board's colours).
pub fn paint_state(palette: &Palette, state: State, text: &str) -> String {
    super::board::state_colour(palette, state, text)
}

/// A state's fill colour in Mermaid, DOT and the HTML report.
pub fn state_fill(state: &str) -> &'static str {
    match state {
        "complete" => "#c8ecd0",
        "running" | "preparing" | "verifying" => "#cfe2ff",
        "failed" => "#f5c2c7",
        "ready" => "#ffffff",
        "waiting" => "#eceff1",
        "cancelled" => "#dee2e6",
        _ => "#ffe8a8",
    }
}

/// "4 streams in 3 levels: 1 complete, 1 running, 2 waiting".
fn headline(graph: &StreamGraph, model: &Model) -> String {
    let mut counts: Vec<(State, usize)> = Vec::new();
    for v in model.views() {
        match counts.iter_mut().find(|(s, _)| *s == v.state) {
            Some((_, n)) => *n += 1,
            None => counts.push((v.state, 1)),
        }
    }
    counts.sort();
    let states: Vec<String> = counts
        .iter()
        .map(|(s, n)| format!("{n} {}", s.as_str()))
        .collect();
    let levels = graph.levels().len();
    format!(
        "{} stream{} in {levels} level{}: {}",
        graph.len(),
        if graph.len() == 1 { "" } else { "s" },
        if levels == 1 { "" } else { "s" },
        states.join(", ")
    )
}

/// The terminal form: levels in order; per stream its state, tasks done, name and the streams
/// it comes after (`← A, B`), and the reason when it needs one. Columns are aligned across
/// levels and fit `width`: a long name is cut, and the edges go on their own line when the row
/// would not fit.
pub fn render_text(graph: &StreamGraph, model: &Model, palette: &Palette, width: usize) -> String {
    let mut out = format!("{}\n", headline(graph, model));
    let rows: Vec<Row> = graph
        .streams()
        .iter()
        .filter_map(|s| Row::of(s, model))
        .collect();
    let widest = |f: &dyn Fn(&Row) -> usize| rows.iter().map(f).max().unwrap_or(0);
    let id_w = widest(&|r| r.id.chars().count()).min(24);
    let state_w = widest(&|r| r.state.as_str().len());
    let tasks_w = widest(&|r| r.tasks.len());
    let edges_w = widest(&|r| r.edges.chars().count());
    // "  ● ID  STATE  TASKS  NAME  EDGES"
    let fixed = 4 + id_w + 2 + state_w + 2 + tasks_w + 2;
    let name_w = widest(&|r| r.name.chars().count())
        .min(width.saturating_sub(fixed + 2 + edges_w))
        .max(12);
    for (depth, streams) in graph.levels() {
        let _ = writeln!(out, "{}", palette.bold(&format!("level {depth}")));
        for s in streams {
            let Some(row) = rows.iter().find(|r| r.key == s.id()) else {
                continue;
            };
            let dot = paint_state(palette, row.state, "●");
            let state = paint_state(palette, row.state, row.state.as_str());
            let mut line = format!(
                "  {dot} {}  {state}{}  {:>tasks_w$}  {}",
                cut(&row.id, id_w),
                " ".repeat(state_w - row.state.as_str().len()),
                row.tasks,
                cut(&row.name, name_w),
            );
            let inline = fixed + name_w + 2 + row.edges.chars().count() <= width;
            if inline && !row.edges.is_empty() {
                let _ = write!(line, "  {}", palette.dim(&row.edges));
            }
            let _ = writeln!(out, "{}", line.trim_end());
            if !inline && !row.edges.is_empty() {
                for part in wrap(&row.edges, width.saturating_sub(6).max(20)) {
                    let _ = writeln!(out, "      {}", palette.dim(&part));
                }
            }
            if let Some(reason) = &row.reason {
                super::report::push_wrapped(&mut out, reason, width, "      ");
            }
        }
    }
    out
}

/// One stream's cells, escaped.
struct Row {
    key: String,
    id: String,
    state: State,
    tasks: String,
    /// Empty when it is the id.
    name: String,
    /// `← A, B`, or empty.
    edges: String,
    /// Why, when the state needs one (failed, blocked, skipped, …).
    reason: Option<String>,
}

impl Row {
    fn of(s: &crate::graph::Stream, model: &Model) -> Option<Self> {
        let view = model.get(s.id())?;
        let counts = s.record.counts;
        let deps: Vec<String> = s.dependencies.iter().map(|d| p(d).into_owned()).collect();
        Some(Self {
            key: s.id().to_string(),
            id: p(s.id()).into_owned(),
            state: view.state,
            tasks: format!("{}/{}", counts.completed + counts.cancelled, counts.total),
            name: if s.record.name == s.record.id {
                String::new()
            } else {
                p(&s.record.name).into_owned()
            },
            edges: if deps.is_empty() {
                String::new()
            } else {
                format!("← {}", deps.join(", "))
            },
            reason: view
                .reason
                .as_ref()
                .filter(|_| !matches!(view.state, State::Waiting | State::Ready | State::Running))
                .map(super::reason::summary),
        })
    }
}

/// `text` cut to `width` columns with `…`, padded to it.
fn cut(text: &str, width: usize) -> String {
    let n = text.chars().count();
    if n <= width {
        format!("{text}{}", " ".repeat(width - n))
    } else if width == 0 {
        String::new()
    } else {
        format!("{}…", text.chars().take(width - 1).collect::<String>())
    }
}

/// `text` broken after commas into lines of at most `width` columns (a longer item stays whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for (i, item) in text.split(", ").enumerate() {
        let last = lines.last_mut().expect("one line at least");
        let piece = if i == 0 {
            item.to_string()
        } else {
            format!(", {item}")
        };
        if !last.is_empty() && last.chars().count() + piece.chars().count() > width {
            lines.push(format!("  {item}"));
        } else {
            last.push_str(&piece);
        }
    }
    lines
}

/// A Mermaid label: characters outside a small safe set become entity codes (`#34;`).
fn mermaid_text(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " -_.,:/()+=@!?".contains(c) {
                c.to_string()
            } else {
                format!("#{};", c as u32)
            }
        })
        .collect()
}

/// Mermaid flowchart: one node per stream (generated ids, the id, name and state as its
/// label, a class per state), one edge per dependency, levels top to bottom.
pub fn render_mermaid(graph: &StreamGraph, model: &Model) -> String {
    let mut out = String::from("flowchart TD\n");
    let ids: std::collections::HashMap<&str, String> = graph
        .streams()
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id(), format!("s{i}")))
        .collect();
    let mut used: Vec<String> = Vec::new();
    for s in graph.streams() {
        let state = model
            .state(s.id())
            .map_or_else(|| "unknown".into(), state_name);
        let counts = s.record.counts;
        let mut label = mermaid_text(s.id());
        if s.record.name != s.record.id {
            let _ = write!(label, "<br/>{}", mermaid_text(&s.record.name));
        }
        let words = model.state(s.id()).map_or("unknown", State::as_str);
        let _ = write!(
            label,
            "<br/><i>{}</i> {}/{}",
            mermaid_text(words),
            counts.completed + counts.cancelled,
            counts.total
        );
        let _ = writeln!(out, "    {}[\"{label}\"]:::{state}", ids[s.id()]);
        if !used.contains(&state) {
            used.push(state);
        }
    }
    for s in graph.streams() {
        for d in &s.dependencies {
            if let Some(from) = ids.get(d.as_str()) {
                let _ = writeln!(out, "    {from} --> {}", ids[s.id()]);
            }
        }
    }
    for state in used {
        let _ = writeln!(
            out,
            "    classDef {state} fill:{},stroke:#555,color:#111",
            state_fill(&state)
        );
    }
    out
}

/// A DOT double-quoted string's content.
fn dot_text(text: &str) -> String {
    p(text).replace('\\', "\\\\").replace('"', "\\\"")
}

/// Graphviz DOT: quoted ids, labels with the name and state, filled by state, one rank per
/// level.
pub fn render_dot(graph: &StreamGraph, model: &Model) -> String {
    let mut out = String::from(
        "digraph streams {\n    rankdir=TB;\n    node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n",
    );
    for s in graph.streams() {
        let state = model.state(s.id());
        let counts = s.record.counts;
        let mut label = dot_text(s.id());
        if s.record.name != s.record.id {
            let _ = write!(label, "\\n{}", dot_text(&s.record.name));
        }
        let _ = write!(
            label,
            "\\n{} {}/{}",
            state.map_or("unknown", State::as_str),
            counts.completed + counts.cancelled,
            counts.total
        );
        let fill = state_fill(&state.map_or_else(|| "unknown".into(), state_name));
        let _ = writeln!(
            out,
            "    \"{}\" [label=\"{label}\", fillcolor=\"{fill}\"];",
            dot_text(s.id())
        );
    }
    for s in graph.streams() {
        for d in &s.dependencies {
            let _ = writeln!(out, "    \"{}\" -> \"{}\";", dot_text(d), dot_text(s.id()));
        }
    }
    for (_, streams) in graph.levels() {
        let names: Vec<String> = streams
            .iter()
            .map(|s| format!("\"{}\";", dot_text(s.id())))
            .collect();
        let _ = writeln!(out, "    {{ rank=same; {} }}", names.join(" "));
    }
    out.push_str("}\n");
    out
}
