//! What most commands need first: the project, the database location, the graph.

use std::path::Path;

use crate::cli::GlobalArgs;
use crate::error::{Error, Result};
use crate::exit_codes;
use crate::graph::StreamGraph;
use crate::project::{DbLocation, Given, Project};
use crate::taskdb::{self, SourceWarning, TaskDb, TaskSource};

/// The project and the task database, resolved from the global flags and the environment.
pub struct Context {
    pub project: Project,
    pub db: DbLocation,
}

/// Every stream id the task database names, for checking names the user typed when the
/// command itself does not need the database (`stop`, `clean`, `logs`); empty when it cannot
/// be read.
pub fn known_streams(global: &GlobalArgs) -> Vec<String> {
    let Ok(ctx) = Context::new(global) else {
        return Vec::new();
    };
    ctx.open_db()
        .and_then(|mut db| Ok(db.snapshot()?))
        .map(|s| s.streams.into_iter().map(|s| s.id).collect())
        .unwrap_or_default()
}

impl Context {
    pub fn new(global: &GlobalArgs) -> Result<Self> {
        let project = Project::from_env(global.project.as_deref())?;
        let db = locate(global, &project)?;
        Ok(Self { project, db })
    }

    /// Opens the task database read-only (either store, told by its tables).
    pub fn open_db(&self) -> Result<TaskDb> {
        Ok(TaskDb::open(&self.db.path, &self.db.explain())?)
    }

    /// Reads a snapshot and builds the graph; no stream tasks at all is an error. The
    /// snapshot's records move into the graph: what is left of it is its warnings.
    pub fn load_graph(
        &self,
        db: &mut impl TaskSource,
    ) -> Result<(Vec<SourceWarning>, StreamGraph)> {
        let snapshot = db.snapshot()?;
        if snapshot.streams.is_empty() {
            return Err(self.no_streams_error());
        }
        let graph = StreamGraph::from_records(snapshot.streams)?;
        Ok((snapshot.warnings, graph))
    }

    pub fn no_streams_error(&self) -> Error {
        let store = taskdb::kind_of(&self.db.path)
            .map(|k| format!("the {} ", k.describe()))
            .unwrap_or_default();
        // Before `init` the guide is not in the project yet: say how to get it.
        let guide = self
            .project
            .orchestrator_dir()
            .join("ORCHESTRATION_GUIDE.md");
        let guide = if guide.is_file() {
            format!("see {}", guide.display())
        } else {
            "`orchestrate init` installs it as .claude/orchestrator/ORCHESTRATION_GUIDE.md, \
             which explains stream metadata"
                .to_string()
        };
        Error::msg(format!(
            "no stream tasks in {store}{} ({}): no task in scope has a stream \
             (`metadata.streamId`, or in a tc store a `stream_id`)",
            self.db.path.display(),
            self.db.explain()
        ))
        .with_hint(format!(
            "create tasks with `metadata.streamId` ({guide}; in a tc project `tc stream create` \
             and `tc task create --stream N --metadata …`), or point at another database with \
             `--db FILE` or WORKSPACE_ID"
        ))
        .with_code(exit_codes::NO_STREAMS)
    }
}

/// The "Which one" rules (`project::DbLocation::resolve`), with the process's environment and
/// `taskdb` answering whether a candidate holds stream tasks.
pub fn locate(global: &GlobalArgs, project: &Project) -> Result<DbLocation> {
    let cwd = std::env::current_dir().map_err(crate::project::ProjectError::CurrentDir)?;
    // clap folds ORCHESTRATE_DB into `--db`; tell them apart for `found_by`.
    let given = global.db.as_ref().map(|path| Given {
        path: path.clone(),
        from_env: !flag_on_command_line() && std::env::var_os("ORCHESTRATE_DB").is_some(),
    });
    let probe = |path: &Path| taskdb::holds_stream_tasks(path);
    Ok(DbLocation::resolve(
        given.as_ref(),
        project,
        &cwd,
        |key| std::env::var(key).ok(),
        &probe,
    )?)
}

/// Whether `--db` was written on the command line (rather than supplied by ORCHESTRATE_DB).
fn flag_on_command_line() -> bool {
    std::env::args_os().any(|a| {
        let a = a.to_string_lossy();
        a == "--db" || a.starts_with("--db=")
    })
}
