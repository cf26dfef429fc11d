//! Gathering what the model needs, for the commands that look at a project once (`status`,
//! `stop`, `clean`, `merge`, `start --dry-run`, the merge-back hints): each stream's durable
//! verdict (re-checked against git, and cleared when its cause is gone), its latest worker
//! (checked against `/proc`), and the display facts beside them (worker details, branches).
//!
//! The dispatcher keeps the same facts in memory during a run and hands them to the same
//! [`model::derive`]; this module and the dispatcher differ only in where the facts come from.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::graph::StreamGraph;
use crate::model::{self, Mode, Model, Observed, Verdict, WorkerFact};
use crate::project::Project;
use crate::state::{StateError, StateStore, WorkerInfo, WorkerRecord, WorktreeRecord};

/// Everything known about a project's streams beyond the task database.
#[derive(Debug, Default)]
pub struct Facts {
    pub observed: HashMap<String, Observed>,
    /// Each stream's latest worker, as `status` shows it.
    pub workers: HashMap<String, WorkerInfo>,
    pub worktrees: Vec<WorktreeRecord>,
    /// How the last `start` placed streams.
    pub mode: Mode,
    /// Where a corrupt state store was moved when it was rebuilt.
    pub recovered: Option<PathBuf>,
    /// Things that went wrong while looking (a verdict that could not be re-checked).
    pub warnings: Vec<String>,
}

impl Facts {
    /// The model of these facts.
    pub fn derive(&self, graph: &StreamGraph) -> Model {
        model::derive(graph, &self.observed, self.mode)
    }
}

/// Reads the state store (if `start` ever ran here) and re-checks verdicts whose cause may be
/// gone. `mode` overrides the recorded mode (`start` knows its own).
pub fn gather(
    project: &Project,
    graph: &StreamGraph,
    mode: Option<Mode>,
) -> Result<Facts, StateError> {
    let Some(store) = StateStore::open_existing(&project.state_db())? else {
        return Ok(Facts {
            mode: mode.unwrap_or_default(),
            ..Facts::default()
        });
    };
    let mut facts = Facts {
        mode: mode.unwrap_or_else(|| Mode {
            worktrees: store.run().ok().flatten().is_some_and(|r| r.worktrees),
        }),
        recovered: store.recovered().map(PathBuf::from),
        worktrees: store.worktrees()?,
        ..Facts::default()
    };
    for rec in store.latest_workers()? {
        facts.observed.entry(rec.stream.clone()).or_default().worker = worker_fact(&rec);
        facts
            .workers
            .insert(rec.stream.clone(), crate::state::worker_info(&rec));
    }
    for (stream, verdict) in store.verdicts()? {
        let Some(s) = graph.get(&stream) else {
            continue;
        };
        match crate::git::recheck::still_holds(project, s, &verdict) {
            Ok(true) => facts.observed.entry(stream).or_default().verdict = Some(verdict),
            Ok(false) => store.clear_verdict(&stream)?,
            Err(e) => {
                facts.warnings.push(format!(
                    "cannot re-check why {stream} is {}: {e}",
                    verdict_word(&verdict)
                ));
                facts.observed.entry(stream).or_default().verdict = Some(verdict);
            }
        }
    }
    Ok(facts)
}

fn verdict_word(v: &Verdict) -> &'static str {
    match v {
        Verdict::Failed { .. } => "failed",
        Verdict::Stopped => "stopped",
        Verdict::Blocked { .. } => "blocked",
        Verdict::Attention { .. } => "held for attention",
    }
}

/// Streams whose worker is live or being launched (the model's `in_use`), with the pid to
/// name: read from the state store alone, for `clean`, which must work without the task
/// database.
pub fn in_use(project: &Project) -> Result<std::collections::BTreeMap<String, i32>, StateError> {
    let Some(store) = StateStore::open_existing(&project.state_db())? else {
        return Ok(Default::default());
    };
    Ok(store
        .latest_workers()?
        .into_iter()
        .filter(|rec| matches!(worker_fact(rec), WorkerFact::Live | WorkerFact::Preparing))
        .map(|rec| {
            let pid = rec
                .identity
                .as_ref()
                .or(rec.claimer.as_ref())
                .map_or(0, |i| i.pid);
            (rec.stream, pid)
        })
        .collect())
}

/// What a stream's latest worker row says, checked against `/proc` now.
pub fn worker_fact(rec: &WorkerRecord) -> WorkerFact {
    if rec.ended_at.is_none() {
        match (&rec.identity, &rec.claimer) {
            (Some(id), _) if id.tree_alive() => WorkerFact::Live,
            (None, Some(claimer)) if claimer.is_alive() => WorkerFact::Preparing,
            // Gone without a record (its supervisor was killed): nothing looked at what it
            // left.
            _ => WorkerFact::ExitUnprocessed,
        }
    } else if rec.finalized_at.is_none() {
        WorkerFact::ExitUnprocessed
    } else {
        WorkerFact::None
    }
}
