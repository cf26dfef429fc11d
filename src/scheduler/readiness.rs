//! Which streams can start now: a pure function of the graph (with current task counts), the
//! live workers and the verdicts of this run. The dispatcher calls it after every wake-up.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::graph::StreamGraph;

/// A verdict this run reached about a stream, beyond what the task database says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Failed(String),
    Stopped,
    /// Needs a person (e.g. its base could not be prepared).
    Blocked(String),
}

/// A stream's class at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    Complete,
    Cancelled,
    Running,
    Ready,
    Waiting(Vec<String>),
    Skipped(String),
    Failed(String),
    Stopped,
    Blocked(String),
    /// Outside `start STREAM…`'s selection.
    NotSelected,
}

/// Why a paused stream does not run (shared with the dashboard).
pub const PAUSED: &str =
    "paused in tc (its `streams.status` is `paused`; set it back to `active` to run it)";

/// What `classify` needs to know besides the graph.
pub struct Inputs<'a> {
    pub running: &'a HashSet<String>,
    pub verdicts: &'a HashMap<String, Verdict>,
    pub selection: Option<&'a BTreeSet<String>>,
    /// Worktree mode: a complete stream counts for its dependents only once its worker exited
    /// and left no uncommitted changes.
    pub worktree_mode: bool,
    /// Streams whose worker (if any) is known to have finished clean (worktree mode).
    pub finished_clean: &'a HashSet<String>,
}

/// Every stream's class, in the graph's (topological) order.
pub fn classify(graph: &StreamGraph, inp: &Inputs<'_>) -> Vec<(String, Class)> {
    let mut classes: HashMap<&str, Class> = HashMap::new();
    let mut out = Vec::new();
    for s in graph.streams() {
        let id = s.id();
        let counts = s.record.counts;
        let class = if counts.is_complete() {
            Class::Complete
        } else if counts.is_cancelled() {
            Class::Cancelled
        } else if inp.selection.is_some_and(|sel| !sel.contains(id)) {
            Class::NotSelected
        } else if inp.running.contains(id) {
            Class::Running
        } else if let Some(v) = inp.verdicts.get(id) {
            match v {
                Verdict::Failed(r) => Class::Failed(r.clone()),
                Verdict::Stopped => Class::Stopped,
                Verdict::Blocked(r) => Class::Blocked(r.clone()),
            }
        } else if s.record.paused {
            // tc's `streams.status = 'paused'`: a person paused it; shown, never launched.
            Class::Blocked(PAUSED.into())
        } else if let Some(reason) = s.dependencies.iter().find_map(|d| {
            let why = match classes.get(d.as_str())? {
                Class::Failed(_) => "failed",
                Class::Cancelled => "was cancelled",
                Class::Skipped(_) => "was skipped",
                _ => return None,
            };
            Some(format!("{d} {why}"))
        }) {
            Class::Skipped(reason)
        } else {
            let waiting: Vec<String> = s
                .dependencies
                .iter()
                .filter(|d| !done_for_dependents(d, &classes, inp))
                .cloned()
                .collect();
            if !waiting.is_empty() {
                Class::Waiting(waiting)
            } else if counts.pending + counts.in_progress == 0 {
                // Every open task is blocked: a person must act first.
                let reasons: Vec<String> = s
                    .record
                    .blocked
                    .iter()
                    .map(|b| {
                        format!(
                            "{} ({}): {}",
                            b.id,
                            b.title,
                            b.reason.as_deref().unwrap_or("no reason given")
                        )
                    })
                    .collect();
                Class::Blocked(format!("blocked task {}", reasons.join("; ")))
            } else {
                Class::Ready
            }
        };
        classes.insert(id, class.clone());
        out.push((id.to_string(), class));
    }
    out
}

fn done_for_dependents(dep: &str, classes: &HashMap<&str, Class>, inp: &Inputs<'_>) -> bool {
    classes.get(dep) == Some(&Class::Complete)
        && (!inp.worktree_mode || (!inp.running.contains(dep) && inp.finished_clean.contains(dep)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taskdb::{Snapshot, StreamRecord, TaskCounts};

    fn rec(id: &str, deps: &[&str], completed: u32, pending: u32, blocked: u32) -> StreamRecord {
        StreamRecord {
            id: id.into(),
            name: id.into(),
            raw_dependencies: deps.iter().map(|d| d.to_string()).collect(),
            counts: TaskCounts {
                total: completed + pending + blocked,
                completed,
                pending,
                blocked,
                ..Default::default()
            },
            blocked: Vec::new(),
            phase: None,
            worktree_path: None,
            branch_name: None,
            paused: false,
        }
    }

    fn diamond(a_done: bool) -> StreamGraph {
        let a = if a_done {
            rec("A", &[], 2, 0, 0)
        } else {
            rec("A", &[], 0, 2, 0)
        };
        StreamGraph::build(&Snapshot {
            streams: vec![
                a,
                rec("B", &["A"], 0, 2, 0),
                rec("C", &["A"], 0, 2, 0),
                rec("Z", &["B", "C"], 0, 2, 0),
            ],
            warnings: vec![],
        })
        .unwrap()
    }

    fn run(
        graph: &StreamGraph,
        running: &[&str],
        verdicts: &[(&str, Verdict)],
        wt: bool,
        clean: &[&str],
    ) -> Vec<(String, Class)> {
        let running: HashSet<String> = running.iter().map(|s| s.to_string()).collect();
        let verdicts: HashMap<String, Verdict> = verdicts
            .iter()
            .map(|(s, v)| (s.to_string(), v.clone()))
            .collect();
        let clean: HashSet<String> = clean.iter().map(|s| s.to_string()).collect();
        classify(
            graph,
            &Inputs {
                running: &running,
                verdicts: &verdicts,
                selection: None,
                worktree_mode: wt,
                finished_clean: &clean,
            },
        )
    }

    #[test]
    fn dependents_become_ready_when_the_dependency_completes() {
        let g = diamond(false);
        let got = run(&g, &[], &[], false, &[]);
        assert_eq!(got[0].1, Class::Ready);
        assert_eq!(got[1].1, Class::Waiting(vec!["A".into()]));
        let g = diamond(true);
        let got = run(&g, &["A"], &[], false, &[]);
        assert_eq!(got[0].1, Class::Complete);
        assert_eq!(got[1].1, Class::Ready);
        assert_eq!(got[3].1, Class::Waiting(vec!["B".into(), "C".into()]));
    }

    #[test]
    fn worktree_mode_waits_for_a_clean_exit() {
        let g = diamond(true);
        assert_eq!(
            run(&g, &["A"], &[], true, &[])[1].1,
            Class::Waiting(vec!["A".into()])
        );
        assert_eq!(
            run(&g, &[], &[], true, &[])[1].1,
            Class::Waiting(vec!["A".into()])
        );
        assert_eq!(run(&g, &[], &[], true, &["A"])[1].1, Class::Ready);
    }

    #[test]
    fn failure_skips_dependents_transitively() {
        let g = diamond(true);
        let got = run(
            &g,
            &[],
            &[("B", Verdict::Failed("exit 1".into()))],
            false,
            &[],
        );
        assert_eq!(got[1].1, Class::Failed("exit 1".into()));
        assert_eq!(got[2].1, Class::Ready);
        assert_eq!(got[3].1, Class::Skipped("B failed".into()));
    }

    #[test]
    fn a_paused_stream_is_never_ready_and_its_dependents_wait() {
        let mut g = diamond(true);
        let mut snapshot = Snapshot::default();
        for s in g.streams() {
            let mut r = s.record.clone();
            r.paused = r.id == "B";
            snapshot.streams.push(r);
        }
        g = StreamGraph::build(&snapshot).unwrap();
        let got = run(&g, &[], &[], false, &[]);
        let class = |id: &str| got.iter().find(|(s, _)| s == id).unwrap().1.clone();
        assert_eq!(class("B"), Class::Blocked(PAUSED.into()));
        assert_eq!(class("C"), Class::Ready);
        assert_eq!(class("Z"), Class::Waiting(vec!["B".into(), "C".into()]));
        // A worker already running (adopted) keeps running.
        let got = run(&g, &["B"], &[], false, &[]);
        assert_eq!(
            got.iter().find(|(s, _)| s == "B").unwrap().1,
            Class::Running
        );
    }

    #[test]
    fn only_blocked_tasks_left_means_blocked() {
        let g = StreamGraph::build(&Snapshot {
            streams: vec![rec("A", &[], 1, 0, 1)],
            warnings: vec![],
        })
        .unwrap();
        assert!(matches!(
            run(&g, &[], &[], false, &[])[0].1,
            Class::Blocked(_)
        ));
    }
}
