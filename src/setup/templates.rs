//! The files `orchestrate` installs into a project, embedded from `templates/` at build time.

/// One installed file.
#[derive(Debug, Clone, Copy)]
pub struct Template {
    /// Path relative to the project root.
    pub path: &'static str,
    pub content: &'static str,
    /// Installed with the run bit (mode 0755 instead of 0644).
    pub executable: bool,
}

/// The worker prompt (owned by the worker code, `worker/prompt.rs`, which fills its `{{…}}`
/// placeholders); installed so users can read and edit it.
pub const WORKER_PROMPT: &str = include_str!("../../templates/worker-prompt.md");
/// The continuation prompt of a resumed attempt (`claude --resume <session>`): what happened
/// (an exit with tasks open, a usage limit that has reset, a failed verification with its
/// output) and "check the task list and `git log`, then continue". Its placeholders:
/// `{{stream_id}}`, `{{stream_name}}`, `{{attempt}}`, `{{branch}}`, `{{worktree}}`, `{{tasks}}`
/// (as in the worker prompt) and `{{what_happened}}` (a paragraph, or a fenced block of a verify
/// command's output, written by the scheduler).
pub const WORKER_RESUME: &str = include_str!("../../templates/worker-resume.md");
/// The documented default config (every key commented out).
pub const CONFIG: &str = include_str!("../../templates/config.toml");
/// The Claude Code slash command `/orchestrate`.
pub const SLASH_COMMAND: &str = include_str!("../../templates/orchestrate.md");
pub const GUIDE: &str = include_str!("../../templates/ORCHESTRATION_GUIDE.md");
pub const WATCH_STATUS: &str = include_str!("../../templates/watch-status");

/// Where the `watch-status` script is installed, relative to the project root.
pub const WATCH_STATUS_PATH: &str = ".claude/orchestrator/watch-status";
/// The symlink at the project root, and what it points to (relative, so the project can move).
pub const WATCH_STATUS_LINK: &str = "watch-status";
pub const WATCH_STATUS_LINK_TARGET: &str = ".claude/orchestrator/watch-status";

/// Every installed file, in the order they are reported.
pub const TEMPLATES: [Template; 6] = [
    Template {
        path: ".claude/commands/orchestrate.md",
        content: SLASH_COMMAND,
        executable: false,
    },
    Template {
        path: ".claude/orchestrator/worker-prompt.md",
        content: WORKER_PROMPT,
        executable: false,
    },
    Template {
        path: ".claude/orchestrator/worker-resume.md",
        content: WORKER_RESUME,
        executable: false,
    },
    Template {
        path: ".claude/orchestrator/config.toml",
        content: CONFIG,
        executable: false,
    },
    Template {
        path: ".claude/orchestrator/ORCHESTRATION_GUIDE.md",
        content: GUIDE,
        executable: false,
    },
    Template {
        path: WATCH_STATUS_PATH,
        content: WATCH_STATUS,
        executable: true,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_parses_to_the_defaults() {
        let mut config = crate::config::Config::default();
        config
            .apply_file(std::path::Path::new("config.toml"), CONFIG)
            .unwrap();
        assert_eq!(config, crate::config::Config::default());
    }

    #[test]
    fn the_default_config_documents_every_key() {
        for (key, _) in crate::config::ENV_KEYS {
            assert!(
                CONFIG.contains(&format!("# {key} = ")),
                "config.toml lacks a commented `{key}`"
            );
        }
    }

    #[test]
    fn the_worker_prompt_has_the_stream_and_the_protocol() {
        for needle in [
            "{{stream_id}}",
            "{{tasks}}",
            "in_progress",
            "completed",
            "blocked",
        ] {
            assert!(
                WORKER_PROMPT.contains(needle),
                "worker-prompt.md lacks {needle}"
            );
        }
    }

    #[test]
    fn the_resume_prompt_says_what_happened_and_how_to_pick_up() {
        for needle in [
            "{{stream_id}}",
            "{{stream_name}}",
            "{{attempt}}",
            "{{what_happened}}",
            "{{branch}}",
            "{{worktree}}",
            "{{tasks}}",
            "orchestrate task list --stream {{stream_id}}",
            "git log",
            "completed",
        ] {
            assert!(
                WORKER_RESUME.contains(needle),
                "worker-resume.md lacks {needle}"
            );
        }
        // Only those placeholders: an unknown one would reach the agent unfilled.
        use crate::worker::template::{PROMPT, unknown, used};
        let names = [
            "stream_id",
            "stream_name",
            "attempt",
            "what_happened",
            "branch",
            "worktree",
            "tasks",
        ];
        assert_eq!(used(WORKER_RESUME, PROMPT, &names), names);
        assert!(unknown(WORKER_RESUME, PROMPT, &names).is_empty());
    }

    #[test]
    fn the_watch_status_script_runs_status_watch() {
        assert!(WATCH_STATUS.starts_with("#!/bin/sh\n"));
        assert!(WATCH_STATUS.contains("status --watch \"${1:-2}\""));
    }
}
