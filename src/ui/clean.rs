//! What `orchestrate clean` removed (or would remove) and what it kept, and why; the refs it
//! made to keep commits reachable; the orphaned worktrees it registered again. Paths, stream
//! ids, branch names, refs and the override commands are data: all escaped here.

use indicatif::HumanBytes;

use super::printable as p;
use crate::git::clean::{CleanPlan, OrphanItem};
use crate::ui::Palette;

pub fn render(plan: &CleanPlan, dry_run: bool, pal: &Palette) -> String {
    let (remove, delete, prune, keep) = if dry_run {
        ("would remove", "would delete", "would prune", "would keep")
    } else {
        ("removed", "deleted", "pruned", "kept")
    };
    let mut out = String::new();
    for name in &plan.stale {
        out.push_str(&format!("{prune} stale worktree metadata {}\n", p(name)));
    }
    for orphan in &plan.orphans {
        out.push_str(&orphan_line(orphan, dry_run, pal));
    }
    for item in &plan.items {
        for r in &item.rescued {
            out.push_str(&format!(
                "{keep} commit {} reachable as {} (stream {}: only what is removed reached it)\n",
                p(&r.commit[..r.commit.len().min(10)]),
                p(&r.refname),
                p(&item.stream)
            ));
        }
    }
    for item in &plan.items {
        if item.remove_worktree
            && let Some(path) = &item.worktree
        {
            out.push_str(&format!(
                "{remove} worktree {} (stream {}, {})\n",
                p(&path.display().to_string()),
                p(&item.stream),
                HumanBytes(item.bytes)
            ));
        }
        if item.delete_branch
            && let Some(b) = &item.branch
        {
            out.push_str(&format!("{delete} branch {}\n", p(b)));
        }
    }
    for item in plan.items.iter().filter(|i| !i.refusals.is_empty()) {
        let what = item
            .worktree
            .as_ref()
            .map(|w| w.display().to_string())
            .or_else(|| item.branch.clone())
            .unwrap_or_default();
        let refusals: Vec<String> = item.refusals.iter().map(|r| p(r).into_owned()).collect();
        out.push_str(&format!(
            "{} {} (stream {}): {}\n",
            pal.caution("kept"),
            p(&what),
            p(&item.stream),
            refusals.join("; ")
        ));
        match &item.override_command {
            Some(cmd) if item.in_use => out.push_str(&format!(
                "  it is in use, which --force never overrides; once it is not: {}\n",
                p(cmd)
            )),
            Some(cmd) => out.push_str(&format!("  to remove it anyway: {}\n", p(cmd))),
            None => {}
        }
    }
    if plan.items.iter().any(|i| !i.rescued.is_empty()) {
        out.push_str(
            "  `git for-each-ref refs/orchestrate/rescued/` lists kept commits; `git update-ref -d REF` drops one\n",
        );
    }
    if out.is_empty() {
        out.push_str("nothing to clean\n");
    }
    let freed = if dry_run { "would free" } else { "freed" };
    out.push_str(&format!("{freed} {}\n", HumanBytes(plan.bytes_freed())));
    out
}

fn orphan_line(o: &OrphanItem, dry_run: bool, pal: &Palette) -> String {
    let dir = p(&o.dir.display().to_string()).into_owned();
    let what = format!(
        "orphaned worktree {dir} (stream {}): git's record {} was deleted",
        p(&o.stream),
        p(&o.admin.display().to_string())
    );
    match (&o.refusal, o.reregistered, dry_run) {
        (Some(why), _, _) => format!(
            "{} {what}; cannot register it again: {}\n",
            pal.caution("kept"),
            p(why)
        ),
        (None, _, true) => {
            format!("{what}; would re-register it with git, keeping every file in it\n")
        }
        (None, true, false) => format!(
            "{what}; re-registered it with git, every file kept (`git -C {dir} status` shows its work)\n"
        ),
        (None, false, false) => format!("{what}\n"),
    }
}
