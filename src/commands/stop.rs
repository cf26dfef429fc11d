//! `orchestrate stop [STREAM…] [--grace SECS]`: stops live workers by process group, records
//! the outcome, and cleans stale records without signalling anything.

use crate::cli::{GlobalArgs, StopArgs};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::exit_codes;
use crate::project::Project;
use crate::state::{StateStore, StreamOutcome};
use crate::ui::Ui;
use crate::worker::stop::{StopResult, end_marked, stop_groups};

pub fn run(global: &GlobalArgs, args: &StopArgs, ui: &Ui) -> Result<i32> {
    let project = Project::from_env(global.project.as_deref())?;
    let grace = match args.grace {
        Some(grace) => grace,
        None => Config::load(&project)?.grace,
    };
    let Some(store) = StateStore::open_existing(&project.state_db())? else {
        ui.print("nothing to stop: no worker was ever started in this project");
        return Ok(exit_codes::OK);
    };
    let wanted = |stream: &str| args.streams.is_empty() || args.streams.iter().any(|s| s == stream);
    let rows: Vec<_> = store
        .open_workers()?
        .into_iter()
        .filter(|r| wanted(&r.stream))
        .collect();

    let mut live = Vec::new();
    for rec in rows {
        match &rec.identity {
            _ if !rec.is_live() => {
                store.mark_lost(rec.id)?;
                let pid = rec
                    .pgid()
                    .map(|p| format!("pid {p}"))
                    .unwrap_or("no pid".into());
                ui.print(&format!(
                    "{}: stale record ({pid} is gone or is another process now); cleaned, nothing signalled",
                    rec.stream
                ));
                // Its supervisor is gone, but descendants carrying its marker may not be
                // (the supervisor was SIGKILLed before it could clear them).
                if let Some(identity) = &rec.identity {
                    let ended = end_marked(identity, grace);
                    if ended > 0 {
                        ui.print(&format!(
                            "{}: ended {ended} leftover process{} of that worker (found by its marker)",
                            rec.stream,
                            if ended == 1 { "" } else { "es" }
                        ));
                    }
                }
            }
            None => ui.warn(&format!(
                "{}: its worker is being launched right now; run `orchestrate stop {}` again",
                rec.stream, rec.stream
            )),
            Some(_) => live.push(rec),
        }
    }
    for s in &args.streams {
        if !live.iter().any(|r| &r.stream == s) {
            ui.info(&format!("{s}: no live worker"));
        }
    }
    if live.is_empty() {
        ui.print("no live workers to stop");
        return Ok(exit_codes::OK);
    }
    // Record the verdict first, so a running `start` that sees the exit does not retry.
    for rec in &live {
        store.set_outcome(&rec.stream, Some(&StreamOutcome::Stopped))?;
    }
    ui.info(&format!(
        "stopping {} worker{} (SIGTERM, then SIGKILL after {:.1}s)…",
        live.len(),
        if live.len() == 1 { "" } else { "s" },
        grace.as_secs_f64()
    ));
    let leaders: Vec<_> = live.iter().filter_map(|r| r.identity.clone()).collect();
    let results = stop_groups(&leaders, grace);
    let mut lingering = false;
    for (rec, result) in live.iter().zip(results) {
        store.mark_stopped(rec.id)?;
        let pid = rec.pgid().unwrap_or(0);
        let how = match result {
            StopResult::Terminated => "",
            StopResult::Killed => " with SIGKILL after the grace period",
            StopResult::NotAlive => " (it had already ended)",
            StopResult::Lingering => {
                lingering = true;
                " but some of its processes are still alive"
            }
        };
        ui.print(&format!("stopped {} (pid {pid}){how}", rec.stream));
    }
    if lingering {
        return Err(Error::msg("some worker processes survived SIGKILL")
            .with_hint("look for them with `ps -o pid,pgid,stat,cmd -g PGID`"));
    }
    Ok(exit_codes::OK)
}
