//! Every signal `orchestrate` listens for, in one place: SIGINT and SIGTERM as one stream of
//! "stop now" for the dispatcher ([`Signals`]), as a flag for the synchronous loops of
//! `status --watch` and `logs -f` ([`interrupt_flag`], [`interrupt_wake`]), and the
//! supervisor's outliving them ([`outlive_stop_signals`]). Workers are in their own process
//! groups, so a Ctrl-C at the terminal never reaches them: they keep running.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::error::{Error, Result};

pub struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn new() -> Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let err = |e| Error::msg(format!("cannot listen for signals: {e}"));
        Ok(Self {
            int: signal(SignalKind::interrupt()).map_err(err)?,
            term: signal(SignalKind::terminate()).map_err(err)?,
        })
    }

    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

/// A flag set by Ctrl-C or SIGTERM, for synchronous loops (`status --watch`, `logs -f`).
pub fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        // Registration only fails for forbidden signals, which these are not.
        let _ = signal_hook::flag::register(signal, flag.clone());
    }
    flag
}

/// Like [`interrupt_flag`], and also calls `wake` (from a helper thread, after the flag is
/// set) so that a loop blocked on a channel notices Ctrl-C at once.
pub fn interrupt_wake(wake: impl Fn() + Send + 'static) -> Arc<AtomicBool> {
    let flag = interrupt_flag();
    let seen = flag.clone();
    if let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        let _ = std::thread::Builder::new()
            .name("interrupt-wake".into())
            .spawn(move || {
                for _ in signals.forever() {
                    seen.store(true, Ordering::SeqCst);
                    wake();
                }
            });
    }
    flag
}

/// For the supervisor: SIGTERM, SIGINT and SIGHUP reach its whole group, and it must live on
/// to record its worker's end, so it only notes them. (SIGKILL, from `stop` after the grace,
/// still ends it.)
pub fn outlive_stop_signals() {
    for signal in [SIGTERM, SIGINT, SIGHUP] {
        let _ = signal_hook::flag::register(signal, Arc::default());
    }
}
