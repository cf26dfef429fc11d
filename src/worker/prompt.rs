//! The worker prompt: the installed template (or the embedded default) filled with the stream's
//! id, name, dependencies, tasks, worktree, branch and database, in one pass ([`template`]):
//! whatever the task database holds arrives in the prompt as written.

use std::path::Path;

use super::template;
use crate::taskdb::Task;

/// The default template, as installed by set-up.
pub const DEFAULT_TEMPLATE: &str = include_str!("../../templates/worker-prompt.md");

/// What the template's `{{…}}` placeholders are filled with.
pub struct PromptVars<'a> {
    pub stream_id: &'a str,
    pub stream_name: &'a str,
    pub dependencies: &'a [String],
    pub tasks: &'a [Task],
    pub worktree: &'a Path,
    pub branch: Option<&'a str>,
    pub db: &'a Path,
    /// How to mark a task in the store in use (`StoreKind::task_commands`).
    pub task_commands: &'a str,
}

/// The default continuation prompt of a resumed session, as installed by set-up.
pub const DEFAULT_RESUME_TEMPLATE: &str = include_str!("../../templates/worker-resume.md");

/// What ended a stream's previous attempt, for the continuation prompt.
#[derive(Debug, Clone, PartialEq)]
pub enum Happened {
    /// The worker ended with the stream's tasks open.
    Failed(crate::model::Failure),
    /// The API refused the worker (a usage limit, or overload); the wait is over.
    Parked(crate::model::ParkCause),
    /// The tasks were complete but the verify command failed.
    Verify(crate::model::VerifyRun),
}

impl Happened {
    /// One word for `ORCHESTRATE_PREVIOUS_OUTCOME`: `failed`, `usage_limit`, `overloaded` or
    /// `verify_failed`.
    pub fn word(&self) -> &'static str {
        match self {
            Self::Failed(_) => "failed",
            Self::Parked(crate::model::ParkCause::UsageLimit { .. }) => "usage_limit",
            Self::Parked(crate::model::ParkCause::Overloaded { .. }) => "overloaded",
            Self::Verify(_) => "verify_failed",
        }
    }

    /// A paragraph for the agent: what went wrong, in plain words, with the output it needs.
    pub fn describe(&self) -> String {
        use crate::model::{ExitStatus, Failure, ParkCause};
        let exit = |e: &Option<ExitStatus>| match e {
            Some(ExitStatus::Code { code }) => format!("exited with code {code}"),
            Some(ExitStatus::Signal { signal }) => format!("was killed by signal {signal}"),
            Some(ExitStatus::Lost) => "ended without an exit status".to_string(),
            None => "ran out of time and was stopped".to_string(),
        };
        let block = |lines: &[String]| format!("```\n{}\n```", lines.join("\n"));
        match self {
            Self::Failed(Failure::Exited {
                exit: status,
                agent_error,
                log_lines,
                ..
            }) => {
                let mut text = format!(
                    "Your previous attempt {} with tasks of this stream still open.",
                    exit(&Some(*status))
                );
                if let Some(said) = agent_error {
                    text.push_str(&format!(" It ended with this error: {said}"));
                }
                if !log_lines.is_empty() {
                    text.push_str(&format!(
                        "\n\nThe last lines of its output:\n\n{}",
                        block(log_lines)
                    ));
                }
                text
            }
            Self::Failed(other) => format!("Your previous attempt ended: {other:?}."),
            Self::Parked(ParkCause::UsageLimit { limit_type, .. }) => format!(
                "Your previous attempt was stopped by the API's usage limit{}. The limit has \
                 reset; nothing you did caused it.",
                limit_type
                    .as_deref()
                    .map(|t| format!(" ({t})"))
                    .unwrap_or_default()
            ),
            Self::Parked(ParkCause::Overloaded { status, .. }) => format!(
                "Your previous attempt was stopped because the API was unavailable (HTTP \
                 {status}). It has had time to recover; nothing you did caused it."
            ),
            Self::Verify(run) => format!(
                "Every task of this stream was marked completed, but the verification command \
                 `{}` {}. Fix what it reports, commit, and make sure it passes before you exit. \
                 The last lines of its output:\n\n{}",
                run.command,
                exit(&run.exit),
                block(&run.output_lines)
            ),
        }
    }
}

/// What the continuation prompt's placeholders are filled with.
pub struct ResumeVars<'a> {
    pub stream_id: &'a str,
    pub stream_name: &'a str,
    pub attempt: u32,
    pub tasks: &'a [Task],
    pub worktree: &'a Path,
    pub branch: Option<&'a str>,
    pub happened: &'a Happened,
}

/// Fills the continuation prompt of a resumed session, in one pass.
pub fn render_resume(text: &str, v: &ResumeVars<'_>) -> String {
    let (worktree, attempt) = (v.worktree.display().to_string(), v.attempt.to_string());
    let branch = match v.branch {
        Some(b) => format!("`{b}`"),
        None => "the project's current branch".to_string(),
    };
    template::fill(
        text,
        template::PROMPT,
        &[
            ("stream_id", v.stream_id),
            ("stream_name", v.stream_name),
            ("attempt", &attempt),
            ("tasks", &task_lines(v.tasks)),
            ("worktree", &worktree),
            ("branch", &branch),
            ("what_happened", &v.happened.describe()),
        ],
    )
}

/// The project's installed template if readable, else the embedded default.
pub fn load_template(installed: &Path) -> String {
    load_template_or(installed, DEFAULT_TEMPLATE)
}

/// The installed template at `installed` if readable, else `default`.
pub fn load_template_or(installed: &Path, default: &str) -> String {
    std::fs::read_to_string(installed).unwrap_or_else(|_| default.to_string())
}

/// Fills the template `text`. Unknown `{{…}}` stay as written, so a typo shows in the prompt.
pub fn render(text: &str, v: &PromptVars<'_>) -> String {
    let deps = if v.dependencies.is_empty() {
        "none".to_string()
    } else {
        v.dependencies.join(", ")
    };
    let tasks = task_lines(v.tasks);
    let branch = match v.branch {
        Some(b) => format!("`{b}`"),
        None => "the project's current branch (shared checkout)".to_string(),
    };
    let (worktree, db) = (v.worktree.display().to_string(), v.db.display().to_string());
    template::fill(
        text,
        template::PROMPT,
        &[
            ("stream_id", v.stream_id),
            ("stream_name", v.stream_name),
            ("dependencies", &deps),
            ("tasks", &tasks),
            ("worktree", &worktree),
            ("branch", &branch),
            ("db", &db),
            ("task_commands", v.task_commands),
        ],
    )
}

/// The task list as the prompts show it.
fn task_lines(tasks: &[Task]) -> String {
    if tasks.is_empty() {
        return "(no tasks found)".to_string();
    }
    tasks
        .iter()
        .map(|t| {
            let mut line = format!("- `{}` [{}] {}", t.id, t.status, t.title.trim());
            if let Some(reason) = t.blocked_reason.as_deref().filter(|r| !r.is_empty()) {
                line.push_str(&format!(" (blocked: {reason})"));
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taskdb::TaskStatus;

    fn task(title: &str) -> Task {
        Task {
            id: "T-1".into(),
            title: title.into(),
            description: None,
            status: TaskStatus::Pending,
            stream_id: Some("S".into()),
            assigned_agent: None,
            blocked_reason: None,
            notes: None,
            created_at: None,
            updated_at: None,
            archived: false,
            metadata: serde_json::Value::Null,
        }
    }

    #[test]
    fn values_are_inserted_as_written_and_never_filled_again() {
        let tasks = [task("{{db}} {{worktree}} {{tasks}}")];
        let text = render(
            "{{stream_id}}|{{stream_name}}|{{tasks}}|{{db}}|{{nope}}",
            &PromptVars {
                stream_id: "{{stream_name}}",
                stream_name: "{{tasks}}",
                dependencies: &[],
                tasks: &tasks,
                worktree: Path::new("/w"),
                branch: None,
                db: Path::new("/t.db"),
                task_commands: "{{db}}",
            },
        );
        assert_eq!(
            text,
            "{{stream_name}}|{{tasks}}|- `T-1` [pending] {{db}} {{worktree}} {{tasks}}|/t.db|{{nope}}"
        );
    }

    #[test]
    fn fills_every_placeholder_of_the_default_template() {
        let deps = vec!["Stream-A".to_string()];
        let text = render(
            DEFAULT_TEMPLATE,
            &PromptVars {
                stream_id: "Stream-B",
                stream_name: "API",
                dependencies: &deps,
                tasks: &[task("Build the thing")],
                worktree: Path::new("/p/.claude/worktrees/Stream-B"),
                branch: Some("stream/Stream-B"),
                db: Path::new("/t/tasks.db"),
                task_commands: crate::taskdb::StoreKind::Tc.task_commands(),
            },
        );
        assert!(!text.contains("{{"), "{text}");
        assert!(text.contains("- `T-1` [pending] Build the thing"));
        assert!(text.contains("Stream-A"));
        assert!(text.contains("`stream/Stream-B`"));
        assert!(text.contains("in_progress"));
        assert!(
            text.contains("tc task update ID --status completed"),
            "{text}"
        );
    }
}
