//! `orchestrate task list / show / set`: Task Copilot's task operations for workers that cannot
//! speak MCP (any agent CLI, a shell script).

use serde_json::{Value, json};

use super::context::Context;
use crate::cli::{GlobalArgs, TaskCommand, TaskListArgs, TaskSetArgs, TaskShowArgs};
use crate::error::{Error, Result};
use crate::exit_codes;
use crate::graph::UnknownStreams;
use crate::taskdb::{Task, TaskSource, TaskStatus, TaskUpdate, set_task};
use crate::ui::{Ui, printable as p, printable_lines};

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
        // A name that matches no stream: the one error every command gives.
        let known: Vec<String> = db.snapshot()?.streams.into_iter().map(|s| s.id).collect();
        UnknownStreams::check(&[stream.to_string()], known.iter().map(String::as_str))?;
        return Err(Error::msg(format!(
            "stream `{stream}` has no tasks in {}",
            ctx.db.path.display()
        ))
        .with_code(exit_codes::NO_STREAMS));
    }
    if args.json {
        let doc: Vec<Value> = tasks.iter().map(task_json).collect();
        ui.print(&crate::ui::json(&doc));
        return Ok(exit_codes::OK);
    }
    // Every field is free text from the task database: escaped, which also keeps one task on
    // one line (agents parse this table by line, id first).
    let rows: Vec<[String; 4]> = tasks
        .iter()
        .map(|t| {
            [
                p(&t.id).into_owned(),
                t.status.as_str().to_string(),
                p(t.stream_id.as_deref().unwrap_or("")).into_owned(),
                p(&t.title).into_owned(),
            ]
        })
        .collect();
    let width = |i: usize, header: &str| {
        rows.iter()
            .map(|r| console::measure_text_width(&r[i]))
            .max()
            .unwrap_or(0)
            .max(header.len())
    };
    let (id_w, status_w, stream_w) = (width(0, "ID"), width(1, "STATUS"), width(2, "STREAM"));
    let pad = |text: &str, w: usize| {
        console::pad_str(text, w, console::Alignment::Left, None).into_owned()
    };
    let mut out = format!(
        "{}  {}  {}  TITLE\n",
        pad("ID", id_w),
        pad("STATUS", status_w),
        pad("STREAM", stream_w)
    );
    for [id, status, stream, title] in &rows {
        let line = format!(
            "{}  {}  {}  {title}",
            pad(id, id_w),
            pad(status, status_w),
            pad(stream, stream_w)
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    ui.print(&out);
    Ok(exit_codes::OK)
}

fn show(ctx: &Context, args: &TaskShowArgs, ui: &Ui) -> Result<i32> {
    let mut db = ctx.open_db()?;
    let task = db
        .task(&args.id)?
        .ok_or_else(|| no_such_task(ctx, &args.id))?;
    if args.json {
        ui.print(&crate::ui::json(&task_json(&task)));
        return Ok(exit_codes::OK);
    }
    // Free text from the task database, escaped; a description and notes keep their lines.
    let mut out = format!("{}  {}\n", p(&task.id), p(&task.title));
    let mut field = |name: &str, value: Option<&str>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            let v = printable_lines(v).replace('\n', &format!("\n{:>17}", ""));
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
        out.push_str(&format!("\n{}\n", printable_lines(desc)));
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
        p(&change.id),
        p(&change.from),
        change.to,
        p(&change.title)
    ));
    Ok(exit_codes::OK)
}
