//! `orchestrate start [STREAM…]`: checks the names and the selection against the model, prints
//! the plan with `--dry-run`, otherwise runs the scheduler with the live view and hands the
//! end of the run to `ui` for its summary.

use std::collections::BTreeSet;

use super::context::Context;
use crate::cli::{GlobalArgs, StartArgs};
use crate::config::{Config, Overrides};
use crate::error::{Error, Result};
use crate::exit_codes;
use crate::facts;
use crate::git::WorktreeWorkspaces;
use crate::graph::{StreamGraph, UnknownStreams};
use crate::model::{Mode, Model, Reason, State};
use crate::project::Project;
use crate::scheduler::{Reporter, RunEnd, Scheduler, Settings};
use crate::state::StateStore;
use crate::taskdb::StoreKind;
use crate::timeline::{History, Recording};
use crate::ui::Ui;
use crate::ui::events::JsonEvents;
use crate::ui::run::RunView;
use crate::ui::tclog::TcActivity;
use crate::worker::{WorkerCommand, prompt};
use crate::workspace::{SharedCheckout, Workspaces};

pub fn run(global: &GlobalArgs, args: &StartArgs, ui: &Ui) -> Result<i32> {
    let ctx = Context::new(global)?;
    let mut db = ctx.open_db()?;
    let (warnings, graph) = ctx.load_graph(&mut db)?;
    for w in &warnings {
        ui.warn(&w.to_string());
    }
    UnknownStreams::check(&args.streams, graph.streams().iter().map(|s| s.id()))?;
    let mut config = Config::load(&ctx.project)?;
    config.apply(&overrides(args))?;
    let graph = if config.strict_files {
        graph.strict_files()
    } else {
        graph
    };
    let worktrees = config.worktrees;
    let mode = Mode {
        worktrees,
        now: crate::state::time::now_unix(),
        budget_reached: false,
    };
    let selection = (!args.streams.is_empty()).then(|| {
        args.streams
            .iter()
            .map(|s| s.trim().to_string())
            .collect::<BTreeSet<_>>()
    });
    let settings = Settings {
        project: ctx.project.clone(),
        db_path: ctx.db.path.clone(),
        exe: std::env::current_exe()
            .map_err(|e| Error::msg(format!("cannot find this program's own path: {e}")))?,
        worker_cmd: config.worker_cmd.clone(),
        prompt_template: prompt::load_template(
            &ctx.project.orchestrator_dir().join("worker-prompt.md"),
        ),
        max_parallel: config.max_parallel.max(1) as usize,
        stagger: config.stagger,
        retries: config.retries,
        worktree_mode: worktrees,
        selection,
        verify: config.verify.clone(),
        verify_timeout: config.verify_timeout,
        max_budget_usd: config.max_budget_usd,
        run_budget_usd: config.run_budget_usd,
        backoff_min: config.backoff_min,
        resume: config.resume,
        resume_template: prompt::load_template_or(
            &ctx.project.orchestrator_dir().join("worker-resume.md"),
            prompt::DEFAULT_RESUME_TEMPLATE,
        ),
        sandbox: crate::worker::sandbox::Policy::from_config(&config, &ctx.project)?,
        strict_files: config.strict_files,
    };
    // A command that cannot run safely is refused before anything runs, plan included.
    WorkerCommand::parse(&settings.worker_cmd)?;
    let facts = facts::gather(&ctx.project, &graph, Some(mode))?;
    if let Some(aside) = &facts.recovered {
        ui.warn(&format!(
            "the orchestrator state was corrupt; it was moved to {} and rebuilt from the running workers",
            aside.display()
        ));
    }
    // What this `start` clears before it runs: failures (a new run tries them again), and for
    // named streams also stops and blocks (naming a stream is how to run it again).
    let clears = |stream: &str, kind: &str| match &settings.selection {
        Some(sel) if sel.contains(stream) => matches!(kind, "failed" | "stopped" | "blocked"),
        _ => kind == "failed",
    };
    // The model as it stands (what `status` shows), and as this start will see it.
    let now = facts.derive(&graph);
    let mut cleared = facts.observed.clone();
    for (stream, observed) in &mut cleared {
        if observed
            .verdict
            .as_ref()
            .is_some_and(|v| clears(stream, v.kind()))
        {
            observed.verdict = None;
        }
    }
    let will = crate::model::derive(&graph, &cleared, mode);
    if let Some(sel) = &settings.selection {
        refuse_unready(&will, sel)?;
    }
    let overlaps: Vec<crate::claims::Overlap> =
        crate::claims::open(&graph, &will).cloned().collect();
    if args.dry_run {
        let mut plan = plan_facts(&settings, &graph, &will);
        plan.overlaps = overlaps;
        ui.print(&crate::ui::plan::render(
            &graph, &now, &will, &plan, &ui.out,
        ));
        return Ok(exit_codes::OK);
    }
    for o in &overlaps {
        ui.warn(&o.to_string());
    }
    if !overlaps.is_empty() && !settings.strict_files {
        ui.info("hint: `start --strict-files` (or strict_files = true) runs such streams one after the other");
    }
    // First run: install `.claude/orchestrator/` and friends; later runs repair what is broken.
    super::init::set_up_for_run(&ctx.project, ui)?;
    let workspaces = make_workspaces(&ctx.project, &config, worktrees)?;
    let store = StateStore::open(&ctx.project.state_db())?;
    for (stream, verdict) in store.verdicts()? {
        if clears(&stream, verdict.kind()) {
            store.clear_verdict(&stream)?;
        }
    }
    store.set_run_mode(
        worktrees,
        settings.verify.as_deref(),
        settings.run_budget_usd,
        settings.strict_files,
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::msg(format!("cannot start the async runtime: {e}")))?;
    // The run's timeline goes to the state store (`orchestrate report`); the live view is the
    // board (bars or lines), or with --json one JSON object per event on stdout.
    let selection: Option<Vec<String>> = settings
        .selection
        .as_ref()
        .map(|s| s.iter().cloned().collect());
    let recording = Recording::begin(&ctx.project.state_db(), worktrees, selection.as_deref());
    let mut json = args.json.then(|| JsonEvents::new(recording.start_entry()));
    // The board's first line names the store as `status` does.
    let source = crate::ui::board::source_line(
        ctx.db.workspace.as_deref(),
        &ctx.db.path,
        Some(&ctx.db.source(db.kind())),
    );
    let mut view = (!args.json).then(|| RunView::new(ui, source));
    let inner: &mut dyn Reporter = match (json.as_mut(), view.as_mut()) {
        (Some(json), _) => json,
        (None, Some(view)) => view,
        (None, None) => unreachable!("one of the two is made above"),
    };
    let mut history = History::new(recording, inner);
    let end = if db.kind() == StoreKind::Tc {
        // tc's own log shows the run too (`tc log`, `tc watch`).
        let mut tee = TcActivity::new(&ctx.db.path, &mut history);
        let end = Scheduler::new(settings, db, store, workspaces, &mut tee)
            .map(|scheduler| runtime.block_on(scheduler.run()));
        tee.finish();
        end?
    } else {
        let scheduler = Scheduler::new(settings, db, store, workspaces, &mut history)?;
        runtime.block_on(scheduler.run())
    };
    // Do not wait for the per-worker wait tasks: the workers outlive us by design.
    runtime.shutdown_background();
    let code_of = |end: &RunEnd| match end {
        RunEnd::Complete { .. } => exit_codes::OK,
        RunEnd::Incomplete(_) => exit_codes::INCOMPLETE,
        RunEnd::Interrupted(_) => exit_codes::INTERRUPTED,
    };
    // A run the scheduler could not finish keeps no end: `report` shows it unended.
    let run_id = match &end {
        Ok((end, _)) => history.finish(end, code_of(end)),
        Err(_) => {
            drop(history);
            None
        }
    };
    if let Some(view) = view {
        view.finish();
    }
    let (end, stats) = end?;
    let code = code_of(&end);
    // With --json stdout holds the events alone: the words go to stderr.
    let say = |text: &str| match (&json, &end) {
        (None, RunEnd::Complete { .. } | RunEnd::Incomplete(_)) => ui.print(text),
        // Diagnostics, not results: the workers keep running.
        _ => ui.info(text),
    };
    say(&crate::ui::run::render_end(&end));
    if let Some(line) = crate::ui::run::render_stats(&stats) {
        say(&line);
    }
    if worktrees && !matches!(end, RunEnd::Interrupted(_)) {
        merge_back_hints(&ctx, ui, json.is_some());
    }
    if let Some(json) = json {
        json.finish(&end, code);
    }
    if let Some(id) = run_id {
        ui.info(&crate::ui::report::pointer(id));
    }
    Ok(code)
}

/// The command line's values, on top of the file and the environment (`Config::apply`).
fn overrides(args: &StartArgs) -> Overrides {
    let worktrees = match (args.worktrees, args.no_worktrees) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    Overrides {
        worker_cmd: args.worker_cmd.clone(),
        max_parallel: args.max_parallel,
        stagger: args.stagger,
        retries: args.retries,
        worktrees,
        verify: args.verify.clone(),
        max_budget_usd: args.max_budget_usd,
        run_budget_usd: args.run_budget_usd,
        sandbox: args
            .sandbox
            .as_deref()
            .and_then(crate::worker::sandbox::Mode::parse),
        strict_files: args.strict_files.then_some(true),
        ..Overrides::default()
    }
}

/// `start STREAM…` refuses, with the reason, streams whose dependencies outside the selection
/// are not done.
fn refuse_unready(model: &Model, selection: &BTreeSet<String>) -> Result<()> {
    let mut refusals = Vec::new();
    for name in selection {
        let Some(Reason::Waiting { on }) = model.get(name).and_then(|v| v.reason.as_ref()) else {
            continue;
        };
        let outside: Vec<&str> = on
            .iter()
            .map(|w| w.stream.as_str())
            .filter(|d| !selection.contains(*d))
            .collect();
        if !outside.is_empty() {
            refusals.push(format!(
                "{} waits for {}",
                crate::ui::printable(name),
                outside
                    .iter()
                    .map(|d| crate::ui::printable(d).into_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    if refusals.is_empty() {
        return Ok(());
    }
    Err(Error::msg(format!(
        "cannot start: dependencies are not complete ({})",
        refusals.join("; ")
    ))
    .with_hint("name the dependencies too, or run `orchestrate start` to run everything in order")
    .with_code(exit_codes::REFUSED))
}

/// Where each stream that would run goes (worktree mode), for the plan.
fn plan_facts(
    settings: &Settings,
    graph: &StreamGraph,
    model: &Model,
) -> crate::ui::plan::PlanFacts {
    let mut placements = std::collections::HashMap::new();
    for s in graph.streams() {
        let runs = model.get(s.id()).is_some_and(|v| {
            !matches!(v.state, State::Complete | State::Cancelled)
                && settings
                    .selection
                    .as_ref()
                    .is_none_or(|sel| sel.contains(s.id()))
        });
        if !runs {
            continue;
        }
        let place = if settings.worktree_mode {
            crate::git::plan_placement(&settings.project, s).map_err(|e| e.to_string())
        } else {
            Ok(crate::git::PlannedPlacement {
                dir: settings.project.root.clone(),
                branch: None,
                base: "the project root (shared checkout)".into(),
                blocked: false,
            })
        };
        placements.insert(s.id().to_string(), place);
    }
    crate::ui::plan::PlanFacts {
        max_parallel: settings.max_parallel,
        stagger: settings.stagger,
        retries: settings.retries,
        selection: settings.selection.clone(),
        placements,
        includes: settings
            .worktree_mode
            .then(|| crate::git::planned_includes(&settings.project).map_err(|e| e.to_string())),
        overlaps: Vec::new(),
        strict_files: settings.strict_files,
    }
}

/// After a worktree run: how to merge the stream branches back, previewed in memory.
/// `to_stderr`: with `--json`, whose stdout holds the events alone.
fn merge_back_hints(ctx: &Context, ui: &Ui, to_stderr: bool) {
    let plan = ctx
        .open_db()
        .and_then(|mut db| ctx.load_graph(&mut db))
        .and_then(|(_, graph)| Ok(crate::git::hints(&ctx.project, &graph, None)?));
    match plan {
        Ok(plan) if to_stderr => ui.info(&crate::ui::mergeback::render_plan(&plan, &ui.err)),
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
