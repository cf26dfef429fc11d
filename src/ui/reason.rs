//! The one place where a stream's typed [`Reason`] (and a [`Failure`]) becomes words: the
//! summary on a status row or an event line, the lines under it (a failure's log lines, as
//! real lines), and what the user can do next. Every piece of data is escaped with
//! [`super::printable`] as it goes in.

use super::printable as p;
use crate::model::{
    Attention, Block, ExitStatus, Failure, Park, ParkCause, Reason, State, VerifyRun, Wait,
};
use std::fmt::Write as _;

/// One line: why the stream is in its state.
pub fn summary(reason: &Reason) -> String {
    match reason {
        Reason::Waiting { on } => format!("waits for {}", waits(on)),
        Reason::BlockedTasks { tasks } if tasks.is_empty() => "every open task is blocked".into(),
        Reason::BlockedTasks { tasks } => {
            let list: Vec<String> = tasks
                .iter()
                .map(|t| {
                    format!(
                        "{} ({}): {}",
                        p(&t.id),
                        p(&t.title),
                        p(t.reason.as_deref().unwrap_or("no reason given"))
                    )
                })
                .collect();
            format!("blocked task {}", list.join("; "))
        }
        Reason::Blocked(block) => block_summary(block),
        Reason::NeedsAttention(attention) => attention_summary(attention),
        Reason::Failed(failure) => failure_summary(failure),
        Reason::Stopped => "stopped by the user".into(),
        Reason::Skipped {
            dependency,
            dependency_state,
        } => format!(
            "{} {}",
            p(dependency),
            match dependency_state {
                State::Cancelled => "was cancelled",
                State::Skipped => "was skipped",
                _ => "failed",
            }
        ),
        Reason::Paused => "paused in the task store".into(),
        Reason::Parked { park, hit_by } => park_summary(park, hit_by.as_deref()),
        Reason::VerifyFailed(run) => format!(
            "{}; its worker goes back to work (attempt {} of the retries)",
            verify_summary(run),
            run.attempts + 1
        ),
        Reason::BudgetReached => "the run's budget is spent (--run-budget-usd)".into(),
    }
}

/// "parked until 14:05 UTC (five_hour limit), in 12m", or why it waits on another stream.
fn park_summary(park: &Park, hit_by: Option<&str>) -> String {
    let when = until_words(park.until);
    let what = match &park.cause {
        ParkCause::UsageLimit {
            limit_type,
            reset_known,
            ..
        } => {
            let limit = match limit_type {
                Some(t) => format!("{} limit", p(t)),
                None => "usage limit".to_string(),
            };
            if *reset_known {
                limit
            } else {
                format!("{limit}, backing off")
            }
        }
        ParkCause::Overloaded { status, tries, .. } => {
            format!("the API answered {status}; back-off {tries}")
        }
    };
    match hit_by {
        Some(by) => format!("parked until {when}: {} hit a {what}", p(by)),
        None => format!("parked until {when} ({what})"),
    }
}

/// "14:05:30 UTC, in 12m 30s" (or "now" once it has passed).
fn until_words(unix: i64) -> String {
    let now = crate::state::time::now_unix();
    let at = jiff::Timestamp::from_second(unix)
        .map(|t| t.strftime("%H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| unix.to_string());
    if unix <= now {
        return format!("{at}, now");
    }
    let left = indicatif::HumanDuration(std::time::Duration::from_secs((unix - now) as u64));
    format!("{at}, in {left}")
}

fn verify_summary(run: &VerifyRun) -> String {
    let how = match run.exit {
        Some(ExitStatus::Code { code }) => format!("exited with code {code}"),
        Some(ExitStatus::Signal { signal }) => format!("was killed by signal {signal}"),
        Some(ExitStatus::Lost) => "ended without an exit status".into(),
        None => "ran out of time (verify_timeout)".into(),
    };
    format!("verify failed: `{}` {how}", p(&run.command))
}

/// Lines to show under the summary (a failure's last log lines), each escaped.
pub fn detail_lines(reason: &Reason) -> Vec<String> {
    match reason {
        Reason::Failed(Failure::Exited { log_lines, .. }) => {
            log_lines.iter().map(|l| p(l).into_owned()).collect()
        }
        Reason::Failed(Failure::VerifyFailed { verify }) | Reason::VerifyFailed(verify) => {
            let keep = verify.output_lines.len().saturating_sub(5);
            verify.output_lines[keep..]
                .iter()
                .map(|l| p(l).into_owned())
                .collect()
        }
        _ => Vec::new(),
    }
}

/// What the user can do about it, naming the stream.
pub fn next_step(stream: &str, reason: &Reason) -> Option<String> {
    let s = super::shell_word(stream);
    Some(match reason {
        Reason::Waiting { .. } | Reason::Skipped { .. } => return None,
        Reason::BlockedTasks { .. } => {
            format!(
                "unblock its tasks (`orchestrate task list --stream {s}`), then `orchestrate start`"
            )
        }
        Reason::Blocked(Block::BaseConflict { branches, .. }) => {
            let branch = format!("stream/{}", crate::names::slug(stream));
            format!(
                "merge {} by hand into a new branch {} and commit, then `orchestrate start {s}`",
                branches
                    .iter()
                    .map(|b| p(b).into_owned())
                    .collect::<Vec<_>>()
                    .join(" and "),
                p(&branch)
            )
        }
        Reason::Blocked(Block::WorktreeInTheWay { path, .. }) => format!(
            "move {} away (or remove it if it holds nothing you need), then `orchestrate start {s}`",
            p(&path.display().to_string())
        ),
        Reason::Blocked(Block::CheckedOutElsewhere { path, .. }) => format!(
            "switch {} to another branch, then `orchestrate start {s}`",
            p(&path.display().to_string())
        ),
        Reason::Blocked(Block::UnrelatedBranch { branch, .. }) => format!(
            "if {} is not this run's, rename it (`git branch -m {} {}`), then `orchestrate start {s}`",
            p(branch),
            super::shell_word(branch),
            super::shell_word(&format!("{branch}-unrelated"))
        ),
        Reason::NeedsAttention(Attention::DirtyFinish { dir, .. }) => format!(
            "commit or discard the changes in {} (or set `auto_commit = true`), then `orchestrate start`",
            p(&dir.display().to_string())
        ),
        Reason::NeedsAttention(Attention::LeftBranch { dir, branch, .. }) => format!(
            "bring the work in {} back onto {} (`git -C {} switch {}`, then merge or cherry-pick), then `orchestrate start`",
            p(&dir.display().to_string()),
            p(branch),
            super::shell_word(&dir.display().to_string()),
            super::shell_word(branch)
        ),
        Reason::NeedsAttention(Attention::Orphaned { .. }) => format!(
            "`orchestrate clean {s}` registers it with git again, keeping every file; then look at its changes"
        ),
        Reason::Failed(failure) => {
            let logs =
                format!("`orchestrate logs {s}` shows its log; `orchestrate start` tries it again");
            match failure {
                Failure::Exited { log_lines, .. } => {
                    match crate::worker::sandbox::refusal_in(log_lines.iter().map(String::as_str)) {
                        // Its log header says whether it was sandboxed; `logs` checks.
                        Some(refused) => format!(
                            "{}: if the sandbox refused it, {}; {logs}",
                            p(&refused),
                            crate::worker::sandbox::SANDBOX_WRITABLE_HINT
                        ),
                        None => logs,
                    }
                }
                _ => logs,
            }
        }
        Reason::Stopped => format!("`orchestrate start {s}` starts it again"),
        Reason::Paused => "set the stream active again in the task store (`tc`)".into(),
        Reason::Parked { .. } => format!(
            "it resumes by itself when the time comes; `orchestrate start {s}` tries it now"
        ),
        Reason::VerifyFailed(_) => return None,
        Reason::BudgetReached => {
            "raise --run-budget-usd (or run_budget_usd in the config) and `orchestrate start` again"
                .into()
        }
    })
}

fn waits(on: &[Wait]) -> String {
    on.iter()
        .map(|w| {
            let mut why = if w.exit_unprocessed {
                "its worker's exit is not processed yet".to_string()
            } else {
                w.state.as_str().to_string()
            };
            if !w.claims.is_empty() {
                let _ = write!(why, "; both claim {}: --strict-files", list(&w.claims));
            }
            format!("{} ({why})", p(&w.stream))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn block_summary(block: &Block) -> String {
    match block {
        Block::BaseConflict {
            branches, paths, ..
        } => format!(
            "merging its dependencies {} conflicts in: {}",
            branches
                .iter()
                .map(|b| p(b).into_owned())
                .collect::<Vec<_>>()
                .join(" and "),
            list(paths)
        ),
        Block::WorktreeInTheWay { path, branch } => format!(
            "{} is in the way of its worktree (it is not a worktree of {})",
            p(&path.display().to_string()),
            p(branch)
        ),
        Block::CheckedOutElsewhere { branch, path } => format!(
            "its branch {} is checked out in {}",
            p(branch),
            p(&path.display().to_string())
        ),
        Block::UnrelatedBranch {
            branch,
            base,
            target,
        } => format!(
            "its branch {} exists and shares no history with the run's base ({}{}): work on it could not be merged back",
            p(branch),
            target
                .as_deref()
                .map(|t| format!("{} at ", p(t)))
                .unwrap_or_default(),
            p(&base[..base.len().min(10)])
        ),
    }
}

fn attention_summary(attention: &Attention) -> String {
    match attention {
        Attention::DirtyFinish { dir, files } => format!(
            "finished with uncommitted changes in {}: {}",
            p(&dir.display().to_string()),
            list(files)
        ),
        Attention::LeftBranch {
            dir,
            branch,
            head_branch,
            head,
        } => format!(
            "its worktree {} is on {} instead of {}",
            p(&dir.display().to_string()),
            match head_branch {
                Some(b) => format!("branch {}", p(b)),
                None => format!("a detached HEAD ({})", p(&head[..head.len().min(10)])),
            },
            p(branch)
        ),
        Attention::Orphaned { dir, admin } => format!(
            "git no longer knows its worktree {}: its record {} was deleted, so what is uncommitted there is invisible to git and to its dependents",
            p(&dir.display().to_string()),
            p(&admin.display().to_string())
        ),
    }
}

/// One line for a failure: how many attempts, how it ended, what the agent said.
pub fn failure_summary(failure: &Failure) -> String {
    match failure {
        Failure::Exited {
            attempts,
            exit,
            agent_error,
            ..
        } => {
            let mut text = format!(
                "failed after {attempts} attempt{}: {}",
                if *attempts == 1 { "" } else { "s" },
                exit_words(*exit)
            );
            if *exit == (ExitStatus::Code { code: 0 }) {
                text.push_str(" leaving tasks open");
            }
            if let Some(said) = agent_error {
                text.push_str(&format!("; the agent said: {}", p(said)));
            }
            text
        }
        Failure::CannotRun { program, detail } => {
            format!(
                "cannot run the worker program `{}`: {}",
                p(program),
                p(detail)
            )
        }
        Failure::Prepare { detail } => format!("its worktree could not be prepared: {}", p(detail)),
        Failure::BadTaskData { what } => format!(
            "{} contains a NUL byte, which cannot be passed to a worker; remove it from the task database",
            p(what)
        ),
        Failure::VerifyFailed { verify } => format!(
            "{} (after {} attempt{})",
            verify_summary(verify),
            verify.attempts,
            if verify.attempts == 1 { "" } else { "s" }
        ),
        Failure::BudgetExceeded { message } => format!(
            "its worker reached its spending cap (--max-budget-usd): {}",
            p(message)
        ),
        Failure::Unavailable {
            status,
            tries,
            message,
        } => format!(
            "the API kept failing ({status}) through {tries} back-offs: {}",
            p(message)
        ),
        Failure::Legacy { text } => p(text).into_owned(),
    }
}

/// "its worker exited with code 1", "… was killed by signal 9", …
pub fn exit_words(exit: ExitStatus) -> String {
    match exit {
        ExitStatus::Code { code } => format!("its worker exited with code {code}"),
        ExitStatus::Signal { signal } => format!("its worker was killed by signal {signal}"),
        ExitStatus::Lost => "its worker's supervisor was killed before recording an exit".into(),
    }
}

/// Two streams that may run at the same time and claim the same files, in a sentence.
pub fn overlap_line(o: &crate::claims::Overlap) -> String {
    format!(
        "{} and {} may run at the same time and both claim {}",
        p(&o.earlier),
        p(&o.later),
        list(&o.paths)
    )
}

/// The other side of a predicted conflict, escaped: "Stream-C" or "the target main".
fn other_side(with: &crate::model::ConflictWith) -> String {
    match &with.stream {
        Some(s) => p(s).into_owned(),
        None => format!("the target {}", p(&with.branch)),
    }
}

/// A predicted conflict as an event line.
pub fn conflict_line(stream: &str, with: &crate::model::ConflictWith) -> String {
    format!(
        "{} and {} will conflict when merged, in {} (predicted from their branches now; both \
         keep running)",
        p(stream),
        other_side(with),
        list(&with.paths)
    )
}

/// A predicted conflict that went away, as an event line.
pub fn conflict_resolved_line(stream: &str, with: &crate::model::ConflictWith) -> String {
    format!("{} and {} no longer conflict", p(stream), other_side(with))
}

/// A stream's predicted conflicts as a status note: "conflicts with Stream-C in x.rs".
pub fn conflicts_note(conflicts: &[crate::model::ConflictWith]) -> Option<String> {
    let parts: Vec<String> = conflicts
        .iter()
        .map(|c| format!("{} in {}", other_side(c), list(&c.paths)))
        .collect();
    (!parts.is_empty()).then(|| format!("will conflict with {}", parts.join("; ")))
}

/// The first few items of a list (escaped), then "and N more".
pub fn list(items: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = items
        .iter()
        .take(SHOWN)
        .map(|i| p(i).into_owned())
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        text.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_read_as_lines_with_data_escaped() {
        let reason = Reason::Failed(Failure::Exited {
            attempts: 2,
            exit: ExitStatus::Code { code: 1 },
            agent_error: Some("Not logged in\u{1b}[2J".into()),
            log_lines: vec!["first".into(), "evil \u{1b}]0;x\u{7}".into()],
        });
        assert_eq!(
            summary(&reason),
            "failed after 2 attempts: its worker exited with code 1; the agent said: Not logged in\\u{1b}[2J"
        );
        assert_eq!(detail_lines(&reason), ["first", "evil \\u{1b}]0;x\\u{7}"]);
        assert!(
            next_step("A", &reason)
                .unwrap()
                .contains("orchestrate logs A")
        );
    }

    #[test]
    fn a_base_conflict_names_the_files_and_the_way_out() {
        let reason = Reason::Blocked(Block::BaseConflict {
            branches: vec!["stream/B".into(), "stream/C".into()],
            paths: vec!["shared.txt".into()],
            tips: vec![],
        });
        assert_eq!(
            summary(&reason),
            "merging its dependencies stream/B and stream/C conflicts in: shared.txt"
        );
        let next = next_step("Z", &reason).unwrap();
        assert!(
            next.contains("stream/Z") && next.contains("orchestrate start Z"),
            "{next}"
        );
    }
}
