//! Orchestration activity in tc's own log: a [`Reporter`] that forwards every event to the
//! reporter it wraps (the live view) and tees what the run does to a stream (worker started,
//! adopted, exited, retried; the stream entering complete, failed, blocked, skipped, stopped,
//! …) into the tc store's `agent_log`, so `tc log` and `tc watch` show the run. It words events
//! as the live view does (`ui::reason`); the SQL is `taskdb::ActivityLog`'s.
//!
//! Invariants: the dispatcher never waits on the database for this (rows go to a writer thread,
//! one short autocommitted `INSERT` each, with tc's busy timeout); a failed write becomes a
//! note on the live view, never a failed run; rows are written in the order of the events.

use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::scheduler::{Event, Reporter};
use crate::taskdb::ActivityLog;

/// One `agent_log` row to write.
struct Entry {
    stream: String,
    action: String,
    details: String,
}

/// Tees a run's events into tc's `agent_log`; see the module header.
pub struct TcActivity<'a> {
    inner: &'a mut dyn Reporter,
    tx: Option<mpsc::Sender<Entry>>,
    writer: Option<JoinHandle<()>>,
    /// Write failures, reported by the next event (the writer thread cannot reach the UI).
    failures: Arc<Mutex<Vec<String>>>,
}

impl<'a> TcActivity<'a> {
    /// Starts the writer for the tc store at `db`. A store that cannot be opened for writing
    /// is reported once through `inner`; the run goes on without the log.
    pub fn new(db: &Path, inner: &'a mut dyn Reporter) -> Self {
        let failures = Arc::new(Mutex::new(Vec::new()));
        let (tx, writer) = match ActivityLog::open(db) {
            Ok(log) => {
                let (tx, rx) = mpsc::channel();
                let sink = failures.clone();
                let writer = std::thread::Builder::new()
                    .name("tc-agent-log".into())
                    .spawn(move || write_entries(log, &rx, &sink))
                    .ok();
                (writer.is_some().then_some(tx), writer)
            }
            Err(e) => {
                inner.event(Event::Note {
                    stream: None,
                    text: format!("tc's agent_log will not show this run: {}", chain(&e)),
                });
                (None, None)
            }
        };
        Self {
            inner,
            tx,
            writer,
            failures,
        }
    }

    /// Writes what is queued and stops the writer (at the end of the run).
    pub fn finish(mut self) {
        self.tx = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        self.report_failures();
    }

    fn report_failures(&mut self) {
        let failed: Vec<String> = std::mem::take(
            &mut *self
                .failures
                .lock()
                .expect("the writer never panics holding it"),
        );
        for text in failed {
            self.inner.event(Event::Note { stream: None, text });
        }
    }
}

/// The writer thread: one row at a time, failures collected (each distinct one once).
fn write_entries(mut log: ActivityLog, rx: &mpsc::Receiver<Entry>, failures: &Mutex<Vec<String>>) {
    let mut last_failure = None;
    for entry in rx {
        if let Err(e) = log.record(&entry.stream, &entry.action, &entry.details) {
            let text = format!(
                "could not write to tc's agent_log ({} of {}): {}",
                entry.action,
                entry.stream,
                chain(&e)
            );
            let kind = chain(&e);
            if last_failure.as_ref() != Some(&kind) {
                failures.lock().expect("no panics holding it").push(text);
                last_failure = Some(kind);
            }
        } else {
            last_failure = None;
        }
    }
}

fn chain(e: &crate::taskdb::TaskDbError) -> String {
    let mut text = e.to_string();
    let mut next = std::error::Error::source(e);
    while let Some(cause) = next {
        text.push_str(&format!(": {cause}"));
        next = cause.source();
    }
    text
}

/// The `agent_log` row an event makes, if any: (stream, action, details).
fn entry_of(event: &Event<'_>) -> Option<Entry> {
    let (stream, action, details) = match event {
        Event::Started {
            stream,
            pid,
            attempt,
        } => (
            *stream,
            "worker_started".to_string(),
            format!("worker started (attempt {attempt}, pid {pid})"),
        ),
        Event::Adopted { stream, pid, .. } => (
            *stream,
            "worker_adopted".to_string(),
            format!("worker pid {pid}, started by another `orchestrate start`, is watched"),
        ),
        Event::Exited { stream, summary } => (
            *stream,
            "worker_exited".to_string(),
            super::run::exit_words(summary),
        ),
        Event::Retrying {
            stream,
            attempt,
            why,
        } => (
            *stream,
            "worker_retry".to_string(),
            format!(
                "starting attempt {attempt}: {}",
                super::reason::failure_summary(why)
            ),
        ),
        Event::Entered {
            stream,
            state,
            reason,
        } => (
            *stream,
            format!("stream_{}", state.as_str().replace(' ', "_")),
            match reason {
                Some(reason) => super::reason::summary(reason),
                None => format!("stream {}", state.as_str()),
            },
        ),
        Event::Preparing { .. }
        | Event::PrepareProgress { .. }
        | Event::Note { .. }
        | Event::Conflict { .. }
        | Event::ConflictResolved { .. }
        | Event::Activity { .. }
        | Event::Snapshot { .. } => return None,
    };
    Some(Entry {
        stream: stream.to_string(),
        action,
        details,
    })
}

impl Reporter for TcActivity<'_> {
    fn event(&mut self, event: Event<'_>) {
        if let (Some(tx), Some(entry)) = (&self.tx, entry_of(&event)) {
            // The writer only stops when we drop the sender: a send cannot fail before.
            let _ = tx.send(entry);
        }
        self.inner.event(event);
        self.report_failures();
    }

    fn wants_activity(&self) -> bool {
        self.inner.wants_activity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_events_become_rows_and_chatter_does_not() {
        let started = entry_of(&Event::Started {
            stream: "Stream-A",
            pid: 42,
            attempt: 2,
        })
        .unwrap();
        assert_eq!(
            (started.stream.as_str(), started.action.as_str()),
            ("Stream-A", "worker_started")
        );
        assert_eq!(started.details, "worker started (attempt 2, pid 42)");
        assert!(
            entry_of(&Event::Activity {
                stream: "A",
                text: "x".into()
            })
            .is_none()
        );
        assert!(
            entry_of(&Event::Note {
                stream: None,
                text: "x".into()
            })
            .is_none()
        );
    }
}
