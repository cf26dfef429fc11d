//! From a run's entries to what `report` shows: each stream's spans on the run's time axis
//! (waiting, ready, preparing, each attempt, any other state such as parked or verifying),
//! its attempts with their exits, cost and turns, its outcome, the handoff from its last
//! dependency, the critical path and the totals. Pure: times in, times out (milliseconds since
//! the run began); `now` stands in for the end of a run that has not ended.

use std::collections::HashMap;

use serde::Serialize;

use super::{Entry, FORMAT_VERSION, Stamped};
use crate::model::{ExitStatus, Failure};
use crate::state::RunRow;
use crate::state::time::parse_unix_millis;

/// States a stream ends in: not drawn as a bar, shown as its outcome.
const ENDING: [&str; 5] = ["complete", "failed", "skipped", "cancelled", "stopped"];

/// A run, ready to draw.
#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    pub version: u32,
    pub run: i64,
    pub started_at: String,
    pub ended_at: Option<String>,
    /// `complete`, `incomplete`, `interrupted`; null if the run has not ended (or its `start`
    /// died before it could say).
    pub outcome: Option<String>,
    pub exit_code: Option<i32>,
    pub worktrees: bool,
    pub selection: Option<Vec<String>>,
    /// From the run's start to its end (or to now).
    pub duration_ms: i64,
    pub streams: Vec<StreamTimeline>,
    /// Streams on the critical path, first to last.
    pub critical_path: Vec<CriticalLink>,
    pub totals: Totals,
}

/// One stream's row.
#[derive(Debug, Clone, Serialize)]
pub struct StreamTimeline {
    pub id: String,
    pub name: String,
    pub depth: usize,
    pub dependencies: Vec<String>,
    /// Consecutive, non-overlapping, in time order.
    pub spans: Vec<Span>,
    pub attempts: Vec<Attempt>,
    /// The state it was in at the end (JSON name), and why (as in `status --json`).
    pub outcome: String,
    pub reason: Option<serde_json::Value>,
    /// When it entered that state, if during the run.
    pub outcome_ms: Option<i64>,
    /// It was complete before the run began.
    pub complete_before: bool,
    /// When its work began to count for its dependents during the run (the model's `done`:
    /// tasks complete, and with worktrees its worker exited).
    pub done_ms: Option<i64>,
    /// From its last dependency becoming done to its own launch (preparing), when both
    /// happened during the run.
    pub handoff_ms: Option<i64>,
    pub on_critical_path: bool,
    /// Waiting for dependencies, and ready but not launched (a slot, the stagger).
    pub waiting_ms: i64,
    pub ready_ms: i64,
    pub preparing_ms: i64,
    /// Its workers' running time, every attempt.
    pub worked_ms: i64,
    pub cost_usd: Option<f64>,
    pub turns: Option<u32>,
}

/// A stretch of time a stream spent in one phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Span {
    #[serde(flatten)]
    pub kind: SpanKind,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// What a stream was doing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SpanKind {
    /// For its dependencies.
    Waiting,
    /// Ready, not launched yet: waiting for a slot or the stagger.
    Ready,
    /// Its worktree being prepared before attempt `attempt`.
    Preparing { attempt: u32 },
    /// A worker running (index into `attempts`).
    Attempt { attempt: u32 },
    /// Any other state (blocked, needs attention, parked, verifying, …), by its JSON name.
    State { state: String },
}

/// One worker's run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    pub attempt: u32,
    pub from_ms: i64,
    /// `None` while it runs (or if the run ended before it did).
    pub to_ms: Option<i64>,
    /// Launched by an earlier `start` and watched by this one.
    pub adopted: bool,
    pub exit: Option<ExitStatus>,
    /// Ended by `orchestrate stop`.
    pub stopped: bool,
    /// It ended with the stream incomplete and another attempt followed.
    pub retried: Option<Failure>,
    pub cost_usd: Option<f64>,
    pub turns: Option<u32>,
    pub session_id: Option<String>,
}

/// One stream of the critical path, and what it waited for before it started.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CriticalLink {
    pub stream: String,
    /// The dependency whose completion it waited for last; `None`: it waited for the run.
    pub after: Option<String>,
    /// When that dependency completed (0: the run's start).
    pub from_ms: i64,
    /// When it was launched (preparing), and when it finished.
    pub started_ms: i64,
    pub finished_ms: i64,
    /// Of `started_ms - from_ms`: ready but waiting for a slot or the stagger.
    pub ready_ms: i64,
    pub preparing_ms: i64,
    pub worked_ms: i64,
    /// Time in other states between its launch and its finish (parked, verifying, …), by
    /// state, in first-seen order.
    pub states_ms: Vec<(String, i64)>,
    pub attempts: usize,
}

/// The run's totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    pub streams: usize,
    /// Streams by the state they ended the run in (JSON names), in first-seen order.
    pub outcomes: Vec<(String, usize)>,
    pub attempts: usize,
    pub retries: usize,
    pub worked_ms: i64,
    pub cost_usd: Option<f64>,
    pub turns: Option<u32>,
    /// The critical path's length, from the run's start to its last stream's finish.
    pub critical_ms: i64,
}

/// Where a stream is, while the entries are read.
#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Drawn(SpanKind),
    /// Not drawn: running between a worker's exit and its judgment, or ended.
    Gap,
}

#[derive(Default)]
struct Acc {
    row: Option<StreamTimeline>,
    phase: Option<(Phase, i64)>,
}

impl Acc {
    fn row(&mut self, id: &str) -> &mut StreamTimeline {
        self.row.get_or_insert_with(|| StreamTimeline {
            id: id.to_string(),
            name: id.to_string(),
            depth: 0,
            dependencies: Vec::new(),
            spans: Vec::new(),
            attempts: Vec::new(),
            outcome: "unknown".into(),
            reason: None,
            outcome_ms: None,
            complete_before: false,
            done_ms: None,
            handoff_ms: None,
            on_critical_path: false,
            waiting_ms: 0,
            ready_ms: 0,
            preparing_ms: 0,
            worked_ms: 0,
            cost_usd: None,
            turns: None,
        })
    }

    fn in_attempt(&self) -> bool {
        matches!(
            self.phase,
            Some((Phase::Drawn(SpanKind::Attempt { .. }), _))
        )
    }

    /// Ends the current phase at `t` and begins `next`.
    fn enter(&mut self, id: &str, next: Phase, t: i64) {
        if let Some((Phase::Drawn(kind), from)) = self.phase.take()
            && t > from
        {
            self.row(id).spans.push(Span {
                kind,
                from_ms: from,
                to_ms: t,
            });
        }
        self.phase = Some((next, t));
    }

    fn state(&mut self, id: &str, state: &str, reason: Option<serde_json::Value>, t: i64) {
        let row = self.row(id);
        row.outcome = state.to_string();
        row.reason = reason;
        row.outcome_ms = Some(t);
        if self.in_attempt() {
            return;
        }
        let next = match state {
            "waiting" => Phase::Drawn(SpanKind::Waiting),
            "ready" => Phase::Drawn(SpanKind::Ready),
            "preparing" => match &self.phase {
                Some((Phase::Drawn(SpanKind::Preparing { .. }), _)) => return,
                _ => {
                    let attempt = self.row(id).attempts.len() as u32 + 1;
                    Phase::Drawn(SpanKind::Preparing { attempt })
                }
            },
            s if s == "running" || ENDING.contains(&s) => Phase::Gap,
            other => Phase::Drawn(SpanKind::State {
                state: other.to_string(),
            }),
        };
        self.enter(id, next, t);
    }
}

/// Builds the timeline of `run` from its `events` (in order); `now_ms` ends what is open when
/// the run has no recorded end.
pub fn build(run: &RunRow, events: &[Stamped], now_ms: i64) -> Timeline {
    let t0 = parse_unix_millis(&run.started_at).unwrap_or(now_ms);
    let at = |s: &Stamped| parse_unix_millis(&s.time).map_or(0, |t| (t - t0).max(0));
    let mut order: Vec<String> = Vec::new();
    let mut accs: HashMap<String, Acc> = HashMap::new();
    let mut end_ms = run
        .ended_at
        .as_deref()
        .and_then(parse_unix_millis)
        .map(|t| (t - t0).max(0));
    for stamped in events {
        let t = at(stamped);
        match &stamped.entry {
            Entry::Streams { streams } => {
                for info in streams {
                    let a = acc_of(&mut accs, &mut order, &info.id);
                    let row = a.row(&info.id);
                    row.name = info.name.clone();
                    row.depth = info.depth;
                    row.dependencies = info.dependencies.clone();
                    a.state(&info.id, &info.state, None, t);
                    if info.state == "complete" {
                        let row = a.row(&info.id);
                        row.complete_before = true;
                        row.outcome_ms = None;
                    }
                }
            }
            Entry::State {
                stream,
                state,
                reason,
            } => acc_of(&mut accs, &mut order, stream).state(stream, state, reason.clone(), t),
            Entry::Preparing { stream, attempt } => acc_of(&mut accs, &mut order, stream).enter(
                stream,
                Phase::Drawn(SpanKind::Preparing { attempt: *attempt }),
                t,
            ),
            Entry::Started {
                stream, attempt, ..
            } => start_attempt(
                acc_of(&mut accs, &mut order, stream),
                stream,
                *attempt,
                false,
                t,
            ),
            Entry::Adopted {
                stream, attempt, ..
            } => {
                let a = acc_of(&mut accs, &mut order, stream);
                let n = match *attempt {
                    0 => a.row(stream).attempts.len() as u32 + 1,
                    n => n,
                };
                start_attempt(a, stream, n, true, t);
            }
            Entry::Exited {
                stream,
                exit,
                session_id,
                cost_usd,
                turns,
            } => {
                let a = acc_of(&mut accs, &mut order, stream);
                if let Some(last) = a.row(stream).attempts.last_mut() {
                    last.to_ms = Some(t);
                    last.exit = *exit;
                    last.stopped = exit.is_none();
                    last.session_id.clone_from(session_id);
                    last.cost_usd = *cost_usd;
                    last.turns = *turns;
                }
                if a.in_attempt() {
                    a.enter(stream, Phase::Gap, t);
                }
            }
            Entry::Retrying {
                stream, failure, ..
            } => {
                if let Some(last) = acc_of(&mut accs, &mut order, stream)
                    .row(stream)
                    .attempts
                    .last_mut()
                {
                    last.retried = Some(failure.clone());
                }
            }
            Entry::Done { stream } => {
                let row = acc_of(&mut accs, &mut order, stream).row(stream);
                row.done_ms = row.done_ms.or(Some(t));
            }
            Entry::RunEnd { .. } => end_ms = end_ms.or(Some(t)),
            Entry::RunStarted { .. }
            | Entry::Progress { .. }
            | Entry::Note { .. }
            | Entry::Conflict { .. }
            | Entry::ConflictResolved { .. } => {}
            Entry::Unknown => {}
        }
    }
    let end = end_ms.unwrap_or((now_ms - t0).max(0));
    let mut streams: Vec<StreamTimeline> = order
        .iter()
        .filter_map(|id| {
            let mut acc = accs.remove(id)?;
            acc.enter(id, Phase::Gap, end);
            let mut row = acc.row?;
            finish_row(&mut row);
            Some(row)
        })
        .collect();
    streams.sort_by_key(|s| s.depth);
    set_handoffs(&mut streams);
    let critical_path = critical_path(&mut streams);
    let totals = totals(&streams, &critical_path);
    Timeline {
        version: FORMAT_VERSION,
        run: run.id,
        started_at: run.started_at.clone(),
        ended_at: run.ended_at.clone(),
        outcome: run.outcome.clone(),
        exit_code: run.exit_code,
        worktrees: run.worktrees,
        selection: run.selection.clone(),
        duration_ms: end,
        streams,
        critical_path,
        totals,
    }
}

/// The accumulator of stream `id`, made (and its first-seen order noted) if new.
fn acc_of<'m>(
    accs: &'m mut HashMap<String, Acc>,
    order: &mut Vec<String>,
    id: &str,
) -> &'m mut Acc {
    if !accs.contains_key(id) {
        order.push(id.to_string());
    }
    accs.entry(id.to_string()).or_default()
}

fn start_attempt(acc: &mut Acc, id: &str, attempt: u32, adopted: bool, t: i64) {
    acc.enter(id, Phase::Drawn(SpanKind::Attempt { attempt }), t);
    acc.row(id).attempts.push(Attempt {
        attempt,
        from_ms: t,
        to_ms: None,
        adopted,
        exit: None,
        stopped: false,
        retried: None,
        cost_usd: None,
        turns: None,
        session_id: None,
    });
}

/// Sums a stream's phases and its agents' cost and turns.
fn finish_row(row: &mut StreamTimeline) {
    for span in &row.spans {
        let len = span.to_ms - span.from_ms;
        match span.kind {
            SpanKind::Waiting => row.waiting_ms += len,
            SpanKind::Ready => row.ready_ms += len,
            SpanKind::Preparing { .. } => row.preparing_ms += len,
            SpanKind::Attempt { .. } => row.worked_ms += len,
            SpanKind::State { .. } => {}
        }
    }
    row.cost_usd = sum(row.attempts.iter().map(|a| a.cost_usd));
    row.turns = sum(row.attempts.iter().map(|a| a.turns));
}

/// The sum of the values that are known; `None` when none is.
fn sum<T: std::iter::Sum<T> + Copy>(values: impl Iterator<Item = Option<T>>) -> Option<T> {
    let known: Vec<T> = values.flatten().collect();
    (!known.is_empty()).then(|| known.into_iter().sum())
}

/// When a stream was launched: its first preparing or attempt.
fn launched_ms(row: &StreamTimeline) -> Option<i64> {
    row.spans
        .iter()
        .find(|s| {
            matches!(
                s.kind,
                SpanKind::Preparing { .. } | SpanKind::Attempt { .. }
            )
        })
        .map(|s| s.from_ms)
        .or_else(|| row.attempts.first().map(|a| a.from_ms))
}

/// When a stream stopped working: the end of its last drawn work, or its outcome.
fn finished_ms(row: &StreamTimeline) -> Option<i64> {
    let work = row
        .spans
        .iter()
        .filter(|s| !matches!(s.kind, SpanKind::Waiting | SpanKind::Ready))
        .map(|s| s.to_ms)
        .max();
    match (work, row.outcome_ms) {
        (Some(w), Some(o)) if ENDING.contains(&row.outcome.as_str()) => Some(w.max(o)),
        (w, _) => w,
    }
}

/// The dependency of `row` that completed last during the run, before it was launched.
fn last_dependency<'a>(
    row: &StreamTimeline,
    done: &'a HashMap<String, i64>,
    launched: i64,
) -> Option<(&'a str, i64)> {
    row.dependencies
        .iter()
        .filter_map(|d| done.get_key_value(d.as_str()))
        .filter(|(_, t)| **t <= launched)
        .max_by_key(|(_, t)| **t)
        .map(|(d, t)| (d.as_str(), *t))
}

fn set_handoffs(streams: &mut [StreamTimeline]) {
    let done: HashMap<String, i64> = streams
        .iter()
        .filter_map(|s| Some((s.id.clone(), s.done_ms?)))
        .collect();
    for row in streams.iter_mut() {
        if let Some(launched) = launched_ms(row) {
            row.handoff_ms = last_dependency(row, &done, launched).map(|(_, t)| launched - t);
        }
    }
}

/// Walks back from the stream that finished last, through the dependency each one waited for
/// last, to one that waited only for the run.
fn critical_path(streams: &mut [StreamTimeline]) -> Vec<CriticalLink> {
    let done: HashMap<String, i64> = streams
        .iter()
        .filter_map(|s| Some((s.id.clone(), s.done_ms?)))
        .collect();
    let index: HashMap<String, usize> = streams
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.clone(), i))
        .collect();
    let mut current = streams
        .iter()
        .enumerate()
        .filter(|(_, s)| launched_ms(s).is_some())
        .filter_map(|(i, s)| Some((finished_ms(s)?, i)))
        .max()
        .map(|(_, i)| i);
    let mut links = Vec::new();
    while let Some(i) = current {
        let row = &mut streams[i];
        let (Some(started), Some(finished)) = (launched_ms(row), finished_ms(row)) else {
            break;
        };
        row.on_critical_path = true;
        let after = last_dependency(row, &done, started);
        let from = after.map_or(0, |(_, t)| t);
        let ready_ms = row
            .spans
            .iter()
            .filter(|s| s.kind == SpanKind::Ready)
            .map(|s| s.to_ms.min(started) - s.from_ms.max(from))
            .filter(|len| *len > 0)
            .sum();
        let mut states_ms: Vec<(String, i64)> = Vec::new();
        for span in &row.spans {
            let SpanKind::State { state } = &span.kind else {
                continue;
            };
            let len = span.to_ms.min(finished) - span.from_ms.max(started);
            if len <= 0 {
                continue;
            }
            match states_ms.iter_mut().find(|(s, _)| s == state) {
                Some((_, ms)) => *ms += len,
                None => states_ms.push((state.clone(), len)),
            }
        }
        links.push(CriticalLink {
            stream: row.id.clone(),
            after: after.map(|(d, _)| d.to_string()),
            from_ms: from,
            started_ms: started,
            finished_ms: finished,
            ready_ms,
            preparing_ms: row.preparing_ms,
            worked_ms: row.worked_ms,
            states_ms,
            attempts: row.attempts.len(),
        });
        current = after.and_then(|(d, _)| index.get(d).copied());
        if links.len() > streams.len() {
            break; // A malformed history cannot loop forever.
        }
    }
    links.reverse();
    links
}

fn totals(streams: &[StreamTimeline], path: &[CriticalLink]) -> Totals {
    let mut outcomes: Vec<(String, usize)> = Vec::new();
    for s in streams {
        match outcomes.iter_mut().find(|(o, _)| *o == s.outcome) {
            Some((_, n)) => *n += 1,
            None => outcomes.push((s.outcome.clone(), 1)),
        }
    }
    let attempts: Vec<&Attempt> = streams.iter().flat_map(|s| &s.attempts).collect();
    Totals {
        streams: streams.len(),
        outcomes,
        attempts: attempts.len(),
        retries: attempts.iter().filter(|a| a.retried.is_some()).count(),
        worked_ms: streams.iter().map(|s| s.worked_ms).sum(),
        cost_usd: sum(streams.iter().map(|s| s.cost_usd)),
        turns: sum(streams.iter().map(|s| s.turns)),
        critical_ms: path.last().map_or(0, |l| l.finished_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::super::StreamInfo;
    use super::*;

    const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    fn at(ms: i64, entry: Entry) -> Stamped {
        Stamped {
            version: FORMAT_VERSION,
            time: format!("{:.3}", jiff::Timestamp::from_millisecond(T0 + ms).unwrap()),
            entry,
        }
    }

    fn info(id: &str, deps: &[&str], depth: usize) -> StreamInfo {
        StreamInfo {
            id: id.into(),
            name: format!("{id} work"),
            depth,
            dependencies: deps.iter().map(|d| d.to_string()).collect(),
            state: if deps.is_empty() { "ready" } else { "waiting" }.into(),
            done: false,
            tasks_done: 0,
            tasks_total: 2,
        }
    }

    fn state(ms: i64, stream: &str, state: &str) -> Stamped {
        at(
            ms,
            Entry::State {
                stream: stream.into(),
                state: state.into(),
                reason: None,
            },
        )
    }

    fn done(ms: i64, stream: &str) -> Stamped {
        at(
            ms,
            Entry::Done {
                stream: stream.into(),
            },
        )
    }

    fn work(ms: i64, stream: &str, attempt: u32, len: i64, out: &mut Vec<Stamped>) {
        let s = stream.to_string();
        out.push(at(
            ms,
            Entry::Preparing {
                stream: s.clone(),
                attempt,
            },
        ));
        out.push(at(
            ms + 10,
            Entry::Started {
                stream: s.clone(),
                attempt,
                pid: 1,
            },
        ));
        out.push(at(
            ms + 10 + len,
            Entry::Exited {
                stream: s,
                exit: Some(ExitStatus::Code { code: 0 }),
                session_id: None,
                cost_usd: Some(0.25),
                turns: Some(4),
            },
        ));
    }

    /// The diamond: A 0–1000, B 1005–3000, C 1005–2000, Z 3005–4000.
    fn diamond() -> Vec<Stamped> {
        let mut e = vec![at(
            0,
            Entry::Streams {
                streams: vec![
                    info("A", &[], 0),
                    info("B", &["A"], 1),
                    info("C", &["A"], 1),
                    info("Z", &["B", "C"], 2),
                ],
            },
        )];
        work(0, "A", 1, 990, &mut e);
        e.push(state(1000, "A", "complete"));
        e.push(done(1000, "A"));
        e.push(state(1001, "B", "ready"));
        e.push(state(1001, "C", "ready"));
        work(1005, "B", 1, 1985, &mut e);
        work(1005, "C", 1, 985, &mut e);
        e.push(state(2000, "C", "complete"));
        e.push(done(2000, "C"));
        e.push(state(3000, "B", "complete"));
        e.push(done(3000, "B"));
        e.push(state(3001, "Z", "ready"));
        work(3005, "Z", 1, 985, &mut e);
        e.push(state(4000, "Z", "complete"));
        e.push(done(4000, "Z"));
        e.push(at(
            4001,
            Entry::RunEnd {
                outcome: "complete".into(),
                exit_code: 0,
                unfinished: vec![],
            },
        ));
        e
    }

    fn run_row() -> RunRow {
        RunRow {
            id: 7,
            started_at: format!("{:.3}", jiff::Timestamp::from_millisecond(T0).unwrap()),
            ended_at: None,
            pid: 1,
            worktrees: true,
            selection: None,
            outcome: None,
            exit_code: None,
        }
    }

    #[test]
    fn the_diamond_has_its_spans_handoffs_and_critical_path() {
        let t = build(&run_row(), &diamond(), T0 + 99_999);
        assert_eq!(t.duration_ms, 4001, "the run end, not now");
        let ids: Vec<&str> = t.streams.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["A", "B", "C", "Z"]);
        let z = &t.streams[3];
        let kinds: Vec<&SpanKind> = z.spans.iter().map(|s| &s.kind).collect();
        assert_eq!(
            kinds,
            [
                &SpanKind::Waiting,
                &SpanKind::Ready,
                &SpanKind::Preparing { attempt: 1 },
                &SpanKind::Attempt { attempt: 1 }
            ]
        );
        assert_eq!(z.spans[0].from_ms, 0);
        assert_eq!(z.spans[3].to_ms, 3005 + 10 + 985);
        assert_eq!(
            z.handoff_ms,
            Some(5),
            "B completed at 3000, Z prepared at 3005"
        );
        assert_eq!(z.worked_ms, 985);
        assert_eq!(z.outcome, "complete");
        let path: Vec<(&str, Option<&str>)> = t
            .critical_path
            .iter()
            .map(|l| (l.stream.as_str(), l.after.as_deref()))
            .collect();
        assert_eq!(path, [("A", None), ("B", Some("A")), ("Z", Some("B"))]);
        assert!(!t.streams[2].on_critical_path);
        assert_eq!(t.totals.attempts, 4);
        assert_eq!(t.totals.cost_usd, Some(1.0));
        assert_eq!(t.totals.turns, Some(16));
        assert_eq!(t.totals.critical_ms, 4000);
        assert_eq!(t.totals.outcomes, [("complete".to_string(), 4)]);
    }

    #[test]
    fn retries_unknown_states_and_an_unended_run() {
        let mut e = vec![at(
            0,
            Entry::Streams {
                streams: vec![info("A", &[], 0)],
            },
        )];
        work(0, "A", 1, 100, &mut e);
        e.push(at(
            111,
            Entry::Retrying {
                stream: "A".into(),
                attempt: 2,
                failure: Failure::Legacy { text: "x".into() },
            },
        ));
        // A state a later version adds, and an entry kind this one does not know.
        e.push(state(200, "A", "parked"));
        e.push(at(250, Entry::Unknown));
        work(300, "A", 2, 100, &mut e);
        e.push(at(
            410,
            Entry::Started {
                stream: "A".into(),
                attempt: 3,
                pid: 2,
            },
        ));
        let t = build(&run_row(), &e, T0 + 1000);
        assert_eq!(t.duration_ms, 1000, "open until now");
        let a = &t.streams[0];
        assert_eq!(a.attempts.len(), 3);
        assert!(a.attempts[0].retried.is_some());
        assert_eq!(a.attempts[2].to_ms, None);
        assert!(a.spans.iter().any(|s| s.kind
            == SpanKind::State {
                state: "parked".into()
            }
            && s.from_ms == 200
            && s.to_ms == 300));
        assert_eq!(a.spans.last().unwrap().to_ms, 1000);
        assert_eq!(t.totals.retries, 1);
        assert_eq!(t.critical_path[0].states_ms, [("parked".to_string(), 100)]);
    }
}
