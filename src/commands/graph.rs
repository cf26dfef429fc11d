//! `orchestrate graph [--format text|mermaid|dot]`: the stream graph with the model's states
//! (the same facts and the same `derive` as `status`), before, during or after a run.

use super::context::Context;
use crate::cli::{GlobalArgs, GraphArgs, GraphFormat};
use crate::error::Result;
use crate::exit_codes;
use crate::facts;
use crate::ui::{self, Ui};

pub fn run(global: &GlobalArgs, args: &GraphArgs, ui: &Ui) -> Result<i32> {
    let ctx = Context::new(global)?;
    let mut db = ctx.open_db()?;
    let (warnings, graph) = ctx.load_graph(&mut db)?;
    for w in &warnings {
        ui.warn(&w.to_string());
    }
    let facts = facts::gather(&ctx.project, &graph, None)?;
    for w in &facts.warnings {
        ui.warn(w);
    }
    let model = facts.derive(&graph);
    ui.print(&match args.format {
        GraphFormat::Text => {
            ui::graph::render_text(&graph, &model, &ui.out, ui::report::terminal_width())
        }
        GraphFormat::Mermaid => ui::graph::render_mermaid(&graph, &model),
        GraphFormat::Dot => ui::graph::render_dot(&graph, &model),
    });
    Ok(exit_codes::OK)
}
