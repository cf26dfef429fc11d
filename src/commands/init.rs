//! `orchestrate init`: set up `.claude/orchestrator/` and the installed files, or repair them.
//!
//! The first `start` does the same through [`crate::setup::ensure`]; `init` exists so a user can
//! set up (and read and edit the files) before running anything, and to repair on demand.

use crate::cli::{GlobalArgs, InitArgs};
use crate::config::Config;
use crate::error::Result;
use crate::exit_codes;
use crate::project::{Project, ProjectError};
use crate::setup::{self, Notice, Report};
use crate::ui::Ui;

pub fn run(global: &GlobalArgs, _args: &InitArgs, ui: &Ui) -> Result<i32> {
    let project = match Project::from_env(global.project.as_deref()) {
        Ok(project) => project,
        // Set-up must work outside git too: with no `.git` or `.claude` above, set up here.
        Err(ProjectError::NoRoot { start }) => {
            ui.info(&format!(
                "no `.git` or `.claude` folder above {}: setting up there",
                start.display()
            ));
            Project { root: start }
        }
        Err(e) => return Err(e.into()),
    };
    let report = setup::ensure(&project)?;
    ui.print(&render(&project, &report, ui));
    for notice in &report.notices {
        if matches!(notice, Notice::NoGit) {
            ui.warn(&notice.to_string());
        }
    }
    if let Err(e) = Config::load(&project) {
        ui.warn(&format!("{e} (run `orchestrate doctor`)"));
    }
    Ok(exit_codes::OK)
}

/// For `start` (and any command that runs workers): install or repair the set-up before a run,
/// and say on stderr what was installed or repaired (nothing when all is in place). Files the
/// user edited are kept silently; a project that is not a git repository is warned about once.
pub fn set_up_for_run(project: &Project, ui: &Ui) -> Result<Report> {
    let report = setup::ensure(project)?;
    if report.fresh {
        ui.info(&format!(
            "set up .claude/orchestrator/ in {} (see ORCHESTRATION_GUIDE.md there)",
            project.root.display()
        ));
    } else {
        for change in report.changes.iter().filter(|c| c.is_repair()) {
            ui.info(&format!("set-up: {change}"));
        }
    }
    for notice in &report.notices {
        if matches!(notice, Notice::Tracked { .. } | Notice::LinkNotOurs) {
            ui.warn(&notice.to_string());
        }
    }
    Ok(report)
}

/// The result, on stdout: what was set up or repaired, then what was kept.
fn render(project: &Project, report: &Report, ui: &Ui) -> String {
    let p = &ui.out;
    let root = project.root.display();
    let mut out = if report.fresh {
        format!("Set up orchestrate in {root}:\n")
    } else if report.changes.is_empty() {
        format!("The set-up in {root} is complete: nothing to repair.\n")
    } else if report.changes.iter().any(|c| c.is_repair()) {
        format!("Repaired the set-up in {root}:\n")
    } else {
        format!("Updated the set-up in {root}:\n")
    };
    for change in &report.changes {
        out.push_str(&format!("  {} {change}\n", p.good("✓")));
    }
    for notice in &report.notices {
        if !matches!(notice, Notice::NoGit) {
            out.push_str(&format!("  {} {notice}\n", p.dim("·")));
        }
    }
    if report.fresh {
        out.push_str(&format!(
            "\nNext: `orchestrate doctor` checks everything a run needs; \
             `orchestrate start --worktrees` runs the streams.\n\
             Read {} to give tasks stream metadata; edit {} to change the settings.\n",
            p.bold(".claude/orchestrator/ORCHESTRATION_GUIDE.md"),
            p.bold(".claude/orchestrator/config.toml"),
        ));
        if !report.notices.contains(&Notice::NoGit) {
            out.push_str(&format!("\n{}", what_to_commit(p)));
        }
    }
    out
}

/// The installed files are meant to be shared (the slash command, the config, the prompts);
/// the runtime folders are in `.git/info/exclude` already.
fn what_to_commit(p: &crate::ui::Palette) -> String {
    format!(
        "Commit the set-up to share it (the slash command, config and prompts; the runtime \
         folders logs/, run/ and state/ are excluded already):\n  {}\n\
         To keep it to yourself instead, add those paths to .git/info/exclude.\n",
        p.bold(
            "git add .claude/commands/orchestrate.md .claude/orchestrator/ watch-status && \
             git commit -m 'Set up orchestrate'"
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_up_for_run_installs_then_repairs_only_what_is_damaged() {
        let tmp = tempfile::tempdir().unwrap();
        let project = Project {
            root: tmp.path().canonicalize().unwrap(),
        };
        let ui = Ui::plain();
        let first = set_up_for_run(&project, &ui).unwrap();
        assert!(first.fresh);
        assert!(first.notices.contains(&Notice::NoGit));
        let guide = project.orchestrator_dir().join("ORCHESTRATION_GUIDE.md");
        std::fs::remove_file(&guide).unwrap();
        let second = set_up_for_run(&project, &ui).unwrap();
        assert!(!second.fresh);
        let repairs: Vec<String> = second.repairs().map(ToString::to_string).collect();
        assert_eq!(
            repairs,
            ["restored .claude/orchestrator/ORCHESTRATION_GUIDE.md (it was missing)"]
        );
        assert!(guide.is_file());
    }
}
