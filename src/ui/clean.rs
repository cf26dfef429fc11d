//! What `orchestrate clean` removed (or would remove) and what it kept, and why. Paths, stream
//! ids, branch names and the override commands are data: all escaped here.

use indicatif::HumanBytes;

use super::printable as p;
use crate::git::clean::CleanPlan;
use crate::ui::Palette;

pub fn render(plan: &CleanPlan, dry_run: bool, pal: &Palette) -> String {
    let (remove, delete, prune) = if dry_run {
        ("would remove", "would delete", "would prune")
    } else {
        ("removed", "deleted", "pruned")
    };
    let mut out = String::new();
    for name in &plan.stale {
        out.push_str(&format!("{prune} stale worktree metadata {}\n", p(name)));
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
        if let Some(cmd) = &item.override_command {
            out.push_str(&format!("  to remove it anyway: {}\n", p(cmd)));
        }
    }
    if out.is_empty() {
        out.push_str("nothing to clean\n");
    }
    let freed = if dry_run { "would free" } else { "freed" };
    out.push_str(&format!("{freed} {}\n", HumanBytes(plan.bytes_freed())));
    out
}
