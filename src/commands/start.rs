//! `orchestrate start [STREAM…]`: validates the graph and the selection, prints the plan with
//! `--dry-run`, otherwise runs the scheduler with the live view and prints the summary.

use std::collections::BTreeSet;

use super::context::Context;
use super::stop::seconds;
use crate::cli::{GlobalArgs, StartArgs};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::exit_codes;
use crate::git::WorktreeWorkspaces;
use crate::graph::StreamGraph;
use crate::project::Project;
use crate::scheduler::{RunEnd, Scheduler, Settings};
use crate::state::StateStore;
use crate::ui::Ui;
use crate::ui::run::RunView;
use crate::worker::prompt;
use crate::worker::sandbox::{Mode, Policy};
use crate::workspace::{SharedCheckout, Workspaces};

pub fn run(global: &GlobalArgs, args: &StartArgs, ui: &Ui) -> Result<i32> {
    let ctx = Context::new(global)?;
    let mut db = ctx.open_db()?;
    let (snapshot, graph) = ctx.load_graph(&mut db)?;
    for w in &snapshot.warnings {
        ui.warn(&w.to_string());
    }
    let mut config = Config::load(&ctx.project)?;
    if let Some(mode) = args.sandbox.as_deref().and_then(Mode::parse) {
        config.sandbox = mode;
    }
    let worktrees = args.worktrees || (config.worktrees && !args.no_worktrees);
    let selection = select(&graph, &args.streams)?;
    let stagger = match args.stagger {
        Some(s) => seconds(s, "--stagger")?,
        None => config.stagger,
    };
    let settings = Settings {
        project: ctx.project.clone(),
        db_path: ctx.db.path.clone(),
        exe: std::env::current_exe()
            .map_err(|e| Error::msg(format!("cannot find this program's own path: {e}")))?,
        worker_cmd: args
            .worker_cmd
            .clone()
            .unwrap_or_else(|| config.worker_cmd.clone()),
        prompt_template: prompt::load_template(
            &ctx.project.orchestrator_dir().join("worker-prompt.md"),
        ),
        max_parallel: args.max_parallel.unwrap_or(config.max_parallel).max(1) as usize,
        stagger,
        retries: args.retries.unwrap_or(config.retries),
        worktree_mode: worktrees,
        selection,
        sandbox: Policy::from_config(&config, &ctx.project)?,
    };
    if args.dry_run {
        ui.print(&plan(&graph, &settings));
        return Ok(exit_codes::OK);
    }
    // First run: install `.claude/orchestrator/` and friends; later runs repair what is broken.
    super::init::set_up_for_run(&ctx.project, ui)?;
    let workspaces = make_workspaces(&ctx.project, &config, worktrees)?;
    let store = StateStore::open(&ctx.project.state_db())?;
    match &settings.selection {
        // Naming a stream is the way to run it again after `stop` or a failure.
        Some(sel) => {
            for s in sel {
                store.set_outcome(s, None)?;
            }
        }
        None => store.clear_failed()?,
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::msg(format!("cannot start the async runtime: {e}")))?;
    let mut view = RunView::new(ui);
    let end = {
        let scheduler = Scheduler::new(settings, db, store, workspaces, &mut view)?;
        runtime.block_on(scheduler.run())
    };
    view.finish();
    // Do not wait for the per-worker wait tasks: the workers outlive us by design.
    runtime.shutdown_background();
    let end = end?;
    let code = report(&end, ui)?;
    if worktrees && !matches!(end, RunEnd::Interrupted(_)) {
        merge_back_hints(&ctx, ui);
    }
    Ok(code)
}

/// After a worktree run: how to merge the stream branches back, previewed in memory.
fn merge_back_hints(ctx: &Context, ui: &Ui) {
    let plan = ctx
        .open_db()
        .and_then(|mut db| ctx.load_graph(&mut db))
        .and_then(|(_, graph)| Ok(crate::git::hints(&ctx.project, &graph, None)?));
    match plan {
        Ok(plan) => ui.print(&crate::ui::mergeback::render_plan(&plan, &ui.out)),
        Err(e) => ui.warn(&format!("cannot preview the merge-back: {e}")),
    }
}

/// Where streams run: the one place that chooses the [`Workspaces`] implementation.
fn make_workspaces(
    project: &Project,
    config: &Config,
    worktrees: bool,
) -> Result<Box<dyn Workspaces>> {
    if worktrees {
        return Ok(Box::new(WorktreeWorkspaces::new(
            project.clone(),
            config.clone(),
        )?));
    }
    Ok(Box::new(SharedCheckout {
        root: project.root.clone(),
    }))
}

/// Checks `start STREAM…`: every name is a stream, and every dependency outside the selection
/// is complete.
fn select(graph: &StreamGraph, names: &[String]) -> Result<Option<BTreeSet<String>>> {
    if names.is_empty() {
        return Ok(None);
    }
    let known: Vec<&str> = graph.streams().iter().map(|s| s.id()).collect();
    let selection: BTreeSet<String> = names.iter().cloned().collect();
    for name in &selection {
        if graph.get(name).is_none() {
            return Err(
                Error::msg(format!("no stream `{name}` in the task database"))
                    .with_hint(format!("known streams: {}", known.join(", ")))
                    .with_code(exit_codes::NO_STREAMS),
            );
        }
    }
    let mut refusals = Vec::new();
    for name in &selection {
        let waiting = graph.waiting_for(name, |d| {
            selection.contains(d) || graph.get(d).is_some_and(|s| s.record.counts.is_complete())
        });
        if !waiting.is_empty() {
            refusals.push(format!("{name} waits for {}", waiting.join(", ")));
        }
    }
    if !refusals.is_empty() {
        return Err(Error::msg(format!(
            "cannot start: dependencies are not complete ({})",
            refusals.join("; ")
        ))
        .with_hint(
            "name the dependencies too, or run `orchestrate start` to run everything in order",
        )
        .with_code(exit_codes::REFUSED));
    }
    Ok(Some(selection))
}

/// The `--dry-run` plan: levels in order, what each stream would do and where.
fn plan(graph: &StreamGraph, s: &Settings) -> String {
    let mut out = format!(
        "plan: {} stream{} in {} level{}, up to {} at a time, {:.1}s between launches, {} retr{}\n",
        graph.len(),
        if graph.len() == 1 { "" } else { "s" },
        graph.levels().len(),
        if graph.levels().len() == 1 { "" } else { "s" },
        s.max_parallel,
        s.stagger.as_secs_f64(),
        s.retries,
        if s.retries == 1 { "y" } else { "ies" },
    );
    let mut order = 0;
    for (depth, streams) in graph.levels() {
        out.push_str(&format!("level {depth}:\n"));
        for st in streams {
            let counts = st.record.counts;
            let what = if counts.is_complete() {
                "complete, nothing to run".to_string()
            } else if counts.is_cancelled() {
                "cancelled, nothing to run".to_string()
            } else if s
                .selection
                .as_ref()
                .is_some_and(|sel| !sel.contains(st.id()))
            {
                "not selected".to_string()
            } else {
                order += 1;
                let place = if s.worktree_mode {
                    match crate::git::plan_placement(&s.project, st) {
                        Ok(p) => format!(
                            "in {}{}, base: {}",
                            p.dir.display(),
                            p.branch
                                .map(|b| format!(" on branch {b}"))
                                .unwrap_or_default(),
                            p.base
                        ),
                        Err(e) => format!("in a worktree (cannot plan it: {e})"),
                    }
                } else {
                    format!("in {}", s.project.root.display())
                };
                format!("#{order}, runs {place}")
            };
            let deps = if st.dependencies.is_empty() {
                String::new()
            } else {
                format!(" after {}", st.dependencies.join(", "))
            };
            out.push_str(&format!(
                "  {}  ({}/{} tasks done){deps}: {what}\n",
                st.id(),
                counts.completed + counts.cancelled,
                counts.total
            ));
        }
    }
    out.push_str("nothing was started (--dry-run)");
    out
}

fn report(end: &RunEnd, ui: &Ui) -> Result<i32> {
    match end {
        RunEnd::AllComplete => {
            ui.print("every stream is complete");
            Ok(exit_codes::OK)
        }
        RunEnd::Incomplete(list) => {
            let mut text = format!(
                "{} stream{} not complete:\n",
                list.len(),
                if list.len() == 1 { " is" } else { "s are" }
            );
            for u in list {
                text.push_str(&format!("  {} ({}): {}\n", u.stream, u.state, u.why));
            }
            text.push_str("`orchestrate logs STREAM` shows a worker's log; `orchestrate status` the dashboard");
            ui.print(&text);
            Ok(exit_codes::INCOMPLETE)
        }
        RunEnd::Interrupted(live) => {
            if live.is_empty() {
                ui.info("interrupted; no worker is running");
            } else {
                let names: Vec<String> = live
                    .iter()
                    .map(|(s, pid)| format!("{s} (pid {pid})"))
                    .collect();
                ui.info(&format!(
                    "interrupted; {} worker{} keep{} running: {}. `orchestrate stop` stops them; \
                     `orchestrate start` adopts them and carries on",
                    live.len(),
                    if live.len() == 1 { "" } else { "s" },
                    if live.len() == 1 { "s" } else { "" },
                    names.join(", ")
                ));
            }
            Ok(exit_codes::INTERRUPTED)
        }
    }
}
