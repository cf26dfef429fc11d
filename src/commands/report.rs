//! `orchestrate report [--run N] [--html FILE] [--json]`: a recorded run's timeline. Reads the
//! state store only, so it works after the task database is gone.

use crate::cli::{GlobalArgs, ReportArgs};
use crate::error::{Error, Result};
use crate::exit_codes;
use crate::project::Project;
use crate::state::StateStore;
use crate::timeline::{self, Entry, Stamped};
use crate::ui::{self, Ui};

pub fn run(global: &GlobalArgs, args: &ReportArgs, ui: &Ui) -> Result<i32> {
    let project = Project::from_env(global.project.as_deref())?;
    let no_runs = || {
        Error::msg(format!(
            "no run is recorded in {}",
            project.state_db().display()
        ))
        .with_hint("`orchestrate start` records each run; then `orchestrate report` shows it")
    };
    let Some(store) = StateStore::open_existing(&project.state_db())? else {
        return Err(no_runs());
    };
    let Some(run) = store.run_row(args.run)? else {
        return Err(match args.run {
            None => no_runs(),
            Some(n) => {
                let ids: Vec<String> = store.runs()?.iter().map(|r| r.id.to_string()).collect();
                Error::msg(format!("there is no run {n}"))
                    .with_hint(if ids.is_empty() {
                        "no run is recorded yet: `orchestrate start` records one".to_string()
                    } else {
                        format!("recorded runs: {}", ids.join(", "))
                    })
                    .with_code(exit_codes::USAGE)
            }
        });
    };
    let mut events = Vec::new();
    for row in store.run_events(run.id)? {
        // A row this version cannot read at all is skipped like an unknown kind.
        let entry = serde_json::from_str(&row.body).unwrap_or(Entry::Unknown);
        events.push(Stamped {
            version: timeline::FORMAT_VERSION,
            time: row.at,
            entry,
        });
    }
    let now = jiff::Timestamp::now().as_millisecond();
    let t = timeline::build(&run, &events, now);
    if let Some(path) = &args.html {
        std::fs::write(path, ui::report_html::render(&t)).map_err(|e| {
            Error::msg(format!("cannot write {}: {e}", path.display()))
                .with_hint("choose a file in a folder you can write to")
        })?;
        ui.info(&format!("wrote {}", path.display()));
    }
    if args.json {
        ui.print(&ui::report::render_json(&t));
    } else if args.html.is_none() {
        ui.print(&ui::report::render_text(
            &t,
            &ui.out,
            ui::report::terminal_width(),
        ));
    }
    Ok(exit_codes::OK)
}
