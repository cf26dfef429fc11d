//! The dashboard's model: every stream's state, counts, worker and what it waits for, derived
//! from the task graph and the state store. `ui::status` renders it; nothing here prints.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::graph::StreamGraph;
use crate::state::{self, StreamOutcome, WorkerInfo, WorkerState};
use crate::taskdb::{BlockedTask, Progress, TaskCounts};

/// A stream's state as the user sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamState {
    /// All tasks completed or cancelled, at least one completed.
    Complete,
    /// Every task cancelled.
    Cancelled,
    /// A live worker is on it.
    Running,
    /// Tasks are in progress but no live worker is recorded (an agent outside `orchestrate`).
    InProgress,
    /// Dependencies complete, nothing in progress, a task blocked: waits for a person.
    Blocked,
    /// Dependencies complete; can start now.
    Ready,
    /// Waits for dependencies.
    Waiting,
    /// Its worker failed after all retries.
    Failed,
    /// Stopped by the user.
    Stopped,
    /// A dependency failed or was cancelled, so it cannot run.
    Skipped,
    /// Paused in tc (`streams.status`): shown, never launched.
    Paused,
}

impl StreamState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Cancelled => "cancelled",
            Self::Running => "running",
            Self::InProgress => "in progress",
            Self::Blocked => "blocked",
            Self::Ready => "ready",
            Self::Waiting => "waiting",
            Self::Failed => "failed",
            Self::Stopped => "stopped",
            Self::Skipped => "skipped",
            Self::Paused => "paused",
        }
    }
}

/// One stream's line on the dashboard.
#[derive(Debug, Clone, Serialize)]
pub struct StreamStatus {
    pub id: String,
    pub name: String,
    pub depth: usize,
    pub state: StreamState,
    /// Why the stream is in this state, when that is not obvious (failure reason, skipped cause).
    pub reason: Option<String>,
    pub dependencies: Vec<String>,
    pub waiting_for: Vec<String>,
    pub tasks: TaskCounts,
    pub blocked_tasks: Vec<BlockedTask>,
    pub worker: Option<WorkerInfo>,
    pub branch: Option<String>,
    /// The commit the stream's branch was based on (worktree mode).
    pub base: Option<String>,
    /// Commits on the branch since its base (worktree mode).
    pub commits_ahead: Option<usize>,
}

/// Totals over every stream.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overall {
    pub streams: usize,
    pub complete: usize,
    pub running: usize,
    pub failed: usize,
    pub tasks: TaskCounts,
    /// Completed or cancelled tasks over all tasks, 0–100.
    pub percent: u32,
}

/// Everything `status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    pub workspace: Option<String>,
    pub db: PathBuf,
    /// Which store was read and how it was found (set by the caller that opened it).
    pub source: Option<crate::project::StoreSource>,
    pub overall: Overall,
    pub streams: Vec<StreamStatus>,
    pub warnings: Vec<String>,
}

impl Dashboard {
    /// Derives every stream's state. `recorded` is the state store's view by stream id.
    pub fn build(
        graph: &StreamGraph,
        recorded: &HashMap<String, state::StreamState>,
        workspace: Option<String>,
        db: PathBuf,
        warnings: Vec<String>,
    ) -> Self {
        let mut states: HashMap<&str, (StreamState, Option<String>)> = HashMap::new();
        // `streams()` is in topological order, so dependencies are decided first.
        for stream in graph.streams() {
            let rec = recorded.get(stream.id());
            let decided = derive_state(
                stream.record.counts.progress(),
                stream.record.paused,
                rec,
                |dep| {
                    states
                        .get(dep)
                        .map(|(s, _)| *s)
                        .unwrap_or(StreamState::Waiting)
                },
                &stream.dependencies,
            );
            states.insert(stream.id(), decided);
        }
        let streams: Vec<StreamStatus> = graph
            .streams()
            .iter()
            .map(|s| {
                let (state, reason) = states[s.id()].clone();
                let rec = recorded.get(s.id());
                StreamStatus {
                    id: s.id().to_string(),
                    name: s.record.name.clone(),
                    depth: s.depth,
                    state,
                    reason,
                    dependencies: s.dependencies.clone(),
                    waiting_for: graph
                        .waiting_for(s.id(), |d| states[d].0 == StreamState::Complete),
                    tasks: s.record.counts,
                    blocked_tasks: s.record.blocked.clone(),
                    worker: rec.and_then(|r| r.worker.clone()),
                    branch: rec
                        .and_then(|r| r.branch.clone())
                        .or_else(|| s.record.branch_name.clone()),
                    base: None,
                    commits_ahead: None,
                }
            })
            .collect();
        let overall = overall(&streams);
        Self {
            workspace,
            db,
            source: None,
            overall,
            streams,
            warnings,
        }
    }
}

impl Dashboard {
    /// Adds each stream's branch, base and commits ahead (worktree mode), as `git` reports them.
    pub fn attach_branches(&mut self, branches: &HashMap<String, crate::git::BranchStatus>) {
        for s in &mut self.streams {
            if let Some(b) = branches.get(&s.id) {
                s.branch = Some(b.branch.clone());
                s.base = b.base.clone();
                s.commits_ahead = b.commits_ahead_of_base;
            }
        }
    }
}

/// The rules of `PRODUCT.md`, in order of precedence.
fn derive_state(
    progress: Progress,
    paused: bool,
    recorded: Option<&state::StreamState>,
    state_of: impl Fn(&str) -> StreamState,
    dependencies: &[String],
) -> (StreamState, Option<String>) {
    match progress {
        Progress::Complete => return (StreamState::Complete, None),
        Progress::Cancelled => return (StreamState::Cancelled, None),
        _ => {}
    }
    if let Some(rec) = recorded {
        if rec
            .worker
            .as_ref()
            .is_some_and(|w| w.state == WorkerState::Running)
        {
            return (StreamState::Running, None);
        }
        match &rec.outcome {
            Some(StreamOutcome::Failed { reason }) => {
                return (StreamState::Failed, Some(reason.clone()));
            }
            Some(StreamOutcome::Stopped) => {
                return (StreamState::Stopped, Some("stopped by the user".into()));
            }
            None => {}
        }
    }
    if paused {
        return (
            StreamState::Paused,
            Some(crate::scheduler::readiness::PAUSED.into()),
        );
    }
    for dep in dependencies {
        let why = match state_of(dep) {
            StreamState::Failed => "failed",
            StreamState::Cancelled => "was cancelled",
            StreamState::Skipped => "was skipped",
            _ => continue,
        };
        return (StreamState::Skipped, Some(format!("{dep} {why}")));
    }
    if dependencies
        .iter()
        .any(|d| state_of(d) != StreamState::Complete)
    {
        return (StreamState::Waiting, None);
    }
    match progress {
        Progress::Blocked => (StreamState::Blocked, None),
        Progress::InProgress => (StreamState::InProgress, None),
        _ => (StreamState::Ready, None),
    }
}

fn overall(streams: &[StreamStatus]) -> Overall {
    let mut o = Overall {
        streams: streams.len(),
        ..Overall::default()
    };
    for s in streams {
        let t = &mut o.tasks;
        t.total += s.tasks.total;
        t.completed += s.tasks.completed;
        t.in_progress += s.tasks.in_progress;
        t.pending += s.tasks.pending;
        t.blocked += s.tasks.blocked;
        t.cancelled += s.tasks.cancelled;
        match s.state {
            StreamState::Complete => o.complete += 1,
            StreamState::Running => o.running += 1,
            StreamState::Failed => o.failed += 1,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taskdb::{Snapshot, StreamRecord};

    fn rec(id: &str, deps: &[&str], counts: TaskCounts) -> StreamRecord {
        StreamRecord {
            id: id.into(),
            name: id.into(),
            raw_dependencies: deps.iter().map(|s| s.to_string()).collect(),
            counts,
            blocked: vec![],
            phase: None,
            worktree_path: None,
            branch_name: None,
            paused: false,
        }
    }

    fn c(completed: u32, pending: u32, cancelled: u32) -> TaskCounts {
        TaskCounts {
            total: completed + pending + cancelled,
            completed,
            pending,
            cancelled,
            ..Default::default()
        }
    }

    fn states(
        snapshot: Snapshot,
        recorded: HashMap<String, state::StreamState>,
    ) -> Vec<(String, StreamState)> {
        let g = StreamGraph::build(&snapshot).unwrap();
        Dashboard::build(&g, &recorded, None, PathBuf::new(), vec![])
            .streams
            .into_iter()
            .map(|s| (s.id, s.state))
            .collect()
    }

    #[test]
    fn diamond_with_a_complete_root() {
        let snap = Snapshot {
            streams: vec![
                rec("A", &[], c(2, 0, 1)),
                rec("B", &["A"], c(1, 1, 0)),
                rec("C", &["A"], c(0, 2, 0)),
                rec("Z", &["B", "C"], c(0, 1, 0)),
            ],
            warnings: vec![],
        };
        let got = states(snap, HashMap::new());
        use StreamState::*;
        assert_eq!(
            got,
            vec![
                ("A".into(), Complete),
                ("B".into(), InProgress),
                ("C".into(), Ready),
                ("Z".into(), Waiting)
            ]
        );
    }

    #[test]
    fn a_paused_stream_shows_as_paused_and_its_dependents_wait() {
        let mut paused = rec("A", &[], c(0, 2, 0));
        paused.paused = true;
        let mut done = rec("D", &[], c(1, 0, 0));
        done.paused = true;
        let snap = Snapshot {
            streams: vec![paused, rec("B", &["A"], c(0, 1, 0)), done],
            warnings: vec![],
        };
        let got = states(snap, HashMap::new());
        use StreamState::*;
        assert_eq!(
            got,
            vec![
                ("A".into(), Paused),
                ("D".into(), Complete),
                ("B".into(), Waiting)
            ]
        );
    }

    #[test]
    fn dependents_of_cancelled_and_failed_streams_are_skipped_transitively() {
        let snap = Snapshot {
            streams: vec![
                rec("A", &[], c(0, 0, 2)),
                rec("B", &["A"], c(0, 1, 0)),
                rec("C", &["B"], c(0, 1, 0)),
                rec("D", &[], c(0, 1, 0)),
                rec("E", &["D"], c(0, 1, 0)),
            ],
            warnings: vec![],
        };
        let failed = state::StreamState {
            outcome: Some(StreamOutcome::Failed {
                reason: "exit 1".into(),
            }),
            ..Default::default()
        };
        let got = states(snap, HashMap::from([("D".to_string(), failed)]));
        use StreamState::*;
        assert_eq!(
            got,
            vec![
                ("A".into(), Cancelled),
                ("D".into(), Failed),
                ("B".into(), Skipped),
                ("E".into(), Skipped),
                ("C".into(), Skipped),
            ]
        );
    }
}
