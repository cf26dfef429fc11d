//! Merge-back hints and `orchestrate merge` results, rendered from `git::preview`'s data model.
//! Stream ids, names, branches, paths and the commands to run are data: all escaped here.

use super::printable as p;
use crate::git::merge::MergeReport;
use crate::git::{MergeBackPlan, MergePreview, StreamMerge};
use crate::ui::Palette;

/// The hints `start` prints when it ends and `status` once streams are complete.
pub fn render_plan(plan: &MergeBackPlan, pal: &Palette) -> String {
    let target = p(&plan.target);
    let mut out = format!("{} into {}\n", pal.bold("Merge-back"), pal.bold(&target));
    if plan.streams.is_empty() {
        out.push_str("  no stream branches yet\n");
        return out;
    }
    for (i, s) in plan.streams.iter().enumerate() {
        out.push_str(&format!(
            "  {}. {} ({}) {}: {}\n",
            i + 1,
            p(&s.stream),
            p(&s.branch),
            ahead(s, &plan.target),
            preview(&s.preview, pal)
        ));
        if let MergePreview::Conflicts { paths } = &s.preview {
            for path in paths {
                out.push_str(&format!("       {} {}\n", pal.bad("conflict:"), p(path)));
            }
        }
    }
    if plan.commands.is_empty() {
        out.push_str("  nothing to merge\n");
        return out;
    }
    out.push_str(&format!("\n{}\n", pal.bold("To merge, run:")));
    // Commands are quoted to be pasted exactly (`crate::cmdline::quote`): a line break inside
    // quotes stays one; anything else was written as a printf already.
    for cmd in &plan.commands {
        out.push_str(&format!("  {}\n", super::printable_lines(cmd)));
    }
    out.push_str(&format!(
        "or: {}\n",
        pal.bold(&format!(
            "orchestrate merge --into {}",
            super::shell_word(&plan.target)
        ))
    ));
    if let Some(c) = plan.first_conflict() {
        out.push_str(&format!(
            "{} {} will conflict: resolve it by hand (`git merge --no-ff {}`) when you get there\n",
            pal.caution("note:"),
            p(&c.stream),
            super::shell_word(&c.branch)
        ));
    }
    out
}

/// "3 commits ahead of main": commits the target lacks, said against the target by name (the
/// dashboard's "since its base" counts the branch's own work, which is another number).
fn ahead(s: &StreamMerge, target: &str) -> String {
    format!(
        "{} commit{} ahead of {}",
        s.commits_ahead,
        if s.commits_ahead == 1 { "" } else { "s" },
        p(target)
    )
}

fn preview(preview: &MergePreview, pal: &Palette) -> String {
    match preview {
        MergePreview::Clean => pal.good("merges cleanly"),
        MergePreview::Conflicts { paths } => pal.bad(&format!(
            "conflicts in {} file{}",
            paths.len(),
            if paths.len() == 1 { "" } else { "s" }
        )),
        MergePreview::AlreadyMerged => pal.dim("already merged"),
        MergePreview::NoCommits => pal.dim("no commits, not complete, nothing to merge"),
        MergePreview::Incomplete => pal.caution("not complete, not merged"),
    }
}

/// What `orchestrate merge` did.
pub fn render_report(report: &MergeReport, pal: &Palette) -> String {
    let mut out = String::new();
    for s in &report.skipped {
        out.push_str(&format!(
            "skipped {} ({}): {}\n",
            p(&s.stream),
            p(&s.branch),
            preview(&s.preview, pal)
        ));
    }
    for (s, commit) in &report.merged {
        out.push_str(&format!(
            "merged {} ({}, {}) into {}: {}\n",
            p(&s.stream),
            p(&s.branch),
            ahead(s, &report.target),
            p(&report.target),
            &commit.to_string()[..10]
        ));
    }
    if report.merged.is_empty() && report.conflict.is_none() {
        out.push_str(&format!("nothing to merge into {}\n", p(&report.target)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(id: &str, ahead: usize, preview: MergePreview) -> StreamMerge {
        StreamMerge {
            stream: id.into(),
            name: format!("{id} work"),
            branch: format!("stream/{id}"),
            commits_ahead: ahead,
            preview,
        }
    }

    #[test]
    fn plan_lists_streams_previews_and_commands() {
        let plan = MergeBackPlan {
            target: "main".into(),
            streams: vec![
                stream("A", 0, MergePreview::AlreadyMerged),
                stream("B", 2, MergePreview::Clean),
                stream(
                    "C",
                    1,
                    MergePreview::Conflicts {
                        paths: vec!["x.txt".into()],
                    },
                ),
                stream("D", 0, MergePreview::NoCommits),
            ],
            commands: vec![
                "git switch main".into(),
                "git merge --no-ff -m 'Merge stream B: B work' stream/B".into(),
            ],
        };
        let text = render_plan(&plan, &Palette::new(false));
        assert!(text.starts_with("Merge-back into main\n"), "{text}");
        assert!(text.contains("1. A (stream/A) 0 commits ahead of main: already merged"));
        assert!(text.contains("2. B (stream/B) 2 commits ahead of main: merges cleanly"));
        assert!(text.contains("3. C (stream/C) 1 commit ahead of main: conflicts in 1 file"));
        assert!(text.contains("4. D (stream/D) 0 commits ahead of main: no commits, not complete"));
        assert!(text.contains("conflict: x.txt"));
        assert!(text.contains("  git merge --no-ff -m 'Merge stream B: B work' stream/B\n"));
        assert!(text.contains("or: orchestrate merge --into main"));
    }

    #[test]
    fn every_piece_of_data_is_escaped() {
        let evil = "x\u{1b}]0;pwned\u{7}";
        let plan = MergeBackPlan {
            target: evil.into(),
            streams: vec![stream(
                evil,
                1,
                MergePreview::Conflicts {
                    paths: vec![evil.into()],
                },
            )],
            commands: vec![format!("git merge {evil}")],
        };
        let text = render_plan(&plan, &Palette::new(false));
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        let report = MergeReport {
            target: evil.into(),
            skipped: vec![stream(evil, 0, MergePreview::NoCommits)],
            ..MergeReport::default()
        };
        let text = render_report(&report, &Palette::new(false));
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
    }
}
