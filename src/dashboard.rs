//! What `status` shows: each stream's model view (state, typed reason, actions) beside its
//! task counts, latest worker and branch, and the totals. Assembled from the model and the
//! facts; nothing here decides a state, and nothing here prints (`ui::status` renders it).

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::facts::Facts;
use crate::git::BranchFacts;
use crate::graph::StreamGraph;
use crate::model::{Actions, Model, Reason, State};
use crate::state::WorkerInfo;
use crate::taskdb::{BlockedTask, TaskCounts};

/// One stream's line on the dashboard.
#[derive(Debug, Clone, Serialize)]
pub struct StreamStatus {
    pub id: String,
    pub name: String,
    pub depth: usize,
    pub state: State,
    /// Why the stream is in this state, as data (`ui` words it).
    pub reason: Option<Reason>,
    pub actions: Actions,
    pub dependencies: Vec<String>,
    pub tasks: TaskCounts,
    pub blocked_tasks: Vec<BlockedTask>,
    pub worker: Option<WorkerInfo>,
    pub branch: Option<String>,
    /// The commit the stream's branch was based on (worktree mode).
    pub base: Option<String>,
    /// Commits on the branch since its base (worktree mode).
    pub commits_since_base: Option<usize>,
    /// What its workers reported spending over all their attempts.
    pub spending: Option<crate::facts::Spending>,
    /// Merges of its branch the conflict radar predicts will conflict (worktree runs).
    pub conflicts_with: Vec<crate::model::ConflictWith>,
}

/// Totals over every stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Overall {
    pub streams: usize,
    pub complete: usize,
    pub running: usize,
    pub failed: usize,
    /// Streams that need a person: blocked, or needing attention.
    pub need_a_person: usize,
    pub tasks: TaskCounts,
    /// Completed or cancelled tasks over all tasks, 0–100.
    pub percent: u32,
    /// What every stream's workers reported spending.
    pub cost_usd: f64,
    /// The run's spending since its `start` against `--run-budget-usd`, when one is set.
    pub budget: Option<Budget>,
}

/// The run's spending against its budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Budget {
    pub spent_usd: f64,
    pub limit_usd: f64,
}

/// Everything `status` shows, from one snapshot: the overall line and the rows always agree.
#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    pub workspace: Option<String>,
    pub db: PathBuf,
    /// Which store was read and how it was found (set by the caller that opened it).
    pub source: Option<crate::project::StoreSource>,
    pub overall: Overall,
    pub streams: Vec<StreamStatus>,
    pub warnings: Vec<String>,
    /// Streams that may run at the same time and claim the same files (neither complete
    /// or cancelled).
    pub file_claims: Vec<crate::claims::Overlap>,
}

impl Dashboard {
    /// Puts the model's views beside the display facts.
    pub fn build(
        graph: &StreamGraph,
        model: &Model,
        facts: &Facts,
        branches: &HashMap<String, BranchFacts>,
        workspace: Option<String>,
        db: PathBuf,
        warnings: Vec<String>,
    ) -> Self {
        let streams: Vec<StreamStatus> = graph
            .streams()
            .iter()
            .zip(model.views())
            .map(|(s, view)| {
                debug_assert_eq!(s.id(), view.id, "model views follow the graph's order");
                let branch = branches.get(s.id());
                StreamStatus {
                    id: s.id().to_string(),
                    name: s.record.name.clone(),
                    depth: s.depth,
                    state: view.state,
                    reason: view.reason.clone(),
                    actions: view.actions,
                    dependencies: s.dependencies.clone(),
                    tasks: s.record.counts,
                    blocked_tasks: s.record.blocked.clone(),
                    worker: facts.workers.get(s.id()).cloned(),
                    branch: branch
                        .map(|b| b.branch.clone())
                        .or_else(|| s.record.branch_name.clone()),
                    base: branch.and_then(|b| b.base.clone()),
                    commits_since_base: branch.and_then(|b| b.commits_since_base),
                    spending: facts.spending.get(s.id()).copied(),
                    conflicts_with: view.conflicts_with.clone(),
                }
            })
            .collect();
        let mut overall = Overall::tally(streams.iter().map(|s| (s.state, &s.tasks)));
        overall.cost_usd = streams
            .iter()
            .filter_map(|s| s.spending.map(|sp| sp.cost_usd))
            .sum();
        overall.budget = facts.budget.map(|(spent_usd, limit_usd)| Budget {
            spent_usd,
            limit_usd,
        });
        let file_claims: Vec<crate::claims::Overlap> =
            crate::claims::open(graph, model).cloned().collect();
        let mut warnings = warnings;
        warnings.extend(file_claims.iter().map(ToString::to_string));
        Self {
            workspace,
            db,
            source: None,
            overall,
            streams,
            warnings,
            file_claims,
        }
    }
}

impl Overall {
    /// The totals over streams given as (state, task counts): one function for `status` and
    /// `start`'s live view, so an overall line always agrees with the rows it sits above.
    pub fn tally<'a>(streams: impl IntoIterator<Item = (State, &'a TaskCounts)>) -> Self {
        let mut o = Overall::default();
        for (state, counts) in streams {
            o.streams += 1;
            o.tasks += *counts;
            match state {
                State::Complete => o.complete += 1,
                State::Running | State::Preparing => o.running += 1,
                State::Failed => o.failed += 1,
                State::Blocked | State::NeedsAttention => o.need_a_person += 1,
                _ => {}
            }
        }
        let done = u64::from(o.tasks.completed + o.tasks.cancelled);
        o.percent = if o.tasks.total == 0 {
            0
        } else {
            (done * 100 / u64::from(o.tasks.total)) as u32
        };
        o
    }
}
