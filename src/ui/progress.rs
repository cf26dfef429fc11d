//! The one progress area of the process. Log lines and diagnostics are written through
//! [`suspend`] so bars never tear; when stderr is not a terminal the area is hidden and nothing
//! is routed through it (indicatif silently drops `println` then).

use std::io::Write;
use std::sync::LazyLock;

use indicatif::{MultiProgress, ProgressDrawTarget};

static AREA: LazyLock<MultiProgress> =
    LazyLock::new(|| MultiProgress::with_draw_target(ProgressDrawTarget::hidden()));

/// The shared progress area; hidden until [`show`] is called.
pub fn area() -> &'static MultiProgress {
    &AREA
}

/// Starts drawing the progress area on stderr (call only in [`super::OutputMode::Progress`]).
pub fn show() {
    AREA.set_draw_target(ProgressDrawTarget::stderr_with_hz(10));
}

/// Runs `f` with the bars cleared, then redraws them.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    AREA.suspend(f)
}

/// A `tracing` writer that prints above the bars.
pub struct SuspendWriter;

impl Write for SuspendWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        suspend(|| std::io::stderr().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
