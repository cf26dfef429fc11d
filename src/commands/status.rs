//! `orchestrate status`: the dashboard, once, as JSON, or live with `--watch`.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use super::context::Context;
use crate::cli::{GlobalArgs, StatusArgs};
use crate::dashboard::Dashboard;
use crate::error::Result;
use crate::exit_codes;
use crate::facts;
use crate::git::{self, MergeBackPlan};
use crate::graph::StreamGraph;
use crate::model::State;
use crate::scheduler::watch;
use crate::state::StateStore;
use crate::taskdb::{TaskDb, TaskSource};
use crate::ui::{self, Ui};

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
                leave_to_process_exit(graph, dashboard);
                return Ok(exit_codes::OK);
            }
            for w in &dashboard.warnings {
                ui.warn(w);
            }
            // Results go to stdout, in one write: fitted to the terminal when it is one.
            ui.print(&if ui.stdout_is_terminal {
                ui::status::render_for_terminal(&dashboard, ui)
            } else {
                ui::status::render_plain(&dashboard, &ui.out)
            });
            if let Some(plan) = &plan {
                ui.print(&format!("\n{}", ui::mergeback::render_plan(plan, &ui.out)));
            }
            leave_to_process_exit(graph, dashboard);
            Ok(exit_codes::OK)
        }
    }
}

/// The one-shot dashboard is done with its graph and dashboard, and the process ends next:
/// they are left to the exit rather than freed string by string (at 20,000 tasks freeing them
/// was 5 % of `status`, BENCHMARKS.md §2c). Nothing in them owns a file or a lock.
fn leave_to_process_exit(graph: StreamGraph, dashboard: Dashboard) {
    std::mem::forget((graph, dashboard));
}

/// Reads everything the dashboard shows.
pub fn load(ctx: &Context, db: &mut TaskDb) -> Result<Dashboard> {
    load_with_graph(ctx, db).map(|(dashboard, _)| dashboard)
}

fn load_with_graph(ctx: &Context, db: &mut TaskDb) -> Result<(Dashboard, StreamGraph)> {
    let (source_warnings, graph) = ctx.load_graph(db)?;
    let facts = facts::gather(&ctx.project, &graph, None)?;
    // Streams waiting over shared files, as the last `start` ran them.
    let graph = if facts.strict_files {
        graph.strict_files()
    } else {
        graph
    };
    let model = facts.derive(&graph);
    let mut warnings: Vec<String> = source_warnings.iter().map(ToString::to_string).collect();
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

/// How often `--watch` tries again to watch a folder that does not exist yet.
const RETRY_WATCH: Duration = Duration::from_secs(1);
/// The shortest time between two reloads: changes within it are read together (a busy
/// database wakes the watch for every write).
const MIN_RELOAD: Duration = Duration::from_millis(100);

/// What wakes `--watch`.
enum Wake {
    /// The task database's files were written (confirmed with its `data_version` probe).
    TaskDb,
    /// The state store's files were written (a worker started or ended, a verdict changed).
    Store,
    /// Ctrl-C or SIGTERM.
    Interrupt,
}

/// Redraws when the task database or the state store changes (the same inotify watch `start`
/// uses), and reloads at least every `interval` (a worker that died without a word), until Ctrl-C.
/// A missing database or an empty one is shown as a message and waited out, not an exit.
fn watch(ctx: &Context, interval: Duration, ui: &Ui) -> Result<i32> {
    let (tx, rx) = mpsc::channel();
    let interrupted = {
        let tx = tx.clone();
        crate::signals::interrupt_wake(move || {
            let _ = tx.send(Wake::Interrupt);
        })
    };
    let mut watches = Watches::new(ctx, tx);
    watches.ensure();
    let mut view = ui::status::LiveView::new(ui);
    let mut db: Option<TaskDb> = None;
    let mut store = StoreProbe::new(ctx.project.state_db());
    // A reload is wanted (something changed); `last_load` spaces reloads and dates the next
    // periodic one.
    let mut wanted = true;
    let mut last_load: Option<Instant> = None;
    while !interrupted.load(Ordering::SeqCst) {
        // A folder that appeared (the first `start` made the state store's): watch it, and
        // look at what is in it now.
        wanted |= watches.ensure();
        if db.is_none() {
            db = ctx.open_db().map_err(|e| view.show_problem(&e)).ok();
            wanted |= db.is_some();
        }
        let since = last_load.map(|t| t.elapsed());
        let due = since.is_none_or(|s| s >= interval);
        if let Some(d) = db.as_mut()
            && (due || (wanted && since.is_none_or(|s| s >= MIN_RELOAD)))
        {
            match load(ctx, d) {
                Ok(dashboard) => view.show(&dashboard),
                Err(e) => view.show_problem(&e),
            }
            // What this load wrote itself (a verdict cleared) is not news.
            store.changed();
            last_load = Some(Instant::now());
            wanted = false;
        }
        let since = last_load.map_or(Duration::ZERO, |t| t.elapsed());
        let mut timeout = interval.saturating_sub(since);
        if wanted {
            timeout = timeout.min(MIN_RELOAD.saturating_sub(since));
        }
        if watches.missing() {
            timeout = timeout.min(RETRY_WATCH);
        }
        let wakes: Vec<Wake> = match rx.recv_timeout(timeout) {
            Ok(first) => std::iter::once(first).chain(rx.try_iter()).collect(),
            Err(_) => Vec::new(),
        };
        // A write to a folder is only a "maybe": confirm with the cheap probes (once for a
        // burst of wake-ups), so that our own reads, which open and close files there, never
        // loop.
        if wakes.iter().any(|w| matches!(w, Wake::TaskDb)) {
            match db.as_mut().map(|d| d.has_changed()) {
                Some(Ok(changed)) => wanted |= changed,
                Some(Err(e)) => {
                    view.show_problem(&e.into());
                    db = None;
                }
                None => {}
            }
        }
        if wakes.iter().any(|w| matches!(w, Wake::Store)) {
            wanted |= store.changed();
        }
    }
    view.finish();
    Ok(exit_codes::OK)
}

/// The inotify watches of `--watch`: the task database's folder and the state store's, each
/// set up again while it could not be (the folder does not exist yet).
struct Watches {
    tx: mpsc::Sender<Wake>,
    /// The files whose folders are not watched yet, with what a change to them means.
    pending: Vec<(PathBuf, fn() -> Wake)>,
}

impl Watches {
    fn new(ctx: &Context, tx: mpsc::Sender<Wake>) -> Self {
        Self {
            tx,
            pending: vec![
                (ctx.db.path.clone(), || Wake::TaskDb),
                (ctx.project.state_db(), || Wake::Store),
            ],
        }
    }

    /// Sets up the watches not set up yet; true if one was.
    fn ensure(&mut self) -> bool {
        let before = self.pending.len();
        let tx = &self.tx;
        self.pending.retain(|(path, wake)| {
            let (tx, wake) = (tx.clone(), *wake);
            !watch::watch_db(path, move || tx.send(wake()).is_ok())
        });
        self.pending.len() < before
    }

    /// Some folder cannot be watched yet (it does not exist).
    fn missing(&self) -> bool {
        !self.pending.is_empty()
    }
}

/// Whether the state store changed: the size and modification time of its files, and one
/// connection held open so that ours closing never checkpoints or deletes its log (a change
/// of our own making that would wake us again).
struct StoreProbe {
    path: PathBuf,
    held: Option<StateStore>,
    seen: Vec<Option<(u64, SystemTime)>>,
}

impl StoreProbe {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            held: None,
            seen: Vec::new(),
        }
    }

    fn changed(&mut self) -> bool {
        if self.held.is_none() && self.path.exists() {
            self.held = StateStore::open_existing(&self.path).ok().flatten();
        }
        let now: Vec<Option<(u64, SystemTime)>> = ["", "-wal"]
            .iter()
            .map(|suffix| {
                let mut name = self.path.clone().into_os_string();
                name.push(suffix);
                std::fs::metadata(name)
                    .ok()
                    .and_then(|m| Some((m.len(), m.modified().ok()?)))
            })
            .collect();
        let changed = now != self.seen;
        self.seen = now;
        changed
    }
}
