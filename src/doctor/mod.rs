//! `orchestrate doctor`'s checks: everything a run needs, each a [`Check`] — ✓ (fine), ! (worth
//! knowing, does not stop a run) or ✗ (blocks a run) — with a fix for every ! and ✗.
//!
//! The checks return data and change nothing: [`crate::ui::doctor`] renders them and the command
//! decides the exit code. Checks that depend on a failed one are skipped, not failed twice. Git
//! is asked through [`crate::git`], the state store through [`crate::state`].

mod repository;
mod tasks;
mod worker;

use std::path::Path;

use crate::config::Config;
use crate::error::Error;
use crate::project::{DbLocation, Project};
use crate::setup::{self, Notice};
use crate::state::Readability;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

/// One line of the report.
#[derive(Debug)]
pub struct Check {
    pub level: Level,
    pub title: &'static str,
    pub detail: String,
    pub fix: Option<String>,
}

pub fn ok(title: &'static str, detail: impl Into<String>) -> Check {
    Check {
        level: Level::Ok,
        title,
        detail: detail.into(),
        fix: None,
    }
}

pub fn warn(title: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        level: Level::Warn,
        title,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

pub fn fail(title: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        level: Level::Fail,
        title,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

/// The chain of an error on one line, and its hint as the fix.
fn from_error(title: &'static str, err: Error) -> Check {
    let fix = err
        .hint()
        .unwrap_or("see ORCHESTRATION_GUIDE.md")
        .to_string();
    fail(title, err.chain().join(": "), fix)
}

/// Every check of the project found (or not) at `project`, the task database found by
/// `locate` (the same search as every other command's).
pub fn checks(
    project: Result<Project, Error>,
    locate: &dyn Fn(&Project) -> Result<DbLocation, Error>,
) -> Vec<Check> {
    match project {
        Ok(project) => check_project(&project, locate),
        Err(e) => vec![from_error("project root", e)],
    }
}

/// How many checks block a run.
pub fn blocking(checks: &[Check]) -> usize {
    checks.iter().filter(|c| c.level == Level::Fail).count()
}

fn check_project(
    project: &Project,
    locate: &dyn Fn(&Project) -> Result<DbLocation, Error>,
) -> Vec<Check> {
    let mut checks = vec![ok("project root", project.root.display().to_string())];
    let config = Config::load(project);
    let worktrees_on = config.as_ref().is_ok_and(|c| c.worktrees);
    checks.extend(repository::check_git(&project.root, worktrees_on));
    checks.extend(tasks::check_database(project, locate));
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
            checks.extend(worker::check_worker(&config.worker_cmd, &project.root));
            checks.extend(worker::check_post_create(
                config.post_create.as_deref(),
                &project.root,
            ));
            checks.push(worker::check_sandbox(config.sandbox));
            checks.extend(repository::check_target_branch(
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
    checks.extend(repository::check_orphans(project));
    checks.push(check_writable(
        "runtime folders",
        &project.orchestrator_dir(),
        "logs and state",
    ));
    checks.push(check_installed(project));
    checks.push(check_state(&project.state_db()));
    checks
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
    match crate::state::readability(path) {
        Readability::Absent => ok("state store", "none yet (no run so far)"),
        Readability::Readable => ok("state store", format!("{} is readable", path.display())),
        // Every command that opens it (status, stop, start) sets it aside and rebuilds it from
        // the workers alive in /proc; doctor changes nothing, so it only says so.
        Readability::Corrupt(e) => warn(
            "state store",
            format!(
                "{} is corrupt ({e}); the next `orchestrate` command that opens it has it set \
                 aside (kept beside it as state.db.corrupt-TIME) and rebuilt from the running \
                 workers",
                path.display()
            ),
            "nothing to do: `orchestrate status` rebuilds it now, and shows the workers it found",
        ),
        Readability::Unreadable(e) => fail(
            "state store",
            format!("cannot read {}: {e}", path.display()),
            format!(
                "make {} and its folder readable and writable by you",
                path.display()
            ),
        ),
    }
}
