//! `orchestrate doctor`: checks everything a run needs and says what to fix.
//!
//! Each check is ✓ (fine), ! (worth knowing, does not stop a run) or ✗ (blocks a run), with a
//! fix for every ! and ✗. Checks that depend on a failed one are skipped, not failed twice.
//! The command changes nothing; it exits with `FAILURE` when any check blocks a run.

use std::path::{Path, PathBuf};

use crate::cli::{DoctorArgs, GlobalArgs};
use crate::config::Config;
use crate::error::Result;
use crate::exit_codes;
use crate::graph::StreamGraph;
use crate::project::{DbLocation, Project};
use crate::setup::{self, Notice};
use crate::taskdb::{Snapshot, SqliteTaskDb, TaskSource};
use crate::ui::Ui;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Fail,
}

/// One line of the report.
#[derive(Debug)]
struct Check {
    level: Level,
    title: &'static str,
    detail: String,
    fix: Option<String>,
}

fn ok(title: &'static str, detail: impl Into<String>) -> Check {
    Check {
        level: Level::Ok,
        title,
        detail: detail.into(),
        fix: None,
    }
}

fn warn(title: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        level: Level::Warn,
        title,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

fn fail(title: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        level: Level::Fail,
        title,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

/// The chain of an error on one line, and its hint as the fix.
fn from_error(title: &'static str, err: crate::error::Error) -> Check {
    let fix = err
        .hint()
        .unwrap_or("see ORCHESTRATION_GUIDE.md")
        .to_string();
    fail(title, err.chain().join(": "), fix)
}

pub fn run(global: &GlobalArgs, _args: &DoctorArgs, ui: &Ui) -> Result<i32> {
    let checks = match Project::from_env(global.project.as_deref()) {
        Ok(project) => check_project(&project, global),
        Err(e) => vec![from_error("project root", e.into())],
    };
    ui.print(&render(&checks, ui));
    let blocking = checks.iter().filter(|c| c.level == Level::Fail).count();
    Ok(if blocking == 0 {
        exit_codes::OK
    } else {
        exit_codes::FAILURE
    })
}

fn check_project(project: &Project, global: &GlobalArgs) -> Vec<Check> {
    let mut checks = vec![ok("project root", project.root.display().to_string())];
    let config = Config::load(project);
    let worktrees_on = config.as_ref().is_ok_and(|c| c.worktrees);
    checks.extend(check_git(&project.root, worktrees_on));
    checks.extend(check_database(project, global));
    match config {
        Ok(config) => {
            let file = project.config_file();
            checks.push(ok(
                "config",
                if file.exists() {
                    format!("{} is valid", file.display())
                } else {
                    "no config file: the defaults apply".into()
                },
            ));
            checks.extend(check_worker(&config.worker_cmd, &project.root));
            checks.extend(check_post_create(
                config.post_create.as_deref(),
                &project.root,
            ));
            checks.extend(check_target_branch(
                config.target_branch.as_deref(),
                &project.root,
            ));
        }
        Err(e) => checks.push(from_error("config", e.into())),
    }
    checks.push(check_writable(
        "worktree folder",
        &project.worktrees_dir(),
        "stream worktrees",
    ));
    checks.push(check_writable(
        "runtime folders",
        &project.orchestrator_dir(),
        "logs and state",
    ));
    checks.push(check_installed(project));
    checks.push(check_state(&project.state_db()));
    checks
}

fn check_git(root: &Path, worktrees_on: bool) -> Vec<Check> {
    let mut checks = Vec::new();
    checks.push(match git_cli_version() {
        Some(version) => ok("git", version),
        None => warn(
            "git",
            "the `git` command is not on PATH",
            "install git: merge-back hints and your own merges use it",
        ),
    });
    let no_worktrees = |detail: String, fix: &str| {
        if worktrees_on {
            fail("worktree support", detail, fix)
        } else {
            warn("worktree support", detail, fix)
        }
    };
    match git2::Repository::open(root) {
        Err(e) => {
            checks.push(warn(
                "git repository",
                format!(
                    "{} is not a git repository ({})",
                    root.display(),
                    e.message()
                ),
                "`git init` and commit, to use worktrees; without, streams share the project root",
            ));
            checks.push(no_worktrees(
                "unavailable outside a git repository".into(),
                "run without --worktrees, or make the project a git repository",
            ));
        }
        Ok(repo) if repo.is_bare() => checks.push(fail(
            "git repository",
            format!("{} is a bare repository", root.display()),
            "run in a checkout (a repository with a work tree)",
        )),
        Ok(repo) => {
            let head = repo.head().ok();
            let branch = head
                .as_ref()
                .and_then(|h| h.shorthand().ok().map(str::to_string))
                .unwrap_or_else(|| "(detached)".into());
            match head.and_then(|h| h.peel_to_commit().ok()) {
                Some(commit) => {
                    let id = commit.id().to_string();
                    checks.push(ok(
                        "git repository",
                        format!("on {branch} at {}", &id[..id.len().min(10)]),
                    ));
                    checks.push(ok(
                        "worktree support",
                        format!("streams can branch from HEAD{}", on_or_off(worktrees_on)),
                    ));
                }
                None => {
                    checks.push(ok("git repository", "no commit yet"));
                    checks.push(no_worktrees(
                        "the repository has no commit for stream branches to start from".into(),
                        "make a first commit (`git commit --allow-empty -m init`)",
                    ));
                }
            }
        }
    }
    checks
}

fn on_or_off(on: bool) -> &'static str {
    if on {
        " (worktrees = true in config)"
    } else {
        " (off by default; `start --worktrees` turns them on)"
    }
}

/// `git version 2.43.0`, or `None` if git cannot be run.
fn git_cli_version() -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn check_database(project: &Project, global: &GlobalArgs) -> Vec<Check> {
    let location =
        match DbLocation::resolve(global.db.as_deref(), project, |k| std::env::var(k).ok()) {
            Ok(location) => location,
            Err(e) => return vec![from_error("task database", e.into())],
        };
    let path = location.path.display().to_string();
    let how = location.explain();
    if !location.path.exists() {
        return vec![fail(
            "task database",
            format!("{path} does not exist ({how})"),
            "set WORKSPACE_ID to the workspace Task Copilot uses, or pass `--db FILE`",
        )];
    }
    let mut checks = vec![ok("task database", format!("{path} ({how})"))];
    let mut db = match SqliteTaskDb::open(&location.path, &how) {
        Ok(db) => db,
        Err(e) => {
            checks.push(from_error("schema", e.into()));
            return checks;
        }
    };
    checks.push(ok(
        "schema",
        "table `tasks` has the columns orchestrate reads",
    ));
    checks.extend(check_db_writes(&location.path));
    let snapshot = match db.snapshot() {
        Ok(s) => s,
        Err(e) => {
            checks.push(from_error("stream metadata", e.into()));
            return checks;
        }
    };
    checks.extend(check_streams(&snapshot));
    checks
}

fn check_streams(snapshot: &Snapshot) -> Vec<Check> {
    let mut checks = Vec::new();
    if snapshot.streams.is_empty() {
        checks.push(fail(
            "stream metadata",
            "no non-archived task has `metadata.streamId`",
            "give tasks stream metadata (see .claude/orchestrator/ORCHESTRATION_GUIDE.md)",
        ));
        return checks;
    }
    let tasks: u32 = snapshot.streams.iter().map(|s| s.counts.total).sum();
    checks.push(ok(
        "stream metadata",
        format!("{} streams, {tasks} tasks", snapshot.streams.len()),
    ));
    if !snapshot.warnings.is_empty() {
        let list: Vec<String> = snapshot.warnings.iter().map(ToString::to_string).collect();
        checks.push(warn(
            "task metadata",
            list.join("; "),
            "fix the JSON in those tasks' `metadata`; they are ignored until then",
        ));
    }
    checks.push(match StreamGraph::build(snapshot) {
        Ok(graph) => ok(
            "dependencies",
            format!(
                "no cycles, every dependency known; {} level(s)",
                graph.max_depth().map_or(0, |d| d + 1)
            ),
        ),
        Err(e) => from_error("dependencies", e.into()),
    });
    checks
}

/// The worker program on PATH, and the Claude CLI's refusal to skip permissions as root.
fn check_worker(worker_cmd: &str, root: &Path) -> Vec<Check> {
    let mut checks = Vec::new();
    let Some(program) = first_word(worker_cmd) else {
        return vec![fail(
            "worker command",
            "the worker command is empty",
            "set worker_cmd in config.toml",
        )];
    };
    checks.push(match find_program(&program, root) {
        Some(path) => ok(
            "worker command",
            format!("`{program}` is {}", path.display()),
        ),
        None => fail(
            "worker command",
            format!("`{program}` (from `{worker_cmd}`) is not found on PATH"),
            "install it (Claude Code: `npm install -g @anthropic-ai/claude-code`), or set \
             worker_cmd in .claude/orchestrator/config.toml / ORCHESTRATE_WORKER_CMD",
        ),
    });
    let unknown = unknown_placeholders(worker_cmd);
    if !unknown.is_empty() {
        checks.push(warn(
            "worker placeholders",
            format!(
                "{} in `{worker_cmd}` will be passed as written",
                unknown.join(", ")
            ),
            "the placeholders are {prompt}, {stream} and {worktree}",
        ));
    }
    let is_root = nix::unistd::geteuid().is_root();
    let sandbox = std::env::var("IS_SANDBOX").ok();
    if root_refusal(is_root, worker_cmd, sandbox.as_deref()) {
        checks.push(fail(
            "running as root",
            "the worker command skips permissions, which the Claude CLI refuses as root \
             (`--dangerously-skip-permissions cannot be used with root/sudo privileges`): \
             every worker would exit at once",
            "run as a normal user; or, only inside a disposable sandbox or container, \
             export IS_SANDBOX=1",
        ));
    }
    checks
}

/// `{word}`s in the worker command that the worker code does not fill in.
fn unknown_placeholders(cmd: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = cmd;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else { break };
        let name = &after[..end];
        let is_word =
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if is_word && !["prompt", "stream", "worktree"].contains(&name) {
            found.push(format!("{{{name}}}"));
        }
        rest = &after[end + 1..];
    }
    found
}

/// The `post_create` program, if one is configured, must exist.
fn check_post_create(post_create: Option<&str>, root: &Path) -> Option<Check> {
    let program = first_word(post_create?)?;
    Some(match find_program(&program, root) {
        Some(path) => ok("post_create", format!("`{program}` is {}", path.display())),
        None => fail(
            "post_create",
            format!("`{program}` (post_create) is not found on PATH"),
            "install it, or change post_create in .claude/orchestrator/config.toml",
        ),
    })
}

/// A configured target branch must exist, or `merge` has nowhere to go.
fn check_target_branch(branch: Option<&str>, root: &Path) -> Option<Check> {
    let branch = branch?;
    let repo = git2::Repository::open(root).ok()?;
    Some(
        if repo.find_branch(branch, git2::BranchType::Local).is_ok() {
            ok("target branch", format!("`{branch}` exists"))
        } else {
            fail(
                "target branch",
                format!("target_branch `{branch}` (config) is not a local branch"),
                format!(
                    "create it (`git branch {branch}`), or change target_branch in \
                     .claude/orchestrator/config.toml"
                ),
            )
        },
    )
}

/// Whether the Claude CLI would refuse `worker_cmd` at start-up: as root, skipping
/// permissions is allowed only with `IS_SANDBOX=1` exactly.
fn root_refusal(is_root: bool, worker_cmd: &str, is_sandbox: Option<&str>) -> bool {
    let skips = worker_cmd.contains("--dangerously-skip-permissions")
        || worker_cmd.contains("bypassPermissions");
    is_root && skips && is_sandbox != Some("1")
}

/// The program of a shell-words command line (a leading quoted word is unquoted).
fn first_word(cmd: &str) -> Option<String> {
    let cmd = cmd.trim_start();
    let word = match cmd.chars().next()? {
        q @ ('"' | '\'') => cmd[1..].split(q).next().unwrap_or_default(),
        _ => cmd.split_whitespace().next().unwrap_or_default(),
    };
    Some(word.to_string()).filter(|w| !w.is_empty())
}

/// Resolves `program` like exec does: a path (relative ones against the project root), or a
/// name searched on PATH. Only executable files count.
fn find_program(program: &str, root: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = root.join(program);
        return executable(&path).then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}

/// Whether `dir` (or, if it does not exist yet, the nearest existing folder above it, where it
/// would be created) is writable.
fn check_writable(title: &'static str, dir: &Path, what: &str) -> Check {
    let existing = dir.ancestors().find(|d| d.exists()).unwrap_or(dir);
    let writable =
        existing.is_dir() && nix::unistd::access(existing, nix::unistd::AccessFlags::W_OK).is_ok();
    if writable {
        let note = if existing == dir {
            ""
        } else {
            " (created when needed)"
        };
        ok(title, format!("{} is writable{note}", dir.display()))
    } else {
        fail(
            title,
            format!(
                "cannot write {} (for {what}): {} is not a writable folder",
                dir.display(),
                existing.display()
            ),
            format!("make {} writable by you", existing.display()),
        )
    }
}

fn check_installed(project: &Project) -> Check {
    let plan = setup::plan(project);
    if plan.fresh {
        return warn(
            "installed files",
            "not set up yet",
            "`orchestrate init` installs them (the first `start` does too)",
        );
    }
    let kept: Vec<String> = plan
        .notices
        .iter()
        .filter_map(|n| match n {
            Notice::Kept { path } => Some(path.clone()),
            _ => None,
        })
        .collect();
    let kept = if kept.is_empty() {
        String::new()
    } else {
        format!("; edited by you (kept): {}", kept.join(", "))
    };
    let other: Vec<String> = plan
        .notices
        .iter()
        .filter(|n| matches!(n, Notice::Tracked { .. } | Notice::LinkNotOurs))
        .map(ToString::to_string)
        .collect();
    if plan.is_intact() && other.is_empty() {
        return ok("installed files", format!("intact{kept}"));
    }
    let mut problems: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| {
            !matches!(
                c,
                setup::Change::Updated { .. } | setup::Change::Excluded { .. }
            )
        })
        .map(setup::Change::problem)
        .collect();
    problems.extend(other);
    warn(
        "installed files",
        format!("{}{kept}", problems.join("; ")),
        "`orchestrate init` repairs them (the next `start` does too)",
    )
}

fn check_state(path: &Path) -> Check {
    if !path.exists() {
        return ok("state store", "none yet (no run so far)");
    }
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    let read = rusqlite::Connection::open_with_flags(path, flags).and_then(|conn| {
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
    });
    let corrupt = |e: &rusqlite::Error| {
        matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
        )
    };
    match read {
        Ok(_) => ok("state store", format!("{} is readable", path.display())),
        // Every command that opens it (status, stop, start) sets it aside and rebuilds it from
        // the workers alive in /proc; doctor changes nothing, so it only says so.
        Err(e) if corrupt(&e) => warn(
            "state store",
            format!(
                "{} is corrupt ({e}); the next `orchestrate` command that opens it has it set \
                 aside (kept beside it as state.db.corrupt-TIME) and rebuilt from the running \
                 workers",
                path.display()
            ),
            "nothing to do: `orchestrate status` rebuilds it now, and shows the workers it found",
        ),
        Err(e) => fail(
            "state store",
            format!("cannot read {}: {e}", path.display()),
            format!(
                "make {} and its folder readable and writable by you",
                path.display()
            ),
        ),
    }
}

/// Workers mark their tasks in the task database (`orchestrate task set`, Task Copilot): a
/// file or folder they cannot write means no task is ever marked done.
fn check_db_writes(db: &Path) -> Option<Check> {
    use nix::unistd::{AccessFlags, access};
    let folder = db.parent().unwrap_or(Path::new("."));
    let blocked = if access(db, AccessFlags::W_OK).is_err() {
        db
    } else if access(folder, AccessFlags::W_OK).is_err() {
        // SQLite creates its journal or WAL files beside the database.
        folder
    } else {
        return None;
    };
    Some(fail(
        "database writes",
        format!(
            "{} is read-only: workers cannot mark tasks done (`orchestrate task set` and Task \
             Copilot write to it)",
            blocked.display()
        ),
        format!(
            "make {} writable by you (or move the database off a read-only mount)",
            blocked.display()
        ),
    ))
}

fn render(checks: &[Check], ui: &Ui) -> String {
    let p = &ui.out;
    let width = checks.iter().map(|c| c.title.len()).max().unwrap_or(0);
    let mut out = String::new();
    for check in checks {
        let mark = match check.level {
            Level::Ok => p.good("✓"),
            Level::Warn => p.caution("!"),
            Level::Fail => p.bad("✗"),
        };
        out.push_str(&format!(
            "{mark} {:width$}  {}\n",
            check.title,
            check.detail,
            width = width
        ));
        if let Some(fix) = &check.fix {
            out.push_str(&format!("  {:width$}  {} {fix}\n", "", p.hint("fix:")));
        }
    }
    let blocking = checks.iter().filter(|c| c.level == Level::Fail).count();
    let warnings = checks.iter().filter(|c| c.level == Level::Warn).count();
    out.push('\n');
    out.push_str(&match (blocking, warnings) {
        (0, 0) => p.good("Everything a run needs is in place."),
        (0, n) => format!(
            "{} ({n} note{} above)",
            p.good("Nothing blocks a run"),
            if n == 1 { "" } else { "s" }
        ),
        (n, _) => p.bad(&format!(
            "{n} problem{} block{} a run: fix {} and run `orchestrate doctor` again.",
            if n == 1 { "" } else { "s" },
            if n == 1 { "s" } else { "" },
            if n == 1 { "it" } else { "them" },
        )),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_refusal_needs_root_a_skipping_flag_and_no_sandbox() {
        let cmd = crate::config::DEFAULT_WORKER_CMD;
        assert!(root_refusal(true, cmd, None));
        assert!(root_refusal(true, cmd, Some("true")));
        assert!(!root_refusal(true, cmd, Some("1")));
        assert!(!root_refusal(false, cmd, None));
        assert!(!root_refusal(true, "claude -p {prompt}", None));
        assert!(root_refusal(
            true,
            "claude -p --permission-mode bypassPermissions {prompt}",
            None
        ));
    }

    #[test]
    fn unknown_placeholders_are_found() {
        assert!(unknown_placeholders(crate::config::DEFAULT_WORKER_CMD).is_empty());
        assert!(unknown_placeholders("run {stream} {worktree} '{}' {a b}").is_empty());
        assert_eq!(unknown_placeholders("run {promt} {x"), ["{promt}"]);
    }

    #[test]
    fn first_word_unquotes() {
        assert_eq!(first_word("  claude -p x").as_deref(), Some("claude"));
        assert_eq!(
            first_word("'/opt/my agent/run' --x").as_deref(),
            Some("/opt/my agent/run")
        );
        assert_eq!(first_word("   "), None);
    }
}
