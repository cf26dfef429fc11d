//! Merge-back hints and `orchestrate merge` results, rendered from `git::preview`'s data model.

use crate::git::merge::MergeReport;
use crate::git::{MergeBackPlan, MergePreview, StreamMerge};
use crate::ui::Palette;

/// The hints `start` prints when it ends and `status` once streams are complete.
pub fn render_plan(plan: &MergeBackPlan, p: &Palette) -> String {
    let mut out = format!("{} into {}\n", p.bold("Merge-back"), p.bold(&plan.target));
    if plan.streams.is_empty() {
        out.push_str("  no stream branches yet\n");
        return out;
    }
    for (i, s) in plan.streams.iter().enumerate() {
        out.push_str(&format!(
            "  {}. {} ({}) {}: {}\n",
            i + 1,
            s.stream,
            s.branch,
            ahead(s),
            preview(&s.preview, p)
        ));
        if let MergePreview::Conflicts { paths } = &s.preview {
            for path in paths {
                out.push_str(&format!("       {} {path}\n", p.bad("conflict:")));
            }
        }
    }
    if plan.commands.is_empty() {
        out.push_str("  nothing to merge\n");
        return out;
    }
    out.push_str(&format!("\n{}\n", p.bold("To merge, run:")));
    for cmd in &plan.commands {
        out.push_str(&format!("  {cmd}\n"));
    }
    out.push_str(&format!(
        "or: {}\n",
        p.bold(&format!("orchestrate merge --into {}", plan.target))
    ));
    if let Some(c) = plan.first_conflict() {
        out.push_str(&format!(
            "{} {} will conflict: resolve it by hand (`git merge --no-ff {}`) when you get there\n",
            p.caution("note:"),
            c.stream,
            c.branch
        ));
    }
    out
}

fn ahead(s: &StreamMerge) -> String {
    match s.commits_ahead {
        1 => "1 commit ahead".into(),
        n => format!("{n} commits ahead"),
    }
}

fn preview(preview: &MergePreview, p: &Palette) -> String {
    match preview {
        MergePreview::Clean => p.good("merges cleanly"),
        MergePreview::Conflicts { paths } => p.bad(&format!(
            "conflicts in {} file{}",
            paths.len(),
            if paths.len() == 1 { "" } else { "s" }
        )),
        MergePreview::AlreadyMerged => p.dim("already merged"),
        MergePreview::Incomplete => p.caution("not complete, not merged"),
    }
}

/// What `orchestrate merge` did.
pub fn render_report(report: &MergeReport, p: &Palette) -> String {
    let mut out = String::new();
    for s in &report.skipped {
        out.push_str(&format!(
            "skipped {} ({}): {}\n",
            s.stream,
            s.branch,
            preview(&s.preview, p)
        ));
    }
    for (s, commit) in &report.merged {
        out.push_str(&format!(
            "merged {} ({}, {}) into {}: {}\n",
            s.stream,
            s.branch,
            ahead(s),
            report.target,
            &commit.to_string()[..10]
        ));
    }
    if report.merged.is_empty() && report.conflict.is_none() {
        out.push_str(&format!("nothing to merge into {}\n", report.target));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(id: &str, preview: MergePreview) -> StreamMerge {
        StreamMerge {
            stream: id.into(),
            name: format!("{id} work"),
            branch: format!("stream/{id}"),
            commits_ahead: 2,
            preview,
        }
    }

    #[test]
    fn plan_lists_streams_previews_and_commands() {
        let plan = MergeBackPlan {
            target: "main".into(),
            streams: vec![
                stream("A", MergePreview::AlreadyMerged),
                stream("B", MergePreview::Clean),
                stream(
                    "C",
                    MergePreview::Conflicts {
                        paths: vec!["x.txt".into()],
                    },
                ),
            ],
            commands: vec![
                "git switch main".into(),
                "git merge --no-ff -m 'Merge stream B: B work' stream/B".into(),
            ],
        };
        let text = render_plan(&plan, &Palette::new(false));
        assert!(text.starts_with("Merge-back into main\n"), "{text}");
        assert!(text.contains("1. A (stream/A) 2 commits ahead: already merged"));
        assert!(text.contains("2. B (stream/B) 2 commits ahead: merges cleanly"));
        assert!(text.contains("3. C (stream/C) 2 commits ahead: conflicts in 1 file"));
        assert!(text.contains("conflict: x.txt"));
        assert!(text.contains("  git merge --no-ff -m 'Merge stream B: B work' stream/B\n"));
        assert!(text.contains("or: orchestrate merge --into main"));
    }
}
