//! The repository checks: git itself, the repository and its HEAD, worktree support, stream
//! worktrees git lost, and the configured target branch.

use std::path::Path;

use super::{Check, fail, ok, warn};
use crate::git::info::{self, Head};
use crate::project::Project;

pub(super) fn check_git(root: &Path, worktrees_on: bool) -> Vec<Check> {
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
    match info::head(root) {
        Head::NotARepository(message) => {
            checks.push(warn(
                "git repository",
                format!("{} is not a git repository ({message})", root.display()),
                "`git init` and commit, to use worktrees; without, streams share the project root",
            ));
            checks.push(no_worktrees(
                "unavailable outside a git repository".into(),
                "run without --worktrees, or make the project a git repository",
            ));
        }
        Head::Bare => checks.push(fail(
            "git repository",
            format!("{} is a bare repository", root.display()),
            "run in a checkout (a repository with a work tree)",
        )),
        Head::At { branch, commit } => {
            checks.push(ok(
                "git repository",
                format!("on {branch} at {}", &commit[..commit.len().min(10)]),
            ));
            checks.push(ok(
                "worktree support",
                format!("streams can branch from HEAD{}", on_or_off(worktrees_on)),
            ));
        }
        Head::Unborn => {
            checks.push(ok("git repository", "no commit yet"));
            checks.push(no_worktrees(
                "the repository has no commit for stream branches to start from".into(),
                "make a first commit (`git commit --allow-empty -m init`)",
            ));
        }
    }
    checks
}

/// Stream worktrees whose `.git/worktrees/<name>` was deleted: git no longer sees them.
pub(super) fn check_orphans(project: &Project) -> Option<Check> {
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

/// A configured target branch must exist, or `merge` has nowhere to go.
pub(super) fn check_target_branch(branch: Option<&str>, root: &Path) -> Option<Check> {
    let branch = branch?;
    Some(if info::has_local_branch(root, branch)? {
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
    })
}
