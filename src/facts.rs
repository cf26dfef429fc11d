//! Gathering what the model needs, for the commands that look at a project once (`status`,
//! `stop`, `clean`, `merge`, `start --dry-run`, the merge-back hints): each stream's durable
//! verdict (re-checked against git, and cleared when its cause is gone), its latest worker
//! (checked against `/proc`), and the display facts beside them (worker details, branches).
//!
//! The dispatcher keeps the same facts in memory during a run and hands them to the same
//! [`model::derive`]; this module and the dispatcher differ only in where the facts come from.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use crate::git::radar::{Other, Predicted, Radar};
use crate::graph::StreamGraph;
use crate::model::{self, ConflictWith, Mode, Model, Observed, Verdict, VerifyFact, WorkerFact};
use crate::names::StreamNames;
use crate::project::Project;
use crate::state::time::now_unix;
use crate::state::{RunRecord, StateError, StateStore, WorkerInfo, WorkerRecord, WorktreeRecord};
use crate::worker::agent::{AttemptCost, CostBasis, total_cost};

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
    /// What each stream's workers spent, over all their attempts.
    pub spending: HashMap<String, Spending>,
    /// What the run spent against its budget, and the budget.
    pub budget: Option<(f64, f64)>,
    /// The last `start` ran with `--strict-files` (`StreamGraph::strict_files`).
    pub strict_files: bool,
}

/// What a stream's (or a run's) agents reported spending.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Spending {
    pub attempts: u32,
    pub cost_usd: f64,
    pub turns: u32,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Spending {
    /// Adds up attempts (oldest first). Costs follow the agent's basis: a session's last
    /// figure when its version reports cumulatively, else the sum (`worker::agent`).
    pub fn of(attempts: &[WorkerRecord]) -> Self {
        let costs: Vec<AttemptCost> = attempts
            .iter()
            .filter_map(|a| {
                Some(AttemptCost {
                    session_id: a.session_id.clone(),
                    cost_usd: a.cost_usd?,
                    basis: CostBasis::of_version(a.agent_version.as_deref()),
                })
            })
            .collect();
        Self {
            attempts: attempts.len() as u32,
            cost_usd: total_cost(&costs),
            turns: attempts.iter().filter_map(|a| a.turns).sum(),
            input_tokens: attempts.iter().filter_map(|a| a.input_tokens).sum(),
            output_tokens: attempts.iter().filter_map(|a| a.output_tokens).sum(),
        }
    }
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
    let now = now_unix();
    let Some(store) = StateStore::open_existing(&project.state_db())? else {
        return Ok(Facts {
            mode: mode.unwrap_or(Mode {
                now,
                ..Mode::default()
            }),
            ..Facts::default()
        });
    };
    let run = store.run().ok().flatten();
    let budget = match &run {
        Some(RunRecord {
            budget_usd: Some(limit),
            budget_since: Some(since),
            ..
        }) => Some((Spending::of(&store.workers_since(since)?).cost_usd, *limit)),
        _ => None,
    };
    let mut facts = Facts {
        mode: mode.unwrap_or(Mode {
            worktrees: run.as_ref().is_some_and(|r| r.worktrees),
            now,
            budget_reached: budget.is_some_and(|(spent, limit)| spent >= limit),
        }),
        recovered: store.recovered().map(PathBuf::from),
        worktrees: store.worktrees()?,
        budget,
        strict_files: run.as_ref().is_some_and(|r| r.strict_files),
        ..Facts::default()
    };
    let latest = store.latest_workers()?;
    for rec in &latest {
        facts.observed.entry(rec.stream.clone()).or_default().worker = worker_fact(rec);
        facts
            .workers
            .insert(rec.stream.clone(), crate::state::worker_info(rec));
        facts.spending.insert(
            rec.stream.clone(),
            Spending::of(&store.attempts_of(&rec.stream)?),
        );
    }
    let run_verify = run.as_ref().and_then(|r| r.verify.clone());
    let verifications = store.latest_verifications()?;
    for s in graph.streams() {
        let worker = latest.iter().find(|w| w.stream == s.id());
        let check = verifications.iter().find(|v| v.stream == s.id());
        let observed = facts.observed.entry(s.id().to_string()).or_default();
        if check.is_some_and(|v| v.ended_at.is_none() && v.is_live()) {
            observed.worker = WorkerFact::Verifying;
        }
        let required = s
            .record
            .verify
            .as_deref()
            .or(run_verify.as_deref())
            .is_some_and(|v| !v.trim().is_empty());
        observed.verify = verify_fact(required, worker, check);
    }
    // Predicted conflicts, from the branches' tips now: any shell sees what `start` sees,
    // and a conflict resolved by hand disappears without a `start` to notice it.
    if facts.mode.worktrees {
        match predict(project, graph) {
            Ok(found) => {
                for (stream, conflicts) in found {
                    facts.observed.entry(stream).or_default().conflicts = conflicts;
                }
            }
            Err(e) => facts.warnings.push(format!(
                "cannot preview the merges between stream branches: {e}"
            )),
        }
    }
    // Worktrees whose git record was deleted behind our back: nothing recorded them yet.
    let known = store.verdicts()?;
    for (stream, verdict) in crate::git::recheck::discover(project, graph) {
        if known.get(&stream) != Some(&verdict) {
            store.set_verdict(&stream, &verdict)?;
        }
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

/// The conflict radar once, from the current tips (`git::radar`): for one-shot commands.
fn predict(
    project: &Project,
    graph: &StreamGraph,
) -> Result<BTreeMap<String, Vec<ConflictWith>>, crate::git::GitError> {
    let repo = crate::git::repo::Repo::open(&project.root)?;
    let target = crate::git::preview::target_branch(project, &repo, None)?;
    let mut radar = Radar::open(&project.root, &target)?;
    let tips = radar.tips(radar_streams(graph))?;
    Ok(conflicts_by_stream(&radar.scan(graph, &tips)?))
}

/// The streams whose branches the radar compares: all but cancelled ones (never merged).
pub fn radar_streams(graph: &StreamGraph) -> impl Iterator<Item = &str> {
    graph
        .streams()
        .iter()
        .filter(|s| !s.record.counts.is_cancelled())
        .map(|s| s.id())
}

/// The radar's predictions as each stream's `conflicts`: a pair between two streams is listed
/// under both.
pub fn conflicts_by_stream(predicted: &[Predicted]) -> BTreeMap<String, Vec<ConflictWith>> {
    let mut out: BTreeMap<String, Vec<ConflictWith>> = BTreeMap::new();
    for p in predicted {
        out.entry(p.stream.clone())
            .or_default()
            .push(conflict_with(p));
        if let Other::Stream(b) = &p.other {
            out.entry(b.clone()).or_default().push(ConflictWith {
                stream: Some(p.stream.clone()),
                branch: StreamNames::new(&p.stream).branch(),
                paths: p.paths.clone(),
            });
        }
    }
    out
}

/// A prediction as its (earlier) stream sees it.
pub fn conflict_with(p: &Predicted) -> ConflictWith {
    let (stream, branch) = match &p.other {
        Other::Stream(b) => (Some(b.clone()), StreamNames::new(b).branch()),
        Other::Target(target) => (None, target.clone()),
    };
    ConflictWith {
        stream,
        branch,
        paths: p.paths.clone(),
    }
}

fn verdict_word(v: &Verdict) -> &'static str {
    match v {
        Verdict::Failed { .. } => "failed",
        Verdict::Stopped => "stopped",
        Verdict::Blocked { .. } => "blocked",
        Verdict::Attention { .. } => "held for attention",
        Verdict::Parked { .. } => "parked",
        Verdict::VerifyFailed { .. } => "back with its worker",
    }
}

/// Whether the stream's work passed its verify command since its worker last ended: only a
/// verification recorded after the latest worker row, that exited 0, counts. A stream no
/// worker of ours worked on is not verified.
pub fn verify_fact(
    required: bool,
    worker: Option<&WorkerRecord>,
    check: Option<&WorkerRecord>,
) -> VerifyFact {
    // Verification applies to the work of a worker of ours that finished its tasks.
    if !required || worker.is_none() {
        return VerifyFact::NotRequired;
    }
    let passed =
        check.is_some_and(|v| v.exit_code == Some(0) && worker.is_none_or(|w| v.id > w.id));
    if passed {
        VerifyFact::Passed
    } else {
        VerifyFact::Pending
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
        .chain(store.latest_verifications()?)
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
