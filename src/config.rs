//! Settings for a run: defaults, the config file `.claude/orchestrator/config.toml`, the
//! environment (`ORCHESTRATE_*`) and flags, in increasing precedence.
//!
//! [`Config::load`] applies file and environment; commands apply their flags on top with
//! [`Config::apply`]. Every value is validated where it is read, so an error names its origin:
//! the file and line (with the key), the environment variable, or the flag. Unknown keys in the
//! file are errors (a typo must not silently fall back to a default); unknown `ORCHESTRATE_*`
//! variables are not, because workers themselves receive `ORCHESTRATE_STREAM` and friends.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::error::Diagnostic;
use crate::exit_codes;
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
    /// A command (run by `sh -c` in the stream's worktree) a stream's work must pass before
    /// dependents start on it; a stream's `metadata.verify` overrides it.
    pub verify: Option<String>,
    pub verify_timeout: Duration,
    /// `merge` runs the verify command on each merge it makes, as `merge --verify` does.
    pub merge_verify: bool,
    /// `--max-budget-usd` given to each Claude worker.
    pub max_budget_usd: Option<f64>,
    /// The whole run's spending cap: at 100 % nothing new starts.
    pub run_budget_usd: Option<f64>,
    /// The first wait after a usage limit with no reset time, or an overloaded API; it doubles
    /// (with jitter) on each repeat.
    pub backoff_min: Duration,
    /// A retried or parked Claude worker resumes its session (`claude --resume`).
    pub resume: bool,
    /// Confine workers (and `post_create`) with Landlock: auto, landlock or off.
    pub sandbox: crate::worker::sandbox::Mode,
    /// Extra paths a confined worker may write (`~/` is HOME, relative is the project root).
    pub sandbox_writable: Vec<PathBuf>,
    /// How `.worktreeinclude` files are copied: auto (a copy-on-write clone where the file
    /// system can, else a copy), reflink (a clone or an error) or copy.
    pub include_copy: crate::git::beneath::CopyMode,
    /// Streams that may run together but claim the same files (`metadata.files`) run one
    /// after the other: the later waits for the earlier as if it depended on it.
    pub strict_files: bool,
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
            verify: None,
            verify_timeout: Duration::from_secs(600),
            merge_verify: false,
            max_budget_usd: None,
            run_budget_usd: None,
            backoff_min: Duration::from_secs(60),
            resume: true,
            sandbox: crate::worker::sandbox::Mode::Auto,
            sandbox_writable: Vec::new(),
            include_copy: crate::git::beneath::CopyMode::Auto,
            strict_files: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("environment variable {key}: {message}")]
    Env { key: String, message: String },
    #[error("{flag}: {message}")]
    Flag { flag: String, message: String },
}

impl Diagnostic for ConfigError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            Self::Env { key, .. } => format!("fix or unset {key}"),
            Self::Flag { .. } => "see `orchestrate help start`".into(),
            Self::Invalid { path, line, .. } => format!(
                "edit line {line} of {}; every key is documented, with its default, in the \
                 config.toml `orchestrate init` installs",
                path.display()
            ),
            Self::Read { path, .. } => format!("check the permissions of {}", path.display()),
        })
    }

    fn exit_code(&self) -> i32 {
        match self {
            Self::Flag { .. } => exit_codes::USAGE,
            _ => exit_codes::FAILURE,
        }
    }
}

/// The config file as written: every key optional, unknown keys refused, spans kept so a bad
/// value can be reported at its line.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    worker_cmd: Option<Spanned<String>>,
    max_parallel: Option<Spanned<i64>>,
    stagger: Option<Spanned<f64>>,
    retries: Option<Spanned<i64>>,
    grace: Option<Spanned<f64>>,
    worktrees: Option<Spanned<bool>>,
    post_create: Option<Spanned<String>>,
    post_create_timeout: Option<Spanned<f64>>,
    target_branch: Option<Spanned<String>>,
    auto_commit: Option<Spanned<bool>>,
    verify: Option<Spanned<String>>,
    verify_timeout: Option<Spanned<f64>>,
    merge_verify: Option<Spanned<bool>>,
    max_budget_usd: Option<Spanned<f64>>,
    run_budget_usd: Option<Spanned<f64>>,
    backoff_min: Option<Spanned<f64>>,
    resume: Option<Spanned<bool>>,
    sandbox: Option<Spanned<String>>,
    sandbox_writable: Option<Spanned<Vec<String>>>,
    include_copy: Option<Spanned<String>>,
    strict_files: Option<Spanned<bool>>,
}

/// Values given on the command line; `None` leaves the configured value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub worker_cmd: Option<String>,
    pub max_parallel: Option<u32>,
    pub stagger: Option<f64>,
    pub retries: Option<u32>,
    pub grace: Option<f64>,
    pub worktrees: Option<bool>,
    pub verify: Option<String>,
    pub max_budget_usd: Option<f64>,
    pub run_budget_usd: Option<f64>,
    pub sandbox: Option<crate::worker::sandbox::Mode>,
    pub strict_files: Option<bool>,
}

/// Where a value came from, so a validation error can say so.
enum Origin<'a> {
    File { path: &'a Path, text: &'a str },
    Env(&'static str),
    Flag(&'static str),
}

impl Origin<'_> {
    fn error(&self, key: &str, span: Option<Range<usize>>, message: String) -> ConfigError {
        match self {
            Origin::File { path, text } => ConfigError::Invalid {
                path: path.to_path_buf(),
                line: span.map_or(1, |s| line_of(text, s.start)),
                message: format!("`{key}`: {message}"),
            },
            Origin::Env(key) => ConfigError::Env {
                key: (*key).into(),
                message,
            },
            Origin::Flag(flag) => ConfigError::Flag {
                flag: (*flag).into(),
                message,
            },
        }
    }
}

/// The environment variable for each key.
pub const ENV_KEYS: [(&str, &str); 21] = [
    ("worker_cmd", "ORCHESTRATE_WORKER_CMD"),
    ("max_parallel", "ORCHESTRATE_MAX_PARALLEL"),
    ("stagger", "ORCHESTRATE_STAGGER"),
    ("retries", "ORCHESTRATE_RETRIES"),
    ("grace", "ORCHESTRATE_GRACE"),
    ("worktrees", "ORCHESTRATE_WORKTREES"),
    ("post_create", "ORCHESTRATE_POST_CREATE"),
    ("post_create_timeout", "ORCHESTRATE_POST_CREATE_TIMEOUT"),
    ("target_branch", "ORCHESTRATE_TARGET_BRANCH"),
    ("auto_commit", "ORCHESTRATE_AUTO_COMMIT"),
    ("verify", "ORCHESTRATE_VERIFY"),
    ("verify_timeout", "ORCHESTRATE_VERIFY_TIMEOUT"),
    ("merge_verify", "ORCHESTRATE_MERGE_VERIFY"),
    ("max_budget_usd", "ORCHESTRATE_MAX_BUDGET_USD"),
    ("run_budget_usd", "ORCHESTRATE_RUN_BUDGET_USD"),
    ("backoff_min", "ORCHESTRATE_BACKOFF_MIN"),
    ("resume", "ORCHESTRATE_RESUME"),
    ("sandbox", "ORCHESTRATE_SANDBOX"),
    ("sandbox_writable", "ORCHESTRATE_SANDBOX_WRITABLE"),
    ("include_copy", "ORCHESTRATE_INCLUDE_COPY"),
    ("strict_files", "ORCHESTRATE_STRICT_FILES"),
];

impl Config {
    /// Defaults, overridden by the project's config file (if any), then by `ORCHESTRATE_*`.
    pub fn load(project: &Project) -> Result<Self, ConfigError> {
        Self::load_from(&project.config_file(), |key| std::env::var(key).ok())
    }

    /// Like [`Config::load`] with an explicit file and environment (tests need not touch the
    /// process environment). A missing file is not an error: the defaults apply.
    pub fn load_from(
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        match std::fs::read_to_string(path) {
            Ok(text) => config.apply_file(path, &text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
        config.apply_env(env)?;
        Ok(config)
    }

    /// Parses and applies the text of a config file.
    pub fn apply_file(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| parse_error(path, text, &e))?;
        let origin = Origin::File { path, text };
        macro_rules! set {
            ($key:ident, $conv:ident) => {
                if let Some(v) = file.$key {
                    let span = v.span();
                    self.$key = $conv(&origin, stringify!($key), Some(span), v.into_inner())?;
                }
            };
        }
        set!(worker_cmd, command);
        set!(max_parallel, positive);
        set!(stagger, duration);
        set!(retries, count);
        set!(grace, duration);
        set!(worktrees, plain);
        set!(post_create, optional_command);
        set!(post_create_timeout, duration);
        set!(target_branch, branch);
        set!(auto_commit, plain);
        set!(verify, optional_command);
        set!(verify_timeout, duration);
        set!(merge_verify, plain);
        set!(max_budget_usd, dollars);
        set!(run_budget_usd, dollars);
        set!(backoff_min, duration);
        set!(resume, plain);
        set!(sandbox, sandbox_mode);
        set!(sandbox_writable, paths);
        set!(include_copy, copy_mode);
        set!(strict_files, plain);
        Ok(())
    }

    /// Applies `ORCHESTRATE_*` variables; empty values count as unset.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        for (key, var) in ENV_KEYS {
            let Some(raw) = env(var).filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            let origin = Origin::Env(var);
            let raw = raw.trim().to_string();
            match key {
                "worker_cmd" => self.worker_cmd = command(&origin, key, None, raw)?,
                "max_parallel" => {
                    self.max_parallel = positive(&origin, key, None, int(&origin, key, &raw)?)?;
                }
                "stagger" => self.stagger = env_seconds(&origin, &raw)?,
                "retries" => self.retries = count(&origin, key, None, int(&origin, key, &raw)?)?,
                "grace" => self.grace = env_seconds(&origin, &raw)?,
                "worktrees" => self.worktrees = boolean(&origin, &raw)?,
                "post_create" => self.post_create = optional_command(&origin, key, None, raw)?,
                "post_create_timeout" => self.post_create_timeout = env_seconds(&origin, &raw)?,
                "target_branch" => self.target_branch = branch(&origin, key, None, raw)?,
                "auto_commit" => self.auto_commit = boolean(&origin, &raw)?,
                "verify" => self.verify = optional_command(&origin, key, None, raw)?,
                "verify_timeout" => self.verify_timeout = env_seconds(&origin, &raw)?,
                "merge_verify" => self.merge_verify = boolean(&origin, &raw)?,
                "max_budget_usd" => {
                    self.max_budget_usd = dollars(&origin, key, None, float(&origin, key, &raw)?)?;
                }
                "run_budget_usd" => {
                    self.run_budget_usd = dollars(&origin, key, None, float(&origin, key, &raw)?)?;
                }
                "backoff_min" => self.backoff_min = env_seconds(&origin, &raw)?,
                "resume" => self.resume = boolean(&origin, &raw)?,
                "sandbox" => self.sandbox = sandbox_mode(&origin, key, None, raw)?,
                "include_copy" => self.include_copy = copy_mode(&origin, key, None, raw)?,
                "strict_files" => self.strict_files = boolean(&origin, &raw)?,
                "sandbox_writable" => {
                    // A list like PATH: colon-separated.
                    let list = std::env::split_paths(&raw)
                        .map(|p| p.to_string_lossy().into_owned())
                        .collect();
                    self.sandbox_writable = paths(&origin, key, None, list)?;
                }
                _ => unreachable!("ENV_KEYS lists only known keys"),
            }
        }
        Ok(())
    }

    /// Applies command-line values on top (the highest precedence).
    pub fn apply(&mut self, flags: &Overrides) -> Result<(), ConfigError> {
        if let Some(cmd) = &flags.worker_cmd {
            self.worker_cmd = command(&Origin::Flag("--worker-cmd"), "", None, cmd.clone())?;
        }
        if let Some(n) = flags.max_parallel {
            self.max_parallel = positive(&Origin::Flag("--max-parallel"), "", None, n.into())?;
        }
        if let Some(n) = flags.retries {
            self.retries = n;
        }
        if let Some(secs) = flags.stagger {
            self.stagger = duration(&Origin::Flag("--stagger"), "", None, secs)?;
        }
        if let Some(secs) = flags.grace {
            self.grace = duration(&Origin::Flag("--grace"), "", None, secs)?;
        }
        if let Some(on) = flags.worktrees {
            self.worktrees = on;
        }
        if let Some(cmd) = &flags.verify {
            self.verify = optional_command(&Origin::Flag("--verify"), "", None, cmd.clone())?;
        }
        if let Some(usd) = flags.max_budget_usd {
            self.max_budget_usd = dollars(&Origin::Flag("--max-budget-usd"), "", None, usd)?;
        }
        if let Some(usd) = flags.run_budget_usd {
            self.run_budget_usd = dollars(&Origin::Flag("--run-budget-usd"), "", None, usd)?;
        }
        if let Some(mode) = flags.sandbox {
            self.sandbox = mode;
        }
        if let Some(on) = flags.strict_files {
            self.strict_files = on;
        }
        Ok(())
    }
}

fn plain(_: &Origin<'_>, _: &str, _: Option<Range<usize>>, v: bool) -> Result<bool, ConfigError> {
    Ok(v)
}

fn command(
    origin: &Origin<'_>,
    key: &str,
    span: Option<Range<usize>>,
    v: String,
) -> Result<String, ConfigError> {
    if v.trim().is_empty() {
        return Err(origin.error(key, span, "the command is empty".into()));
    }
    Ok(v)
}

fn optional_command(
    _: &Origin<'_>,
    _: &str,
    _: Option<Range<usize>>,
    v: String,
) -> Result<Option<String>, ConfigError> {
    Ok(Some(v).filter(|c| !c.trim().is_empty()))
}

fn sandbox_mode(
    origin: &Origin<'_>,
    key: &str,
    span: Option<Range<usize>>,
    v: String,
) -> Result<crate::worker::sandbox::Mode, ConfigError> {
    use crate::worker::sandbox::Mode;
    one_of(origin, key, span, v, Mode::parse, &Mode::CHOICES)
}

fn copy_mode(
    origin: &Origin<'_>,
    key: &str,
    span: Option<Range<usize>>,
    v: String,
) -> Result<crate::git::beneath::CopyMode, ConfigError> {
    use crate::git::beneath::CopyMode;
    one_of(origin, key, span, v, CopyMode::parse, &CopyMode::CHOICES)
}

/// A value that must be one of `choices` (parsed by `parse`).
fn one_of<T>(
    origin: &Origin<'_>,
    key: &str,
    span: Option<Range<usize>>,
    v: String,
    parse: fn(&str) -> Option<T>,
    choices: &[&str],
) -> Result<T, ConfigError> {
    parse(&v).ok_or_else(|| {
        origin.error(
            key,
            span,
            format!("`{v}` is not one of {}", choices.join(", ")),
        )
    })
}

fn paths(
    origin: &Origin<'_>,
    key: &str,
    span: Option<Range<usize>>,
    v: Vec<String>,
) -> Result<Vec<PathBuf>, ConfigError> {
    if let Some(empty) = v.iter().position(|p| p.trim().is_empty()) {
        return Err(origin.error(key, span, format!("entry {} is empty", empty + 1)));
    }
    Ok(v.into_iter().map(PathBuf::from).collect())
}

fn branch(
    origin: &Origin<'_>,
    key: &str,
    span: Option<Range<usize>>,
    v: String,
) -> Result<Option<String>, ConfigError> {
    let v = v.trim().to_string();
    if v.is_empty() {
        return Ok(None);
    }
    if v.starts_with('-') || v.contains(char::is_whitespace) || v.contains("..") {
        return Err(origin.error(key, span, format!("`{v}` is not a valid branch name")));
    }
    Ok(Some(v))
}

fn positive(
    origin: &Origin<'_>,
    key: &str,
    span: Option<Range<usize>>,
    v: i64,
) -> Result<u32, ConfigError> {
    match u32::try_from(v) {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(origin.error(key, span, format!("must be a whole number ≥ 1, not {v}"))),
    }
}

fn count(
    origin: &Origin<'_>,
    key: &str,
    span: Option<Range<usize>>,
    v: i64,
) -> Result<u32, ConfigError> {
    u32::try_from(v).map_err(|_| origin.error(key, span, format!("must be ≥ 0, not {v}")))
}

/// A number of seconds as a duration: finite and ≥ 0. The one check behind every seconds
/// value, from the config file, the environment or a flag.
pub fn seconds(secs: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("must be a number of seconds ≥ 0, not {secs}"))
}

/// [`seconds`] from text (an environment variable, a flag).
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    seconds(secs)
}

fn duration(
    origin: &Origin<'_>,
    key: &str,
    span: Option<Range<usize>>,
    v: f64,
) -> Result<Duration, ConfigError> {
    seconds(v).map_err(|message| origin.error(key, span, message))
}

fn env_seconds(origin: &Origin<'_>, raw: &str) -> Result<Duration, ConfigError> {
    parse_seconds(raw).map_err(|message| origin.error("", None, message))
}

/// An amount of US dollars: finite and > 0.
fn dollars(
    origin: &Origin<'_>,
    key: &str,
    span: Option<Range<usize>>,
    v: f64,
) -> Result<Option<f64>, ConfigError> {
    if v.is_finite() && v > 0.0 {
        Ok(Some(v))
    } else {
        Err(origin.error(
            key,
            span,
            format!("must be an amount of US dollars > 0, not {v}"),
        ))
    }
}

fn float(origin: &Origin<'_>, key: &str, raw: &str) -> Result<f64, ConfigError> {
    raw.parse()
        .map_err(|_| origin.error(key, None, format!("`{raw}` is not a number")))
}

fn int(origin: &Origin<'_>, key: &str, raw: &str) -> Result<i64, ConfigError> {
    raw.parse()
        .map_err(|_| origin.error(key, None, format!("`{raw}` is not a whole number")))
}

fn boolean(origin: &Origin<'_>, raw: &str) -> Result<bool, ConfigError> {
    match raw.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(origin.error(
            "",
            None,
            format!("`{raw}` is not a boolean (true/false, 1/0, yes/no, on/off)"),
        )),
    }
}

/// The 1-based line holding byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Turns a TOML error into `file:line: message`, naming the key on that line when there is one.
fn parse_error(path: &Path, text: &str, err: &toml::de::Error) -> ConfigError {
    let line = err.span().map_or(1, |s| line_of(text, s.start));
    let message = err
        .message()
        .trim()
        .replace('\n', "; ")
        .replace("expected f64", "expected a number of seconds")
        .replace("expected i64", "expected a whole number")
        .replace("expected a boolean", "expected true or false");
    let key = text
        .lines()
        .nth(line - 1)
        .and_then(|l| l.split_once('='))
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .filter(|k| !k.is_empty() && !k.starts_with('#') && !message.contains(&format!("`{k}`")));
    ConfigError::Invalid {
        path: path.to_path_buf(),
        line,
        message: match key {
            Some(key) => format!("`{key}`: {message}"),
            None => message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        c.apply_file(Path::new("/p/config.toml"), text)?;
        Ok(c)
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn empty_and_all_commented_files_give_the_defaults() {
        assert_eq!(parse("").unwrap(), Config::default());
        assert_eq!(parse("# max_parallel = 4\n").unwrap(), Config::default());
    }

    #[test]
    fn every_key_is_read() {
        let c = parse(
            "worker_cmd = \"sh w.sh\"\nmax_parallel = 2\nstagger = 0.5\nretries = 0\ngrace = 3\n\
             worktrees = true\npost_create = \"make deps\"\npost_create_timeout = 60\n\
             target_branch = \"develop\"\nauto_commit = false\nsandbox = \"landlock\"\n\
             sandbox_writable = [\"~/.npm\", \"/opt/cache\"]\n",
        )
        .unwrap();
        assert_eq!(c.worker_cmd, "sh w.sh");
        assert_eq!(c.max_parallel, 2);
        assert_eq!(c.stagger, Duration::from_millis(500));
        assert_eq!(c.retries, 0);
        assert_eq!(c.grace, Duration::from_secs(3));
        assert!(c.worktrees);
        assert_eq!(c.post_create.as_deref(), Some("make deps"));
        assert_eq!(c.post_create_timeout, Duration::from_secs(60));
        assert_eq!(c.target_branch.as_deref(), Some("develop"));
        assert!(!c.auto_commit);
        assert_eq!(c.sandbox, crate::worker::sandbox::Mode::Landlock);
        assert_eq!(
            c.sandbox_writable,
            [PathBuf::from("~/.npm"), PathBuf::from("/opt/cache")]
        );
    }

    #[test]
    fn sandbox_values_are_checked_in_file_and_env() {
        let e = err("sandbox = \"on\"\n");
        assert!(
            e.contains("`sandbox`: `on` is not one of auto, landlock, off"),
            "{e}"
        );
        let e = err("sandbox_writable = [\"\"]\n");
        assert!(e.contains("`sandbox_writable`: entry 1 is empty"), "{e}");
        let env = |k: &str| match k {
            "ORCHESTRATE_SANDBOX" => Some("off".to_string()),
            "ORCHESTRATE_SANDBOX_WRITABLE" => Some("/a:/b c".to_string()),
            _ => None,
        };
        let c = Config::load_from(Path::new("/nonexistent/config.toml"), env).unwrap();
        assert_eq!(c.sandbox, crate::worker::sandbox::Mode::Off);
        assert_eq!(
            c.sandbox_writable,
            [PathBuf::from("/a"), PathBuf::from("/b c")]
        );
    }

    #[test]
    fn unknown_key_names_key_file_and_line() {
        let e = err("# comment\nmax_parallel = 2\nmax_paralel = 3\n");
        assert!(e.starts_with("/p/config.toml:3: "), "{e}");
        assert!(e.contains("max_paralel"), "{e}");
    }

    #[test]
    fn wrong_type_names_key_and_line() {
        let e = err("\n\nstagger = \"fast\"\n");
        assert!(e.starts_with("/p/config.toml:3: "), "{e}");
        assert!(e.contains("stagger"), "{e}");
    }

    #[test]
    fn bad_values_name_key_and_line() {
        let e = err("retries = 1\nmax_parallel = 0\n");
        assert!(e.starts_with("/p/config.toml:2: `max_parallel`"), "{e}");
        let e = err("grace = -1\n");
        assert!(e.starts_with("/p/config.toml:1: `grace`"), "{e}");
        let e = err("worker_cmd = \"  \"\n");
        assert!(e.contains("`worker_cmd`: the command is empty"), "{e}");
    }

    #[test]
    fn syntax_error_has_a_line() {
        let e = err("retries = 1\nstagger = = 2\n");
        assert!(e.starts_with("/p/config.toml:2: "), "{e}");
    }

    #[test]
    fn env_overrides_file_and_flags_override_env() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config.toml");
        std::fs::write(&path, "max_parallel = 2\nretries = 3\n").unwrap();
        let env = |k: &str| (k == "ORCHESTRATE_MAX_PARALLEL").then(|| "5".to_string());
        let mut c = Config::load_from(&path, env).unwrap();
        assert_eq!((c.max_parallel, c.retries), (5, 3));
        c.apply(&Overrides {
            max_parallel: Some(7),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.max_parallel, 7);
    }

    #[test]
    fn bad_env_names_the_variable() {
        let env = |k: &str| (k == "ORCHESTRATE_WORKTREES").then(|| "maybe".to_string());
        let e = Config::load_from(Path::new("/nonexistent/config.toml"), env).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("environment variable ORCHESTRATE_WORKTREES"),
            "{e}"
        );
    }

    #[test]
    fn bad_flag_is_a_usage_error() {
        let e = Config::default()
            .apply(&Overrides {
                stagger: Some(-2.0),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(e.exit_code(), exit_codes::USAGE);
        assert!(e.to_string().starts_with("--stagger:"), "{e}");
    }

    #[test]
    fn seconds_are_finite_and_not_negative() {
        assert_eq!(parse_seconds(" 1.5 "), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_seconds("0"), Ok(Duration::ZERO));
        for bad in ["-1", "NaN", "inf", "1e30", "fast", ""] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
        let env = |k: &str| (k == "ORCHESTRATE_GRACE").then(|| "-3".to_string());
        let e = Config::load_from(Path::new("/nonexistent/config.toml"), env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable ORCHESTRATE_GRACE: must be a number of seconds ≥ 0, not -3"
        );
    }

    #[test]
    fn line_of_counts_newlines_before_offset() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }
}
