//! The task database checks: found and readable, its schema, writable by workers, a tc
//! store's CLI and stale copies, the stream metadata and the dependency graph.

use std::path::Path;
use std::time::Duration;

use super::{Check, fail, from_error, ok, warn};
use crate::cmdline;
use crate::error::Error;
use crate::graph::StreamGraph;
use crate::project::{DbLocation, Project};
use crate::taskdb::{Snapshot, StoreKind, TaskDb, TaskDbError, TaskSource};

/// How long `tc version` may take before the `tc` on PATH is taken for another program.
const TC_ANSWER: Duration = Duration::from_secs(5);

pub(super) fn check_database(
    project: &Project,
    locate: &dyn Fn(&Project) -> Result<DbLocation, Error>,
) -> Vec<Check> {
    let location = match locate(project) {
        Ok(location) => location,
        Err(e) => return vec![from_error("task database", e)],
    };
    let path = location.path.display().to_string();
    let how = location.explain();
    // The same open as every other command, so doctor and `status` agree on what is wrong.
    let mut db = match TaskDb::open(&location.path, &how) {
        Ok(db) => db,
        Err(e @ TaskDbError::Missing { .. }) => return vec![from_error("task database", e.into())],
        Err(e) => {
            return vec![
                ok("task database", format!("{path} ({how})")),
                from_error("schema", e.into()),
            ];
        }
    };
    let kind = db.kind();
    let mut checks = vec![
        ok(
            "task database",
            format!("{}: {path} ({how})", kind.describe()),
        ),
        ok(
            "schema",
            match kind {
                StoreKind::Legacy => "table `tasks` has the columns orchestrate reads",
                StoreKind::Tc => {
                    "tables prds, streams, tasks, task_dependencies and agent_log have the \
                     columns orchestrate reads and writes"
                }
            },
        ),
    ];
    checks.extend(check_db_writes(&location.path));
    if kind == StoreKind::Tc {
        checks.extend(check_tc_store(project, &location.path));
    }
    let snapshot = match db.snapshot() {
        Ok(s) => s,
        Err(e) => {
            checks.push(from_error("stream metadata", e.into()));
            return checks;
        }
    };
    checks.extend(check_streams(&snapshot));
    checks
}

/// A tc store: the `tc` CLI on PATH, and no stale copy of `.copilot/` in each worktree.
fn check_tc_store(project: &Project, db: &Path) -> Vec<Check> {
    let fix = "install Task Copilot's CLI (`tc`), or let workers use `orchestrate task set` \
               (their prompt says so)";
    let mut checks = vec![match cmdline::find_program("tc", &project.root) {
        None => warn(
            "tc CLI",
            "`tc` is not on PATH: workers cannot run `tc task update`",
            fix,
        ),
        Some(path) => match tc_version(&path) {
            Some(version) => ok("tc CLI", format!("{version} at {}", path.display())),
            // Linux's iproute2 ships a `tc` (traffic control) too.
            None => warn(
                "tc CLI",
                format!(
                    "the `tc` on PATH, {}, is not Task Copilot's CLI (`tc version` does not \
                     say `tc version …`; iproute2's traffic-control tool has that name too)",
                    path.display()
                ),
                fix,
            ),
        },
    }];
    let Some(holder) = db.parent().and_then(Path::parent) else {
        return checks;
    };
    let mut copies = Vec::new();
    if copilot_tracked(holder) {
        copies.push("`.copilot/` is tracked by git".to_string());
    }
    if worktree_include_lists_copilot(holder) {
        copies.push("`.worktreeinclude` lists `.copilot/`".to_string());
    }
    if !copies.is_empty() {
        checks.push(warn(
            "tc store copies",
            format!(
                "{}: every stream worktree gets its own stale copy of the task database, \
                 and `tc` run by a worker there reads and writes that copy",
                copies.join(" and ")
            ),
            "untrack it (`git rm -r --cached .copilot` and add `.copilot/` to .gitignore) and \
             remove it from .worktreeinclude",
        ));
    }
    checks
}

/// `tc version 1.3.0` if `program` is Task Copilot's CLI; `None` for another program of that
/// name, or one that does not answer within a few seconds.
fn tc_version(program: &Path) -> Option<String> {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(program)
        .arg("version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    if !crate::worker::terminate::wait_child(&child, TC_ANSWER) {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    }
    let mut text = String::new();
    child.stdout.take()?.read_to_string(&mut text).ok()?;
    let status = child.wait().ok()?;
    let text = text.trim().to_string();
    (status.success() && text.starts_with("tc version ")).then_some(text)
}

/// Whether git tracks anything under `<holder>/.copilot`.
fn copilot_tracked(holder: &Path) -> bool {
    crate::git::info::tracks_under(holder, ".copilot")
}

/// Whether `<holder>/.worktreeinclude` (gitignore syntax) matches `.copilot/tasks.db`.
fn worktree_include_lists_copilot(holder: &Path) -> bool {
    let file = holder.join(".worktreeinclude");
    if !file.exists() {
        return false;
    }
    let mut builder = ignore::gitignore::GitignoreBuilder::new(holder);
    if builder.add(&file).is_some() {
        return false;
    }
    builder.build().is_ok_and(|include| {
        include
            .matched_path_or_any_parents(crate::project::TC_DB, false)
            .is_ignore()
    })
}

fn check_streams(snapshot: &Snapshot) -> Vec<Check> {
    let mut checks = Vec::new();
    if snapshot.streams.is_empty() {
        checks.push(fail(
            "stream metadata",
            "no non-archived task has `metadata.streamId`",
            "give tasks stream metadata (see .claude/orchestrator/ORCHESTRATION_GUIDE.md)",
        ));
        return checks;
    }
    let tasks: u32 = snapshot.streams.iter().map(|s| s.counts.total).sum();
    checks.push(ok(
        "stream metadata",
        format!("{} streams, {tasks} tasks", snapshot.streams.len()),
    ));
    if !snapshot.warnings.is_empty() {
        let list: Vec<String> = snapshot.warnings.iter().map(ToString::to_string).collect();
        checks.push(warn(
            "task metadata",
            list.join("; "),
            "fix the JSON in those tasks' `metadata`; they are ignored until then",
        ));
    }
    checks.push(match StreamGraph::build(snapshot) {
        Ok(graph) => ok(
            "dependencies",
            format!(
                "no cycles, every dependency known; {} level(s)",
                graph.max_depth().map_or(0, |d| d + 1)
            ),
        ),
        Err(e) => from_error("dependencies", e.into()),
    });
    checks
}

/// Workers mark their tasks in the task database (`orchestrate task set`, Task Copilot): a
/// file or folder they cannot write means no task is ever marked done.
fn check_db_writes(db: &Path) -> Option<Check> {
    use nix::unistd::{AccessFlags, access};
    let folder = db.parent().unwrap_or(Path::new("."));
    let blocked = if access(db, AccessFlags::W_OK).is_err() {
        db
    } else if access(folder, AccessFlags::W_OK).is_err() {
        // SQLite creates its journal or WAL files beside the database.
        folder
    } else {
        return None;
    };
    Some(fail(
        "database writes",
        format!(
            "{} is read-only: workers cannot mark tasks done (`orchestrate task set` and Task \
             Copilot write to it)",
            blocked.display()
        ),
        format!(
            "make {} writable by you (or move the database off a read-only mount)",
            blocked.display()
        ),
    ))
}
