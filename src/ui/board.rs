//! One look for every view of the streams: `status` (plain, on a terminal, `--watch`) and
//! `start`'s live view all draw a [`Board`] with [`render`]: the same columns, the same bar.
//!
//! A board is made from ONE snapshot and its overall line is tallied from its own rows
//! ([`Board::new`]), so the two can never disagree. It holds only escaped text: everything from
//! the task database or an agent went through [`super::printable`] when the board was built.
//! [`render`] lays it out for a width (every line cut with `…`, never wrapped) and a moment
//! (a running worker's runtime is computed when drawn, so a redraw needs no new snapshot).

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use console::{Alignment, measure_text_width, pad_str, truncate_str};
use indicatif::HumanDuration;

use super::{Palette, printable as p, reason};
use crate::dashboard::Overall;
use crate::model::{Reason, State};
use crate::taskdb::{BlockedTask, TaskCounts};

/// Everything one frame shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Board {
    /// Where the streams come from: "workspace shop · /path/tasks.db" (escaped).
    pub source: String,
    pub overall: Overall,
    /// In the graph's order: by depth, then id.
    pub rows: Vec<Row>,
}

impl Board {
    /// A board whose overall line is tallied from `rows` themselves.
    pub fn new(source: String, rows: Vec<Row>) -> Self {
        let overall = Overall::tally(rows.iter().map(|r| (r.state, &r.tasks)));
        Self {
            source,
            overall,
            rows,
        }
    }
}

/// The board's first line: which store, which file, how it was found ("legacy store ·
/// workspace shop · /path/tasks.db (derived from …)"; "database PATH" with `--db`), escaped.
pub fn source_line(
    workspace: Option<&str>,
    db: &std::path::Path,
    source: Option<&crate::project::StoreSource>,
) -> String {
    let db = db.display().to_string();
    let db = match workspace {
        Some(ws) => format!("workspace {} · {}", p(ws), p(&db)),
        None => format!("database {}", p(&db)),
    };
    match source {
        Some(src) => format!("{} · {db} ({})", src.kind.describe(), p(&src.how)),
        None => db,
    }
}

/// One stream's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The stream id, escaped.
    pub id: String,
    pub depth: usize,
    pub state: State,
    pub tasks: TaskCounts,
    pub worker: Option<WorkerCell>,
    /// What follows the worker in the NOTE column, escaped; joined with "; ".
    pub note: Vec<String>,
    /// Lines under the row (a failure's last log lines), escaped.
    pub details: Vec<String>,
}

/// The worker part of a row's note.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerCell {
    pub pid: i32,
    pub attempt: u32,
    pub life: Life,
    /// What its agent reported: "$0.4216", "12 turns", "session 9f1c" (escaped).
    pub agent: Vec<String>,
}

/// Where a worker is in its life.
#[derive(Debug, Clone, PartialEq)]
pub enum Life {
    /// Running since then (`None`: since an unknown time); the runtime is computed when drawn.
    Running(Option<SystemTime>),
    /// How it ended, in words: "exited 0 after 3 minutes", "stopped", …
    Ended(String),
}

impl WorkerCell {
    /// "pid 42 running 3 minutes (attempt 2), $0.42, 12 turns".
    pub fn words(&self, now: SystemTime) -> String {
        let mut text = format!("pid {} ", self.pid);
        match &self.life {
            Life::Running(Some(since)) => {
                let ran = now.duration_since(*since).unwrap_or_default();
                let _ = write!(text, "running {}", runtime(ran));
            }
            Life::Running(None) => text.push_str("running"),
            Life::Ended(words) => text.push_str(words),
        }
        if self.attempt > 1 {
            let _ = write!(text, " (attempt {})", self.attempt);
        }
        for fact in &self.agent {
            let _ = write!(text, ", {fact}");
        }
        text
    }
}

/// A duration as a person says it: "42 seconds", "3 minutes", "2 hours".
pub fn runtime(d: Duration) -> String {
    // Whole seconds: a runtime that changes every millisecond would redraw every frame.
    HumanDuration(Duration::from_secs(d.as_secs())).to_string()
}

/// The NOTE parts every view shows for a stream: why it is in its state (the model's reason in
/// words), and, for a stream that is ready with some tasks blocked, which ones.
pub fn reason_notes(reason: Option<&Reason>, blocked: &[BlockedTask]) -> Vec<String> {
    match reason {
        Some(reason) => vec![reason::summary(reason)],
        None if !blocked.is_empty() => {
            let titles: Vec<String> = blocked.iter().map(|b| p(&b.title).into_owned()).collect();
            vec![format!("blocked tasks: {}", titles.join(", "))]
        }
        None => Vec::new(),
    }
}

/// How a board is drawn.
#[derive(Debug, Clone, Copy)]
pub struct Look {
    pub palette: Palette,
    /// Unicode block bars (the terminal's character set is UTF-8), else ASCII.
    pub unicode: bool,
    /// Cut every line to this many columns (a terminal); `None`: full lines (a pipe, a file).
    pub width: Option<usize>,
}

/// Bar cells, the same width in both glyph sets so the columns do not move.
const BAR_CELLS: usize = 12;
/// The widest an id column gets on a terminal: the note needs the room more.
const MAX_ID_WIDTH: usize = 24;
const HEADER: [&str; 5] = ["STREAM", "STATE", "PROGRESS", "TASKS", "NOTE"];

/// The board as lines (joined with `\n`, no final newline), each fitted to `look.width`.
pub fn render(board: &Board, look: &Look, now: SystemTime) -> String {
    let pal = &look.palette;
    let mut lines = vec![
        pal.dim(&board.source),
        pal.bold(&overall_line(&board.overall)),
    ];
    let id_w = board
        .rows
        .iter()
        .map(|r| measure_text_width(&r.id))
        .max()
        .unwrap_or(0)
        .max(HEADER[0].len());
    let id_w = match look.width {
        Some(_) => id_w.min(MAX_ID_WIDTH),
        None => id_w,
    };
    let state_w = board
        .rows
        .iter()
        .map(|r| r.state.as_str().len())
        .max()
        .unwrap_or(0)
        .max(HEADER[1].len());
    let tasks_w = board
        .rows
        .iter()
        .map(|r| tasks_cell(&r.tasks).len())
        .max()
        .unwrap_or(0)
        .max(HEADER[3].len());
    let cols = Columns {
        id_w,
        state_w,
        tasks_w,
    };
    let mut depth = None;
    for row in &board.rows {
        if depth != Some(row.depth) {
            depth = Some(row.depth);
            lines.push(String::new());
            lines.push(pal.bold(&format!("level {}", row.depth)));
            lines.push(pal.dim(&cols.line(HEADER.map(String::from))));
        }
        let mut note = Vec::new();
        if let Some(w) = &row.worker {
            note.push(w.words(now));
        }
        note.extend(row.note.iter().cloned());
        let done = row.tasks.completed + row.tasks.cancelled;
        let state = pad_str(row.state.as_str(), state_w, Alignment::Left, None);
        lines.push(cols.line([
            pad_str(&row.id, id_w, Alignment::Left, Some("…")).into_owned(),
            state_colour(pal, row.state, &state),
            bar(done, row.tasks.total, look.unicode),
            tasks_cell(&row.tasks),
            note.join("; "),
        ]));
        for detail in &row.details {
            lines.push(format!("      {detail}"));
        }
    }
    lines
        .iter()
        .map(|l| fit(l.trim_end(), look.width))
        .collect::<Vec<_>>()
        .join("\n")
}

/// "done/total" (cancelled tasks count as done).
fn tasks_cell(t: &TaskCounts) -> String {
    format!("{}/{}", t.completed + t.cancelled, t.total)
}

/// The widths of a board's fixed columns.
struct Columns {
    id_w: usize,
    state_w: usize,
    tasks_w: usize,
}

impl Columns {
    /// `cells` laid out in the columns (padding measures display width, colour codes aside).
    fn line(&self, cells: [String; 5]) -> String {
        let [id, state, bar, tasks, note] = cells;
        format!(
            "  {}  {}  {}  {}  {note}",
            pad_str(&id, self.id_w, Alignment::Left, None),
            pad_str(&state, self.state_w, Alignment::Left, None),
            pad_str(&bar, BAR_CELLS, Alignment::Left, None),
            pad_str(&tasks, self.tasks_w, Alignment::Right, None),
        )
    }
}

/// A line cut to `width` columns with `…` (colour codes and wide characters measured right).
fn fit(line: &str, width: Option<usize>) -> String {
    match width {
        Some(w) => truncate_str(line, w, "…").into_owned(),
        None => line.to_string(),
    }
}

/// "overall: 4/9 tasks done (44%) · 1/4 streams complete · 1 running · …".
pub fn overall_line(o: &Overall) -> String {
    let mut line = format!(
        "overall: {}/{} tasks done ({}%) · {}/{} streams complete",
        o.tasks.completed + o.tasks.cancelled,
        o.tasks.total,
        o.percent,
        o.complete,
        o.streams
    );
    if o.running > 0 {
        let _ = write!(line, " · {} running", o.running);
    }
    if o.failed > 0 {
        let _ = write!(line, " · {} failed", o.failed);
    }
    if o.need_a_person > 0 {
        let _ = write!(
            line,
            " · {} need{} a person",
            o.need_a_person,
            if o.need_a_person == 1 { "s" } else { "" }
        );
    }
    line
}

/// `done` of `total` as a bar [`BAR_CELLS`] wide: `[####------]`, or Unicode blocks with
/// eighths.
pub fn bar(done: u32, total: u32, unicode: bool) -> String {
    let fraction = |cells: usize| {
        if total == 0 {
            0
        } else {
            (done.min(total) as usize * cells) / total as usize
        }
    };
    if !unicode {
        let inner = BAR_CELLS - 2;
        let filled = fraction(inner);
        return format!("[{}{}]", "#".repeat(filled), "-".repeat(inner - filled));
    }
    const EIGHTHS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    let eighths = fraction(BAR_CELLS * 8);
    let (full, part) = (eighths / 8, eighths % 8);
    let mut text = "█".repeat(full);
    text.push_str(EIGHTHS[part]);
    let used = full + usize::from(part > 0);
    text.push_str(&"░".repeat(BAR_CELLS - used));
    text
}

/// A state's words in its colour (also `graph`'s and `report`'s).
pub(super) fn state_colour(p: &Palette, state: State, text: &str) -> String {
    match state {
        State::Complete => p.good(text),
        State::Running | State::Preparing | State::Verifying => p.busy(text),
        State::Failed => p.bad(text),
        State::Blocked
        | State::NeedsAttention
        | State::Stopped
        | State::Skipped
        | State::Paused
        | State::Parked
        | State::BudgetReached => p.caution(text),
        State::Cancelled | State::Waiting => p.dim(text),
        State::Ready => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ExitStatus, Failure};

    fn counts(completed: u32, total: u32) -> TaskCounts {
        TaskCounts {
            total,
            completed,
            pending: total - completed,
            ..TaskCounts::default()
        }
    }

    fn row(id: &str, depth: usize, state: State, tasks: TaskCounts) -> Row {
        Row {
            id: id.into(),
            depth,
            state,
            tasks,
            worker: None,
            note: Vec::new(),
            details: Vec::new(),
        }
    }

    fn look(width: Option<usize>, unicode: bool) -> Look {
        Look {
            palette: Palette::new(false),
            unicode,
            width,
        }
    }

    fn board() -> Board {
        let since = SystemTime::UNIX_EPOCH;
        let mut a = row("Stream-A", 0, State::Running, counts(1, 3));
        a.worker = Some(WorkerCell {
            pid: 42,
            attempt: 2,
            life: Life::Running(Some(since)),
            agent: vec![],
        });
        a.note = vec!["Editing src/lib.rs to add the new parser and its tests".into()];
        let mut b = row("Stream-B", 1, State::Failed, counts(0, 2));
        let reason = Reason::Failed(Failure::Exited {
            attempts: 2,
            exit: ExitStatus::Code { code: 3 },
            agent_error: None,
            log_lines: vec!["first line".into(), "second line".into()],
        });
        b.note = reason_notes(Some(&reason), &[]);
        b.details = reason::detail_lines(&reason);
        Board::new("workspace shop · /db".into(), vec![a, b])
    }

    #[test]
    fn a_board_reads_as_aligned_columns_with_details_under_the_row() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(42);
        let text = render(&board(), &look(None, false), now);
        let expected = "\
workspace shop · /db
overall: 1/5 tasks done (20%) · 0/2 streams complete · 1 running · 1 failed

level 0
  STREAM    STATE    PROGRESS      TASKS  NOTE
  Stream-A  running  [###-------]    1/3  pid 42 running 42 seconds (attempt 2); Editing src/lib.rs to add the new parser and its tests

level 1
  STREAM    STATE    PROGRESS      TASKS  NOTE
  Stream-B  failed   [----------]    0/2  failed after 2 attempts: its worker exited with code 3
      first line
      second line";
        assert_eq!(text, expected);
    }

    #[test]
    fn every_line_fits_the_width_and_is_cut_with_an_ellipsis() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(42);
        for unicode in [false, true] {
            for width in [20, 40, 80] {
                let text = render(&board(), &look(Some(width), unicode), now);
                for line in text.lines() {
                    assert!(measure_text_width(line) <= width, "{width}: {line:?}");
                }
                assert!(text.contains('…'), "{text}");
            }
        }
        // Colour codes do not count, and are not cut in half.
        let coloured = Look {
            palette: Palette::new(true),
            ..look(Some(60), true)
        };
        for line in render(&board(), &coloured, now).lines() {
            assert!(measure_text_width(line) <= 60, "{line:?}");
        }
        // Wide characters count twice.
        let mut wide = board();
        wide.rows[0].id = "流れ流れ流れ流れ流れ流れ流れ".into();
        for line in render(&wide, &look(Some(50), true), now).lines() {
            assert!(measure_text_width(line) <= 50, "{line:?}");
        }
    }

    #[test]
    fn bars_have_one_width_in_both_glyph_sets() {
        for (done, total) in [(0, 0), (0, 3), (1, 3), (2, 3), (3, 3), (5, 3), (7, 100)] {
            assert_eq!(measure_text_width(&bar(done, total, false)), BAR_CELLS);
            assert_eq!(measure_text_width(&bar(done, total, true)), BAR_CELLS);
        }
        assert_eq!(bar(1, 2, false), "[#####-----]");
        assert_eq!(bar(1, 2, true), "██████░░░░░░");
        assert_eq!(bar(1, 3, true), "████░░░░░░░░");
        assert_eq!(bar(1, 5, true), "██▍░░░░░░░░░");
        assert_eq!(bar(3, 3, true), "████████████");
    }

    #[test]
    fn the_overall_line_is_tallied_from_the_rows() {
        let b = board();
        assert_eq!(b.overall.streams, 2);
        assert_eq!(b.overall.running, 1);
        assert_eq!(b.overall.failed, 1);
        assert_eq!(b.overall.tasks.total, 5);
        assert_eq!(b.overall.complete, 0);
    }

    #[test]
    fn runtimes_are_whole_and_human() {
        assert_eq!(runtime(Duration::from_millis(42_900)), "42 seconds");
        assert_eq!(runtime(Duration::from_secs(185)), "3 minutes");
        assert_eq!(runtime(Duration::from_secs(7325)), "2 hours");
    }
}
