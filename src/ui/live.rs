//! The live area shared by `start` and `status --watch`: the latest [`Board`] drawn on stderr
//! as ONE multi-line message, so every frame comes from one snapshot and is drawn whole.
//!
//! A helper thread owns the drawing. It redraws when it is handed a new board (at most one
//! frame per [`MIN_FRAME`]: boards handed in meanwhile are drawn together), and once per
//! [`TICK`] so a runtime can move; a frame whose text equals the one on screen is not sent at
//! all, so nothing is written while nothing changes. Lines are fitted to the terminal's width
//! at each frame (a resize is followed at the next tick).

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use indicatif::{ProgressBar, ProgressStyle};

use super::board::{self, Board, Look};
use super::{Palette, progress};

/// The shortest time between two frames.
pub const MIN_FRAME: Duration = Duration::from_millis(50);
/// How often the frame is rendered again without a new board (the runtime column).
pub const TICK: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Inbox {
    board: Option<Arc<Board>>,
    /// A board was handed in since the last frame.
    fresh: bool,
    /// `Some(keep)`: stop; keep the last frame on screen, or clear it.
    end: Option<bool>,
}

/// The live area; [`LiveArea::finish`] ends it (dropping it clears it).
pub struct LiveArea {
    inbox: Arc<(Mutex<Inbox>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl LiveArea {
    /// Shows the progress area on stderr and starts drawing (call only on a terminal).
    pub fn start(palette: Palette, unicode: bool) -> Self {
        progress::show();
        let inbox: Arc<(Mutex<Inbox>, Condvar)> = Arc::default();
        let bar = progress::area().add(
            ProgressBar::new(0)
                .with_style(ProgressStyle::with_template("{msg}").expect("the template is valid")),
        );
        let shared = inbox.clone();
        let thread = std::thread::Builder::new()
            .name("live-view".into())
            .spawn(move || draw_loop(&shared, &bar, palette, unicode))
            .ok();
        Self { inbox, thread }
    }

    /// Hands the area a new board; it is drawn within [`MIN_FRAME`] if it looks different.
    pub fn show(&self, board: Board) {
        let (lock, wake) = &*self.inbox;
        let mut inbox = lock
            .lock()
            .expect("the live view never panics holding its inbox");
        inbox.board = Some(Arc::new(board));
        inbox.fresh = true;
        wake.notify_one();
    }

    /// Ends the area: `keep` leaves the last board on screen (drawn up to date), otherwise the
    /// area is cleared and the cursor is where the area began.
    pub fn finish(mut self, keep: bool) {
        self.end(keep);
    }

    fn end(&mut self, keep: bool) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        {
            let (lock, wake) = &*self.inbox;
            let mut inbox = lock
                .lock()
                .expect("the live view never panics holding its inbox");
            inbox.end = Some(keep);
            wake.notify_one();
        }
        let _ = thread.join();
    }
}

impl Drop for LiveArea {
    fn drop(&mut self) {
        self.end(false);
    }
}

fn draw_loop(inbox: &(Mutex<Inbox>, Condvar), bar: &ProgressBar, palette: Palette, unicode: bool) {
    let (lock, wake) = inbox;
    let mut on_screen: Option<String> = None;
    let mut last_frame = Instant::now() - MIN_FRAME;
    loop {
        // Wait for a board, the end, or the tick.
        let (board, end) = {
            let mut guard = lock
                .lock()
                .expect("the live view never panics holding its inbox");
            if !guard.fresh && guard.end.is_none() {
                guard = wake
                    .wait_timeout_while(guard, TICK, |i| !i.fresh && i.end.is_none())
                    .expect("the live view never panics holding its inbox")
                    .0;
            }
            if guard.fresh && guard.end.is_none() {
                // Let a burst of boards settle into one frame.
                let pause = MIN_FRAME.saturating_sub(last_frame.elapsed());
                if !pause.is_zero() {
                    drop(guard);
                    std::thread::sleep(pause);
                    guard = lock
                        .lock()
                        .expect("the live view never panics holding its inbox");
                }
            }
            guard.fresh = false;
            (guard.board.clone(), guard.end)
        };
        if let Some(board) = board.as_ref().filter(|_| end != Some(false)) {
            let look = Look {
                palette,
                unicode,
                width: progress::area_width(),
            };
            let text = board::render(board, &look, SystemTime::now());
            if on_screen.as_deref() != Some(text.as_str()) {
                bar.set_message(text.clone());
                on_screen = Some(text);
                last_frame = Instant::now();
            }
        }
        match end {
            Some(true) => {
                bar.abandon();
                // The cursor rests after the last line's text (see `progress`): what follows
                // (the shell's prompt) starts on a line of its own.
                let _ = std::io::Write::write_all(&mut std::io::stderr(), b"\n");
                return;
            }
            Some(false) => {
                bar.finish_and_clear();
                progress::area().remove(bar);
                return;
            }
            None => {}
        }
    }
}
