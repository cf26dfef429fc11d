//! Settings for a run: defaults, the config file `.claude/orchestrator/config.toml`, the
//! environment (`ORCHESTRATE_*`) and flags, in increasing precedence.
//!
//! [`Config::load`] applies file and environment; commands apply their flags on top.
//! (TOML parsing and validation with file/line errors belong to the set-up issue.)

use std::time::Duration;

use crate::error::Diagnostic;
use crate::project::Project;

/// The default worker: Claude Code headless, printing stream-json events.
pub const DEFAULT_WORKER_CMD: &str =
    "claude -p --output-format stream-json --verbose --dangerously-skip-permissions {prompt}";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Shell words with placeholders `{prompt}`, `{stream}`, `{worktree}`; never run by a shell.
    pub worker_cmd: String,
    pub max_parallel: u32,
    /// Pause between two worker launches.
    pub stagger: Duration,
    /// Restarts of a worker that exits with its stream incomplete.
    pub retries: u32,
    /// `stop`: time between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// Give each stream its own worktree and branch.
    pub worktrees: bool,
    /// Runs in a freshly created worktree (shell words, no shell).
    pub post_create: Option<String>,
    pub post_create_timeout: Duration,
    /// The branch merge-back targets; default: the branch checked out when `start` ran.
    pub target_branch: Option<String>,
    /// Commit what a finished worker left uncommitted in its worktree.
    pub auto_commit: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            worker_cmd: DEFAULT_WORKER_CMD.into(),
            max_parallel: 4,
            stagger: Duration::from_secs(1),
            retries: 1,
            grace: Duration::from_secs(10),
            worktrees: false,
            post_create: None,
            post_create_timeout: Duration::from_secs(300),
            target_branch: None,
            auto_commit: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: std::path::PathBuf,
        line: usize,
        message: String,
    },
    #[error("environment variable {key}: {message}")]
    Env { key: String, message: String },
}

impl Diagnostic for ConfigError {
    fn hint(&self) -> Option<String> {
        Some(
            "every key is documented in the installed config.toml; `orchestrate doctor` checks it"
                .into(),
        )
    }
}

impl Config {
    /// Defaults, overridden by the project's config file (if any), then by `ORCHESTRATE_*`.
    pub fn load(project: &Project) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        if let Some(cmd) = std::env::var("ORCHESTRATE_WORKER_CMD")
            .ok()
            .filter(|c| !c.trim().is_empty())
        {
            config.worker_cmd = cmd;
        }
        let _ = project.config_file();
        Ok(config)
    }
}
