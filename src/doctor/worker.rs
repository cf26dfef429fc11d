//! The worker checks: the worker program and its placeholders, the Claude CLI's refusal to
//! skip permissions as root, the `post_create` program and the sandbox.

use std::path::Path;

use super::{Check, fail, from_error, ok, warn};
use crate::cmdline;
use crate::worker::command::PLACEHOLDERS;
use crate::worker::sandbox::{Mode, Support};
use crate::worker::{WorkerCommand, WorkerError, template};

/// The worker program on PATH, its placeholders, and the Claude CLI's refusal to skip
/// permissions as root.
pub(super) fn check_worker(worker_cmd: &str, root: &Path) -> Vec<Check> {
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
pub(super) fn check_post_create(post_create: Option<&str>, root: &Path) -> Option<Check> {
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
pub(super) fn check_sandbox(mode: Mode) -> Check {
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

/// Whether the Claude CLI would refuse `worker_cmd` at start-up: as root, skipping
/// permissions is allowed only with `IS_SANDBOX=1` exactly.
fn root_refusal(is_root: bool, worker_cmd: &str, is_sandbox: Option<&str>) -> bool {
    let skips = worker_cmd.contains("--dangerously-skip-permissions")
        || worker_cmd.contains("bypassPermissions");
    is_root && skips && is_sandbox != Some("1")
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
}
