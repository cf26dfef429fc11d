//! Merge-back hints and `orchestrate merge` results, rendered from `git::preview`'s data model.
//! Stream ids, names, branches, paths and the commands to run are data: all escaped here.

use super::printable as p;
use crate::git::merge::Checkout;
use crate::git::repo::short;
use crate::git::{MergeBackPlan, MergePreview, StreamMerge};
use crate::merge_queue::QueueReport;
use crate::model::{ExitStatus, VerifyRun};
use crate::ui::Palette;

/// The hints `start` prints when it ends and `status` once streams are complete.
pub fn render_plan(plan: &MergeBackPlan, pal: &Palette) -> String {
    render_plan_verified(plan, &[], pal)
}

/// The hints, with the verify command that `merge --verify` would run after each merge
/// (`verify[i]` for `plan.streams[i]`; none when empty).
pub fn render_plan_verified(
    plan: &MergeBackPlan,
    verify: &[Option<String>],
    pal: &Palette,
) -> String {
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
        if let (MergePreview::Clean, Some(Some(cmd))) = (&s.preview, verify.get(i)) {
            out.push_str(&format!(
                "       then verify: {} (in a scratch worktree)\n",
                p(cmd)
            ));
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

/// What `orchestrate merge` did: what it skipped, each merge (verified or not, on the target
/// or not), and what became of the checkout that has the target.
pub fn render_queue(report: &QueueReport, pal: &Palette) -> String {
    let target = p(&report.target);
    let mut out = String::new();
    for dir in &report.cleaned {
        out.push_str(&format!(
            "removed the scratch worktree of a merge that was killed: {}\n",
            p(&dir.display().to_string())
        ));
    }
    for s in &report.skipped {
        out.push_str(&format!(
            "skipped {} ({}): {}\n",
            p(&s.stream),
            p(&s.branch),
            preview(&s.preview, pal)
        ));
    }
    for (i, step) in report.steps.iter().enumerate() {
        let s = &step.entry;
        let verified = match &step.verified {
            Some(cmd) => format!(", verify passed: {}", p(cmd)),
            None => String::new(),
        };
        let verb = if i < report.landed {
            "merged"
        } else {
            "not merged (the queue stopped later)"
        };
        out.push_str(&format!(
            "{verb} {} ({}, {}) into {target}: {}{verified}\n",
            p(&s.stream),
            p(&s.branch),
            ahead(s, &report.target),
            short(step.commit),
        ));
    }
    if report.steps.is_empty() && report.stop.is_none() {
        out.push_str(&format!("nothing to merge into {target}\n"));
    }
    if let Some(checkout) = &report.checkout {
        out.push_str(&render_checkout(checkout, report, pal));
    }
    out
}

/// What became of the checkout that has the target, and how to bring a left one along.
fn render_checkout(checkout: &Checkout, report: &QueueReport, pal: &Palette) -> String {
    let target = super::shell_word(&report.target);
    let (path, why, at) = match checkout {
        Checkout::Updated { path } => {
            return format!(
                "{} is up to date with {}\n",
                p(&path.display().to_string()),
                p(&report.target)
            );
        }
        Checkout::None => {
            return format!(
                "no checkout has {} checked out; to work on it: git switch {target}\n",
                p(&report.target)
            );
        }
        Checkout::Dirty { path, files, at } => (
            path,
            format!(
                "it has uncommitted changes ({})",
                p(&crate::git::error::summarize(files))
            ),
            *at,
        ),
        Checkout::InTheWay { path, files, at } => (
            path,
            format!(
                "untracked files are where merged files go ({})",
                p(&crate::git::error::summarize(files))
            ),
            *at,
        ),
    };
    let how = format!("git read-tree -m -u {} {target}", short(at));
    format!(
        "{} {} was left exactly as it was: {why}. Its files and index are still those of {}, \
         so `git status` there shows the merges as undone: do not commit there before updating \
         it. To bring it to {} keeping your changes, run there:\n  {how}\n",
        pal.caution("note:"),
        p(&path.display().to_string()),
        short(at),
        p(&report.target),
    )
}

/// A failed verify of a merge, with its last lines of output (one per line, indented): the
/// error's text, which the error renderer escapes.
pub fn verify_failure(entry: &StreamMerge, run: &VerifyRun, target: &str) -> String {
    let how = match run.exit {
        Some(ExitStatus::Code { code }) => format!("exited with code {code}"),
        Some(ExitStatus::Signal { signal }) => format!("was killed by signal {signal}"),
        Some(ExitStatus::Lost) => "ended without an exit status".into(),
        None => "ran out of time (verify_timeout)".into(),
    };
    let mut text = format!(
        "the merge of stream {} ({}) into {target} merges cleanly but fails verify: `{}` {how}",
        entry.stream, entry.branch, run.command
    );
    let keep = run.output_lines.len().saturating_sub(10);
    for line in &run.output_lines[keep..] {
        text.push_str(&format!("\n  | {line}"));
    }
    text
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
        let text =
            render_plan_verified(&plan, &[Some(format!("make {evil}"))], &Palette::new(false));
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        let oid = crate::git::Oid::ZERO_SHA1;
        let report = QueueReport {
            target: evil.into(),
            begun: oid,
            steps: vec![crate::merge_queue::Step {
                entry: stream(evil, 1, MergePreview::Clean),
                commit: oid,
                verified: Some(evil.into()),
            }],
            landed: 1,
            skipped: vec![stream(evil, 0, MergePreview::NoCommits)],
            stop: None,
            checkout: Some(Checkout::Dirty {
                path: evil.into(),
                files: vec![evil.into()],
                at: oid,
            }),
            cleaned: vec![evil.into()],
        };
        let text = render_queue(&report, &Palette::new(false));
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
    }
}
