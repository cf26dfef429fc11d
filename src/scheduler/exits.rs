//! How a worker's end becomes typed data: its exit status, what its agent reported, and —
//! when the stream is left incomplete — the [`Failure`] with the agent's own error text and
//! the last lines of the last attempt's log (never lines of earlier attempts or runs).

use std::path::Path;

use super::ExitSummary;
use crate::model::{ExitStatus, Failure};
use crate::state::WorkerRecord;
use crate::worker::agent::{Outcome, Transcript};
use crate::worker::{self, render, supervise};

/// How much of the end of an attempt's log is read for what its agent reported.
const OUTCOME_BYTES: u64 = 4 << 20;

/// How the attempt in `rec` ended as its agent reported it (`NoResult` when it printed no
/// result: judge by the exit status then).
pub fn outcome(rec: Option<&WorkerRecord>, log: &Path) -> Outcome {
    let offset = rec.map_or(0, |r| r.log_offset);
    let len = std::fs::metadata(log).map_or(0, |m| m.len());
    let from = offset.max(len.saturating_sub(OUTCOME_BYTES));
    let mut transcript = Transcript::default();
    if let Some(bytes) = worker::read_from(log, from, OUTCOME_BYTES) {
        transcript.feed(&bytes);
        transcript.finish();
    }
    transcript.outcome()
}

/// Log lines quoted in a failure.
const REASON_LINES: usize = 5;
/// How much of the end of an attempt's log is read for its reason.
const REASON_BYTES: u64 = 64 * 1024;

/// The exit status a worker row records.
pub fn exit_status(rec: &WorkerRecord) -> ExitStatus {
    match (rec.exit_code, rec.signal) {
        (Some(code), _) => ExitStatus::Code { code },
        (_, Some(signal)) => ExitStatus::Signal { signal },
        _ => ExitStatus::Lost,
    }
}

/// What `Event::Exited` carries.
pub fn summary(rec: &WorkerRecord) -> ExitSummary {
    ExitSummary {
        exit: (rec.outcome.as_deref() != Some("stopped")).then(|| exit_status(rec)),
        session_id: rec.session_id.clone(),
        cost_usd: rec.cost_usd,
        turns: rec.turns,
    }
}

/// The worker could not be run at all (the program is missing, not executable): retrying
/// cannot help.
pub fn cannot_run(rec: &WorkerRecord) -> Option<Failure> {
    let error = rec.error.as_ref()?;
    (rec.exit_code == Some(supervise::CANNOT_EXEC)).then(|| Failure::CannotRun {
        program: rec
            .command
            .as_deref()
            .and_then(|c| c.split_whitespace().next())
            .unwrap_or_default()
            .to_string(),
        detail: error.clone(),
    })
}

/// Why the attempt in `rec` left its stream incomplete.
pub fn failure(rec: Option<&WorkerRecord>, log: &Path, attempts: u32) -> Failure {
    if let Some(f) = rec.and_then(cannot_run) {
        return f;
    }
    let text = attempt_text(log, rec.map_or(0, |r| r.log_offset));
    Failure::Exited {
        attempts,
        exit: rec.map_or(ExitStatus::Lost, exit_status),
        agent_error: rec
            .and_then(|r| r.error.clone())
            .or_else(|| render::error_result(&text)),
        log_lines: render::last_lines(&text, REASON_LINES),
    }
}

/// The part of the log this attempt wrote: from its offset, at most the last
/// [`REASON_BYTES`], without a partial first line.
fn attempt_text(log: &Path, offset: u64) -> String {
    let Ok(len) = std::fs::metadata(log).map(|m| m.len()) else {
        return String::new();
    };
    let from_end = len.saturating_sub(offset).min(REASON_BYTES);
    worker::tail(log, from_end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn record(exit_code: Option<i32>, signal: Option<i32>, offset: u64) -> WorkerRecord {
        WorkerRecord {
            id: 1,
            stream: "A".into(),
            attempt: 1,
            claimer: None,
            identity: None,
            worker_pid: None,
            log_path: PathBuf::from("/nonexistent"),
            command: Some("claude -p {prompt}".into()),
            dir: None,
            branch: None,
            base: None,
            started_at: String::new(),
            ended_at: Some(String::new()),
            exit_code,
            signal,
            outcome: Some("exited".into()),
            error: None,
            session_id: None,
            cost_usd: None,
            turns: None,
            sandbox: None,
            log_offset: offset,
            finalized_at: None,
            kind: crate::state::RowKind::Worker,
            agent_version: None,
            input_tokens: None,
            output_tokens: None,
        }
    }

    #[test]
    fn a_failure_quotes_only_the_last_attempt_and_prefers_the_agents_words() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("a.log");
        let first = "==== header 1\nold trouble\n==== orchestrate: worker exited with code 1\n";
        let second = "==== header 2\n--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons\n==== orchestrate: worker exited with code 1\n";
        std::fs::write(&log, format!("{first}{second}")).unwrap();
        let f = failure(Some(&record(Some(1), None, first.len() as u64)), &log, 2);
        let Failure::Exited {
            attempts,
            exit,
            agent_error,
            log_lines,
        } = f
        else {
            panic!("an exit");
        };
        assert_eq!((attempts, exit), (2, ExitStatus::Code { code: 1 }));
        assert_eq!(agent_error, None);
        assert_eq!(
            log_lines,
            [
                "--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons"
            ]
        );

        std::fs::write(
            &log,
            "{\"type\":\"result\",\"is_error\":true,\"result\":\"Not logged in\"}\n",
        )
        .unwrap();
        let Failure::Exited { agent_error, .. } = failure(Some(&record(Some(1), None, 0)), &log, 1)
        else {
            panic!("an exit");
        };
        assert_eq!(agent_error.as_deref(), Some("Not logged in"));
        let killed = failure(
            Some(&record(None, Some(9), 0)),
            Path::new("/nonexistent"),
            1,
        );
        assert!(matches!(
            killed,
            Failure::Exited {
                exit: ExitStatus::Signal { signal: 9 },
                ..
            }
        ));
    }
}
