//! Set-up of a project: `.claude/orchestrator/` with its runtime folders, the installed files
//! (embedded from `templates/`), the `watch-status` link at the project root, and the runtime
//! paths in `.git/info/exclude`.
//!
//! One function decides ([`plan`]: read-only, also what `doctor` shows) and one acts
//! ([`Plan::apply`]); [`ensure`] does both and is what `init` and every `start` call.
//! Invariants: a file whose content differs from what was installed (the hash recorded in
//! `state/installed.json`) is the user's and is kept; a file tracked by git is never written,
//! chmod-ed or replaced; every change made is reported.

mod manifest;
pub mod templates;

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::git::RepoInfo;
use crate::git::exclude;
pub use crate::git::exclude::ensure_lines;
use manifest::{Manifest, hash};
use templates::{TEMPLATES, Template, WATCH_STATUS_LINK, WATCH_STATUS_LINK_TARGET};

use crate::error::Diagnostic;
use crate::project::Project;

/// What set-up adds to `.git/info/exclude`: the runtime folders, so the main checkout stays
/// clean (the same entries worktree mode ensures).
pub use crate::git::exclude::ENTRIES as EXCLUDE_LINES;
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot {action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Diagnostic for SetupError {
    fn hint(&self) -> Option<String> {
        Some(
            "check that the project folder is writable by you; `orchestrate doctor` checks the set-up"
                .into(),
        )
    }
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SetupError {
    let path = path.to_path_buf();
    move |source| SetupError::Io {
        action,
        path,
        source,
    }
}

/// A change set-up makes (or, in a plan not yet applied, would make). Paths are relative to
/// the project root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A runtime folder was created.
    DirCreated { path: String },
    /// A file installed for the first time.
    Created { path: String },
    /// A file that was installed before had gone missing.
    Restored { path: String },
    /// A file still as an older version installed it, replaced by this version's template.
    Updated { path: String },
    /// The run bit of an executable file was lost.
    RunBitSet { path: String },
    /// The `watch-status` link at the project root was missing.
    LinkCreated,
    /// The link was dangling or pointed elsewhere (`was` is its old target).
    LinkFixed { was: PathBuf, dangling: bool },
    /// Lines appended to `.git/info/exclude`.
    Excluded { file: PathBuf, lines: Vec<String> },
}

impl Change {
    /// A repair of damage, as opposed to first installation or an upgrade.
    pub fn is_repair(&self) -> bool {
        matches!(
            self,
            Self::Restored { .. } | Self::RunBitSet { .. } | Self::LinkFixed { .. }
        )
    }
}

impl Change {
    /// What is wrong, for `doctor`, which reports a change not yet made.
    pub fn problem(&self) -> String {
        match self {
            Self::DirCreated { path } => format!("{path}/ is missing"),
            Self::Created { path } | Self::Restored { path } => format!("{path} is missing"),
            Self::Updated { path } => format!("{path} is from an older version"),
            Self::RunBitSet { path } => format!("{path} is not executable"),
            Self::LinkCreated => {
                format!("the {WATCH_STATUS_LINK} link at the project root is missing")
            }
            Self::LinkFixed { was, dangling } => format!(
                "the {WATCH_STATUS_LINK} link at the project root points to {}{}",
                was.display(),
                if *dangling {
                    ", which does not exist"
                } else {
                    ", not the installed script"
                }
            ),
            Self::Excluded { file, lines } => {
                format!("{} lacks {}", file.display(), lines.join(" "))
            }
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DirCreated { path } => write!(f, "created {path}/"),
            Self::Created { path } => write!(f, "installed {path}"),
            Self::Restored { path } => write!(f, "restored {path} (it was missing)"),
            Self::Updated { path } => {
                write!(
                    f,
                    "updated {path} to this version's template (you had not edited it)"
                )
            }
            Self::RunBitSet { path } => write!(f, "made {path} executable again"),
            Self::LinkCreated => write!(
                f,
                "linked {WATCH_STATUS_LINK} → {WATCH_STATUS_LINK_TARGET} at the project root"
            ),
            Self::LinkFixed { was, dangling } => write!(
                f,
                "fixed the {WATCH_STATUS_LINK} link at the project root (it pointed to {}{}; \
                 now → {WATCH_STATUS_LINK_TARGET})",
                was.display(),
                if *dangling {
                    ", which does not exist"
                } else {
                    ""
                }
            ),
            Self::Excluded { file, lines } => {
                write!(f, "added {} to {}", lines.join(" "), file.display())
            }
        }
    }
}

/// Something set-up noticed and deliberately left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The user changed this file since it was installed (or it predates set-up): kept.
    Kept { path: String },
    /// Tracked by git, and not as set-up would have it: not touched.
    Tracked { path: String, problem: String },
    /// `watch-status` at the project root exists and is not a symlink.
    LinkNotOurs,
    /// The project root is not a git repository.
    NoGit,
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Kept { path } => write!(
                f,
                "kept {path}: it differs from the installed version (delete it to get the default back)"
            ),
            Self::Tracked { path, problem } => write!(
                f,
                "left {path} alone: it is tracked by git and {problem} (fix it with git)"
            ),
            Self::LinkNotOurs => write!(
                f,
                "left {WATCH_STATUS_LINK} at the project root alone: it is not a symlink \
                 (remove it and run `orchestrate init` to get the link)"
            ),
            Self::NoGit => write!(
                f,
                "the project root is not a git repository: worktrees (`--worktrees`) are \
                 unavailable and every stream runs in the project root"
            ),
        }
    }
}

/// What set-up found, and what it will change.
#[derive(Debug, Clone)]
pub struct Plan {
    root: PathBuf,
    /// Nothing was installed before (no `.claude/orchestrator/`).
    pub fresh: bool,
    pub changes: Vec<Change>,
    pub notices: Vec<Notice>,
    manifest: Manifest,
    manifest_path: PathBuf,
    manifest_dirty: bool,
}

/// What [`ensure`] did.
#[derive(Debug, Clone)]
pub struct Report {
    pub fresh: bool,
    pub changes: Vec<Change>,
    pub notices: Vec<Notice>,
}

/// Installs or repairs the set-up of `project`; reports what it changed.
///
/// Two processes may set up at once (two `start`s, or `start` and `init`): they take turns on a
/// lock of the project folder itself (no lock file left behind), and the second finds nothing
/// to do.
pub fn ensure(project: &Project) -> Result<Report, SetupError> {
    use nix::fcntl::{Flock, FlockArg};
    let root = &project.root;
    let dir = std::fs::File::open(root).map_err(io_err("open", root))?;
    let _lock = Flock::lock(dir, FlockArg::LockExclusive)
        .map_err(|(_, errno)| io_err("lock", root)(errno.into()))?;
    plan(project).apply()
}

/// Looks at the set-up of `project` and decides what to change, changing nothing.
pub fn plan(project: &Project) -> Plan {
    let root = &project.root;
    let manifest_path = Manifest::path(&project.state_dir());
    let mut plan = Plan {
        root: root.clone(),
        fresh: !project.orchestrator_dir().exists(),
        changes: Vec::new(),
        notices: Vec::new(),
        manifest: Manifest::load(&manifest_path),
        manifest_path,
        manifest_dirty: false,
    };
    let repo = RepoInfo::open(root);
    for dir in [project.logs_dir(), project.state_dir()] {
        if !dir.is_dir() {
            plan.changes.push(Change::DirCreated {
                path: relative(root, &dir),
            });
        }
    }
    for template in &TEMPLATES {
        plan.file(template, repo.as_ref());
    }
    plan.link(repo.as_ref());
    match &repo {
        Some(repo) => {
            let existing = std::fs::read_to_string(&repo.exclude_file).unwrap_or_default();
            let lines = exclude::missing_lines(&existing, &EXCLUDE_LINES);
            if !lines.is_empty() {
                plan.changes.push(Change::Excluded {
                    file: repo.exclude_file.clone(),
                    lines,
                });
            }
        }
        None => plan.notices.push(Notice::NoGit),
    }
    plan
}

impl Plan {
    fn file(&mut self, template: &Template, repo: Option<&RepoInfo>) {
        let path = template.path.to_string();
        let full = self.root.join(template.path);
        let tracked = repo.is_some_and(|r| r.is_tracked(&path));
        let wanted = hash(template.content.as_bytes());
        let recorded = self.manifest.files.get(&path).cloned();
        let Ok(current) = std::fs::read(&full) else {
            if tracked {
                let problem = "missing from the work tree".into();
                self.notices.push(Notice::Tracked { path, problem });
            } else if self.fresh {
                self.changes.push(Change::Created { path });
            } else {
                self.changes.push(Change::Restored { path });
            }
            return;
        };
        let current = hash(&current);
        if current == wanted {
            if recorded.as_ref() != Some(&wanted) {
                self.manifest.files.insert(path.clone(), wanted);
                self.manifest_dirty = true;
            }
        } else if recorded.as_ref() == Some(&current) && !tracked {
            self.changes.push(Change::Updated { path: path.clone() });
        } else {
            self.notices.push(Notice::Kept { path: path.clone() });
        }
        if template.executable && !is_executable(&full) {
            if tracked {
                let problem = "not executable".into();
                self.notices.push(Notice::Tracked { path, problem });
            } else {
                self.changes.push(Change::RunBitSet { path });
            }
        }
    }

    fn link(&mut self, repo: Option<&RepoInfo>) {
        let link = self.root.join(WATCH_STATUS_LINK);
        let tracked = repo.is_some_and(|r| r.is_tracked(WATCH_STATUS_LINK));
        let change = match std::fs::symlink_metadata(&link) {
            Err(_) => Change::LinkCreated,
            Ok(meta) if !meta.file_type().is_symlink() => {
                self.notices.push(Notice::LinkNotOurs);
                return;
            }
            Ok(_) => {
                let was = std::fs::read_link(&link).unwrap_or_default();
                if was == Path::new(WATCH_STATUS_LINK_TARGET) || self.points_at_script(&link) {
                    return;
                }
                Change::LinkFixed {
                    dangling: !link.exists(),
                    was,
                }
            }
        };
        if tracked {
            let problem = "not a link to the installed watch-status".into();
            let path = WATCH_STATUS_LINK.to_string();
            self.notices.push(Notice::Tracked { path, problem });
        } else {
            self.changes.push(change);
        }
    }

    /// An absolute link to the right file is fine too.
    fn points_at_script(&self, link: &Path) -> bool {
        let script = self.root.join(WATCH_STATUS_LINK_TARGET);
        match (link.canonicalize(), script.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }

    /// Whether everything is in place: nothing to create, restore or repair.
    pub fn is_intact(&self) -> bool {
        self.changes
            .iter()
            .all(|c| matches!(c, Change::Updated { .. } | Change::Excluded { .. }))
    }

    /// Makes the changes; records what was installed.
    pub fn apply(mut self) -> Result<Report, SetupError> {
        for change in &self.changes {
            match change {
                Change::DirCreated { path } => {
                    // Logs and state hold the worker command and agent output: 0700.
                    let dir = self.root.join(path);
                    crate::private_files::dir(&dir).map_err(io_err("create", &dir))?;
                }
                Change::Created { path } | Change::Restored { path } | Change::Updated { path } => {
                    let template = TEMPLATES
                        .iter()
                        .find(|t| t.path == path)
                        .expect("changes name installed templates only");
                    write_template(&self.root, template)?;
                    self.manifest
                        .files
                        .insert(path.clone(), hash(template.content.as_bytes()));
                    self.manifest_dirty = true;
                }
                Change::RunBitSet { path } => set_executable(&self.root.join(path))?,
                Change::LinkCreated | Change::LinkFixed { .. } => {
                    let link = self.root.join(WATCH_STATUS_LINK);
                    if matches!(change, Change::LinkFixed { .. }) {
                        std::fs::remove_file(&link).map_err(io_err("replace the link", &link))?;
                    }
                    std::os::unix::fs::symlink(WATCH_STATUS_LINK_TARGET, &link)
                        .map_err(io_err("create the link", &link))?;
                }
                Change::Excluded { file, .. } => {
                    ensure_lines(file, &EXCLUDE_LINES).map_err(io_err("update", file))?;
                }
            }
        }
        if self.manifest_dirty {
            self.manifest
                .save(&self.manifest_path)
                .map_err(io_err("write", &self.manifest_path))?;
        }
        Ok(Report {
            fresh: self.fresh,
            changes: self.changes,
            notices: self.notices,
        })
    }
}

impl Report {
    /// The changes that repaired damage (for `start`, which reports only those and upgrades).
    pub fn repairs(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.is_repair())
    }
}

/// Writes a template through a temporary file and a rename, so a reader (a `start` loading the
/// worker prompt) never sees half a file.
fn write_template(root: &Path, template: &Template) -> Result<(), SetupError> {
    use std::io::Write;
    let path = root.join(template.path);
    let dir = path.parent().unwrap_or(root);
    std::fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err("write in", dir))?;
    tmp.write_all(template.content.as_bytes())
        .map_err(io_err("write", tmp.path()))?;
    let mode = if template.executable { 0o755 } else { 0o644 };
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode))
        .map_err(io_err("write", tmp.path()))?;
    tmp.persist(&path)
        .map_err(|e| io_err("write", &path)(e.error))?;
    Ok(())
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 == 0o111)
}

fn set_executable(path: &Path) -> Result<(), SetupError> {
    let meta = std::fs::metadata(path).map_err(io_err("read", path))?;
    let mut perms = meta.permissions();
    perms.set_mode(perms.mode() | 0o755);
    std::fs::set_permissions(path, perms).map_err(io_err("make executable", path))
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}
