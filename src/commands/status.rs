//! `orchestrate status`: the dashboard, once, as JSON, or live with `--watch`.

use std::time::{Duration, Instant};

use super::context::Context;
use crate::cli::{GlobalArgs, StatusArgs};
use crate::dashboard::Dashboard;
use crate::error::Result;
use crate::exit_codes;
use crate::facts;
use crate::git::{self, MergeBackPlan};
use crate::graph::StreamGraph;
use crate::model::State;
use crate::taskdb::{TaskDb, TaskSource};
use crate::ui::{self, OutputMode, Ui};

/// How often `--watch` probes the database for changes between full redraws.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

pub fn run(global: &GlobalArgs, args: &StatusArgs, ui: &Ui) -> Result<i32> {
    let ctx = Context::new(global)?;
    match args.watch {
        Some(interval) => watch(&ctx, interval, ui),
        None => {
            let mut db = ctx.open_db()?;
            let (mut dashboard, graph) = load_with_graph(&ctx, &mut db)?;
            let plan = merge_back(&ctx, &graph, &mut dashboard);
            if args.json {
                ui.print(&ui::status::render_json(&dashboard, plan.as_ref()));
                return Ok(exit_codes::OK);
            }
            for w in &dashboard.warnings {
                ui.warn(w);
            }
            match ui.mode {
                OutputMode::Progress => ui::status::draw_bars_once(&dashboard, ui),
                OutputMode::Plain => ui.print(&ui::status::render_plain(&dashboard, &ui.out)),
            }
            if let Some(plan) = &plan {
                ui.print(&format!("\n{}", ui::mergeback::render_plan(plan, &ui.out)));
            }
            Ok(exit_codes::OK)
        }
    }
}

/// Reads everything the dashboard shows.
pub fn load(ctx: &Context, db: &mut TaskDb) -> Result<Dashboard> {
    load_with_graph(ctx, db).map(|(dashboard, _)| dashboard)
}

fn load_with_graph(ctx: &Context, db: &mut TaskDb) -> Result<(Dashboard, StreamGraph)> {
    let (snapshot, graph) = ctx.load_graph(db)?;
    let facts = facts::gather(&ctx.project, &graph, None)?;
    let model = facts.derive(&graph);
    let mut warnings: Vec<String> = snapshot.warnings.iter().map(ToString::to_string).collect();
    warnings.extend(facts.warnings.iter().cloned());
    if let Some(aside) = &facts.recovered {
        warnings.push(format!(
            "the orchestrator state was corrupt; it was moved to {} and rebuilt from the running workers",
            aside.display()
        ));
    }
    // Branch details are extra: a git problem is a warning on the dashboard, not a failure.
    let branches = match git::branch_facts(&ctx.project, &facts.worktrees) {
        Ok(b) => b,
        Err(e) => {
            warnings.push(format!("cannot read stream branches: {e}"));
            Default::default()
        }
    };
    let mut dashboard = Dashboard::build(
        &graph,
        &model,
        &facts,
        &branches,
        ctx.db.workspace.clone(),
        ctx.db.path.clone(),
        warnings,
    );
    dashboard.source = Some(ctx.db.source(db.kind()));
    Ok((dashboard, graph))
}

/// Merge-back hints, once some stream with a branch is complete (worktree mode).
fn merge_back(
    ctx: &Context,
    graph: &StreamGraph,
    dashboard: &mut Dashboard,
) -> Option<MergeBackPlan> {
    let ready = dashboard
        .streams
        .iter()
        .any(|s| s.state == State::Complete && s.branch.is_some());
    if !ready {
        return None;
    }
    match git::hints(&ctx.project, graph, None) {
        Ok(plan) => Some(plan),
        Err(e) => {
            dashboard
                .warnings
                .push(format!("cannot preview the merge-back: {e}"));
            None
        }
    }
}

/// Redraws at once when the database changes, and at least every `interval`, until Ctrl-C.
/// A missing database or an empty one is shown as a message and waited out, not an exit.
fn watch(ctx: &Context, interval: Duration, ui: &Ui) -> Result<i32> {
    let interrupted = ui::interrupt_flag();
    let mut view = ui::status::LiveView::new(ui);
    let mut db: Option<TaskDb> = None;
    let mut last_draw: Option<Instant> = None;
    while !interrupted.load(std::sync::atomic::Ordering::Relaxed) {
        if db.is_none() {
            db = ctx.open_db().map_err(|e| view.show_problem(&e)).ok();
        }
        let changed = match db.as_mut().map(|d| d.has_changed()) {
            Some(Ok(changed)) => changed,
            Some(Err(e)) => {
                view.show_problem(&e.into());
                db = None;
                false
            }
            None => false,
        };
        let due = last_draw.is_none_or(|t| t.elapsed() >= interval);
        if let Some(d) = db.as_mut()
            && (changed || due)
        {
            match load(ctx, d) {
                Ok(dashboard) => view.show(&dashboard),
                Err(e) => view.show_problem(&e),
            }
            last_draw = Some(Instant::now());
        } else if due {
            last_draw = Some(Instant::now());
        }
        std::thread::sleep(PROBE_INTERVAL);
    }
    view.finish();
    Ok(exit_codes::OK)
}
