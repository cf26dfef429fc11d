//! `orchestrate clean`: remove stream worktrees (and with `--branches` their branches) that
//! hold nothing unsaved, never one in use; list what is kept, why, and how to override; keep
//! what `--force` would strand reachable; register orphaned worktrees again.

use std::collections::BTreeMap;

use super::context::Context;
use crate::cli::{CleanArgs, GlobalArgs};
use crate::error::Result;
use crate::exit_codes;
use crate::facts;
use crate::git::clean::{self, CleanOptions};
use crate::graph::UnknownStreams;
use crate::state::StateStore;
use crate::ui::{self, Ui};

pub fn run(global: &GlobalArgs, args: &CleanArgs, ui: &Ui) -> Result<i32> {
    let ctx = Context::new(global)?;
    // The task database only names streams; clean works without it (e.g. after it was deleted).
    let graph = ctx
        .open_db()
        .ok()
        .and_then(|mut db| ctx.load_graph(&mut db).ok().map(|(_, g)| g));
    if !args.streams.is_empty() {
        let mut known: Vec<String> = graph
            .as_ref()
            .map(|g| g.streams().iter().map(|s| s.id().to_string()).collect())
            .unwrap_or_default();
        if let Some(store) = StateStore::open_existing(&ctx.project.state_db())? {
            known.extend(
                store
                    .worktrees()?
                    .into_iter()
                    .flat_map(|w| [w.stream, w.slug]),
            );
        }
        UnknownStreams::check(&args.streams, known.iter().map(String::as_str))?;
    }
    // Streams the model counts as in use (a live worker, or a `start` preparing one).
    let running: BTreeMap<String, i32> = facts::in_use(&ctx.project)?;
    let opts = CleanOptions {
        streams: args.streams.clone(),
        force: args.force,
        branches: args.branches,
    };
    let plan = if args.dry_run {
        clean::plan(&ctx.project, graph.as_ref(), &running, &opts)?
    } else {
        clean::run(&ctx.project, graph.as_ref(), &running, &opts)?
    };
    ui.print(&ui::clean::render(&plan, args.dry_run, &ui.out));
    if !args.dry_run
        && let Ok(repo) = crate::git::repo::Repo::open(&ctx.project.root)
        && let Some(cleaned) = crate::merge_queue::clean(&repo)?
    {
        for dir in cleaned {
            ui.print(&format!(
                "removed the scratch worktree of a merge that was killed: {}",
                ui::printable(&dir.display().to_string())
            ));
        }
    }
    Ok(exit_codes::OK)
}
