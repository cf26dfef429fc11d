//! What most commands need first: the project, the database location, the graph.

use crate::cli::GlobalArgs;
use crate::error::{Error, Result};
use crate::exit_codes;
use crate::graph::StreamGraph;
use crate::project::{DbLocation, Project};
use crate::taskdb::{Snapshot, SqliteTaskDb, TaskSource};

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
        let db = DbLocation::resolve(global.db.as_deref(), &project, |key| {
            std::env::var(key).ok()
        })?;
        Ok(Self { project, db })
    }

    /// Opens the task database read-only.
    pub fn open_db(&self) -> Result<SqliteTaskDb> {
        Ok(SqliteTaskDb::open(&self.db.path, &self.db.explain())?)
    }

    /// Reads a snapshot and builds the graph; no stream tasks at all is an error.
    pub fn load_graph(&self, db: &mut impl TaskSource) -> Result<(Snapshot, StreamGraph)> {
        let snapshot = db.snapshot()?;
        if snapshot.streams.is_empty() {
            return Err(self.no_streams_error());
        }
        let graph = StreamGraph::build(&snapshot)?;
        Ok((snapshot, graph))
    }

    pub fn no_streams_error(&self) -> Error {
        Error::msg(format!(
            "no stream tasks in {} ({}): no non-archived task has `metadata.streamId`",
            self.db.path.display(),
            self.db.explain()
        ))
        .with_hint(
            "create tasks with `metadata.streamId` (see ORCHESTRATION_GUIDE.md), or point at another \
             database with `--db FILE` or WORKSPACE_ID",
        )
        .with_code(exit_codes::NO_STREAMS)
    }
}
