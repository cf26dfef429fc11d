//! Where things are: the project root, the orchestrator's own folders, and the task database.
//!
//! Every path `orchestrate` uses is derived here, once, so that commands agree. The database
//! path keeps a record of *how* it was derived, because "which file did you read?" is the first
//! question when the dashboard looks empty.

use std::path::{Path, PathBuf};

use crate::error::Diagnostic;
use crate::exit_codes;

/// Runtime folder of the orchestrator, relative to the project root.
pub const ORCHESTRATOR_DIR: &str = ".claude/orchestrator";
/// Where stream worktrees live, relative to the project root.
pub const WORKTREES_DIR: &str = ".claude/worktrees";

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("no project root found: no folder from {start} upwards holds `.git`")]
    NoRoot { start: PathBuf },
    #[error("project folder {path} does not exist")]
    MissingProject { path: PathBuf },
    #[error("cannot read the current directory")]
    CurrentDir(#[source] std::io::Error),
    #[error("cannot tell the task database path: {0}")]
    NoDbPath(String),
}

impl Diagnostic for ProjectError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::NoRoot { .. } | Self::MissingProject { .. } => Some(
                "run inside a git repository, or pass `--project DIR` (the folder holding `.git` or `.claude`)".into(),
            ),
            Self::CurrentDir(_) => None,
            Self::NoDbPath(_) => Some("pass `--db FILE`, or set TASK_DB_PATH".into()),
        }
    }

    fn exit_code(&self) -> i32 {
        match self {
            Self::NoDbPath(_) => exit_codes::NO_DATABASE,
            _ => exit_codes::FAILURE,
        }
    }
}

/// The project and the paths derived from it.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project root, canonical (libgit2 and the git CLI store resolved paths).
    pub root: PathBuf,
}

impl Project {
    /// Finds the project root: `explicit` if given, else the nearest ancestor of `cwd` holding
    /// `.git`, else the nearest holding `.claude`.
    pub fn discover(explicit: Option<&Path>, cwd: &Path) -> Result<Self, ProjectError> {
        if let Some(dir) = explicit {
            let dir = if dir.is_absolute() {
                dir.to_path_buf()
            } else {
                cwd.join(dir)
            };
            let root = dir
                .canonicalize()
                .map_err(|_| ProjectError::MissingProject { path: dir.clone() })?;
            return Ok(Self { root });
        }
        let cwd = cwd.canonicalize().unwrap_or_else(|_| cwd.to_path_buf());
        for marker in [".git", ".claude"] {
            if let Some(root) = cwd.ancestors().find(|dir| dir.join(marker).exists()) {
                return Ok(Self {
                    root: root.to_path_buf(),
                });
            }
        }
        Err(ProjectError::NoRoot { start: cwd })
    }

    /// Like [`Project::discover`] from the process's current directory.
    pub fn from_env(explicit: Option<&Path>) -> Result<Self, ProjectError> {
        let cwd = std::env::current_dir().map_err(ProjectError::CurrentDir)?;
        Self::discover(explicit, &cwd)
    }

    /// The project's name: its folder's basename (Task Copilot's default workspace id).
    pub fn name(&self) -> String {
        self.root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "project".into())
    }

    pub fn orchestrator_dir(&self) -> PathBuf {
        self.root.join(ORCHESTRATOR_DIR)
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.orchestrator_dir().join("logs")
    }

    /// Per-stream runtime folders (`<slug>/`: the prompt file), private like the logs.
    pub fn run_dir(&self) -> PathBuf {
        self.orchestrator_dir().join("run")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.orchestrator_dir().join("state")
    }

    /// The orchestrator's durable state store (SQLite).
    pub fn state_db(&self) -> PathBuf {
        self.state_dir().join("state.db")
    }

    pub fn config_file(&self) -> PathBuf {
        self.orchestrator_dir().join("config.toml")
    }

    pub fn worktrees_dir(&self) -> PathBuf {
        self.root.join(WORKTREES_DIR)
    }
}

/// How the database path was chosen; shown in errors and by `doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbSource {
    /// `--db FILE`.
    Flag,
    /// `<TASK_DB_PATH>/<WORKSPACE_ID>/tasks.db`, with where each part came from.
    Derived {
        base: BaseSource,
        workspace: WorkspaceSource,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseSource {
    /// `TASK_DB_PATH` was set.
    Env,
    /// Default `~/.claude/tasks`.
    Default,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkspaceSource {
    /// `WORKSPACE_ID` was set.
    Env,
    /// The project root's basename.
    ProjectName,
}

/// The task database path and its provenance.
#[derive(Debug, Clone)]
pub struct DbLocation {
    pub path: PathBuf,
    pub source: DbSource,
    /// The workspace id (`WORKSPACE_ID` or the project name); `None` with `--db`.
    pub workspace: Option<String>,
}

impl DbLocation {
    /// Resolves the path as `TASK-COPILOT.md` prescribes. `env` looks up an environment
    /// variable (a parameter so tests need not touch the process environment).
    pub fn resolve(
        flag: Option<&Path>,
        project: &Project,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ProjectError> {
        let non_empty = |key: &str| env(key).filter(|v| !v.trim().is_empty());
        if let Some(path) = flag {
            let path = if path.is_absolute() {
                path.to_path_buf()
            } else {
                std::env::current_dir()
                    .map_err(ProjectError::CurrentDir)?
                    .join(path)
            };
            return Ok(Self {
                path,
                source: DbSource::Flag,
                workspace: None,
            });
        }
        let (base, base_source) = match non_empty("TASK_DB_PATH") {
            Some(base) => (expand_home(&base, &env), BaseSource::Env),
            None => {
                let home = non_empty("HOME").ok_or_else(|| {
                    ProjectError::NoDbPath("TASK_DB_PATH is unset and so is HOME".into())
                })?;
                (
                    PathBuf::from(home).join(".claude/tasks"),
                    BaseSource::Default,
                )
            }
        };
        let (workspace, ws_source) = match non_empty("WORKSPACE_ID") {
            Some(id) => (id, WorkspaceSource::Env),
            None => (project.name(), WorkspaceSource::ProjectName),
        };
        Ok(Self {
            path: base.join(&workspace).join("tasks.db"),
            source: DbSource::Derived {
                base: base_source,
                workspace: ws_source,
            },
            workspace: Some(workspace),
        })
    }

    /// One sentence saying how the path was derived, for error messages and `doctor`.
    pub fn explain(&self) -> String {
        match &self.source {
            DbSource::Flag => "given with --db".into(),
            DbSource::Derived { base, workspace } => {
                let base = match base {
                    BaseSource::Env => "TASK_DB_PATH",
                    BaseSource::Default => "the default base ~/.claude/tasks (TASK_DB_PATH unset)",
                };
                let ws = self.workspace.as_deref().unwrap_or_default();
                let workspace = match workspace {
                    WorkspaceSource::Env => format!("WORKSPACE_ID={ws}"),
                    WorkspaceSource::ProjectName => {
                        format!("workspace `{ws}`, the project folder's name (WORKSPACE_ID unset)")
                    }
                };
                format!("derived from {base} and {workspace}")
            }
        }
    }
}

fn expand_home(path: &str, env: &impl Fn(&str) -> Option<String>) -> PathBuf {
    match (path.strip_prefix("~/"), env("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(name: &str) -> Project {
        Project {
            root: PathBuf::from("/work").join(name),
        }
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |key| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    #[test]
    fn default_path_uses_home_and_project_name() {
        let loc =
            DbLocation::resolve(None, &project("shop"), env_of(&[("HOME", "/home/u")])).unwrap();
        assert_eq!(
            loc.path,
            PathBuf::from("/home/u/.claude/tasks/shop/tasks.db")
        );
        assert!(
            loc.explain().contains("project folder's name"),
            "{}",
            loc.explain()
        );
    }

    #[test]
    fn env_overrides_base_and_workspace() {
        let env = env_of(&[
            ("HOME", "/h"),
            ("TASK_DB_PATH", "~/tdb"),
            ("WORKSPACE_ID", "ws1"),
        ]);
        let loc = DbLocation::resolve(None, &project("shop"), env).unwrap();
        assert_eq!(loc.path, PathBuf::from("/h/tdb/ws1/tasks.db"));
        assert!(loc.explain().contains("WORKSPACE_ID=ws1"));
    }

    #[test]
    fn empty_env_values_count_as_unset() {
        let env = env_of(&[("HOME", "/h"), ("TASK_DB_PATH", ""), ("WORKSPACE_ID", " ")]);
        let loc = DbLocation::resolve(None, &project("p"), env).unwrap();
        assert_eq!(loc.path, PathBuf::from("/h/.claude/tasks/p/tasks.db"));
    }

    #[test]
    fn flag_wins() {
        let loc =
            DbLocation::resolve(Some(Path::new("/x/t.db")), &project("p"), env_of(&[])).unwrap();
        assert_eq!(loc.path, PathBuf::from("/x/t.db"));
        assert_eq!(loc.source, DbSource::Flag);
    }

    #[test]
    fn discovers_nearest_git_ancestor() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        let p = Project::discover(None, &root.join("a/b")).unwrap();
        assert_eq!(p.root, root);
    }
}
