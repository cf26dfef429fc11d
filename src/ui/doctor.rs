//! `doctor`'s report: one line per check (✓, ! or ✗, the title, the detail), its fix below
//! it, and a last line saying whether anything blocks a run. Decides nothing.

use crate::doctor::{Check, Level};
use crate::ui::Ui;

/// The report of `checks`.
pub fn render(checks: &[Check], ui: &Ui) -> String {
    use crate::ui::printable_lines as esc;
    let p = &ui.out;
    let width = checks.iter().map(|c| c.title.len()).max().unwrap_or(0);
    let mut out = String::new();
    for check in checks {
        let mark = match check.level {
            Level::Ok => p.good("✓"),
            Level::Warn => p.caution("!"),
            Level::Fail => p.bad("✗"),
        };
        // Details and fixes quote paths, commands and file contents: escaped, line breaks
        // kept, and continuation lines start under the first line's text.
        let indent = " ".repeat(2 + width + 2);
        out.push_str(&format!(
            "{mark} {:width$}  {}\n",
            esc(check.title),
            esc(&check.detail).replace('\n', &format!("\n{indent}")),
            width = width
        ));
        if let Some(fix) = &check.fix {
            // Most fixes are imperatives; "fix: fix the JSON" says it twice.
            let fix = fix.strip_prefix("fix ").unwrap_or(fix);
            let indent = format!("{indent}     ");
            out.push_str(&format!(
                "  {:width$}  {} {}\n",
                "",
                p.hint("fix:"),
                esc(fix).replace('\n', &format!("\n{indent}"))
            ));
        }
    }
    let blocking = checks.iter().filter(|c| c.level == Level::Fail).count();
    let warnings = checks.iter().filter(|c| c.level == Level::Warn).count();
    out.push('\n');
    out.push_str(&match (blocking, warnings) {
        (0, 0) => p.good("Everything a run needs is in place."),
        (0, n) => format!(
            "{} ({n} note{} above)",
            p.good("Nothing blocks a run"),
            if n == 1 { "" } else { "s" }
        ),
        (n, _) => p.bad(&format!(
            "{n} problem{} block{} a run: fix {} and run `orchestrate doctor` again.",
            if n == 1 { "" } else { "s" },
            if n == 1 { "s" } else { "" },
            if n == 1 { "it" } else { "them" },
        )),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::{fail, ok};

    /// A fix that starts with the verb reads once, and every line of a multi-line detail or
    /// fix starts under the first.
    #[test]
    fn fixes_say_fix_once_and_multi_line_text_stays_aligned() {
        let checks = [
            ok("git", "2.47.3"),
            fail(
                "task metadata",
                "2 tasks have metadata that is not JSON:\nTASK-1\nTASK-2",
                "fix the JSON in those tasks' `metadata`\nthen run doctor again",
            ),
        ];
        let text = render(&checks, &Ui::plain());
        assert!(!text.contains("fix: fix"), "{text}");
        assert!(text.contains("fix: the JSON in those tasks'"), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        // Display columns (the marks are multi-byte).
        let col = |line: &str, what: &str| line.find(what).map(|i| line[..i].chars().count());
        let column = col(lines[1], "2 tasks");
        assert!(column.is_some());
        assert_eq!(col(lines[2], "TASK-1"), column, "{text}");
        assert_eq!(col(lines[3], "TASK-2"), column, "{text}");
        let fix_column = col(lines[4], "the JSON");
        assert_eq!(col(lines[5], "then run"), fix_column, "{text}");
    }
}
