//! The one progress area of the process. Log lines and diagnostics are written through
//! [`suspend`] so the live view never tears; when stderr is not a terminal the area is hidden
//! and nothing is routed through it (indicatif silently drops `println` then).
//!
//! The area is drawn on [`EdgeSafeTerm`]. indicatif ends each line by padding it with spaces
//! to the terminal's right edge and lets the terminal wrap; after the last line the cursor
//! sits at the edge, where the terminal's echo of `^C` wraps onto a new line: the area's line
//! count is then one short and its first line stays behind as a stale copy. `EdgeSafeTerm`
//! writes "clear to end of line" and a line break instead of that padding (and no break after
//! the last line), so the cursor rests after the text, and lines are kept [`RIGHT_MARGIN`]
//! columns short of the edge so the echo fits beside them. It also buffers each frame into one
//! write, so a terminal never shows half of one.

use std::io::Write;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};

use console::Term;
use indicatif::{MultiProgress, ProgressDrawTarget, TermLike};

/// Columns left free at the right of the live area (the width of the `^C` echo).
pub const RIGHT_MARGIN: u16 = 2;

static AREA: LazyLock<MultiProgress> =
    LazyLock::new(|| MultiProgress::with_draw_target(ProgressDrawTarget::hidden()));

/// The shared progress area; hidden until [`show`] is called.
pub fn area() -> &'static MultiProgress {
    &AREA
}

/// Starts drawing the progress area on stderr (call only in [`super::OutputMode::Progress`]).
/// No rate limit of indicatif's: the live view limits itself, and a frame indicatif skipped
/// would stay undrawn until the next change.
pub fn show() {
    AREA.set_draw_target(ProgressDrawTarget::term_like(Box::new(EdgeSafeTerm {
        // Buffered until indicatif's flush at the end of each draw: a frame reaches the
        // terminal in one write, never half drawn.
        term: Term::buffered_stderr(),
        padded: AtomicBool::new(false),
    })));
}

/// The width a line of the live area may take: the terminal's, less [`RIGHT_MARGIN`].
pub fn area_width() -> Option<usize> {
    Term::stderr()
        .size_checked()
        .map(|(_, cols)| usize::from(cols.saturating_sub(RIGHT_MARGIN).max(1)))
}

/// Runs `f` with the bars cleared, then redraws them.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    AREA.suspend(f)
}

/// stderr, ending lines with "clear to end of line" and a break instead of indicatif's
/// padding. The padding is recognised as a write of spaces only (the board never draws a line
/// of spaces only: its lines are trimmed); it is held until the next write shows whether
/// another line follows (a break) or the frame ends with a flush (no break).
#[derive(Debug)]
struct EdgeSafeTerm {
    term: Term,
    /// Padding was written last and its line end is still owed.
    padded: AtomicBool,
}

impl EdgeSafeTerm {
    /// Ends the padded line, if one is owed: `\x1b[K` clears what an earlier, longer frame
    /// left to the right; the break only when another line follows.
    fn settle(&self, another_line: bool) -> std::io::Result<()> {
        if self.padded.swap(false, Ordering::SeqCst) {
            self.term
                .write_str(if another_line { "\x1b[K\r\n" } else { "\x1b[K" })?;
        }
        Ok(())
    }
}

impl TermLike for EdgeSafeTerm {
    fn width(&self) -> u16 {
        self.term.size().1
    }
    fn height(&self) -> u16 {
        self.term.size().0
    }
    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.settle(false)?;
        self.term.move_cursor_up(n)
    }
    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.settle(false)?;
        self.term.move_cursor_down(n)
    }
    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.settle(false)?;
        self.term.move_cursor_right(n)
    }
    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.settle(false)?;
        self.term.move_cursor_left(n)
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.settle(true)?;
        self.term.write_line(s)
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        if !s.is_empty() && s.bytes().all(|b| b == b' ') {
            self.settle(true)?;
            self.padded.store(true, Ordering::SeqCst);
            return Ok(());
        }
        if !s.is_empty() {
            self.settle(true)?;
        }
        self.term.write_str(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        self.settle(false)?;
        self.term.clear_line()
    }
    fn flush(&self) -> std::io::Result<()> {
        self.settle(false)?;
        self.term.flush()
    }
}

/// A `tracing` writer that prints above the bars. Events may quote data (stream ids, paths):
/// every control character but the line break is escaped.
pub struct SuspendWriter;

impl Write for SuspendWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let safe = super::printable_lines(&text);
        suspend(|| std::io::stderr().write_all(safe.as_bytes()))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
