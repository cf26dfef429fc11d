//! What `orchestrate clean` removed (or would remove) and what it kept, and why; the refs it
//! made to keep commits reachable; the orphaned worktrees it registered again.

use super::printable as pr;
use crate::git::clean::{CleanPlan, OrphanItem};
use crate::ui::Palette;

pub fn render(plan: &CleanPlan, dry_run: bool, p: &Palette) -> String {
    let (remove, delete, prune, keep) = if dry_run {
        ("would remove", "would delete", "would prune", "would keep")
    } else {
        ("removed", "deleted", "pruned", "kept")
    };
    let mut out = String::new();
    for name in &plan.stale {
        out.push_str(&format!("{prune} stale worktree metadata {}\n", pr(name)));
    }
    for orphan in &plan.orphans {
        out.push_str(&orphan_line(orphan, dry_run, p));
    }
    for item in &plan.items {
        for r in &item.rescued {
            out.push_str(&format!(
                "{keep} commit {} reachable as {} (stream {}: only what is removed reached it)\n",
                &r.commit[..r.commit.len().min(10)],
                pr(&r.refname),
                pr(&item.stream)
            ));
        }
    }
    for item in &plan.items {
        if item.remove_worktree
            && let Some(path) = &item.worktree
        {
            out.push_str(&format!(
                "{remove} worktree {} (stream {}, {})\n",
                path.display(),
                item.stream,
                human_bytes(item.bytes)
            ));
        }
        if item.delete_branch
            && let Some(b) = &item.branch
        {
            out.push_str(&format!("{delete} branch {b}\n"));
        }
    }
    for item in plan.items.iter().filter(|i| !i.refusals.is_empty()) {
        let what = item
            .worktree
            .as_ref()
            .map(|w| w.display().to_string())
            .or_else(|| item.branch.clone())
            .unwrap_or_default();
        out.push_str(&format!(
            "{} {what} (stream {}): {}\n",
            p.caution("kept"),
            item.stream,
            item.refusals.join("; ")
        ));
        match &item.override_command {
            Some(cmd) if item.in_use => out.push_str(&format!(
                "  it is in use, which --force never overrides; once it is not: {cmd}\n"
            )),
            Some(cmd) => out.push_str(&format!("  to remove it anyway: {cmd}\n")),
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
    out.push_str(&format!("{freed} {}\n", human_bytes(plan.bytes_freed())));
    out
}

fn orphan_line(o: &OrphanItem, dry_run: bool, p: &Palette) -> String {
    let dir = pr(&o.dir.display().to_string()).into_owned();
    let what = format!(
        "orphaned worktree {dir} (stream {}): git's record {} was deleted",
        pr(&o.stream),
        pr(&o.admin.display().to_string())
    );
    match (&o.refusal, o.reregistered, dry_run) {
        (Some(why), _, _) => format!(
            "{} {what}; cannot register it again: {}\n",
            p.caution("kept"),
            pr(why)
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

/// `1.5 MiB`-style sizes.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
    }
}
