//! SIGINT and SIGTERM as one stream of "stop now" for the dispatcher. Workers are in their own
//! process groups, so a Ctrl-C at the terminal never reaches them: they keep running.

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
