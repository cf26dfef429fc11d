//! The sandbox: confines a worker (and `post_create` and `verify`) with the kernel's Landlock
//! LSM so that it and every descendant can write only where its stream's work goes, while
//! reading and executing everything as before. No container, no root.
//!
//! Shape: the launching side asks a [`Policy`] (mode, kernel support, `sandbox_writable`) for a
//! [`Plan`] for one program in one folder. A confined plan's [`Confinement`] (ABI, temp dir,
//! writable paths) goes on the supervisor's command line (`__supervise … --abi N --write PATH…
//! -- CMD…`); the supervisor builds the rule set and confines only its child, between fork and
//! exec, so the worker is its direct child running the worker program, and the supervisor
//! itself is never restricted: it writes the state store and the log (`sandbox/confine.rs`,
//! whose header says why it is done there). `post_create`, run by `start`, goes through
//! `orchestrate __sandbox --abi N --write PATH… -- CMD…`, which restricts itself and then execs
//! CMD (`sandbox/enter.rs`). `sandbox/rules.rs` lists what is writable.
//!
//! Invariants: a plan that says "confined" is enforced or the program does not run (neither
//! the supervisor's child nor `__sandbox` execs unconfined); `auto` runs unconfined only where
//! the kernel lacks Landlock, and says so; `landlock` never does. Landlock grants whole
//! hierarchies and cannot carve a hole into one, so the git directory is granted part by part
//! and its root stays read-only: a file created directly in it (`packed-refs.lock`, taken by
//! ref deletions) is refused, and git warns and carries on (see the guide).

mod confine;
mod enter;
mod rules;

pub use confine::{Confinement, Hook, Prepared};
pub use enter::{Entry, enter};
pub use rules::Grant;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use landlock::{LandlockStatus, RestrictSelf};

use super::render::MARK;
use crate::error::Diagnostic;
use crate::project::Project;
use rules::{resolve, rules, temp_root};

/// The hidden subcommand that confines itself and execs the program.
pub const SUBCOMMAND: &str = "__sandbox";
/// Caps the Landlock ABI used (a whole number; 0 = as if the kernel had no Landlock), to see
/// what an older kernel would do.
pub const ABI_CAP_VAR: &str = "ORCHESTRATE_LANDLOCK_ABI";

/// The `sandbox` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Landlock where the kernel has it; unconfined (and said so) where it does not.
    #[default]
    Auto,
    /// Landlock or no worker at all.
    Landlock,
    /// Unconfined: the worker can write anywhere its user can.
    Off,
}

impl Mode {
    pub const CHOICES: [&str; 3] = ["auto", "landlock", "off"];

    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(Self::Auto),
            "landlock" => Some(Self::Landlock),
            "off" => Some(Self::Off),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Landlock => "landlock",
            Self::Off => "off",
        }
    }
}

/// What the running kernel offers, probed without restricting anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Landlock works. `abi` is the version used: the kernel's (`kernel`), or less if this build
    /// knows no newer one or [`ABI_CAP_VAR`] caps it.
    Landlock { abi: u32, kernel: u32 },
    /// The kernel has Landlock but it was not enabled at boot.
    NotEnabled,
    /// The kernel has no Landlock (or a seccomp filter hides it).
    NotImplemented,
    /// [`ABI_CAP_VAR`] is 0.
    CappedOff,
}

impl Support {
    /// Asks the kernel (`landlock_create_ruleset` with the version flag) and applies the cap.
    pub fn probe() -> Self {
        let cap = std::env::var(ABI_CAP_VAR)
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok());
        Self::capped(kernel_status(), cap)
    }

    fn capped(status: LandlockStatus, cap: Option<u32>) -> Self {
        let (abi, kernel) = match status {
            LandlockStatus::NotEnabled => return Self::NotEnabled,
            LandlockStatus::NotImplemented => return Self::NotImplemented,
            LandlockStatus::Available {
                effective_abi,
                kernel_abi,
            } => (
                effective_abi as u32,
                kernel_abi.map_or(effective_abi as u32, |k| k.max(0) as u32),
            ),
        };
        match cap {
            Some(0) => Self::CappedOff,
            Some(cap) => Self::Landlock {
                abi: abi.min(cap),
                kernel,
            },
            None => Self::Landlock { abi, kernel },
        }
    }

    /// The ABI in use, if any.
    pub fn abi(self) -> Option<u32> {
        match self {
            Self::Landlock { abi, .. } => Some(abi),
            _ => None,
        }
    }

    /// One phrase for `doctor` and refusals.
    pub fn describe(self) -> String {
        match self {
            Self::Landlock { abi, kernel } if abi == kernel => format!("Landlock ABI {abi}"),
            Self::Landlock { abi, kernel } => {
                format!("Landlock ABI {abi} (the kernel has ABI {kernel})")
            }
            Self::NotEnabled => {
                "the kernel has Landlock but it is not enabled (not in the `lsm=` boot list)".into()
            }
            Self::NotImplemented => {
                "the kernel has no Landlock (Linux 5.13 or later has it)".into()
            }
            Self::CappedOff => format!("Landlock is turned off by {ABI_CAP_VAR}=0"),
        }
    }
}

/// Landlock's status as the `landlock` crate probes it: a [`RestrictSelf`] with no flags and
/// no `no_new_privs` changes nothing and skips the restrict call.
fn kernel_status() -> LandlockStatus {
    match RestrictSelf::default().no_new_privs(false).apply() {
        Ok(status) => status.landlock,
        Err(_) => LandlockStatus::NotImplemented,
    }
}

/// What confined a worker: recorded by the state store, which owns the type.
pub use crate::state::SandboxApplied as Applied;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("the sandbox is required (sandbox = \"landlock\") but cannot be enforced: {why}")]
    Unavailable { why: String },
    #[error("cannot find this program's own path to run `{SUBCOMMAND}`")]
    OwnPath(#[source] std::io::Error),
    #[error("cannot create the sandbox folder {path}")]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set up the Landlock rule set")]
    Ruleset(#[source] landlock::RulesetError),
    #[error("cannot open {path} for a Landlock rule")]
    Open {
        path: PathBuf,
        #[source]
        source: landlock::PathFdError,
    },
    #[error("Landlock enforced none of the rule set; not running the program unconfined")]
    NotEnforced,
    #[error("cannot confine the program with Landlock; not running it unconfined")]
    Restrict(#[source] std::io::Error),
    #[error("cannot make the pipe that reports a failed confinement")]
    Pipe(#[source] std::io::Error),
    #[error("no program to run")]
    NoProgram,
    #[error("cannot run worker program `{program}`: {source}")]
    Exec {
        program: String,
        source: std::io::Error,
    },
}

impl Diagnostic for SandboxError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::Unavailable { .. } => Some(
                "use a kernel with Landlock enabled, or set `sandbox = \"auto\"` (runs unsandboxed \
                 where Landlock is missing) or `--sandbox off`"
                    .into(),
            ),
            Self::Folder { path, .. } => Some(format!("check the permissions of {}", path.display())),
            Self::Ruleset(_) | Self::Open { .. } | Self::NotEnforced | Self::Restrict(_) => Some(
                "`orchestrate doctor` shows what the kernel supports; `--sandbox off` runs without it"
                    .into(),
            ),
            Self::OwnPath(_) | Self::Pipe(_) | Self::NoProgram | Self::Exec { .. } => None,
        }
    }
}

impl From<landlock::RulesetError> for SandboxError {
    fn from(e: landlock::RulesetError) -> Self {
        Self::Ruleset(e)
    }
}

/// Whether and how launches are confined: the setting, what the kernel offers, the extra
/// writable paths, and this program (run as `__sandbox`).
#[derive(Debug, Clone)]
pub struct Policy {
    pub mode: Mode,
    pub support: Support,
    /// `sandbox_writable`, absolute.
    pub extra: Vec<PathBuf>,
    pub exe: PathBuf,
}

/// Where one confined program runs.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    pub project: &'a Project,
    pub stream: &'a str,
    /// Its working folder: a stream worktree, or the project root.
    pub dir: &'a Path,
    /// The task database, whose folder gets its WAL and shm files.
    pub db: Option<&'a Path>,
}

/// How one launch runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    Confined {
        abi: u32,
        kernel: u32,
        exe: PathBuf,
        tmpdir: PathBuf,
        writable: Vec<Grant>,
    },
    Unconfined {
        applied: Applied,
        why: String,
    },
}

impl Policy {
    /// A policy for `mode` with `extra` writable paths, probing the kernel now.
    pub fn new(mode: Mode, extra: Vec<PathBuf>) -> Result<Self, SandboxError> {
        let exe = std::env::current_exe().map_err(SandboxError::OwnPath)?;
        Ok(Self {
            mode,
            support: Support::probe(),
            extra,
            exe,
        })
    }

    /// The policy a config asks for (`sandbox`, `sandbox_writable`).
    pub fn from_config(
        config: &crate::config::Config,
        project: &Project,
    ) -> Result<Self, SandboxError> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let extra = config
            .sandbox_writable
            .iter()
            .map(|p| resolve(p, &project.root, home.as_deref()))
            .collect();
        Self::new(config.sandbox, extra)
    }

    /// How a program in `place` runs; `Err` only when the sandbox is required and the kernel
    /// cannot enforce it.
    pub fn plan(&self, place: &Place<'_>) -> Result<Plan, SandboxError> {
        let (abi, kernel) = match (self.mode, self.support) {
            (Mode::Off, _) => {
                return Ok(Plan::Unconfined {
                    applied: Applied::Off,
                    why: "sandbox = \"off\"".into(),
                });
            }
            (_, Support::Landlock { abi, kernel }) => (abi, kernel),
            (Mode::Auto, support) => {
                return Ok(Plan::Unconfined {
                    applied: Applied::Unavailable,
                    why: format!("{} (sandbox = \"auto\")", support.describe()),
                });
            }
            (Mode::Landlock, support) => {
                return Err(SandboxError::Unavailable {
                    why: support.describe(),
                });
            }
        };
        let tmpdir = temp_root()
            .join(crate::names::slug(&place.project.root.to_string_lossy()))
            .join(crate::names::slug(place.stream));
        let writable = rules(place, &self.extra)?;
        Ok(Plan::Confined {
            abi,
            kernel,
            exe: self.exe.clone(),
            tmpdir,
            writable,
        })
    }

    /// `cmd` (shell words) as it must run in `dir` for `stream`: wrapped in `__sandbox` when
    /// confined, unchanged otherwise. For `post_create`.
    pub fn wrap_words(
        &self,
        project: &Project,
        stream: &str,
        dir: &Path,
        cmd: &str,
    ) -> Result<String, SandboxError> {
        let plan = self.plan(&Place {
            project,
            stream,
            dir,
            db: None,
        })?;
        let Some(words) = plan.sandbox_prefix() else {
            return Ok(cmd.to_string());
        };
        let prefix: Vec<String> = words
            .iter()
            .map(|w| crate::cmdline::quote(&w.to_string_lossy()).into_owned())
            .collect();
        Ok(format!("{} {cmd}", prefix.join(" ")))
    }
}

/// `post_create`'s command as it must run in the new worktree `dir` of `stream`: confined like
/// the worker when the config says so. A stream whose sandbox is required but cannot be
/// enforced fails here, before anything runs.
pub fn wrap_post_create(
    config: &crate::config::Config,
    project: &Project,
    stream: &str,
    dir: &Path,
    cmd: &str,
) -> Result<String, crate::workspace::PrepareFailure> {
    Policy::from_config(config, project)
        .and_then(|policy| policy.wrap_words(project, stream, dir, cmd))
        .map_err(|e| crate::workspace::PrepareFailure::Failed {
            detail: format!("{:?}", crate::error::Error::from(e)),
        })
}

impl Plan {
    /// What is recorded with the worker.
    pub fn applied(&self) -> Applied {
        match self {
            Self::Confined { abi, .. } => Applied::Landlock { abi: *abi },
            Self::Unconfined { applied, .. } => *applied,
        }
    }

    /// What confines the program, when the plan confines it.
    pub fn confinement(&self) -> Option<Confinement> {
        match self {
            Self::Confined {
                abi,
                tmpdir,
                writable,
                ..
            } => Some(Confinement {
                abi: *abi,
                tmpdir: Some(tmpdir.clone()),
                writable: writable.iter().map(|g| g.path.clone()).collect(),
            }),
            Self::Unconfined { .. } => None,
        }
    }

    /// A launch with no supervisor in between (`merge`'s verify): the argv behind `__sandbox`
    /// when confined (which then says on stderr why a program could not start), as it is
    /// otherwise.
    pub fn direct_launch(&self, argv: Vec<String>) -> Vec<OsString> {
        let mut out = self.sandbox_prefix().unwrap_or_default();
        out.extend(argv.into_iter().map(OsString::from));
        out
    }

    /// `orchestrate __sandbox --abi N … --` when confined: what runs a program confined where
    /// no supervisor confines it (`post_create`, `merge`'s verify).
    fn sandbox_prefix(&self) -> Option<Vec<OsString>> {
        let (Self::Confined { exe, .. }, Some(confinement)) = (self, self.confinement()) else {
            return None;
        };
        let mut out: Vec<OsString> = vec![exe.into(), SUBCOMMAND.into()];
        out.extend(confinement.args());
        out.push("--".into());
        Some(out)
    }

    /// The log header's lines (without the leading mark).
    pub fn header(&self) -> Vec<String> {
        match self {
            Self::Unconfined { why, .. } => vec![format!(
                "{HEADER} none: {why}; the worker can write anywhere its user can"
            )],
            Self::Confined {
                abi,
                kernel,
                tmpdir,
                writable,
                ..
            } => {
                let mut lines = vec![format!(
                    "{HEADER} Landlock ABI {abi}{}; writes only to:",
                    if abi == kernel {
                        String::new()
                    } else {
                        format!(" (kernel ABI {kernel})")
                    }
                )];
                lines.push(format!("  {} (TMPDIR)", tmpdir.display()));
                lines.push("  the files its stdout and stderr write to (this log)".into());
                // One line per reason: the devices, git parts and agent state each share one.
                for group in writable.chunk_by(|a, b| a.why == b.why) {
                    let paths: Vec<String> =
                        group.iter().map(|g| g.path.display().to_string()).collect();
                    lines.push(format!("  {} ({})", paths.join(", "), group[0].why));
                }
                lines
            }
        }
    }
}

/// How the log header's sandbox line starts.
const HEADER: &str = "sandbox:";

/// A hint for a log whose last run was confined and whose output shows a refused write
/// ("Permission denied", `EACCES`), naming the path when the line shows one.
pub fn refusal_hint(log: &str) -> Option<String> {
    let start = log
        .rfind(&format!("{MARK} {HEADER}"))
        .filter(|&i| log[i..].starts_with(&format!("{MARK} {HEADER} Landlock")))?;
    let refused = refusal_in(log[start..].lines().filter(|l| !l.starts_with(MARK)))?;
    Some(format!(
        "{refused} is most likely the sandbox: this worker may write only to the folders its \
         log header lists; {SANDBOX_WRITABLE_HINT}"
    ))
}

/// What to do about a write the sandbox refused.
pub const SANDBOX_WRITABLE_HINT: &str = "add a folder to `sandbox_writable` in \
     .claude/orchestrator/config.toml, or run with `--sandbox off`";

/// `"Permission denied" on PATH` for the first line that shows a refused write
/// ("Permission denied", `EACCES`), naming the path when the line does.
pub fn refusal_in<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let line = lines.into_iter().find(|l| {
        let l = l.to_ascii_lowercase();
        l.contains("permission denied") || l.contains("eacces")
    })?;
    Some(format!(
        "\"Permission denied\"{}",
        refused_path(line)
            .map(|p| format!(" on {p}"))
            .unwrap_or_default()
    ))
}

/// The path a refusal line names: the last absolute path before "permission denied" (`sh`,
/// `touch`, Python), else the first after it (Node's `EACCES: permission denied, open '/x'`).
fn refused_path(line: &str) -> Option<&str> {
    let at = line
        .to_ascii_lowercase()
        .find("permission denied")
        .unwrap_or(line.len());
    let (before, after) = line.split_at(at);
    absolute_paths(before)
        .last()
        .or_else(|| absolute_paths(after).next())
}

/// The words of `text` that are absolute paths, without the quotes and colons around them.
fn absolute_paths(text: &str) -> impl DoubleEndedIterator<Item = &str> {
    text.split_whitespace()
        .map(|w| w.trim_matches(|c: char| matches!(c, '\'' | '"' | '`' | ':' | ',' | '(' | ')')))
        .filter(|w| w.starts_with('/') && w.len() > 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use landlock::ABI;

    #[test]
    fn modes_parse_and_print() {
        for name in Mode::CHOICES {
            assert_eq!(Mode::parse(name).unwrap().as_str(), name);
        }
        assert_eq!(Mode::parse(" LandLock "), Some(Mode::Landlock));
        assert_eq!(Mode::parse("on"), None);
    }

    #[test]
    fn the_cap_lowers_the_abi_and_zero_turns_it_off() {
        let seven = LandlockStatus::Available {
            effective_abi: ABI::V7,
            kernel_abi: None,
        };
        assert_eq!(
            Support::capped(seven, None),
            Support::Landlock { abi: 7, kernel: 7 }
        );
        assert_eq!(
            Support::capped(seven, Some(3)),
            Support::Landlock { abi: 3, kernel: 7 }
        );
        assert_eq!(
            Support::capped(seven, Some(99)),
            Support::Landlock { abi: 7, kernel: 7 }
        );
        assert_eq!(Support::capped(seven, Some(0)), Support::CappedOff);
        assert_eq!(
            Support::capped(LandlockStatus::NotImplemented, Some(3)),
            Support::NotImplemented
        );
        let newer = LandlockStatus::Available {
            effective_abi: ABI::V10,
            kernel_abi: Some(12),
        };
        assert_eq!(
            Support::capped(newer, None),
            Support::Landlock {
                abi: 10,
                kernel: 12
            }
        );
    }

    #[test]
    fn applied_round_trips_through_its_column_text() {
        for a in [
            Applied::Landlock { abi: 7 },
            Applied::Off,
            Applied::Unavailable,
        ] {
            assert_eq!(Applied::from_db(&a.to_db()), Some(a));
        }
        assert_eq!(Applied::from_db("landlock x"), None);
        assert_eq!(
            Applied::Landlock { abi: 7 }.to_string(),
            "sandboxed (Landlock ABI 7)"
        );
    }

    fn policy(mode: Mode, support: Support) -> Policy {
        Policy {
            mode,
            support,
            extra: Vec::new(),
            exe: PathBuf::from("/bin/orchestrate"),
        }
    }

    #[test]
    fn auto_falls_back_and_says_why_landlock_refuses_off_is_off() {
        let tmp = tempfile::tempdir().unwrap();
        let project = Project {
            root: tmp.path().to_path_buf(),
        };
        let place = Place {
            project: &project,
            stream: "A",
            dir: &project.root,
            db: None,
        };
        let plan = policy(Mode::Auto, Support::NotImplemented)
            .plan(&place)
            .unwrap();
        assert_eq!(plan.applied(), Applied::Unavailable);
        assert!(
            plan.header()[0].contains("the kernel has no Landlock"),
            "{plan:?}"
        );
        assert_eq!(plan.confinement(), None);
        let err = policy(Mode::Landlock, Support::NotEnabled)
            .plan(&place)
            .unwrap_err();
        assert!(err.to_string().contains("not enabled"), "{err}");
        assert!(err.hint().unwrap().contains("--sandbox off"));
        let off = policy(Mode::Off, Support::Landlock { abi: 7, kernel: 7 })
            .plan(&place)
            .unwrap();
        assert_eq!(off.applied(), Applied::Off);
    }

    #[test]
    fn a_confined_plan_passes_its_grants_on_and_lists_them() {
        let tmp = tempfile::tempdir().unwrap();
        let project = Project {
            root: tmp.path().to_path_buf(),
        };
        let mut p = policy(Mode::Auto, Support::Landlock { abi: 5, kernel: 7 });
        p.extra = vec![tmp.path().join("extra"), tmp.path().join("missing")];
        std::fs::create_dir(tmp.path().join("extra")).unwrap();
        let plan = p
            .plan(&Place {
                project: &project,
                stream: "a b",
                dir: &project.root,
                db: None,
            })
            .unwrap();
        let confinement = plan.confinement().unwrap();
        assert_eq!(confinement.abi, 5);
        assert!(confinement.writable.contains(&tmp.path().join("extra")));
        assert!(!confinement.writable.contains(&tmp.path().join("missing")));
        // `post_create` runs behind `__sandbox`, with the same arguments.
        let words = p
            .wrap_words(&project, "a b", &project.root, "make x")
            .unwrap();
        let expected: Vec<String> = confinement
            .args()
            .iter()
            .map(|w| crate::cmdline::quote(&w.to_string_lossy()).into_owned())
            .collect();
        assert_eq!(
            words,
            format!(
                "/bin/orchestrate {SUBCOMMAND} {} -- make x",
                expected.join(" ")
            )
        );
        let header = plan.header().join("\n");
        assert!(header.contains("Landlock ABI 5 (kernel ABI 7)"), "{header}");
        assert!(header.contains("extra (sandbox_writable)"), "{header}");
        assert!(!header.contains("missing"), "{header}");
        let Plan::Confined { tmpdir, .. } = &plan else {
            panic!("confined")
        };
        assert!(tmpdir.starts_with(temp_root()), "{tmpdir:?}");
        assert!(tmpdir.ends_with(crate::names::slug("a b")), "{tmpdir:?}");
    }

    #[test]
    fn refusals_in_a_confined_log_get_a_hint_naming_the_path() {
        let log = "==== sandbox: Landlock ABI 7; writes only to:\n====   /w (the worktree)\n\
                   /x/worker.sh: 89: cannot create /home/u/.bashrc: Permission denied\n";
        let hint = refusal_hint(log).unwrap();
        assert!(
            hint.contains("on /home/u/.bashrc is most likely the sandbox"),
            "{hint}"
        );
        let node = "==== sandbox: Landlock ABI 7; writes only to:\n\
                    Error: EACCES: permission denied, open '/etc/x'\n";
        assert!(refusal_hint(node).unwrap().contains("on /etc/x "));
        let python =
            "==== sandbox: Landlock ABI 7\nPermissionError: [Errno 13] Permission denied: '/p/q'\n";
        assert!(refusal_hint(python).unwrap().contains("on /p/q "));
        let bare = "==== sandbox: Landlock ABI 7\ngit: Permission denied\n";
        assert!(
            refusal_hint(bare)
                .unwrap()
                .starts_with("\"Permission denied\" is")
        );
        // Unconfined, or a later unconfined attempt: no hint.
        let off = "==== sandbox: none: sandbox = \"off\"\nPermission denied\n";
        assert_eq!(refusal_hint(off), None);
        assert_eq!(refusal_hint(&format!("{log}{off}")), None);
        assert_eq!(
            refusal_hint("==== sandbox: Landlock ABI 7\nall fine\n"),
            None
        );
    }
}
