//! `orchestrate merge`: the merge queue (`merge_queue`) over the complete streams, in
//! dependency order (`--dry-run`: the in-memory preview, with where verify would run).

use super::context::Context;
use crate::cli::{GlobalArgs, MergeArgs};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::exit_codes;
use crate::git::error::summarize;
use crate::git::repo::{Repo, short};
use crate::git::{MergePreview, preview};
use crate::graph::{Stream, StreamGraph, UnknownStreams};
use crate::merge_queue::{self, Options, QueueReport, Stop, VerifySetup};
use crate::ui::{self, Ui};

pub fn run(global: &GlobalArgs, args: &MergeArgs, ui: &Ui) -> Result<i32> {
    let ctx = Context::new(global)?;
    let mut db = ctx.open_db()?;
    let (_, graph) = ctx.load_graph(&mut db)?;
    let selected = select(&graph, &args.streams)?;
    let repo = Repo::open(&ctx.project.root)?;
    let target = preview::target_branch(&ctx.project, &repo, args.into.as_deref())?;
    let config = Config::load(&ctx.project)?;
    let verify = (args.verify || (config.merge_verify && !args.no_verify)).then_some(());
    let complete = |s: &Stream| s.record.counts.is_complete();
    if args.dry_run {
        let plan = preview::plan(&repo, &target, &selected, complete)?;
        let commands: Vec<Option<String>> = plan
            .streams
            .iter()
            .map(|s| {
                let stream = selected.iter().find(|x| x.id() == s.stream)?;
                verify.and(merge_queue::command_for(stream, config.verify.as_deref()))
            })
            .collect();
        ui.print(&ui::mergeback::render_plan_verified(
            &plan, &commands, &ui.out,
        ));
        return Ok(exit_codes::OK);
    }
    let verify = match verify {
        Some(()) => Some(VerifySetup {
            project: &ctx.project,
            db: &ctx.db.path,
            default_command: config.verify.clone(),
            timeout: config.verify_timeout,
            policy: crate::worker::sandbox::Policy::from_config(&config, &ctx.project)?,
        }),
        None => None,
    };
    let opts = Options {
        target: &target,
        verify,
        step: args.step,
    };
    let report = merge_queue::run(&repo, &selected, complete, &opts)?;
    ui.print(&ui::mergeback::render_queue(&report, &ui.out));
    stopped(&report).map(|()| exit_codes::OK)
}

/// The error for a queue that stopped early, saying what is on the target now.
fn stopped(report: &QueueReport) -> Result<()> {
    let target = &report.target;
    let kept = match report.landed {
        0 => format!("{target} was not changed"),
        n => format!(
            "{target} has the {n} merge{} before it",
            if n == 1 { "" } else { "s" }
        ),
    };
    let err = match &report.stop {
        None => return Ok(()),
        Some(Stop::Moved { expected, found }) => Error::msg(format!(
            "{target} moved from {} to {} while merging (someone committed on it or moved it); \
             nothing was overwritten: {kept}, and every checkout is as it was",
            short(*expected),
            short(*found)
        ))
        .with_hint("run `orchestrate merge` again to merge onto the new tip"),
        Some(Stop::Conflict(c)) => {
            let paths = match &c.preview {
                MergePreview::Conflicts { paths } => paths.clone(),
                _ => Vec::new(),
            };
            Error::msg(format!(
                "merging stream {} ({}) into {target} conflicts in: {}; stopped there: {kept}, \
                 and no checkout was touched",
                c.stream,
                c.branch,
                summarize(&paths)
            ))
            .with_hint(format!(
                "merge it by hand (`git merge --no-ff {}`), resolve the conflicts and commit, \
                 then run `orchestrate merge` again for the rest",
                c.branch
            ))
        }
        Some(Stop::VerifyFailed { entry, run }) => Error::msg(format!(
            "{}; stopped there: {kept}",
            ui::mergeback::verify_failure(entry, run, target)
        ))
        .with_hint(format!(
            "fix it on {} (or in a commit on {target}) and run `orchestrate merge --verify` \
             again; all of its output is in .git/orchestrate/merge.log",
            entry.branch
        )),
    };
    Err(err.with_code(exit_codes::REFUSED))
}

/// The named streams (all when none are named), in dependency order; an unknown name is the
/// error every command gives for one.
pub fn select<'g>(graph: &'g StreamGraph, names: &[String]) -> Result<Vec<&'g Stream>> {
    UnknownStreams::check(names, graph.streams().iter().map(|s| s.id()))?;
    Ok(graph
        .streams()
        .iter()
        .filter(|s| names.is_empty() || names.iter().any(|n| n.trim() == s.id() || n == s.id()))
        .collect())
}
