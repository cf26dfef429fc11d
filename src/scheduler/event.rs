//! What the scheduler tells its reporter, and how a run ends. The reporter (in `ui/`) decides
//! how events look; the scheduler never prints.

use crate::taskdb::Snapshot;

/// Something that happened during a run.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// A worker was launched.
    Started {
        stream: &'a str,
        pid: i32,
        attempt: u32,
    },
    /// A worker launched by an earlier `start` is alive and is being watched.
    Adopted {
        stream: &'a str,
        pid: i32,
    },
    /// A worker ended (its exit status, session, cost and turns).
    Exited {
        stream: &'a str,
        summary: String,
    },
    /// The stream's tasks are complete.
    Complete {
        stream: &'a str,
    },
    /// A worker exited with the stream incomplete and will be started again.
    Retrying {
        stream: &'a str,
        attempt: u32,
        why: String,
    },
    Failed {
        stream: &'a str,
        reason: String,
    },
    Skipped {
        stream: &'a str,
        reason: String,
    },
    Stopped {
        stream: &'a str,
    },
    Blocked {
        stream: &'a str,
        reason: String,
    },
    /// Something the user should know that changes nothing (placement notes, read errors).
    Note {
        stream: Option<&'a str>,
        text: String,
    },
    /// The latest thing a running worker did (from its log).
    Activity {
        stream: &'a str,
        text: String,
    },
    /// A fresh read of the task database.
    Snapshot(&'a Snapshot),
}

/// Receives events; implemented by `ui::run`.
pub trait Reporter {
    fn event(&mut self, event: Event<'_>);

    /// Whether to read workers' logs for [`Event::Activity`] (only the bars show it).
    fn wants_activity(&self) -> bool {
        false
    }
}

/// A stream that did not complete, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    pub stream: String,
    /// `failed`, `stopped`, `blocked`, `skipped`, `waiting`, `cancelled`, …
    pub state: &'static str,
    pub why: String,
}

/// How `Scheduler::run` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// Every stream of the run is complete.
    AllComplete,
    /// Nothing runs and nothing can become ready.
    Incomplete(Vec<Unfinished>),
    /// Ctrl-C or SIGTERM: these workers (stream, pid) keep running.
    Interrupted(Vec<(String, i32)>),
}
