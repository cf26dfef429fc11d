//! The environment a worker starts with: the user's own, less what a parent Claude Code session
//! set for itself, plus a small retry budget for the agent's API calls.
//!
//! `/orchestrate start` runs inside Claude Code, whose variables would otherwise reach every
//! worker (observed with 2.1.197 and 2.1.331: harmless so far, but they describe the parent
//! session, not the worker's). Only the variables in [`PARENT_SESSION_VARS`] are removed;
//! everything else passes untouched — the user's `ANTHROPIC_*` and `CLAUDE_CODE_OAUTH_TOKEN` (how
//! the worker authenticates), `IS_SANDBOX`, and any `CLAUDE_CODE_*` setting the user chose.
//!
//! `CLAUDE_CODE_MAX_RETRIES`, when the user did not set it, becomes [`WORKER_MAX_RETRIES`]: left
//! alone, the CLI retries a 429, 529 or 500 ten times over about three minutes in each worker on
//! its own, and then fails anyway. With three retries (about 3.5 s of back-off in all) a blip is
//! still ridden out inside the worker, and anything longer ends the worker quickly with a
//! result saying why (`api_error_status`), so the scheduler, which sees every worker, decides
//! how long to wait and when to resume. The CLI's alternative is `CLAUDE_CODE_RETRY_WATCHDOG=1`:
//! each worker then sleeps until the limit's reset by itself (up to hours) — a user who prefers
//! that sets it, and `CLAUDE_CODE_MAX_RETRIES` if wanted; both pass through.

use std::process::Command;

/// Variables a Claude Code session sets for its own processes (see `CLAUDE-CLI-LIMITS.md`,
/// "Environment"): removed from every worker's environment.
pub const PARENT_SESSION_VARS: [&str; 13] = [
    "CLAUDECODE",
    "CLAUDE_CODE_ENTRYPOINT",
    "CLAUDE_CODE_SSE_PORT",
    "CLAUDE_JOB_DIR",
    "CLAUDE_CODE_SESSION_ID",
    "CLAUDE_CODE_CHILD_SESSION",
    "CLAUDE_CODE_EXECPATH",
    "CLAUDE_EFFORT",
    "CLAUDE_PID",
    "CLAUDE_CODE_MESSAGING_SOCKET",
    "CLAUDE_CODE_MESSAGING_TOKEN",
    "CLAUDE_CODE_CHILD_NOTES_DIR",
    "CLAUDE_CODE_SESSION_ATTENDED",
];

/// How many times the Claude Code CLI retries a failed API call.
pub const MAX_RETRIES_VAR: &str = "CLAUDE_CODE_MAX_RETRIES";

/// The retries a worker gets when the user set none (see the module's header for why).
pub const WORKER_MAX_RETRIES: u32 = 3;

/// Prepares `worker` to run with the inherited environment cleaned: the parent session's
/// variables removed, the retry budget set unless `inherited` (the variable's current value, as
/// `std::env::var_os`) says the user chose one.
pub fn prepare(worker: &mut Command, inherited: impl Fn(&str) -> Option<std::ffi::OsString>) {
    for var in PARENT_SESSION_VARS {
        worker.env_remove(var);
    }
    if inherited(MAX_RETRIES_VAR).is_none() {
        worker.env(MAX_RETRIES_VAR, WORKER_MAX_RETRIES.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::ffi::{OsStr, OsString};

    /// What `prepare` changes: variable → new value (`None` = removed).
    fn changes(inherited: &[(&str, &str)]) -> BTreeMap<String, Option<String>> {
        let mut cmd = Command::new("true");
        let parent: BTreeMap<String, OsString> = inherited
            .iter()
            .map(|(k, v)| ((*k).to_string(), OsString::from(v)))
            .collect();
        prepare(&mut cmd, |k| parent.get(k).cloned());
        cmd.get_envs()
            .map(|(k, v)| {
                let s = |s: &OsStr| s.to_string_lossy().into_owned();
                (s(k), v.map(s))
            })
            .collect()
    }

    #[test]
    fn removes_exactly_the_parent_sessions_variables() {
        let c = changes(&[]);
        for var in PARENT_SESSION_VARS {
            assert_eq!(c.get(var), Some(&None), "{var}");
        }
        // Nothing else is touched: the user's keys, tokens and settings pass through.
        let touched: Vec<&String> = c.keys().collect();
        assert_eq!(touched.len(), PARENT_SESSION_VARS.len() + 1, "{touched:?}");
        for kept in [
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_BASE_URL",
            "CLAUDE_CODE_OAUTH_TOKEN",
            "IS_SANDBOX",
            "CLAUDE_CODE_RETRY_WATCHDOG",
        ] {
            assert!(!c.contains_key(kept), "{kept}");
        }
    }

    #[test]
    fn sets_a_small_retry_budget_unless_the_user_chose_one() {
        assert_eq!(
            changes(&[]).get(MAX_RETRIES_VAR),
            Some(&Some(WORKER_MAX_RETRIES.to_string()))
        );
        assert_eq!(
            changes(&[(MAX_RETRIES_VAR, "10")]).get(MAX_RETRIES_VAR),
            None
        );
        // Set to empty still counts as the user's choice.
        assert_eq!(changes(&[(MAX_RETRIES_VAR, "")]).get(MAX_RETRIES_VAR), None);
    }
}
