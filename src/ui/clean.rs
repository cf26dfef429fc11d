//! What `orchestrate clean` removed (or would remove) and what it kept, and why.

use crate::git::clean::CleanPlan;
use crate::ui::Palette;

pub fn render(plan: &CleanPlan, dry_run: bool, p: &Palette) -> String {
    let (remove, delete, prune) = if dry_run {
        ("would remove", "would delete", "would prune")
    } else {
        ("removed", "deleted", "pruned")
    };
    let mut out = String::new();
    for name in &plan.stale {
        out.push_str(&format!("{prune} stale worktree metadata {name}\n"));
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
        if let Some(cmd) = &item.override_command {
            out.push_str(&format!("  to remove it anyway: {cmd}\n"));
        }
    }
    if out.is_empty() {
        out.push_str("nothing to clean\n");
    }
    let freed = if dry_run { "would free" } else { "freed" };
    out.push_str(&format!("{freed} {}\n", human_bytes(plan.bytes_freed())));
    out
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
