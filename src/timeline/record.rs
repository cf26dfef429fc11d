//! Recording a run's timeline in the state store: a [`Reporter`] that forwards every event to
//! the reporter it wraps and keeps what happened, as [`Entry`] rows of `run_events`, stamped
//! with the time the event arrived.
//!
//! Invariants: the dispatcher never waits on the database for this (rows go to a writer thread
//! with its own connection); a failed write becomes one note on the wrapped reporter, never a
//! failed run; rows are written in the order of the events, numbered from 0.

use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::{Entry, Stamped, Tracker};
use crate::scheduler::{Event, Reporter, RunEnd};
use crate::state::{RunEvent, StateStore};

/// What the writer thread is asked to do.
enum Job {
    Event(Stamped),
    End {
        at: String,
        outcome: String,
        code: i32,
    },
}

/// Tees a run's events into the state store's history; see the module header.
pub struct History<'a> {
    inner: &'a mut dyn Reporter,
    tracker: Tracker,
    run: Option<i64>,
    tx: Option<mpsc::Sender<Job>>,
    writer: Option<JoinHandle<()>>,
    failures: Arc<Mutex<Vec<String>>>,
}

/// A run begun in the history, before its events are teed: `start` learns the run's id (and
/// its first entry, for `--json`) before it builds the reporters.
pub struct Recording {
    store: Result<(StateStore, i64), String>,
    start: Stamped,
}

impl Recording {
    /// Begins a run in the store at `state_db`. A store that cannot be written is said once
    /// (as a note, when the tee starts); the run goes on unrecorded.
    pub fn begin(state_db: &Path, worktrees: bool, selection: Option<&[String]>) -> Self {
        let pid = std::process::id() as i32;
        let mut start = Stamped::now(Entry::RunStarted {
            run: None,
            pid,
            worktrees,
            selection: selection.map(<[String]>::to_vec),
        });
        let store = StateStore::open(state_db)
            .and_then(|store| {
                let id = store.begin_run(&start.time, pid, worktrees, selection)?;
                Ok((store, id))
            })
            .map_err(|e| format!("this run's timeline will not be recorded: {}", chain(&e)));
        if let (Entry::RunStarted { run, .. }, Ok((_, id))) = (&mut start.entry, &store) {
            *run = Some(*id);
        }
        Self { store, start }
    }

    /// The run's id in the history, if it is recorded.
    pub fn run_id(&self) -> Option<i64> {
        self.store.as_ref().ok().map(|(_, id)| *id)
    }

    /// The run's first entry.
    pub fn start_entry(&self) -> &Stamped {
        &self.start
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        text.push_str(&format!(": {cause}"));
        next = cause.source();
    }
    text
}

impl<'a> History<'a> {
    /// Starts teeing into `recording`'s run.
    pub fn new(recording: Recording, inner: &'a mut dyn Reporter) -> Self {
        let failures = Arc::new(Mutex::new(Vec::new()));
        let (run, tx, writer) = match recording.store {
            Ok((store, id)) => {
                let (tx, rx) = mpsc::channel();
                let sink = failures.clone();
                let writer = std::thread::Builder::new()
                    .name("run-history".into())
                    .spawn(move || write_jobs(&store, id, &rx, &sink))
                    .ok();
                (Some(id), writer.is_some().then_some(tx), writer)
            }
            Err(text) => {
                inner.event(Event::Note { stream: None, text });
                (None, None, None)
            }
        };
        let history = Self {
            inner,
            tracker: Tracker::default(),
            run,
            tx,
            writer,
            failures,
        };
        history.send(Job::Event(recording.start));
        history
    }

    /// The run's id in the history, if it is recorded.
    pub fn run_id(&self) -> Option<i64> {
        self.run
    }

    /// Records how the run ended, writes what is queued and stops the writer; returns the
    /// run's id if it was recorded.
    pub fn finish(mut self, end: &RunEnd, exit_code: i32) -> Option<i64> {
        let last = Stamped::now(Entry::run_end(end, exit_code));
        let outcome = match &last.entry {
            Entry::RunEnd { outcome, .. } => outcome.clone(),
            _ => unreachable!("made as a run end above"),
        };
        let at = last.time.clone();
        self.send(Job::Event(last));
        self.send(Job::End {
            at,
            outcome,
            code: exit_code,
        });
        self.tx = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        self.report_failures();
        self.run
    }

    fn send(&self, job: Job) {
        if let Some(tx) = &self.tx {
            // The writer only stops when we drop the sender: a send cannot fail before.
            let _ = tx.send(job);
        }
    }

    fn report_failures(&mut self) {
        let failed = std::mem::take(&mut *self.failures.lock().expect("no panics holding it"));
        for text in failed {
            self.inner.event(Event::Note { stream: None, text });
        }
    }
}

/// The writer thread: one row at a time; each distinct failure reported once.
fn write_jobs(
    store: &StateStore,
    run: i64,
    rx: &mpsc::Receiver<Job>,
    failures: &Mutex<Vec<String>>,
) {
    let mut seq = 0;
    let mut last_failure: Option<String> = None;
    for job in rx {
        let result = match job {
            Job::Event(stamped) => {
                let event = RunEvent {
                    seq,
                    stream: stamped.entry.stream().map(str::to_string),
                    kind: stamped.entry.kind().to_string(),
                    body: serde_json::to_string(&stamped.entry).expect("entries serialise"),
                    at: stamped.time,
                };
                seq += 1;
                store.append_run_event(run, &event)
            }
            Job::End { at, outcome, code } => store.end_run(run, &at, &outcome, code),
        };
        match result {
            Ok(()) => last_failure = None,
            Err(e) => {
                let text = format!("cannot record this run's timeline: {e}");
                if last_failure.as_ref() != Some(&text) {
                    failures
                        .lock()
                        .expect("no panics holding it")
                        .push(text.clone());
                    last_failure = Some(text);
                }
            }
        }
    }
}

impl Reporter for History<'_> {
    fn event(&mut self, event: Event<'_>) {
        for entry in self.tracker.entries(&event) {
            self.send(Job::Event(Stamped::now(entry)));
        }
        self.inner.event(event);
        self.report_failures();
    }

    fn wants_activity(&self) -> bool {
        self.inner.wants_activity()
    }
}
