//! `orchestrate stop [STREAM…] [--grace SECS]`: stops live workers (the engine is
//! `worker::stop::stop_streams`), records them stopped, and reports what it did.

use crate::cli::{GlobalArgs, StopArgs};
use crate::config::{Config, Overrides};
use crate::error::{Error, Result};
use crate::exit_codes;
use crate::graph::UnknownStreams;
use crate::project::Project;
use crate::state::StateStore;
use crate::ui::Ui;
use crate::worker::stop::stop_streams;
use crate::worker::terminate::Ended;

pub fn run(global: &GlobalArgs, args: &StopArgs, ui: &Ui) -> Result<i32> {
    let project = Project::from_env(global.project.as_deref())?;
    let mut config = Config::load(&project)?;
    config.apply(&Overrides {
        grace: args.grace,
        ..Overrides::default()
    })?;
    // Works without the task database and with a lost or corrupt state store: the store is
    // rebuilt from the supervisors alive in /proc.
    let Some(store) = StateStore::open_existing(&project.state_db())? else {
        if !args.streams.is_empty() {
            let known = super::context::known_streams(global);
            UnknownStreams::check(&args.streams, known.iter().map(String::as_str))?;
        }
        ui.print("nothing to stop: no worker was ever started in this project");
        return Ok(exit_codes::OK);
    };
    if let Some(aside) = store.recovered() {
        ui.warn(&format!(
            "the orchestrator state was corrupt; it was moved to {} and rebuilt from the running workers",
            aside.display()
        ));
    }
    if !args.streams.is_empty() {
        let mut known = super::context::known_streams(global);
        known.extend(store.latest_workers()?.into_iter().map(|w| w.stream));
        UnknownStreams::check(&args.streams, known.iter().map(String::as_str))?;
    }
    let wanted: Vec<String> = args.streams.iter().map(|s| s.trim().to_string()).collect();
    ui.info(&format!(
        "stopping (SIGTERM, then SIGKILL after {:.1}s)…",
        config.grace.as_secs_f64()
    ));
    let report = stop_streams(&store, &wanted, config.grace)?;
    ui.print(&crate::ui::stop::render(&report));
    if report.stopped.iter().any(|s| s.result == Ended::Lingering) {
        return Err(Error::msg("some worker processes survived SIGKILL")
            .with_hint("look for them with `ps -o pid,pgid,stat,cmd -g PGID`"));
    }
    Ok(exit_codes::OK)
}
