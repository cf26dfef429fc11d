//! Where things are: the project root, the orchestrator's own folders, and the task database.
//!
//! Every path `orchestrate` uses is derived here, once, so that commands agree. The database
//! path keeps a record of *how* it was derived, because "which file did you read?" is the first
//! question when the dashboard looks empty.

use std::path::{Path, PathBuf};

use crate::error::Diagnostic;
use crate::exit_codes;
use crate::taskdb::StoreKind;

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
    #[error(
        "two task databases hold stream tasks: {} (tc's store) and {} (the legacy store)",
        tc.display(),
        legacy.display()
    )]
    BothStores { tc: PathBuf, legacy: PathBuf },
}

impl Diagnostic for ProjectError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::NoRoot { .. } | Self::MissingProject { .. } => Some(
                "run inside a git repository, or pass `--project DIR` (the folder holding `.git` or `.claude`)".into(),
            ),
            Self::CurrentDir(_) => None,
            Self::NoDbPath(_) => Some(
                "pass `--db FILE`, set TASK_DB_PATH, or run `tc init` for a tc store".into(),
            ),
            Self::BothStores { tc, .. } => Some(format!(
                "say which one to use with `--db FILE` (or ORCHESTRATE_DB), e.g. `--db {}`",
                tc.display()
            )),
        }
    }

    fn exit_code(&self) -> i32 {
        match self {
            Self::NoDbPath(_) | Self::BothStores { .. } => exit_codes::NO_DATABASE,
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
                // Inside a stream worktree the project is the one the worktree belongs to.
                let root = stream_worktree_owner(root).unwrap_or(root);
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

/// The project owning `dir` if `dir` is one of its stream worktrees
/// (`<root>/.claude/worktrees/<slug>`, a linked checkout whose `.git` is a file).
fn stream_worktree_owner(dir: &Path) -> Option<&Path> {
    let worktrees = dir.parent()?;
    let claude = worktrees.parent()?;
    let root = claude.parent()?;
    let layout = worktrees.file_name()? == "worktrees" && claude.file_name()? == ".claude";
    (layout && dir.join(".git").is_file() && root.join(".git").is_dir()).then_some(root)
}

/// The v3 store's file, relative to the folder that holds it.
pub const TC_DB: &str = ".copilot/tasks.db";

/// How the task database path was found; shown by `status`, `doctor` and in errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FoundBy {
    /// `--db FILE`.
    Flag,
    /// `ORCHESTRATE_DB` (set for every worker).
    Env,
    /// tc's `.copilot/tasks.db`, the first found walking up from `from`.
    WalkUp { from: PathBuf },
    /// `<TASK_DB_PATH>/<WORKSPACE_ID>/tasks.db`, with where each part came from.
    LegacyPath {
        base: BaseSource,
        workspace: WorkspaceSource,
    },
}

impl FoundBy {
    /// The machine-readable name (`status --json`'s `source.found_by`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Flag => "flag",
            Self::Env => "env",
            Self::WalkUp { .. } => "walk_up",
            Self::LegacyPath { .. } => "legacy_path",
        }
    }
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

/// What the resolver needs to know about a candidate file (answered by `taskdb`, which alone
/// may open a database).
pub trait Probe {
    /// Whether the file holds stream tasks (false if it cannot be read).
    fn holds_stream_tasks(&self, path: &Path) -> bool;
}

impl<F: Fn(&Path) -> bool> Probe for F {
    fn holds_stream_tasks(&self, path: &Path) -> bool {
        self(path)
    }
}

/// What `--db` / `ORCHESTRATE_DB` said, and which of the two it was.
#[derive(Debug, Clone)]
pub struct Given {
    pub path: PathBuf,
    pub from_env: bool,
}

/// The task database path and its provenance.
#[derive(Debug, Clone)]
pub struct DbLocation {
    pub path: PathBuf,
    pub found_by: FoundBy,
    /// The workspace id (`WORKSPACE_ID` or the project name) of a legacy path.
    pub workspace: Option<String>,
    /// What else the search saw: the other store's file passed over, or where no tc file was.
    pub also: Option<String>,
}

/// The legacy path as derived, or why it could not be.
type LegacyCandidate = Result<DbLocation, ProjectError>;

impl DbLocation {
    /// Resolves the path by the "Which one" rules of `TASK-COPILOT.md`: `--db` or
    /// `ORCHESTRATE_DB` wins; otherwise tc's `.copilot/tasks.db` found walking up from `cwd`
    /// (from the project root when `cwd` is inside a stream worktree or outside the project),
    /// and the legacy path; if both exist, the one holding stream tasks; both holding them is
    /// refused. `env` looks up an environment variable (a parameter so tests need not touch
    /// the process environment).
    pub fn resolve(
        given: Option<&Given>,
        project: &Project,
        cwd: &Path,
        env: impl Fn(&str) -> Option<String>,
        probe: &impl Probe,
    ) -> Result<Self, ProjectError> {
        if let Some(given) = given {
            let path = if given.path.is_absolute() {
                given.path.clone()
            } else {
                cwd.join(&given.path)
            };
            let found_by = if given.from_env {
                FoundBy::Env
            } else {
                FoundBy::Flag
            };
            return Ok(Self {
                path,
                found_by,
                workspace: None,
                also: None,
            });
        }
        let from = walk_start(project, cwd);
        let tc = find_tc_db(&from).map(|path| Self {
            path,
            found_by: FoundBy::WalkUp { from: from.clone() },
            workspace: None,
            also: None,
        });
        let legacy = Self::legacy(project, &env);
        choose(tc, legacy, &from, probe)
    }

    /// `<TASK_DB_PATH>/<WORKSPACE_ID>/tasks.db`.
    fn legacy(project: &Project, env: &impl Fn(&str) -> Option<String>) -> LegacyCandidate {
        let non_empty = |key: &str| env(key).filter(|v| !v.trim().is_empty());
        let (base, base_source) = match non_empty("TASK_DB_PATH") {
            Some(base) => (expand_home(&base, env), BaseSource::Env),
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
            found_by: FoundBy::LegacyPath {
                base: base_source,
                workspace: ws_source,
            },
            workspace: Some(workspace),
            also: None,
        })
    }

    /// One sentence saying how the path was found, for error messages and `doctor`.
    pub fn explain(&self) -> String {
        let how = match &self.found_by {
            FoundBy::Flag => "given with --db".into(),
            FoundBy::Env => "given by ORCHESTRATE_DB".into(),
            FoundBy::WalkUp { from } => {
                format!("tc's {TC_DB}, found walking up from {}", from.display())
            }
            FoundBy::LegacyPath { base, workspace } => {
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
                format!("the legacy store's path, derived from {base} and {workspace}")
            }
        };
        match &self.also {
            Some(also) => format!("{how}; {also}"),
            None => how,
        }
    }
}

/// Which store was read and how its path was found: `status` (header and `--json`'s `source`)
/// and `doctor` show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoreSource {
    pub kind: StoreKind,
    /// Lossy: a path that is not UTF-8 must not make the JSON document fail.
    pub path: String,
    /// `flag`, `env`, `walk_up` or `legacy_path`.
    pub found_by: &'static str,
    /// The same in a sentence.
    pub how: String,
}

impl DbLocation {
    pub fn source(&self, kind: StoreKind) -> StoreSource {
        StoreSource {
            kind,
            path: self.path.to_string_lossy().into_owned(),
            found_by: self.found_by.as_str(),
            how: self.explain(),
        }
    }
}

/// Where the walk up for `.copilot/tasks.db` starts: the current directory, unless it is
/// inside a stream worktree (whose checkout could hold a stale copy) or outside the project.
fn walk_start(project: &Project, cwd: &Path) -> PathBuf {
    let cwd = cwd.canonicalize().unwrap_or_else(|_| cwd.to_path_buf());
    if cwd.starts_with(&project.root) && !cwd.starts_with(project.worktrees_dir()) {
        cwd
    } else {
        project.root.clone()
    }
}

/// The first `.copilot/tasks.db` from `from` upwards, as tc itself finds it.
fn find_tc_db(from: &Path) -> Option<PathBuf> {
    from.ancestors()
        .map(|dir| dir.join(TC_DB))
        .find(|p| p.exists())
}

/// The "Which one" rules, once both candidates are known.
fn choose(
    tc: Option<DbLocation>,
    legacy: LegacyCandidate,
    from: &Path,
    probe: &impl Probe,
) -> Result<DbLocation, ProjectError> {
    let legacy_exists = legacy.as_ref().is_ok_and(|l| l.path.exists());
    match (tc, legacy) {
        (None, Ok(mut legacy)) => {
            if !legacy_exists {
                legacy.also = Some(format!(
                    "no tc {TC_DB} found walking up from {} either",
                    from.display()
                ));
            }
            Ok(legacy)
        }
        (None, Err(e)) => Err(e),
        (Some(tc), Err(_)) => Ok(tc),
        (Some(tc), Ok(_)) if !legacy_exists => Ok(tc),
        (Some(mut tc), Ok(mut legacy)) => {
            match (
                probe.holds_stream_tasks(&tc.path),
                probe.holds_stream_tasks(&legacy.path),
            ) {
                (true, true) => Err(ProjectError::BothStores {
                    tc: tc.path,
                    legacy: legacy.path,
                }),
                (false, true) => {
                    legacy.also = Some(format!(
                        "{} also exists but holds no stream tasks",
                        tc.path.display()
                    ));
                    Ok(legacy)
                }
                // Neither holds stream tasks: tc's is the store current projects use.
                (true, false) | (false, false) => {
                    tc.also = Some(format!(
                        "the legacy store {} also exists but holds no stream tasks",
                        legacy.path.display()
                    ));
                    Ok(tc)
                }
            }
        }
    }
}

fn expand_home(path: &str, env: impl Fn(&str) -> Option<String>) -> PathBuf {
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
            root: PathBuf::from("/nonexistent-work").join(name),
        }
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |key| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    /// No file holds stream tasks.
    fn none(_: &Path) -> bool {
        false
    }

    fn resolve(project: &Project, env: &[(&str, &str)]) -> DbLocation {
        DbLocation::resolve(None, project, &project.root, env_of(env), &none).unwrap()
    }

    #[test]
    fn default_path_uses_home_and_project_name() {
        let loc = resolve(&project("shop"), &[("HOME", "/home/u")]);
        assert_eq!(
            loc.path,
            PathBuf::from("/home/u/.claude/tasks/shop/tasks.db")
        );
        let how = loc.explain();
        assert!(how.contains("project folder's name"), "{how}");
        assert!(
            how.contains("no tc .copilot/tasks.db found walking up"),
            "{how}"
        );
    }

    #[test]
    fn env_overrides_base_and_workspace() {
        let env = [
            ("HOME", "/h"),
            ("TASK_DB_PATH", "~/tdb"),
            ("WORKSPACE_ID", "ws1"),
        ];
        let loc = resolve(&project("shop"), &env);
        assert_eq!(loc.path, PathBuf::from("/h/tdb/ws1/tasks.db"));
        assert!(loc.explain().contains("WORKSPACE_ID=ws1"));
        assert_eq!(loc.found_by.as_str(), "legacy_path");
    }

    #[test]
    fn empty_env_values_count_as_unset() {
        let env = [("HOME", "/h"), ("TASK_DB_PATH", ""), ("WORKSPACE_ID", " ")];
        let loc = resolve(&project("p"), &env);
        assert_eq!(loc.path, PathBuf::from("/h/.claude/tasks/p/tasks.db"));
    }

    #[test]
    fn flag_and_env_win_and_say_which() {
        for from_env in [false, true] {
            let given = Given {
                path: PathBuf::from("/x/t.db"),
                from_env,
            };
            let p = project("p");
            let loc = DbLocation::resolve(Some(&given), &p, &p.root, env_of(&[]), &none).unwrap();
            assert_eq!(loc.path, PathBuf::from("/x/t.db"));
            let expected = if from_env {
                FoundBy::Env
            } else {
                FoundBy::Flag
            };
            assert_eq!(loc.found_by, expected);
        }
    }

    /// A project `<tmp>/proj` (with `.git`), a legacy base `<tmp>/tasks`, and which files exist.
    fn layout(tc: bool, legacy: bool) -> (tempfile::TempDir, Project, Vec<(&'static str, String)>) {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let root = base.join("proj");
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::create_dir_all(root.join("src/deep")).unwrap();
        if tc {
            std::fs::create_dir_all(root.join(".copilot")).unwrap();
            std::fs::write(root.join(TC_DB), "").unwrap();
        }
        let tasks = base.join("tasks");
        if legacy {
            std::fs::create_dir_all(tasks.join("proj")).unwrap();
            std::fs::write(tasks.join("proj/tasks.db"), "").unwrap();
        }
        let env = vec![("TASK_DB_PATH", tasks.display().to_string())];
        (tmp, Project { root }, env)
    }

    fn resolve_in(
        project: &Project,
        cwd: &Path,
        env: &[(&'static str, String)],
        probe: impl Fn(&Path) -> bool,
    ) -> Result<DbLocation, ProjectError> {
        let env = env.to_vec();
        let lookup = move |k: &str| {
            env.iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.clone())
        };
        DbLocation::resolve(None, project, cwd, lookup, &probe)
    }

    #[test]
    fn the_tc_file_is_found_walking_up_from_a_subfolder() {
        let (_tmp, p, env) = layout(true, false);
        let loc = resolve_in(&p, &p.root.join("src/deep"), &env, none).unwrap();
        assert_eq!(loc.path, p.root.join(TC_DB));
        assert_eq!(
            loc.found_by,
            FoundBy::WalkUp {
                from: p.root.join("src/deep")
            }
        );
    }

    #[test]
    fn inside_a_stream_worktree_the_walk_starts_at_the_project_root() {
        let (_tmp, p, env) = layout(true, false);
        // A stale copy in the worktree's checkout must not win over the root's file.
        let wt = p.worktrees_dir().join("Stream-A");
        std::fs::create_dir_all(wt.join(".copilot")).unwrap();
        std::fs::write(wt.join(TC_DB), "").unwrap();
        let loc = resolve_in(&p, &wt, &env, none).unwrap();
        assert_eq!(loc.path, p.root.join(TC_DB));
    }

    #[test]
    fn both_present_takes_the_one_with_stream_tasks_and_refuses_two() {
        let (_tmp, p, env) = layout(true, true);
        let tc = p.root.join(TC_DB);
        let legacy = p.root.parent().unwrap().join("tasks/proj/tasks.db");
        let only = |which: PathBuf| move |path: &Path| path == which;
        let loc = resolve_in(&p, &p.root, &env, only(legacy.clone())).unwrap();
        assert_eq!(loc.path, legacy);
        assert!(
            loc.explain()
                .contains("also exists but holds no stream tasks")
        );
        let loc = resolve_in(&p, &p.root, &env, only(tc.clone())).unwrap();
        assert_eq!(loc.path, tc);
        let loc = resolve_in(&p, &p.root, &env, none).unwrap();
        assert_eq!(loc.path, tc, "neither holds stream tasks: tc's store");
        let err = resolve_in(&p, &p.root, &env, |_: &Path| true).unwrap_err();
        assert!(matches!(err, ProjectError::BothStores { .. }));
        assert_eq!(err.exit_code(), exit_codes::NO_DATABASE);
        assert!(err.hint().unwrap().contains("--db"));
    }

    #[test]
    fn only_the_legacy_file_is_used_without_probing() {
        let (_tmp, p, env) = layout(false, true);
        let loc = resolve_in(&p, &p.root, &env, |_: &Path| panic!("no probe needed")).unwrap();
        assert_eq!(loc.found_by.as_str(), "legacy_path");
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

    #[test]
    fn a_stream_worktree_belongs_to_its_project() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        let wt = root.join(".claude/worktrees/Stream-A");
        std::fs::create_dir_all(wt.join("src")).unwrap();
        std::fs::write(wt.join(".git"), "gitdir: elsewhere\n").unwrap();
        assert_eq!(Project::discover(None, &wt.join("src")).unwrap().root, root);
        // A linked checkout elsewhere is a project of its own.
        let other = root.join("elsewhere/co");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join(".git"), "gitdir: x\n").unwrap();
        assert_eq!(Project::discover(None, &other).unwrap().root, other);
    }
}
