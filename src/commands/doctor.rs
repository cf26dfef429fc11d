//! `orchestrate doctor`: checks everything a run needs and says what to fix.
//!
//! Each check is ✓ (fine), ! (worth knowing, does not stop a run) or ✗ (blocks a run), with a
//! fix for every ! and ✗. Checks that depend on a failed one are skipped, not failed twice.
//! The command changes nothing; it exits with `FAILURE` when any check blocks a run.

use std::path::Path;

use crate::cli::{DoctorArgs, GlobalArgs};
use crate::cmdline;
use crate::config::Config;
use crate::error::Result;
use crate::exit_codes;
use crate::graph::StreamGraph;
use crate::project::Project;
use crate::setup::{self, Notice};
use crate::taskdb::{Snapshot, StoreKind, TaskDb, TaskDbError, TaskSource};
use crate::ui::Ui;
use crate::worker::command::PLACEHOLDERS;
use crate::worker::sandbox::{Mode, Support};
use crate::worker::{WorkerCommand, WorkerError, template};

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
            checks.push(check_sandbox(config.sandbox));
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
    checks.extend(check_orphans(project));
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

/// Stream worktrees whose `.git/worktrees/<name>` was deleted: git no longer sees them.
fn check_orphans(project: &Project) -> Option<Check> {
    let orphans = crate::git::worktree::orphans_of(project);
    if orphans.is_empty() {
        return None;
    }
    let dirs: Vec<String> = orphans
        .iter()
        .map(|o| o.dir.display().to_string())
        .collect();
    Some(warn(
        "stream worktrees",
        format!(
            "git no longer knows {} (its record under .git/worktrees/ was deleted): what is \
             uncommitted there is invisible, and its stream's dependents wait",
            dirs.join(", ")
        ),
        "`orchestrate clean` registers them with git again, keeping every file",
    ))
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
    let location = match super::context::locate(global, project) {
        Ok(location) => location,
        Err(e) => return vec![from_error("task database", e)],
    };
    let path = location.path.display().to_string();
    let how = location.explain();
    // The same open as every other command, so doctor and `status` agree on what is wrong.
    let mut db = match TaskDb::open(&location.path, &how) {
        Ok(db) => db,
        Err(e @ TaskDbError::Missing { .. }) => return vec![from_error("task database", e.into())],
        Err(e) => {
            return vec![
                ok("task database", format!("{path} ({how})")),
                from_error("schema", e.into()),
            ];
        }
    };
    let kind = db.kind();
    let mut checks = vec![
        ok(
            "task database",
            format!("{}: {path} ({how})", kind.describe()),
        ),
        ok(
            "schema",
            match kind {
                StoreKind::Legacy => "table `tasks` has the columns orchestrate reads",
                StoreKind::Tc => {
                    "tables prds, streams, tasks, task_dependencies and agent_log have the \
                     columns orchestrate reads and writes"
                }
            },
        ),
    ];
    checks.extend(check_db_writes(&location.path));
    if kind == StoreKind::Tc {
        checks.extend(check_tc_store(project, &location.path));
    }
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

/// A tc store: the `tc` CLI on PATH, and no stale copy of `.copilot/` in each worktree.
fn check_tc_store(project: &Project, db: &Path) -> Vec<Check> {
    let fix = "install Task Copilot's CLI (`tc`), or let workers use `orchestrate task set` \
               (their prompt says so)";
    let mut checks = vec![match cmdline::find_program("tc", &project.root) {
        None => warn(
            "tc CLI",
            "`tc` is not on PATH: workers cannot run `tc task update`",
            fix,
        ),
        Some(path) => match tc_version(&path) {
            Some(version) => ok("tc CLI", format!("{version} at {}", path.display())),
            // Linux's iproute2 ships a `tc` (traffic control) too.
            None => warn(
                "tc CLI",
                format!(
                    "the `tc` on PATH, {}, is not Task Copilot's CLI (`tc version` does not \
                     say `tc version …`; iproute2's traffic-control tool has that name too)",
                    path.display()
                ),
                fix,
            ),
        },
    }];
    let Some(holder) = db.parent().and_then(Path::parent) else {
        return checks;
    };
    let mut copies = Vec::new();
    if copilot_tracked(holder) {
        copies.push("`.copilot/` is tracked by git".to_string());
    }
    if worktree_include_lists_copilot(holder) {
        copies.push("`.worktreeinclude` lists `.copilot/`".to_string());
    }
    if !copies.is_empty() {
        checks.push(warn(
            "tc store copies",
            format!(
                "{}: every stream worktree gets its own stale copy of the task database, \
                 and `tc` run by a worker there reads and writes that copy",
                copies.join(" and ")
            ),
            "untrack it (`git rm -r --cached .copilot` and add `.copilot/` to .gitignore) and \
             remove it from .worktreeinclude",
        ));
    }
    checks
}

/// `tc version 1.3.0` if `program` is Task Copilot's CLI; `None` for another program of that
/// name, or one that does not answer within a few seconds.
fn tc_version(program: &Path) -> Option<String> {
    let mut child = std::process::Command::new(program)
        .arg("version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while child.try_wait().ok()?.is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = child.wait_with_output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && text.starts_with("tc version ")).then_some(text)
}

/// Whether git tracks anything under `<holder>/.copilot` (asked of the git CLI).
fn copilot_tracked(holder: &Path) -> bool {
    std::process::Command::new("git")
        .arg("-C")
        .arg(holder)
        .args(["ls-files", "--", ".copilot"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .is_ok_and(|out| out.status.success() && !out.stdout.is_empty())
}

/// Whether `<holder>/.worktreeinclude` (gitignore syntax) matches `.copilot/tasks.db`.
fn worktree_include_lists_copilot(holder: &Path) -> bool {
    let file = holder.join(".worktreeinclude");
    if !file.exists() {
        return false;
    }
    let mut builder = ignore::gitignore::GitignoreBuilder::new(holder);
    if builder.add(&file).is_some() {
        return false;
    }
    builder.build().is_ok_and(|include| {
        include
            .matched_path_or_any_parents(crate::project::TC_DB, false)
            .is_ignore()
    })
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

/// The worker program on PATH, its placeholders, and the Claude CLI's refusal to skip
/// permissions as root.
fn check_worker(worker_cmd: &str, root: &Path) -> Vec<Check> {
    let mut checks = Vec::new();
    let command = match WorkerCommand::parse(worker_cmd) {
        Ok(c) => c,
        Err(e @ WorkerError::PlaceholderInScript { .. }) => {
            return vec![from_error("worker placeholders", e.into())];
        }
        Err(e) => return vec![from_error("worker command", e.into())],
    };
    let program = command.program();
    checks.push(match cmdline::find_program(program, root) {
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
    let unknown = template::unknown(worker_cmd, template::COMMAND, &PLACEHOLDERS);
    if !unknown.is_empty() {
        checks.push(warn(
            "worker placeholders",
            format!(
                "{} in `{worker_cmd}` will be passed as written",
                unknown.join(", ")
            ),
            "the placeholders are {prompt}, {stream}, {worktree} and {prompt_file}",
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

/// The `post_create` program, if one is configured, must exist.
fn check_post_create(post_create: Option<&str>, root: &Path) -> Option<Check> {
    let program = cmdline::split(post_create?)?.into_iter().next()?;
    Some(match cmdline::find_program(&program, root) {
        Some(path) => ok("post_create", format!("`{program}` is {}", path.display())),
        None => fail(
            "post_create",
            format!("`{program}` (post_create) is not found on PATH"),
            "install it, or change post_create in .claude/orchestrator/config.toml",
        ),
    })
}

/// Whether workers will be confined: the setting and what the kernel offers.
fn check_sandbox(mode: Mode) -> Check {
    let support = Support::probe();
    let setting = format!("sandbox = \"{}\"", mode.as_str());
    match (mode, support.abi()) {
        (Mode::Off, _) => warn(
            "sandbox",
            format!(
                "off ({setting}; the kernel offers {}): workers can write anywhere you can",
                support.describe()
            ),
            "remove `sandbox = \"off\"` (config file, ORCHESTRATE_SANDBOX) to confine each \
             worker to its worktree",
        ),
        (_, Some(_)) => ok(
            "sandbox",
            format!(
                "{} ({setting}): workers can write only to their worktree, its git data, the \
                 task database's folder, a temp dir, agent state and sandbox_writable",
                support.describe()
            ),
        ),
        (Mode::Auto, None) => warn(
            "sandbox",
            format!(
                "{}: workers run unsandboxed ({setting})",
                support.describe()
            ),
            "a Linux kernel with Landlock enabled (5.13 or later, `landlock` in the `lsm=` boot \
             list) confines each worker to its worktree",
        ),
        (Mode::Landlock, None) => fail(
            "sandbox",
            format!(
                "{}, but {setting} requires Landlock: no worker can start",
                support.describe()
            ),
            "use a kernel with Landlock enabled, or set `sandbox = \"auto\"`",
        ),
    }
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
    use crate::ui::printable_lines as esc;
    let p = &ui.out;
    let width = checks.iter().map(|c| c.title.len()).max().unwrap_or(0);
    let mut out = String::new();
    for check in checks {
        let mark = match check.level {
            Level::Ok => p.good("✓"),
            Level::Warn => p.caution("!"),
            Level::Fail => p.bad("✗"),
        };
        // Details and fixes quote paths, commands and file contents: escaped, line breaks
        // kept, and continuation lines start under the first line's text.
        let indent = " ".repeat(2 + width + 2);
        out.push_str(&format!(
            "{mark} {:width$}  {}\n",
            esc(check.title),
            esc(&check.detail).replace('\n', &format!("\n{indent}")),
            width = width
        ));
        if let Some(fix) = &check.fix {
            // Most fixes are imperatives; "fix: fix the JSON" says it twice.
            let fix = fix.strip_prefix("fix ").unwrap_or(fix);
            let indent = format!("{indent}     ");
            out.push_str(&format!(
                "  {:width$}  {} {}\n",
                "",
                p.hint("fix:"),
                esc(fix).replace('\n', &format!("\n{indent}"))
            ));
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

    /// A fix that starts with the verb reads once, and every line of a multi-line detail or
    /// fix starts under the first.
    #[test]
    fn fixes_say_fix_once_and_multi_line_text_stays_aligned() {
        let checks = [
            ok("git", "2.47.3"),
            fail(
                "task metadata",
                "2 tasks have metadata that is not JSON:\nTASK-1\nTASK-2",
                "fix the JSON in those tasks' `metadata`\nthen run doctor again",
            ),
        ];
        let text = render(&checks, &Ui::plain());
        assert!(!text.contains("fix: fix"), "{text}");
        assert!(text.contains("fix: the JSON in those tasks'"), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        // Display columns (the marks are multi-byte).
        let col = |line: &str, what: &str| line.find(what).map(|i| line[..i].chars().count());
        let column = col(lines[1], "2 tasks");
        assert!(column.is_some());
        assert_eq!(col(lines[2], "TASK-1"), column, "{text}");
        assert_eq!(col(lines[3], "TASK-2"), column, "{text}");
        let fix_column = col(lines[4], "the JSON");
        assert_eq!(col(lines[5], "then run"), fix_column, "{text}");
    }

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
}
