//! `orchestrate clean`: remove stream worktrees (and with `--branches` their branches) that
//! hold nothing unsaved; list what is kept, why, and how to override.

use std::collections::BTreeMap;

use super::context::Context;
use crate::cli::{CleanArgs, GlobalArgs};
use crate::error::Result;
use crate::exit_codes;
use crate::git::clean::{self, CleanOptions};
use crate::state::{self, WorkerState};
use crate::ui::{self, Ui};

pub fn run(global: &GlobalArgs, args: &CleanArgs, ui: &Ui) -> Result<i32> {
    let ctx = Context::new(global)?;
    // The task database only names streams; clean works without it (e.g. after it was deleted).
    let graph = ctx
        .open_db()
        .ok()
        .and_then(|mut db| ctx.load_graph(&mut db).ok().map(|(_, g)| g));
    let running: BTreeMap<String, i32> = state::read_streams(&ctx.project)?
        .into_iter()
        .filter_map(|(id, s)| {
            s.worker
                .filter(|w| w.state == WorkerState::Running)
                .map(|w| (id, w.pid))
        })
        .collect();
    let opts = CleanOptions {
        streams: args.streams.clone(),
        force: args.force,
        branches: args.branches,
    };
    let plan = clean::plan(&ctx.project, graph.as_ref(), &running, &opts)?;
    if !args.dry_run {
        clean::execute(&ctx.project, &plan)?;
    }
    ui.print(&ui::clean::render(&plan, args.dry_run, &ui.out));
    Ok(exit_codes::OK)
}
