//! What the worktree code remembers, in the orchestrator state store (`Project::state_db()`),
//! in tables of its own (`git_streams`, `git_run`) so it never collides with `state/`'s tables.
//!
//! Per stream: the id → slug mapping, branch, worktree path, base commit, when it was created.
//! Per project: the merge-back target branch (what the project root had checked out when
//! `start` ran, or `Config::target_branch`). Short transactions with a busy timeout: the
//! scheduler and other shells use the same file.

use std::path::PathBuf;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::error::{GitError, Result};
use crate::project::Project;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS git_streams (
    stream     TEXT PRIMARY KEY,
    slug       TEXT NOT NULL,
    branch     TEXT NOT NULL,
    worktree   TEXT NOT NULL,
    base       TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS git_run (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    target_branch TEXT NOT NULL,
    recorded_at   TEXT NOT NULL
);
";

const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// One stream's recorded worktree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    pub stream: String,
    pub slug: String,
    pub branch: String,
    pub worktree: PathBuf,
    /// Hex commit id the branch was created on.
    pub base: Option<String>,
    pub created_at: String,
}

/// A connection to the state store with our tables present.
pub struct Records {
    conn: Connection,
    path: PathBuf,
}

impl Records {
    /// Opens (creating the file and folder if needed) the project's state store.
    pub fn open(project: &Project) -> Result<Self> {
        let path = project.state_db();
        // Private (0600 in 0700) before SQLite creates it 0644: it holds the worker command.
        crate::private_files::prepare_db(&path).map_err(GitError::io("create", &path))?;
        let err = |path: &PathBuf| {
            let path = path.clone();
            move |source| GitError::Records { path, source }
        };
        let conn = Connection::open(&path).map_err(err(&path))?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(err(&path))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err(&path))?;
        conn.execute_batch(SCHEMA).map_err(err(&path))?;
        Ok(Self { conn, path })
    }

    /// Opens the store only if it exists (read paths must not create files).
    pub fn open_existing(project: &Project) -> Result<Option<Self>> {
        if project.state_db().exists() {
            Self::open(project).map(Some)
        } else {
            Ok(None)
        }
    }

    fn err(&self) -> impl FnOnce(rusqlite::Error) -> GitError + '_ {
        move |source| GitError::Records {
            path: self.path.clone(),
            source,
        }
    }

    /// Records (or updates) a stream's worktree; `created_at` is kept from the first record.
    pub fn upsert_stream(&self, r: &StreamRecord) -> Result<()> {
        self.conn
            .execute(
                &format!(
                    "INSERT INTO git_streams (stream, slug, branch, worktree, base, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, {NOW}, {NOW})
                     ON CONFLICT(stream) DO UPDATE SET slug = ?2, branch = ?3, worktree = ?4,
                        base = COALESCE(?5, base), updated_at = {NOW}"
                ),
                params![
                    r.stream,
                    r.slug,
                    r.branch,
                    r.worktree.to_string_lossy(),
                    r.base
                ],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    pub fn stream(&self, stream: &str) -> Result<Option<StreamRecord>> {
        self.conn
            .query_row(
                "SELECT stream, slug, branch, worktree, base, created_at FROM git_streams
                 WHERE stream = ?1",
                [stream],
                row_to_record,
            )
            .optional()
            .map_err(self.err())
    }

    pub fn streams(&self) -> Result<Vec<StreamRecord>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT stream, slug, branch, worktree, base, created_at FROM git_streams
                 ORDER BY stream",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], row_to_record)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
        rows.map_err(self.err())
    }

    pub fn forget_stream(&self, stream: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM git_streams WHERE stream = ?1", [stream])
            .map(|_| ())
            .map_err(self.err())
    }

    pub fn set_target(&self, branch: &str) -> Result<()> {
        self.conn
            .execute(
                &format!(
                    "INSERT INTO git_run (id, target_branch, recorded_at) VALUES (1, ?1, {NOW})
                     ON CONFLICT(id) DO UPDATE SET target_branch = ?1, recorded_at = {NOW}"
                ),
                [branch],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    pub fn target(&self) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT target_branch FROM git_run WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.err())
    }
}

fn row_to_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<StreamRecord> {
    Ok(StreamRecord {
        stream: r.get(0)?,
        slug: r.get(1)?,
        branch: r.get(2)?,
        worktree: PathBuf::from(r.get::<_, String>(3)?),
        base: r.get(4)?,
        created_at: r.get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_keep_the_first_base() {
        let tmp = tempfile::tempdir().unwrap();
        let project = Project {
            root: tmp.path().to_path_buf(),
        };
        let rec = Records::open(&project).unwrap();
        let mut r = StreamRecord {
            stream: "a b".into(),
            slug: "a-b-123".into(),
            branch: "stream/a-b-123".into(),
            worktree: tmp.path().join("wt"),
            base: Some("abc".into()),
            created_at: String::new(),
        };
        rec.upsert_stream(&r).unwrap();
        r.base = None;
        rec.upsert_stream(&r).unwrap();
        let got = rec.stream("a b").unwrap().unwrap();
        assert_eq!(got.base.as_deref(), Some("abc"));
        assert!(got.created_at.ends_with('Z'));
        assert_eq!(rec.streams().unwrap().len(), 1);
        assert_eq!(rec.target().unwrap(), None);
        rec.set_target("main").unwrap();
        rec.set_target("dev").unwrap();
        assert_eq!(rec.target().unwrap().as_deref(), Some("dev"));
        rec.forget_stream("a b").unwrap();
        assert!(rec.stream("a b").unwrap().is_none());
    }
}
