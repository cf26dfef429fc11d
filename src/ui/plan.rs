//! `start --dry-run`: the plan. Levels in order; for each stream its state (the model's, the
//! same `status` shows), and what this `start` would do with it, and where.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use super::{Palette, printable as p, reason};
use crate::git::PlannedPlacement;
use crate::graph::StreamGraph;
use crate::model::{Model, Reason, State};

/// What the plan shows beside the model.
pub struct PlanFacts {
    pub max_parallel: usize,
    pub stagger: Duration,
    pub retries: u32,
    pub selection: Option<BTreeSet<String>>,
    /// Where each stream that would run goes, or why that cannot be planned.
    pub placements: HashMap<String, Result<PlannedPlacement, String>>,
    /// What `.worktreeinclude` copies into each new worktree (worktree mode), or why that
    /// cannot be said.
    pub includes: Option<Result<crate::git::include::Planned, String>>,
    /// Streams that may run together and claim the same files.
    pub overlaps: Vec<crate::claims::Overlap>,
    /// `--strict-files`: the later of each overlap waits for the earlier.
    pub strict_files: bool,
}

/// `now` is the model as `status` shows it; `will` is the model this `start` runs with (after
/// it clears the verdicts it clears).
pub fn render(
    graph: &StreamGraph,
    now: &Model,
    will: &Model,
    plan: &PlanFacts,
    palette: &Palette,
) -> String {
    let levels = graph.levels();
    let plural = |n: usize, one: &str, many: &str| if n == 1 { one } else { many }.to_string();
    let mut out = format!(
        "plan: {} stream{} in {} level{}, up to {} at a time, {:.1}s between launches, {} retr{}\n",
        graph.len(),
        plural(graph.len(), "", "s"),
        levels.len(),
        plural(levels.len(), "", "s"),
        plan.max_parallel,
        plan.stagger.as_secs_f64(),
        plan.retries,
        plural(plan.retries as usize, "y", "ies"),
    );
    match &plan.includes {
        Some(Ok(i)) if i.files > 0 => {
            let _ = writeln!(
                out,
                "each new worktree gets {} file{} ({}) from .worktreeinclude",
                i.files,
                plural(i.files, "", "s"),
                crate::git::include::size(i.bytes)
            );
        }
        Some(Err(e)) => {
            let _ = writeln!(out, "cannot list .worktreeinclude files: {}", p(e));
        }
        _ => {}
    }
    let state_w = State::ALL
        .iter()
        .map(|s| s.as_str().len())
        .max()
        .unwrap_or(8);
    let mut order = 0;
    for (depth, streams) in levels {
        let _ = writeln!(out, "{}", palette.bold(&format!("level {depth}:")));
        for st in streams {
            let (Some(view), Some(next)) = (now.get(st.id()), will.get(st.id())) else {
                continue;
            };
            let selected = plan.selection.as_ref().is_none_or(|s| s.contains(st.id()));
            let counts = st.record.counts;
            let deps = if st.dependencies.is_empty() {
                String::new()
            } else {
                let names: Vec<String> =
                    st.dependencies.iter().map(|d| p(d).into_owned()).collect();
                format!(" after {}", names.join(", "))
            };
            let what = what_happens(
                st.id(),
                view.state,
                view.reason.as_ref(),
                next,
                selected,
                plan,
                &mut order,
            );
            let _ = writeln!(
                out,
                "  {}  {:state_w$}  ({}/{} tasks done){deps}: {what}",
                p(st.id()),
                view.state.as_str(),
                counts.completed + counts.cancelled,
                counts.total
            );
        }
    }
    if !plan.overlaps.is_empty() {
        let _ = writeln!(out, "{}", palette.bold("file claims:"));
        for o in &plan.overlaps {
            let _ = writeln!(out, "  {}", reason::overlap_line(o));
        }
        let _ = writeln!(
            out,
            "  {}",
            if plan.strict_files {
                "--strict-files: the later of each pair waits for the earlier"
            } else {
                "they run at the same time; --strict-files runs them one after the other"
            }
        );
    }
    out.push_str("nothing was started (--dry-run)");
    out
}

fn what_happens(
    id: &str,
    state: State,
    why: Option<&Reason>,
    next: &crate::model::StreamView,
    selected: bool,
    plan: &PlanFacts,
    order: &mut usize,
) -> String {
    let place = || match plan.placements.get(id) {
        Some(Ok(pl)) => format!(
            "in {}{}, base: {}",
            p(&pl.dir.display().to_string()),
            pl.branch
                .as_deref()
                .map(|b| format!(" on branch {}", p(b)))
                .unwrap_or_default(),
            p(&pl.base)
        ),
        Some(Err(e)) => format!("in a worktree (cannot plan it: {})", p(e)),
        None => String::new(),
    };
    let because = why.map(reason::summary);
    match state {
        State::Complete => "nothing to run".into(),
        State::Cancelled => "cancelled, nothing to run".into(),
        _ if !selected => match because {
            Some(b) => format!("not selected; {b}"),
            None => "not selected".into(),
        },
        State::Running | State::Preparing => "its worker is running; this start watches it".into(),
        _ if next.actions.launch => {
            *order += 1;
            let again = match because {
                Some(b) => format!(" again ({b})"),
                None => String::new(),
            };
            format!("#{order}, starts{again} now {}", place())
        }
        State::Waiting => format!("{}; then runs {}", because.unwrap_or_default(), place()),
        _ => {
            let mut text = because.unwrap_or_default();
            if let Some(step) = why.and_then(|r| reason::next_step(id, r)) {
                let _ = write!(text, "; {step}");
            }
            text
        }
    }
}
