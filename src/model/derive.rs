//! The one function that decides a stream's state. Streams are judged in topological order,
//! so each sees its dependencies' final views.

use std::collections::HashMap;

use super::{
    Actions, Failure, Mode, Model, Observed, Park, Reason, State, StreamView, Verdict, VerifyFact,
    Wait, WorkerFact,
};
use crate::graph::{Stream, StreamGraph};

/// Derives every stream's view from the graph (task counts inside), what is observed of each
/// stream (missing: nothing observed), and the run's facts.
pub fn derive(graph: &StreamGraph, observed: &HashMap<String, Observed>, mode: Mode) -> Model {
    let nothing = Observed::default();
    let hold = run_hold(graph, observed, mode);
    let mut views: Vec<StreamView> = Vec::with_capacity(graph.len());
    // Views are made in the graph's order, so a stream's position in the graph is its view's
    // (a dependency, or an earlier stream claiming the same files, is always judged already).
    let view_of = |views: &[StreamView], id: &str| graph.position(id).filter(|&i| i < views.len());
    for stream in graph.streams() {
        let obs = observed.get(stream.id()).unwrap_or(&nothing);
        let deps: Vec<&StreamView> = stream
            .dependencies
            .iter()
            .filter_map(|d| view_of(&views, d).map(|i| &views[i]))
            .collect();
        // `strict_files`: earlier streams claiming the same files (always judged already:
        // they come before it in the display order).
        let claims: Vec<(&StreamView, &[String])> = stream
            .claim_waits
            .iter()
            .filter_map(|c| view_of(&views, &c.stream).map(|i| (&views[i], c.paths.as_slice())))
            .collect();
        let before = Before {
            deps: &deps,
            claims: &claims,
        };
        let view = judge(stream, obs, &before, mode, hold.as_ref());
        views.push(view);
    }
    Model::from_views(views)
}

/// A usage limit that holds every launch of the run: the latest one still in force, and the
/// stream that hit it.
fn run_hold<'a>(
    graph: &'a StreamGraph,
    observed: &'a HashMap<String, Observed>,
    mode: Mode,
) -> Option<(&'a Park, &'a str)> {
    graph
        .streams()
        .iter()
        .filter_map(|s| match &observed.get(s.id())?.verdict {
            Some(Verdict::Parked { park })
                if park.cause.holds_the_run() && park.until > mode.now =>
            {
                Some((park, s.id()))
            }
            _ => None,
        })
        .max_by_key(|(park, _)| park.until)
}

/// A parked verdict whose time has not come yet.
fn parked(verdict: Option<&Verdict>, now: i64) -> Option<&Park> {
    match verdict {
        Some(Verdict::Parked { park }) if park.until > now => Some(park),
        _ => None,
    }
}

/// What a stream waits for, already judged: its dependencies, and (`strict_files`) the
/// streams before it that claim the same files.
struct Before<'v, 'p> {
    deps: &'v [&'v StreamView],
    claims: &'v [(&'v StreamView, &'p [String])],
}

/// One stream, given its dependencies' views. The order of the branches IS the precedence.
fn judge(
    stream: &Stream,
    obs: &Observed,
    deps: &Before<'_, '_>,
    mode: Mode,
    hold: Option<&(&Park, &str)>,
) -> StreamView {
    let counts = stream.record.counts;
    let verdict = obs.verdict.as_ref();
    let (state, reason) = if obs.worker == WorkerFact::Live {
        (State::Running, None)
    } else if obs.worker == WorkerFact::Verifying {
        (State::Verifying, None)
    } else if obs.worker == WorkerFact::Preparing {
        (State::Preparing, None)
    } else if counts.is_cancelled() {
        (State::Cancelled, None)
    } else if let Some(Verdict::Attention { attention }) = verdict {
        (
            State::NeedsAttention,
            Some(Reason::NeedsAttention(attention.clone())),
        )
    } else if let Some(Verdict::VerifyFailed { verify }) = verdict {
        // Back to its worker — once its dependencies are done again, like any launch.
        match waits(deps) {
            Some(wait) => wait,
            None => held(mode, hold, Some(Reason::VerifyFailed(verify.clone()))),
        }
    } else if let Some(Verdict::Failed {
        failure: failure @ Failure::VerifyFailed { .. },
    }) = verdict
    {
        // Its tasks are complete, but its work never passed: failed, whatever the tasks say.
        (State::Failed, Some(Reason::Failed(failure.clone())))
    } else if counts.is_complete() {
        (State::Complete, None)
    } else if let Some(Verdict::Failed { failure }) = verdict {
        (State::Failed, Some(Reason::Failed(failure.clone())))
    } else if let Some(Verdict::Stopped) = verdict {
        (State::Stopped, Some(Reason::Stopped))
    } else if stream.record.paused {
        (State::Paused, Some(Reason::Paused))
    } else if let Some(park) = parked(verdict, mode.now) {
        (
            State::Parked,
            Some(Reason::Parked {
                park: park.clone(),
                hit_by: None,
            }),
        )
    } else if let Some(wait) = waits(deps) {
        wait
    } else if let Some(Verdict::Blocked { block }) = verdict {
        (State::Blocked, Some(Reason::Blocked(block.clone())))
    } else if counts.pending + counts.in_progress == 0 {
        (
            State::Blocked,
            Some(Reason::BlockedTasks {
                tasks: stream.record.blocked.clone(),
            }),
        )
    } else {
        held(mode, hold, None)
    };
    let verify_pending = counts.is_complete() && obs.verify == VerifyFact::Pending;
    let done = counts.is_complete()
        && !matches!(
            verdict,
            Some(
                Verdict::Attention { .. }
                    | Verdict::VerifyFailed { .. }
                    | Verdict::Failed {
                        failure: Failure::VerifyFailed { .. }
                    }
            )
        )
        && !verify_pending
        && obs.worker != WorkerFact::Verifying
        && !(mode.worktrees && obs.worker != WorkerFact::None);
    StreamView {
        id: stream.id().to_string(),
        state,
        reason,
        done,
        verify_pending,
        actions: actions(state, done, verdict),
        // An annotation: copied, never weighed. Nothing the radar sees holds a stream.
        conflicts_with: obs.conflicts.clone(),
    }
}

/// Skipped when a dependency ended without completing, waiting when one is not done yet (or,
/// with `strict_files`, a stream claiming the same files may still run); `None` otherwise.
fn waits(before: &Before<'_, '_>) -> Option<(State, Option<Reason>)> {
    let deps = before.deps;
    if let Some(dep) = deps.iter().find(|d| ends_dependents(d.state)) {
        return Some((
            State::Skipped,
            Some(Reason::Skipped {
                dependency: dep.id.clone(),
                dependency_state: dep.state,
            }),
        ));
    }
    let wait = |d: &StreamView, claims: &[String]| Wait {
        stream: d.id.clone(),
        state: d.state,
        exit_unprocessed: d.state == State::Complete && !d.verify_pending,
        verify_pending: d.state == State::Complete && d.verify_pending,
        claims: claims.to_vec(),
    };
    // A claim wait ends when the other stream is done, or can no longer run in this run
    // (unlike a dependency's, its failure skips nothing: this stream's work never needed it).
    let on: Vec<Wait> = deps
        .iter()
        .filter(|d| !d.done)
        .map(|d| wait(d, &[]))
        .chain(
            before
                .claims
                .iter()
                .filter(|(d, _)| !d.done && !ends_dependents(d.state) && d.state != State::Stopped)
                .map(|(d, paths)| wait(d, paths)),
        )
        .collect();
    (!on.is_empty()).then_some((State::Waiting, Some(Reason::Waiting { on })))
}

/// A stream that could start now: held by a run-wide usage limit or a spent budget, else
/// ready (with `why`, when it goes back to its worker after a failed verification).
fn held(mode: Mode, hold: Option<&(&Park, &str)>, why: Option<Reason>) -> (State, Option<Reason>) {
    if let Some((park, by)) = hold {
        return (
            State::Parked,
            Some(Reason::Parked {
                park: (*park).clone(),
                hit_by: Some(by.to_string()),
            }),
        );
    }
    if mode.budget_reached {
        return (State::BudgetReached, Some(Reason::BudgetReached));
    }
    (State::Ready, why)
}

/// A dependency in this state will never complete in this run: its dependents are skipped.
fn ends_dependents(state: State) -> bool {
    matches!(state, State::Failed | State::Cancelled | State::Skipped)
}

fn actions(state: State, done: bool, verdict: Option<&Verdict>) -> Actions {
    Actions {
        launch: state == State::Ready,
        retry: state == State::Failed,
        restart: matches!(state, State::Failed | State::Stopped)
            || (matches!(state, State::Blocked | State::Parked)
                && matches!(
                    verdict,
                    Some(Verdict::Blocked { .. } | Verdict::Parked { .. })
                )),
        in_use: matches!(state, State::Running | State::Verifying | State::Preparing),
        merge: state == State::Complete && done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Attention, Block, ExitStatus, Failure, ParkCause, VerifyRun};
    use crate::taskdb::{BlockedTask, Snapshot, StreamRecord, TaskCounts};

    fn counts(c: u32, i: u32, p: u32, b: u32, x: u32) -> TaskCounts {
        TaskCounts::of(c, i, p, b, x)
    }

    fn rec(id: &str, deps: &[&str], counts: TaskCounts) -> StreamRecord {
        StreamRecord {
            id: id.into(),
            name: id.into(),
            raw_dependencies: deps.iter().map(|d| d.to_string()).collect(),
            counts,
            blocked: (0..counts.blocked)
                .map(|i| BlockedTask {
                    id: format!("{id}-{i}"),
                    title: "stuck".into(),
                    reason: Some("needs a key".into()),
                })
                .collect(),
            ..StreamRecord::default()
        }
    }

    fn graph(streams: Vec<StreamRecord>) -> StreamGraph {
        StreamGraph::build(&Snapshot {
            streams,
            warnings: vec![],
        })
        .unwrap()
    }

    fn failed() -> Verdict {
        Verdict::Failed {
            failure: Failure::Exited {
                attempts: 2,
                exit: ExitStatus::Code { code: 1 },
                agent_error: None,
                log_lines: vec!["boom".into()],
            },
        }
    }

    fn dirty() -> Verdict {
        Verdict::Attention {
            attention: Attention::DirtyFinish {
                dir: "/w".into(),
                files: vec!["a.txt".into()],
            },
        }
    }

    /// The model's clock in these tests.
    const NOW: i64 = 1_000_000;

    fn mode(worktrees: bool) -> Mode {
        Mode {
            worktrees,
            now: NOW,
            budget_reached: false,
        }
    }

    fn obs(verdict: Option<Verdict>, worker: WorkerFact) -> Observed {
        Observed {
            verdict,
            worker,
            verify: VerifyFact::NotRequired,
            conflicts: vec![],
        }
    }

    fn parked(until: i64, holds_the_run: bool) -> Verdict {
        let cause = if holds_the_run {
            ParkCause::UsageLimit {
                limit_type: Some("five_hour".into()),
                reset_known: true,
                message: "limit".into(),
            }
        } else {
            ParkCause::Overloaded {
                status: 529,
                tries: 1,
                message: "overloaded".into(),
            }
        };
        Verdict::Parked {
            park: Park {
                until,
                since: NOW - 10,
                cause,
                session_id: Some("s".into()),
            },
        }
    }

    fn verify_failed() -> Verdict {
        Verdict::VerifyFailed {
            verify: VerifyRun {
                command: "cargo test".into(),
                exit: Some(ExitStatus::Code { code: 101 }),
                output_lines: vec!["test x ... FAILED".into()],
                attempts: 1,
            },
        }
    }

    fn verify_gave_up() -> Verdict {
        let Verdict::VerifyFailed { verify } = verify_failed() else {
            unreachable!()
        };
        Verdict::Failed {
            failure: Failure::VerifyFailed { verify },
        }
    }

    fn conflict() -> Verdict {
        Verdict::Blocked {
            block: Block::BaseConflict {
                branches: vec!["stream/B".into(), "stream/C".into()],
                paths: vec!["shared.txt".into()],
                tips: vec![],
            },
        }
    }

    const DONE: fn() -> TaskCounts = || counts(2, 0, 0, 0, 1);
    const OPEN: fn() -> TaskCounts = || counts(0, 1, 1, 0, 0);

    /// One stream A with every combination of the facts that matter, judged alone.
    #[test]
    fn precedence_table() {
        use State::*;
        use WorkerFact as W;
        let table: Vec<(TaskCounts, Option<Verdict>, WorkerFact, bool, State)> = vec![
            // (tasks, verdict, worker, paused, expected)
            (OPEN(), None, W::Live, false, Running),
            (
                DONE(),
                Some(verify_failed()),
                W::Verifying,
                false,
                Verifying,
            ),
            (DONE(), Some(verify_failed()), W::None, false, Ready),
            (
                OPEN(),
                Some(parked(NOW + 60, false)),
                W::None,
                false,
                Parked,
            ),
            (OPEN(), Some(parked(NOW + 60, true)), W::None, false, Parked),
            // A park whose time has come no longer holds: the stream resumes.
            (OPEN(), Some(parked(NOW, true)), W::None, false, Ready),
            (OPEN(), Some(parked(NOW + 60, false)), W::None, true, Paused),
            (
                DONE(),
                Some(parked(NOW + 60, true)),
                W::None,
                false,
                Complete,
            ),
            (DONE(), None, W::Live, false, Running),
            (DONE(), Some(dirty()), W::Live, false, Running),
            (OPEN(), Some(failed()), W::Preparing, false, Preparing),
            (
                counts(0, 0, 0, 0, 3),
                Some(failed()),
                W::None,
                false,
                Cancelled,
            ),
            (DONE(), Some(dirty()), W::None, false, NeedsAttention),
            (OPEN(), Some(dirty()), W::None, false, NeedsAttention),
            (DONE(), Some(failed()), W::None, false, Complete),
            (DONE(), Some(Verdict::Stopped), W::None, false, Complete),
            (DONE(), None, W::ExitUnprocessed, false, Complete),
            (OPEN(), Some(failed()), W::None, true, Failed),
            (OPEN(), Some(Verdict::Stopped), W::None, true, Stopped),
            (OPEN(), Some(conflict()), W::None, true, Paused),
            (OPEN(), Some(conflict()), W::None, false, Blocked),
            (counts(1, 0, 0, 2, 0), None, W::None, false, Blocked),
            // One blocked task and one pending: the worker does what it can.
            (counts(0, 0, 1, 1, 0), None, W::None, false, Ready),
            // Tasks in progress with no live worker (an earlier worker died): start relaunches.
            (counts(0, 2, 0, 0, 0), None, W::None, false, Ready),
            (
                counts(0, 0, 1, 0, 0),
                None,
                W::ExitUnprocessed,
                false,
                Ready,
            ),
        ];
        for (i, (tasks, verdict, worker, paused, want)) in table.into_iter().enumerate() {
            let mut a = rec("A", &[], tasks);
            a.paused = paused;
            let g = graph(vec![a]);
            let observed = HashMap::from([("A".to_string(), obs(verdict, worker))]);
            let got = derive(&g, &observed, mode(true));
            assert_eq!(got.state("A"), Some(want), "row {i}");
        }
    }

    fn diamond(a: TaskCounts, b: TaskCounts, c: TaskCounts) -> StreamGraph {
        graph(vec![
            rec("A", &[], a),
            rec("B", &["A"], b),
            rec("C", &["A"], c),
            rec("Z", &["B", "C"], OPEN()),
        ])
    }

    fn observe(list: &[(&str, Option<Verdict>, WorkerFact)]) -> HashMap<String, Observed> {
        list.iter()
            .map(|(s, v, w)| (s.to_string(), obs(v.clone(), *w)))
            .collect()
    }

    #[test]
    fn a_base_conflict_blocks_the_stream_once_its_dependencies_are_done() {
        let g = diamond(DONE(), DONE(), DONE());
        let m = derive(
            &g,
            &observe(&[("Z", Some(conflict()), WorkerFact::None)]),
            mode(true),
        );
        let z = m.get("Z").unwrap();
        assert_eq!(z.state, State::Blocked);
        assert!(
            matches!(&z.reason, Some(Reason::Blocked(Block::BaseConflict { paths, .. })) if paths == &["shared.txt"])
        );
        assert!(z.actions.restart && !z.actions.launch);
    }

    #[test]
    fn worktree_mode_waits_for_the_worker_and_for_attention() {
        let g = diamond(DONE(), OPEN(), OPEN());
        let live = observe(&[("A", None, WorkerFact::Live)]);
        let m = derive(&g, &live, mode(true));
        assert_eq!(m.state("A"), Some(State::Running));
        let Some(Reason::Waiting { on }) = &m.get("B").unwrap().reason else {
            panic!("B waits");
        };
        assert_eq!(on[0].state, State::Running);
        // Shared checkout: the task database alone decides.
        let m = derive(&g, &live, mode(false));
        assert_eq!(m.state("B"), Some(State::Ready));
        // An exit not processed yet: A is complete, but B waits for its leftovers.
        let m = derive(
            &g,
            &observe(&[("A", None, WorkerFact::ExitUnprocessed)]),
            mode(true),
        );
        assert_eq!(m.state("A"), Some(State::Complete));
        let Some(Reason::Waiting { on }) = &m.get("B").unwrap().reason else {
            panic!("B waits");
        };
        assert!(on[0].exit_unprocessed);
        // Finished with uncommitted changes: dependents wait in either mode.
        for worktrees in [true, false] {
            let m = derive(
                &g,
                &observe(&[("A", Some(dirty()), WorkerFact::None)]),
                mode(worktrees),
            );
            assert_eq!(m.state("A"), Some(State::NeedsAttention));
            assert_eq!(m.state("B"), Some(State::Waiting));
        }
    }

    #[test]
    fn failures_skip_dependents_transitively_and_stops_keep_them_waiting() {
        let g = diamond(DONE(), OPEN(), OPEN());
        let m = derive(
            &g,
            &observe(&[("B", Some(failed()), WorkerFact::None)]),
            mode(false),
        );
        assert_eq!(m.state("B"), Some(State::Failed));
        assert_eq!(m.state("C"), Some(State::Ready));
        assert!(matches!(
            &m.get("Z").unwrap().reason,
            Some(Reason::Skipped { dependency, dependency_state: State::Failed }) if dependency == "B"
        ));
        let m = derive(
            &g,
            &observe(&[("B", Some(Verdict::Stopped), WorkerFact::None)]),
            mode(false),
        );
        assert_eq!(m.state("Z"), Some(State::Waiting));
        let g = diamond(counts(0, 0, 0, 0, 2), OPEN(), OPEN());
        let m = derive(&g, &HashMap::new(), mode(false));
        assert_eq!(m.state("B"), Some(State::Skipped));
        assert_eq!(m.state("Z"), Some(State::Skipped));
    }

    #[test]
    fn a_usage_limit_holds_every_launch_and_a_budget_stops_new_ones() {
        let g = diamond(DONE(), OPEN(), OPEN());
        // B hit a five-hour limit: C, ready, is held too; after the reset both go.
        let facts = observe(&[("B", Some(parked(NOW + 600, true)), WorkerFact::None)]);
        let m = derive(&g, &facts, mode(false));
        assert_eq!(m.state("B"), Some(State::Parked));
        let c = m.get("C").unwrap();
        assert_eq!(c.state, State::Parked);
        assert!(matches!(&c.reason, Some(Reason::Parked { hit_by: Some(by), .. }) if by == "B"));
        assert!(!c.actions.launch);
        let later = Mode {
            now: NOW + 600,
            ..mode(false)
        };
        let m = derive(&g, &facts, later);
        assert!(m.get("B").unwrap().actions.launch && m.get("C").unwrap().actions.launch);
        // An overloaded API backs off only its own stream.
        let facts = observe(&[("B", Some(parked(NOW + 600, false)), WorkerFact::None)]);
        assert_eq!(
            derive(&g, &facts, mode(false)).state("C"),
            Some(State::Ready)
        );
        // A spent budget: nothing new starts; what runs is untouched.
        let spent = Mode {
            budget_reached: true,
            ..mode(false)
        };
        let facts = observe(&[("B", None, WorkerFact::Live)]);
        let m = derive(&g, &facts, spent);
        assert_eq!(m.state("B"), Some(State::Running));
        assert_eq!(m.state("C"), Some(State::BudgetReached));
    }

    #[test]
    fn a_stream_waits_for_its_dependencys_verification() {
        let g = diamond(DONE(), OPEN(), OPEN());
        let mut facts = observe(&[("A", None, WorkerFact::None)]);
        facts.get_mut("A").unwrap().verify = VerifyFact::Pending;
        let m = derive(&g, &facts, mode(true));
        assert_eq!(m.state("A"), Some(State::Complete));
        assert!(!m.get("A").unwrap().done);
        let Some(Reason::Waiting { on }) = &m.get("B").unwrap().reason else {
            panic!("B waits");
        };
        assert!(on[0].verify_pending);
        facts.get_mut("A").unwrap().worker = WorkerFact::Verifying;
        assert_eq!(
            derive(&g, &facts, mode(true)).state("A"),
            Some(State::Verifying)
        );
        facts.get_mut("A").unwrap().worker = WorkerFact::None;
        facts.get_mut("A").unwrap().verify = VerifyFact::Passed;
        assert_eq!(
            derive(&g, &facts, mode(true)).state("B"),
            Some(State::Ready)
        );
        // Verification failed with attempts left: back to its worker, dependents wait.
        facts.get_mut("A").unwrap().verdict = Some(verify_failed());
        let m = derive(&g, &facts, mode(true));
        assert_eq!(m.state("A"), Some(State::Ready));
        assert!(matches!(
            m.get("A").unwrap().reason,
            Some(Reason::VerifyFailed(_))
        ));
        assert_eq!(m.state("B"), Some(State::Waiting));
    }

    /// A predicted conflict is shown on the stream and changes nothing else, in any state.
    #[test]
    fn predicted_conflicts_annotate_and_never_decide() {
        let g = diamond(DONE(), OPEN(), OPEN());
        let conflict = crate::model::ConflictWith {
            stream: Some("C".into()),
            branch: "stream/C".into(),
            paths: vec!["x.rs".into()],
        };
        for worker in [
            WorkerFact::None,
            WorkerFact::Live,
            WorkerFact::ExitUnprocessed,
        ] {
            let plain = observe(&[("B", None, worker), ("C", None, WorkerFact::Live)]);
            let mut marked = plain.clone();
            for s in ["A", "B", "Z"] {
                marked.entry(s.into()).or_default().conflicts = vec![conflict.clone()];
            }
            let (m, n) = (
                derive(&g, &plain, mode(true)),
                derive(&g, &marked, mode(true)),
            );
            for (a, b) in m.views().iter().zip(n.views()) {
                assert_eq!(
                    (a.state, &a.reason, a.done, a.actions),
                    (b.state, &b.reason, b.done, b.actions)
                );
            }
            assert_eq!(
                n.get("B").unwrap().conflicts_with,
                std::slice::from_ref(&conflict)
            );
        }
    }

    /// `strict_files`: B claims what A claims and waits for it like a dependency, until A is
    /// done or can no longer run; C, which depends on A, is not a claim pair at all.
    #[test]
    fn strict_files_make_the_later_claimant_wait_but_never_skip() {
        let claim = |id: &str, deps: &[&str], counts: TaskCounts| StreamRecord {
            files: vec!["src/x.rs".into()],
            ..rec(id, deps, counts)
        };
        let g = graph(vec![
            claim("A", &[], OPEN()),
            claim("B", &[], OPEN()),
            claim("C", &["A"], OPEN()),
        ]);
        let overlaps: Vec<(&str, &str)> = g
            .overlaps()
            .iter()
            .map(|o| (o.earlier.as_str(), o.later.as_str()))
            .collect();
        assert_eq!(overlaps, [("A", "B"), ("B", "C")]);
        // Without strict_files nothing waits over claims.
        assert_eq!(
            derive(&g, &HashMap::new(), mode(true)).state("B"),
            Some(State::Ready)
        );
        let g = g.strict_files();
        let mut facts = observe(&[("A", None, WorkerFact::Live)]);
        let m = derive(&g, &facts, mode(true));
        let Some(Reason::Waiting { on }) = &m.get("B").unwrap().reason else {
            panic!("B waits for A's files");
        };
        assert_eq!(on.len(), 1);
        assert_eq!(
            (on[0].stream.as_str(), on[0].claims.as_slice()),
            ("A", &["src/x.rs".to_string()][..])
        );
        // A failed: B no longer waits (nothing of A's is needed), and is not skipped.
        facts.get_mut("A").unwrap().worker = WorkerFact::None;
        facts.get_mut("A").unwrap().verdict = Some(failed());
        let m = derive(&g, &facts, mode(true));
        assert_eq!(m.state("B"), Some(State::Ready));
        // C depends on A (skipped) and claims B's file: the dependency decides.
        assert_eq!(m.state("C"), Some(State::Skipped));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn arb_counts() -> impl Strategy<Value = TaskCounts> {
            (0u32..3, 0u32..3, 0u32..3, 0u32..3, 0u32..3)
                .prop_map(|(a, b, c, d, e)| counts(a, b, c, d, e))
        }

        fn arb_verdict() -> impl Strategy<Value = Option<Verdict>> {
            prop_oneof![
                Just(None),
                Just(Some(failed())),
                Just(Some(Verdict::Stopped)),
                Just(Some(conflict())),
                Just(Some(dirty())),
                Just(Some(parked(NOW + 60, true))),
                Just(Some(parked(NOW + 60, false))),
                Just(Some(parked(NOW - 60, true))),
                Just(Some(verify_failed())),
                Just(Some(verify_gave_up())),
            ]
        }

        fn arb_verify() -> impl Strategy<Value = VerifyFact> {
            prop_oneof![
                Just(VerifyFact::NotRequired),
                Just(VerifyFact::Pending),
                Just(VerifyFact::Passed),
            ]
        }

        fn arb_worker() -> impl Strategy<Value = WorkerFact> {
            prop_oneof![
                Just(WorkerFact::None),
                Just(WorkerFact::Preparing),
                Just(WorkerFact::Live),
                Just(WorkerFact::Verifying),
                Just(WorkerFact::ExitUnprocessed),
            ]
        }

        type Facts = (TaskCounts, Option<Verdict>, WorkerFact, bool, VerifyFact);

        fn arb_stream() -> impl Strategy<Value = Facts> {
            (
                arb_counts(),
                arb_verdict(),
                arb_worker(),
                any::<bool>(),
                arb_verify(),
            )
        }

        proptest! {
            /// Every combination of facts over a diamond gives one state per stream, and the
            /// actions follow from it the same way every time.
            #[test]
            fn every_combination_gives_one_state_and_consistent_actions(
                facts in proptest::collection::vec(arb_stream(), 4),
                worktrees in any::<bool>(),
                budget_reached in any::<bool>(),
            ) {
                let ids = ["A", "B", "C", "Z"];
                let deps: [&[&str]; 4] = [&[], &["A"], &["A"], &["B", "C"]];
                let mut records = Vec::new();
                let mut observed = HashMap::new();
                for ((id, deps), (tasks, verdict, worker, paused, verify)) in ids.iter().zip(deps).zip(&facts) {
                    let mut r = rec(id, deps, *tasks);
                    r.paused = *paused;
                    records.push(r);
                    let mut o = obs(verdict.clone(), *worker);
                    o.verify = *verify;
                    observed.insert(id.to_string(), o);
                }
                let g = graph(records);
                let run = Mode { budget_reached, ..mode(worktrees) };
                let m = derive(&g, &observed, run);
                prop_assert_eq!(m.views().len(), 4);
                for v in m.views() {
                    let s = g.get(&v.id).unwrap();
                    let obs = &observed[&v.id];
                    prop_assert_eq!(v.actions.launch, v.state == State::Ready);
                    prop_assert_eq!(v.actions.in_use, matches!(obs.worker, WorkerFact::Live | WorkerFact::Preparing | WorkerFact::Verifying));
                    if v.actions.merge {
                        prop_assert!(v.done && v.state == State::Complete);
                    }
                    if v.done {
                        prop_assert!(s.record.counts.is_complete());
                        prop_assert!(obs.verify != VerifyFact::Pending);
                        // In a shared checkout the task database alone decides, so a stream
                        // whose worker still runs can already be done for its dependents.
                        prop_assert!(!worktrees || !v.actions.in_use);
                    }
                    // Nothing is ready while a dependency is not done.
                    if v.state == State::Ready {
                        for d in &s.dependencies {
                            prop_assert!(m.get(d).unwrap().done);
                        }
                        // Back from a failed verification, or a park whose time has come.
                        let expired = matches!(&obs.verdict, Some(Verdict::Parked { park }) if park.until <= NOW);
                        let back = matches!(obs.verdict, Some(Verdict::VerifyFailed { .. }));
                        prop_assert!(obs.verdict.is_none() || expired || back);
                        prop_assert!(!budget_reached);
                    }
                    // A state and its reason agree.
                    let reason_ok = match (&v.state, &v.reason) {
                        (State::Waiting, Some(Reason::Waiting { on })) => !on.is_empty(),
                        (State::Blocked, Some(Reason::Blocked(_) | Reason::BlockedTasks { .. })) => true,
                        (State::Failed, Some(Reason::Failed(_))) => true,
                        (State::Stopped, Some(Reason::Stopped)) => true,
                        (State::Skipped, Some(Reason::Skipped { .. })) => true,
                        (State::Paused, Some(Reason::Paused)) => true,
                        (State::Parked, Some(Reason::Parked { .. })) => true,
                        (State::BudgetReached, Some(Reason::BudgetReached)) => true,
                        (State::Ready, Some(Reason::VerifyFailed(_))) => true,
                        (State::NeedsAttention, Some(Reason::NeedsAttention(_))) => true,
                        (State::Running | State::Verifying | State::Preparing | State::Cancelled | State::Complete | State::Ready, None) => true,
                        _ => false,
                    };
                    prop_assert!(reason_ok, "{:?} with {:?}", v.state, v.reason);
                }
                // The same facts give the same answer (pure).
                let again = derive(&g, &observed, run);
                prop_assert_eq!(m.views(), again.views());
            }
        }
    }
}
