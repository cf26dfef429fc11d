//! `orchestrate merge`: merge complete stream branches into the target branch, in dependency
//! order (`--dry-run`: the in-memory preview only).

use super::context::Context;
use crate::cli::{GlobalArgs, MergeArgs};
use crate::error::{Error, Result};
use crate::exit_codes;
use crate::git::error::summarize;
use crate::git::merge::Stop;
use crate::git::repo::{Repo, short};
use crate::git::{MergePreview, merge, preview};
use crate::graph::{Stream, StreamGraph, UnknownStreams};
use crate::ui::{self, Ui};

pub fn run(global: &GlobalArgs, args: &MergeArgs, ui: &Ui) -> Result<i32> {
    let ctx = Context::new(global)?;
    let mut db = ctx.open_db()?;
    let (_, graph) = ctx.load_graph(&mut db)?;
    let selected = select(&graph, &args.streams)?;
    let repo = Repo::open(&ctx.project.root)?;
    let target = preview::target_branch(&ctx.project, &repo, args.into.as_deref())?;
    let complete = |s: &Stream| s.record.counts.is_complete();
    if args.dry_run {
        let plan = preview::plan(&repo, &target, &selected, complete)?;
        ui.print(&ui::mergeback::render_plan(&plan, &ui.out));
        return Ok(exit_codes::OK);
    }
    let report = merge::merge_streams(&repo, &target, &selected, complete)?;
    ui.print(&ui::mergeback::render_report(&report, &ui.out));
    match report.stopped {
        Some(Stop::Moved { expected, found }) => {
            return Err(Error::msg(format!(
                "{target} moved from {} to {} while merging (someone committed on it or moved it); \
                 stopped there: it was not overwritten, and the work tree and index are as they were \
                 before this merge",
                short(expected),
                short(found)
            ))
            .with_hint("run `orchestrate merge` again to merge the rest onto the new tip")
            .with_code(exit_codes::REFUSED));
        }
        Some(Stop::LockTaken) => {
            return Err(Error::msg(format!(
                "another git process took {} between two merges; stopped there, after the \
                 merges listed above",
                repo.inner.path().join("index.lock").display()
            ))
            .with_hint("run `orchestrate merge` again once it is done, to merge the rest")
            .with_code(exit_codes::REFUSED));
        }
        None => {}
    }
    if let Some(c) = &report.conflict {
        let paths = match &c.preview {
            MergePreview::Conflicts { paths } => paths.clone(),
            _ => Vec::new(),
        };
        return Err(Error::msg(format!(
            "merging stream {} ({}) into {target} conflicts in: {}; stopped there, the work tree \
             and index are as they were before this merge",
            c.stream,
            c.branch,
            summarize(&paths)
        ))
        .with_hint(format!(
            "merge it by hand (`git merge --no-ff {}`), resolve the conflicts and commit, then run \
             `orchestrate merge` again for the rest",
            c.branch
        ))
        .with_code(exit_codes::REFUSED));
    }
    Ok(exit_codes::OK)
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
