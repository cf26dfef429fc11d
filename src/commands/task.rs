//! `orchestrate task list / show / set`: Task Copilot's task operations for workers that cannot
//! speak MCP (any agent CLI, a shell script).

use serde_json::{Value, json};

use super::context::Context;
use crate::cli::{GlobalArgs, TaskCommand, TaskListArgs, TaskSetArgs, TaskShowArgs};
use crate::error::{Error, Result};
use crate::exit_codes;
use crate::taskdb::{Task, TaskSource, TaskStatus, TaskUpdate, set_task};
use crate::ui::Ui;

pub fn run(global: &GlobalArgs, command: &TaskCommand, ui: &Ui) -> Result<i32> {
    let ctx = Context::new(global)?;
    match command {
        TaskCommand::List(args) => list(&ctx, args, ui),
        TaskCommand::Show(args) => show(&ctx, args, ui),
        TaskCommand::Set(args) => set(&ctx, args, ui),
    }
}

fn task_json(t: &Task) -> Value {
    json!({
        "id": t.id,
        "title": t.title,
        "status": t.status,
        "stream": t.stream_id,
        "description": t.description,
        "assigned_agent": t.assigned_agent,
        "blocked_reason": t.blocked_reason,
        "notes": t.notes,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "archived": t.archived,
        "metadata": t.metadata,
    })
}

fn list(ctx: &Context, args: &TaskListArgs, ui: &Ui) -> Result<i32> {
    let mut db = ctx.open_db()?;
    let stream = args.stream.as_deref().filter(|s| !s.is_empty());
    let tasks = db.tasks(stream)?;
    if tasks.is_empty() {
        let Some(stream) = stream else {
            return Err(ctx.no_streams_error());
        };
        let known: Vec<String> = db.snapshot()?.streams.into_iter().map(|s| s.id).collect();
        return Err(Error::msg(format!(
            "stream `{stream}` has no tasks in {}",
            ctx.db.path.display()
        ))
        .with_hint(format!("known streams: {}", known.join(", ")))
        .with_code(exit_codes::NO_STREAMS));
    }
    if args.json {
        let doc: Vec<Value> = tasks.iter().map(task_json).collect();
        ui.print(&serde_json::to_string_pretty(&doc).expect("JSON values serialise"));
        return Ok(exit_codes::OK);
    }
    let id_w = tasks.iter().map(|t| t.id.len()).max().unwrap_or(2);
    let stream_w = tasks
        .iter()
        .filter_map(|t| t.stream_id.as_ref())
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut out = format!(
        "{:id_w$}  {:11}  {:stream_w$}  TITLE\n",
        "ID", "STATUS", "STREAM"
    );
    for t in &tasks {
        // Stream ids are free text too: a newline in one must not split the row (agents
        // parse this table by line).
        let stream = one_line(t.stream_id.as_deref().unwrap_or(""));
        let line = format!(
            "{:id_w$}  {:11}  {stream:stream_w$}  {}",
            t.id,
            t.status.as_str(),
            one_line(&t.title)
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    ui.print(&out);
    Ok(exit_codes::OK)
}

/// Titles and stream ids are free text; keep one task on one line.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

fn show(ctx: &Context, args: &TaskShowArgs, ui: &Ui) -> Result<i32> {
    let mut db = ctx.open_db()?;
    let task = db
        .task(&args.id)?
        .ok_or_else(|| no_such_task(ctx, &args.id))?;
    if args.json {
        ui.print(&serde_json::to_string_pretty(&task_json(&task)).expect("JSON values serialise"));
        return Ok(exit_codes::OK);
    }
    let mut out = format!("{}  {}\n", task.id, task.title);
    let mut field = |name: &str, value: Option<&str>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            out.push_str(&format!("{name:>15}: {v}\n"));
        }
    };
    field("status", Some(task.status.as_str()));
    field("stream", task.stream_id.as_deref());
    field("assigned agent", task.assigned_agent.as_deref());
    field("blocked reason", task.blocked_reason.as_deref());
    field("updated", task.updated_at.as_deref());
    field("archived", task.archived.then_some("yes"));
    field("notes", task.notes.as_deref());
    if let Some(desc) = task.description.as_deref().filter(|d| !d.is_empty()) {
        out.push_str(&format!("\n{desc}\n"));
    }
    ui.print(&out);
    Ok(exit_codes::OK)
}

fn no_such_task(ctx: &Context, id: &str) -> Error {
    Error::msg(format!("no task `{id}` in {}", ctx.db.path.display()))
        .with_hint("`orchestrate task list` shows the task ids")
        .with_code(exit_codes::FAILURE)
}

fn set(ctx: &Context, args: &TaskSetArgs, ui: &Ui) -> Result<i32> {
    let status: TaskStatus = args
        .status
        .parse()
        .map_err(|e: crate::taskdb::UnknownStatus| {
            Error::msg(e.to_string()).with_code(exit_codes::USAGE)
        })?;
    let reason = args.reason.clone().filter(|r| !r.trim().is_empty());
    if status == TaskStatus::Blocked && reason.is_none() {
        return Err(Error::msg("a blocked task needs a reason")
            .with_hint(format!(
                "orchestrate task set {} blocked --reason \"what is needed\"",
                args.id
            ))
            .with_code(exit_codes::USAGE));
    }
    let update = TaskUpdate {
        status,
        notes: args.notes.clone(),
        blocked_reason: reason,
    };
    let change = set_task(&ctx.db.path, &args.id, &update)?;
    ui.print(&format!(
        "{}: {} → {} ({})",
        change.id,
        change.from,
        change.to,
        one_line(&change.title)
    ));
    Ok(exit_codes::OK)
}
