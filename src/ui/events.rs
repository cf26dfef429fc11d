//! `start --json`: every event of the run as one JSON object per line on stdout, and nothing
//! else there (the format is `timeline::Stamped`, documented in `docs/start-json.md`). JSON
//! escapes every control character, so data from the task database or an agent cannot reach
//! a terminal raw.

use std::io::Write;

use crate::scheduler::{Event, Reporter, RunEnd};
use crate::timeline::{Entry, Stamped, Tracker};

/// Prints each entry as it happens; see the module header.
#[derive(Debug, Default)]
pub struct JsonEvents {
    tracker: Tracker,
}

impl JsonEvents {
    /// Starts with the run's first entry (`run_started`).
    pub fn new(start: &Stamped) -> Self {
        line(start);
        Self::default()
    }

    /// The last line: how the run ended, with its exit code.
    pub fn finish(self, end: &RunEnd, exit_code: i32) {
        line(&Stamped::now(Entry::run_end(end, exit_code)));
    }
}

fn line(stamped: &Stamped) {
    let text = serde_json::to_string(stamped).expect("entries serialise");
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) must not stop the run: the workers are what matters.
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

impl Reporter for JsonEvents {
    fn event(&mut self, event: Event<'_>) {
        for entry in self.tracker.entries(&event) {
            line(&Stamped::now(entry));
        }
    }
}
