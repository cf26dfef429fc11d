//! A run as a timeline: what happened to each stream and when, as typed entries. One
//! vocabulary serves three readers: the state store keeps a run's entries (`record.rs`, a tee
//! [`crate::scheduler::Reporter`]), `start --json` prints them one per line
//! (`ui::events`, documented in `docs/start-json.md`), and `report` builds from them the
//! per-stream spans, the critical path and the totals (`build.rs`).
//!
//! Invariants: an [`Entry`] is data (ids, states, exit statuses, typed failures), never prose;
//! states are the model's (`State`, by their JSON names), so a state added to the model later
//! (parked, verifying, …) flows through with no change here; an entry kind this version does
//! not know (written by a newer one) reads as [`Entry::Unknown`] and is skipped, never an error.
//! [`Tracker`] turns the scheduler's events into entries, diffing snapshots so each change of
//! state or progress is said once.

mod build;
mod record;

pub use build::{Attempt, CriticalLink, Span, SpanKind, StreamTimeline, Timeline, Totals, build};
pub use record::{History, Recording};

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::model::{ExitStatus, Failure, Reason, State};
use crate::scheduler::{Event, RunEnd};

/// The version of the entries' JSON form (`start --json`, `report --json`); bumped on any
/// incompatible change. Fields are only ever added within a version.
pub const FORMAT_VERSION: u32 = 1;

/// A stream as the run first saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamInfo {
    pub id: String,
    pub name: String,
    pub depth: usize,
    pub dependencies: Vec<String>,
    /// The model's state, by its JSON name (`waiting`, `complete`, …).
    pub state: String,
    /// Its work counts for its dependents already (see [`Entry::Done`]).
    pub done: bool,
    /// Tasks completed or cancelled, of `tasks_total`.
    pub tasks_done: u32,
    pub tasks_total: u32,
}

/// A stream that did not complete, at the end of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnfinishedInfo {
    pub stream: String,
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<serde_json::Value>,
}

/// One thing that happened during a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Entry {
    /// The run began (`run` is its id in the state store's history, when recorded).
    RunStarted {
        #[serde(default)]
        run: Option<i64>,
        pid: i32,
        worktrees: bool,
        /// The streams named on the command line; null for every stream.
        #[serde(default)]
        selection: Option<Vec<String>>,
    },
    /// Every stream with its dependencies and state, as the run first saw them.
    Streams { streams: Vec<StreamInfo> },
    /// A stream entered `state` (the model's; `reason` as in `status --json`).
    State {
        stream: String,
        state: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<serde_json::Value>,
    },
    /// A stream's tasks moved: `tasks_done` (completed or cancelled) of `tasks_total`.
    Progress {
        stream: String,
        tasks_done: u32,
        tasks_total: u32,
    },
    /// A stream's work now counts for its dependents (the model's `done`): its tasks are
    /// complete and, with worktrees, its worker has exited and what it left was processed.
    /// Its dependents may start from here.
    Done { stream: String },
    /// A `start` claimed the stream and prepares its worktree for attempt `attempt`.
    Preparing { stream: String, attempt: u32 },
    /// A worker was launched (`pid`: its supervisor, the process-group leader).
    Started {
        stream: String,
        attempt: u32,
        pid: i32,
    },
    /// A worker launched by an earlier `start` (attempt `attempt`, started at `started_at`)
    /// is watched by this one.
    Adopted {
        stream: String,
        pid: i32,
        #[serde(default)]
        attempt: u32,
        #[serde(default)]
        started_at: String,
    },
    /// A worker ended; `exit` is null when `orchestrate stop` ended it.
    Exited {
        stream: String,
        exit: Option<ExitStatus>,
        #[serde(default)]
        session_id: Option<String>,
        #[serde(default)]
        cost_usd: Option<f64>,
        #[serde(default)]
        turns: Option<u32>,
    },
    /// A worker exited with its stream incomplete; attempt `attempt` comes next.
    Retrying {
        stream: String,
        attempt: u32,
        failure: Failure,
    },
    /// Something worth knowing that changes nothing.
    Note {
        #[serde(default)]
        stream: Option<String>,
        text: String,
    },
    /// The conflict radar predicts that merging `stream`'s branch with `with` (another
    /// stream's branch, or the target) will conflict in `with.paths`.
    Conflict {
        stream: String,
        with: crate::model::ConflictWith,
    },
    /// A conflict predicted earlier is gone.
    ConflictResolved {
        stream: String,
        with: crate::model::ConflictWith,
    },
    /// The run ended (`outcome`: complete, incomplete or interrupted) with `exit_code`.
    RunEnd {
        outcome: String,
        exit_code: i32,
        #[serde(default)]
        unfinished: Vec<UnfinishedInfo>,
    },
    /// A kind this version does not know (written by a newer one).
    #[serde(other)]
    Unknown,
}

impl Entry {
    /// The `event` field: the kind stored beside the body.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RunStarted { .. } => "run_started",
            Self::Streams { .. } => "streams",
            Self::State { .. } => "state",
            Self::Progress { .. } => "progress",
            Self::Done { .. } => "done",
            Self::Preparing { .. } => "preparing",
            Self::Started { .. } => "started",
            Self::Adopted { .. } => "adopted",
            Self::Exited { .. } => "exited",
            Self::Retrying { .. } => "retrying",
            Self::Note { .. } => "note",
            Self::Conflict { .. } => "conflict",
            Self::ConflictResolved { .. } => "conflict_resolved",
            Self::RunEnd { .. } => "run_end",
            Self::Unknown => "unknown",
        }
    }

    /// The stream it is about, if one.
    pub fn stream(&self) -> Option<&str> {
        match self {
            Self::State { stream, .. }
            | Self::Progress { stream, .. }
            | Self::Done { stream }
            | Self::Preparing { stream, .. }
            | Self::Started { stream, .. }
            | Self::Adopted { stream, .. }
            | Self::Exited { stream, .. }
            | Self::Retrying { stream, .. } => Some(stream),
            Self::Note { stream, .. } => stream.as_deref(),
            _ => None,
        }
    }

    /// The entry for how a run ended.
    pub fn run_end(end: &RunEnd, exit_code: i32) -> Self {
        let (outcome, unfinished) = match end {
            RunEnd::Complete { .. } => ("complete", &[][..]),
            RunEnd::Incomplete(list) => ("incomplete", &list[..]),
            RunEnd::Interrupted(_) => ("interrupted", &[][..]),
        };
        Self::RunEnd {
            outcome: outcome.into(),
            exit_code,
            unfinished: unfinished
                .iter()
                .map(|u| UnfinishedInfo {
                    stream: u.stream.clone(),
                    state: state_name(u.state),
                    reason: u.reason.as_ref().map(reason_value),
                })
                .collect(),
        }
    }
}

/// An entry with the time it happened: one line of `start --json`, one row of the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamped {
    pub version: u32,
    /// RFC 3339 UTC, with milliseconds.
    pub time: String,
    #[serde(flatten)]
    pub entry: Entry,
}

impl Stamped {
    /// `entry`, now.
    pub fn now(entry: Entry) -> Self {
        Self {
            version: FORMAT_VERSION,
            time: crate::state::time::now_rfc3339(),
            entry,
        }
    }
}

/// A state's JSON name (`needs_attention`), as `status --json` writes it.
pub fn state_name(state: State) -> String {
    match serde_json::to_value(state) {
        Ok(serde_json::Value::String(s)) => s,
        _ => state.as_str().to_string(),
    }
}

/// The model's state of a JSON name, if this version knows it.
pub fn state_of(name: &str) -> Option<State> {
    State::ALL.into_iter().find(|s| state_name(*s) == name)
}

fn reason_value(reason: &Reason) -> serde_json::Value {
    serde_json::to_value(reason).expect("reasons serialise")
}

/// Turns the scheduler's events into entries: lifecycle events one for one, snapshots into
/// the changes of state and progress since the last one.
#[derive(Debug, Default)]
pub struct Tracker {
    /// Per stream: its last state, whether it was done, and its (tasks done, total).
    seen: HashMap<String, (State, bool, (u32, u32))>,
    started: bool,
}

impl Tracker {
    pub fn entries(&mut self, event: &Event<'_>) -> Vec<Entry> {
        let one = match event {
            Event::Snapshot { graph, model } => return self.snapshot(graph, model),
            Event::Preparing { stream, attempt } => Entry::Preparing {
                stream: stream.to_string(),
                attempt: *attempt,
            },
            Event::Started {
                stream,
                pid,
                attempt,
            } => Entry::Started {
                stream: stream.to_string(),
                attempt: *attempt,
                pid: *pid,
            },
            Event::Adopted {
                stream,
                pid,
                attempt,
                started_at,
            } => Entry::Adopted {
                stream: stream.to_string(),
                pid: *pid,
                attempt: *attempt,
                started_at: started_at.to_string(),
            },
            Event::Exited { stream, summary } => Entry::Exited {
                stream: stream.to_string(),
                exit: summary.exit,
                session_id: summary.session_id.clone(),
                cost_usd: summary.cost_usd,
                turns: summary.turns,
            },
            Event::Retrying {
                stream,
                attempt,
                why,
            } => Entry::Retrying {
                stream: stream.to_string(),
                attempt: *attempt,
                failure: (*why).clone(),
            },
            Event::Note { stream, text } => Entry::Note {
                stream: stream.map(str::to_string),
                text: text.clone(),
            },
            Event::Conflict { stream, with } => Entry::Conflict {
                stream: stream.to_string(),
                with: (*with).clone(),
            },
            Event::ConflictResolved { stream, with } => Entry::ConflictResolved {
                stream: stream.to_string(),
                with: (*with).clone(),
            },
            // Said by the snapshot that follows it, with the same state and reason.
            Event::Entered { .. } | Event::Activity { .. } | Event::PrepareProgress { .. } => {
                return Vec::new();
            }
        };
        vec![one]
    }

    fn snapshot(
        &mut self,
        graph: &crate::graph::StreamGraph,
        model: &crate::model::Model,
    ) -> Vec<Entry> {
        let mut out = Vec::new();
        let mut first_seen = Vec::new();
        for s in graph.streams() {
            let Some(view) = model.get(s.id()) else {
                continue;
            };
            let counts = s.record.counts;
            let progress = (counts.completed + counts.cancelled, counts.total);
            let before = self
                .seen
                .insert(s.id().to_string(), (view.state, view.done, progress));
            let info = || StreamInfo {
                id: s.id().to_string(),
                name: s.record.name.clone(),
                depth: s.depth,
                dependencies: s.dependencies.clone(),
                state: state_name(view.state),
                done: view.done,
                tasks_done: progress.0,
                tasks_total: progress.1,
            };
            match before {
                None if !self.started => first_seen.push(info()),
                _ => {
                    if before.map(|b| b.0) != Some(view.state) {
                        out.push(Entry::State {
                            stream: s.id().to_string(),
                            state: state_name(view.state),
                            reason: view.reason.as_ref().map(reason_value),
                        });
                    }
                    if before.map(|b| b.2) != Some(progress) {
                        out.push(Entry::Progress {
                            stream: s.id().to_string(),
                            tasks_done: progress.0,
                            tasks_total: progress.1,
                        });
                    }
                    if view.done && before.is_none_or(|b| !b.1) {
                        out.push(Entry::Done {
                            stream: s.id().to_string(),
                        });
                    }
                }
            }
        }
        if !self.started {
            self.started = true;
            out.insert(
                0,
                Entry::Streams {
                    streams: first_seen,
                },
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_back_and_unknown_kinds_are_kept_apart() {
        let stamped = Stamped::now(Entry::Exited {
            stream: "A".into(),
            exit: Some(ExitStatus::Code { code: 0 }),
            session_id: None,
            cost_usd: Some(0.5),
            turns: Some(3),
        });
        let line = serde_json::to_string(&stamped).unwrap();
        assert!(line.starts_with("{\"version\":1,\"time\":"), "{line}");
        assert!(line.contains("\"event\":\"exited\""), "{line}");
        assert_eq!(serde_json::from_str::<Stamped>(&line).unwrap(), stamped);
        let future: Stamped = serde_json::from_str(
            r#"{"version":1,"time":"2026-01-01T00:00:00.000Z","event":"parked_somewhere","stream":"A"}"#,
        )
        .unwrap();
        assert_eq!(future.entry, Entry::Unknown);
    }

    #[test]
    fn state_names_are_the_json_ones() {
        assert_eq!(state_name(State::NeedsAttention), "needs_attention");
        assert_eq!(state_of("needs_attention"), Some(State::NeedsAttention));
        assert_eq!(state_of("parked"), Some(State::Parked));
        assert_eq!(state_of("a_state_of_a_later_version"), None);
    }
}
