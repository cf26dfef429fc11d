//! What worktree mode remembers: each stream's slug, branch, worktree folder and the commit
//! its branch was created on, and the run's merge-back target with the commit every stream
//! without dependencies starts from (so the user moving HEAD mid-run changes no base).

use std::path::PathBuf;

use rusqlite::{OptionalExtension, params};

use super::time::now_rfc3339;
use super::{StateError, StateStore};

/// One stream's recorded worktree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorktreeRecord {
    pub stream: String,
    pub slug: String,
    pub branch: String,
    pub worktree: PathBuf,
    /// Hex commit id the branch was created on.
    pub base: Option<String>,
    pub created_at: String,
}

/// The run every `start` of this project continues until the user records a new one.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// The branch merge-back targets.
    pub target_branch: Option<String>,
    /// The target's commit when the run began (hex): the base of every stream without
    /// dependencies.
    pub base_commit: Option<String>,
    /// The run gives each stream its own worktree (`start --worktrees`).
    pub worktrees: bool,
    /// The verify command every stream's work must pass (a stream may set its own).
    pub verify: Option<String>,
    /// `--run-budget-usd`, and since when (RFC 3339) spending counts against it.
    pub budget_usd: Option<f64>,
    pub budget_since: Option<String>,
    /// `--strict-files`: streams claiming the same files run one after the other.
    pub strict_files: bool,
    pub recorded_at: String,
}

fn row_to_worktree(r: &rusqlite::Row<'_>) -> rusqlite::Result<WorktreeRecord> {
    Ok(WorktreeRecord {
        stream: r.get(0)?,
        slug: r.get(1)?,
        branch: r.get(2)?,
        worktree: PathBuf::from(r.get::<_, String>(3)?),
        base: r.get(4)?,
        created_at: r.get(5)?,
    })
}

impl StateStore {
    /// Records (or updates) a stream's worktree; `created_at` is kept from the first record,
    /// and so is the base when `r.base` is `None`.
    pub fn upsert_worktree(&self, r: &WorktreeRecord) -> Result<(), StateError> {
        self.conn
            .execute(
                "INSERT INTO worktrees (stream, slug, branch, worktree, base, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                 ON CONFLICT(stream) DO UPDATE SET slug = ?2, branch = ?3, worktree = ?4,
                    base = COALESCE(?5, base), updated_at = ?6",
                params![
                    r.stream,
                    r.slug,
                    r.branch,
                    r.worktree.to_string_lossy(),
                    r.base,
                    now_rfc3339()
                ],
            )
            .map_err(self.w())?;
        Ok(())
    }

    pub fn worktree(&self, stream: &str) -> Result<Option<WorktreeRecord>, StateError> {
        self.conn
            .query_row(
                "SELECT stream, slug, branch, worktree, base, created_at FROM worktrees
                 WHERE stream = ?1",
                [stream],
                row_to_worktree,
            )
            .optional()
            .map_err(self.q())
    }

    pub fn worktrees(&self) -> Result<Vec<WorktreeRecord>, StateError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT stream, slug, branch, worktree, base, created_at FROM worktrees
                 ORDER BY stream",
            )
            .map_err(self.q())?;
        let rows = stmt
            .query_map([], row_to_worktree)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
        rows.map_err(self.q())
    }

    pub fn forget_worktree(&self, stream: &str) -> Result<(), StateError> {
        self.conn
            .execute("DELETE FROM worktrees WHERE stream = ?1", [stream])
            .map_err(self.w())?;
        Ok(())
    }

    /// Records the run's target branch and base commit. Only fields given are changed.
    pub fn set_run(&self, target: Option<&str>, base: Option<&str>) -> Result<(), StateError> {
        self.conn
            .execute(
                "INSERT INTO run (id, target_branch, base_commit, recorded_at) VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET target_branch = COALESCE(?1, target_branch),
                    base_commit = COALESCE(?2, base_commit), recorded_at = ?3",
                params![target, base, now_rfc3339()],
            )
            .map_err(self.w())?;
        Ok(())
    }

    /// Records how this `start` runs streams (worktrees, the verify command, the budget and
    /// since when it counts), so that `status` from another shell judges streams the way that
    /// `start` does.
    pub fn set_run_mode(
        &self,
        worktrees: bool,
        verify: Option<&str>,
        budget_usd: Option<f64>,
        strict_files: bool,
    ) -> Result<(), StateError> {
        self.conn
            .execute(
                "INSERT INTO run (id, worktrees, verify, budget_usd, budget_since, recorded_at,
                                  strict_files)
                 VALUES (1, ?1, ?2, ?3, ?4, ?4, ?5)
                 ON CONFLICT(id) DO UPDATE SET worktrees = ?1, verify = ?2, budget_usd = ?3,
                    budget_since = ?4, strict_files = ?5",
                params![worktrees, verify, budget_usd, now_rfc3339(), strict_files],
            )
            .map_err(self.w())?;
        Ok(())
    }

    pub fn run(&self) -> Result<Option<RunRecord>, StateError> {
        self.conn
            .query_row(
                "SELECT target_branch, base_commit, worktrees, verify, budget_usd, budget_since,
                        recorded_at, strict_files FROM run WHERE id = 1",
                [],
                |r| {
                    Ok(RunRecord {
                        target_branch: r.get(0)?,
                        base_commit: r.get(1)?,
                        worktrees: r.get(2)?,
                        verify: r.get(3)?,
                        budget_usd: r.get(4)?,
                        budget_since: r.get(5)?,
                        recorded_at: r.get(6)?,
                        strict_files: r.get(7)?,
                    })
                },
            )
            .optional()
            .map_err(self.q())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worktrees_and_the_run_round_trip_and_keep_the_first_base() {
        let tmp = tempfile::tempdir().unwrap();
        let store = StateStore::open(&tmp.path().join("state.db")).unwrap();
        let mut r = WorktreeRecord {
            stream: "a b".into(),
            slug: "a-b-123".into(),
            branch: "stream/a-b-123".into(),
            worktree: tmp.path().join("wt"),
            base: Some("abc".into()),
            created_at: String::new(),
        };
        store.upsert_worktree(&r).unwrap();
        r.base = None;
        store.upsert_worktree(&r).unwrap();
        let got = store.worktree("a b").unwrap().unwrap();
        assert_eq!(got.base.as_deref(), Some("abc"));
        assert!(got.created_at.ends_with('Z'));
        assert_eq!(store.worktrees().unwrap().len(), 1);
        assert_eq!(store.run().unwrap(), None);
        store.set_run(Some("main"), Some("c0ffee")).unwrap();
        store.set_run(Some("dev"), None).unwrap();
        let run = store.run().unwrap().unwrap();
        assert_eq!(run.target_branch.as_deref(), Some("dev"));
        assert_eq!(run.base_commit.as_deref(), Some("c0ffee"));
        store.forget_worktree("a b").unwrap();
        assert!(store.worktree("a b").unwrap().is_none());
    }
}
