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
}

/// The project's installed template if readable, else the embedded default.
pub fn load_template(installed: &Path) -> String {
    std::fs::read_to_string(installed).unwrap_or_else(|_| DEFAULT_TEMPLATE.to_string())
}

/// Fills the template `text`. Unknown `{{…}}` stay as written, so a typo shows in the prompt.
pub fn render(text: &str, v: &PromptVars<'_>) -> String {
    let deps = if v.dependencies.is_empty() {
        "none".to_string()
    } else {
        v.dependencies.join(", ")
    };
    let tasks = if v.tasks.is_empty() {
        "(no tasks found)".to_string()
    } else {
        v.tasks
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
    };
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
        ],
    )
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
            },
        );
        assert!(!text.contains("{{"), "{text}");
        assert!(text.contains("- `T-1` [pending] Build the thing"));
        assert!(text.contains("Stream-A"));
        assert!(text.contains("`stream/Stream-B`"));
        assert!(text.contains("in_progress"));
    }
}
