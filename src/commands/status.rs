//! `orchestrate status`: the dashboard, once, as JSON, or live with `--watch`.

use std::time::{Duration, Instant};

use super::context::Context;
use crate::cli::{GlobalArgs, StatusArgs};
use crate::dashboard::Dashboard;
use crate::error::{Error, Result};
use crate::exit_codes;
use crate::state;
use crate::taskdb::{SqliteTaskDb, TaskSource};
use crate::ui::{self, OutputMode, Ui};

/// How often `--watch` probes the database for changes between full redraws.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

pub fn run(global: &GlobalArgs, args: &StatusArgs, ui: &Ui) -> Result<i32> {
    let ctx = Context::new(global)?;
    match args.watch {
        Some(secs) => watch(&ctx, secs, ui),
        None => {
            let mut db = ctx.open_db()?;
            let dashboard = load(&ctx, &mut db)?;
            if args.json {
                ui.print(&ui::status::render_json(&dashboard));
            } else {
                for w in &dashboard.warnings {
                    ui.warn(w);
                }
                match ui.mode {
                    OutputMode::Progress => ui::status::draw_bars_once(&dashboard, ui),
                    OutputMode::Plain => ui.print(&ui::status::render_plain(&dashboard, &ui.out)),
                }
            }
            Ok(exit_codes::OK)
        }
    }
}

/// Reads everything the dashboard shows.
pub fn load(ctx: &Context, db: &mut SqliteTaskDb) -> Result<Dashboard> {
    let (snapshot, graph) = ctx.load_graph(db)?;
    let recorded = state::read_streams(&ctx.project)?;
    let warnings = snapshot.warnings.iter().map(ToString::to_string).collect();
    Ok(Dashboard::build(
        &graph,
        &recorded,
        ctx.db.workspace.clone(),
        ctx.db.path.clone(),
        warnings,
    ))
}

/// Redraws at once when the database changes, and at least every `secs`, until Ctrl-C.
/// A missing database or an empty one is shown as a message and waited out, not an exit.
fn watch(ctx: &Context, secs: f64, ui: &Ui) -> Result<i32> {
    if !(secs.is_finite() && secs > 0.0) {
        return Err(Error::msg(format!(
            "--watch takes a positive number of seconds, not {secs}"
        ))
        .with_code(exit_codes::USAGE));
    }
    let interval = Duration::from_secs_f64(secs);
    let interrupted = ui::interrupt_flag();
    let mut view = ui::status::LiveView::new(ui);
    let mut db: Option<SqliteTaskDb> = None;
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
