//! [`Repo`]: a `git2::Repository` whose every operation returns a named [`GitError`] carrying
//! the path or branch involved (the shape of git-branchless's `repo.rs`).

use std::path::{Path, PathBuf};

use git2::{BranchType, Commit, Oid, Repository, Signature, StatusOptions};

use super::error::{GitError, Result};

pub struct Repo {
    pub inner: Repository,
    /// The work tree root (or the git dir of a bare repository), without trailing slash.
    pub path: PathBuf,
}

/// A file that is not as committed: modified, staged, untracked, or conflicted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirtyFile {
    pub path: String,
    pub untracked: bool,
}

impl Repo {
    pub fn open(path: &Path) -> Result<Self> {
        let inner = Repository::open(path).map_err(|source| GitError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let path = inner
            .workdir()
            .map(|w| PathBuf::from(w.to_string_lossy().trim_end_matches('/')))
            .unwrap_or_else(|| path.to_path_buf());
        Ok(Self { inner, path })
    }

    /// A handle on the repository at `path` whose new objects go to memory, never to `.git`:
    /// for previews and probes that must leave no trace. (The in-memory backend belongs to
    /// the handle's object database and lives as long as the handle.)
    pub fn open_in_memory(path: &Path) -> Result<Self> {
        let repo = Self::open(path)?;
        let err = |source| GitError::Open {
            path: repo.path.clone(),
            source,
        };
        let odb = repo.inner.odb().map_err(err)?;
        odb.add_new_mempack_backend(1000).map_err(err)?;
        drop(odb);
        Ok(repo)
    }

    /// HEAD's commit.
    pub fn head_commit(&self) -> Result<Commit<'_>> {
        self.inner
            .head()
            .and_then(|h| h.peel_to_commit())
            .map_err(|source| GitError::Head {
                path: self.path.clone(),
                source,
            })
    }

    /// The short name of the checked-out branch, `None` when HEAD is detached or unborn.
    pub fn current_branch(&self) -> Option<String> {
        let head = self.inner.head().ok()?;
        if !head.is_branch() {
            return None;
        }
        head.shorthand().ok().map(str::to_string)
    }

    /// The tip of local branch `branch`, `None` if it does not exist.
    pub fn branch_tip(&self, branch: &str) -> Result<Option<Oid>> {
        match self.inner.find_branch(branch, BranchType::Local) {
            Ok(b) => b
                .get()
                .peel_to_commit()
                .map(|c| Some(c.id()))
                .map_err(|source| GitError::ReadBranch {
                    branch: branch.into(),
                    source,
                }),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(source) => Err(GitError::ReadBranch {
                branch: branch.into(),
                source,
            }),
        }
    }

    /// The tip of `branch`, which must exist.
    pub fn require_tip(&self, branch: &str) -> Result<Oid> {
        self.branch_tip(branch)?
            .ok_or_else(|| GitError::MissingBranch {
                branch: branch.into(),
            })
    }

    pub fn commit(&self, oid: Oid) -> Result<Commit<'_>> {
        self.inner
            .find_commit(oid)
            .map_err(|source| GitError::ReadBranch {
                branch: oid.to_string(),
                source,
            })
    }

    pub fn create_branch(&self, branch: &str, at: Oid) -> Result<()> {
        let commit = self.commit(at)?;
        self.inner
            .branch(branch, &commit, false)
            .map(|_| ())
            .map_err(|source| GitError::CreateBranch {
                branch: branch.into(),
                source,
            })
    }

    pub fn delete_branch(&self, branch: &str) -> Result<()> {
        self.inner
            .find_branch(branch, BranchType::Local)
            .and_then(|mut b| b.delete())
            .map_err(|source| GitError::DeleteBranch {
                branch: branch.into(),
                source,
            })
    }

    /// Whether `ancestor` is `commit` or one of its ancestors.
    pub fn contains(&self, commit: Oid, ancestor: Oid) -> Result<bool> {
        if commit == ancestor {
            return Ok(true);
        }
        self.inner
            .graph_descendant_of(commit, ancestor)
            .map_err(|source| GitError::Compare {
                from: ancestor.to_string(),
                to: commit.to_string(),
                source,
            })
    }

    /// Commits reachable from `tip` but not from `base` (`git rev-list --count base..tip`).
    pub fn commits_ahead(&self, base: Oid, tip: Oid) -> Result<usize> {
        self.inner
            .graph_ahead_behind(tip, base)
            .map(|(ahead, _)| ahead)
            .map_err(|source| GitError::Compare {
                from: base.to_string(),
                to: tip.to_string(),
                source,
            })
    }

    /// Files that differ from HEAD in the index or work tree, and untracked files (not ignored).
    pub fn dirty_files(&self) -> Result<Vec<DirtyFile>> {
        let mut opts = StatusOptions::new();
        opts.include_untracked(true)
            .recurse_untracked_dirs(false)
            .include_ignored(false)
            .exclude_submodules(true);
        let statuses = self
            .inner
            .statuses(Some(&mut opts))
            .map_err(|source| GitError::Status {
                path: self.path.clone(),
                source,
            })?;
        Ok(statuses
            .iter()
            .filter(|s| !s.status().is_ignored() && s.status() != git2::Status::CURRENT)
            .map(|s| DirtyFile {
                path: String::from_utf8_lossy(s.path_bytes()).into_owned(),
                // Only a file git does not track at all: one deleted from the index and
                // still in the folder (or staged for deletion) is a tracked change.
                untracked: s.status() == git2::Status::WT_NEW,
            })
            .collect())
    }

    /// The identity for commits `orchestrate` makes: the usual git environment variables, else
    /// the repository's `user.*` config, else a fixed `orchestrate` identity (CI may have none).
    pub fn signature(&self) -> Signature<'static> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        if let (Some(name), Some(email)) = (env("GIT_AUTHOR_NAME"), env("GIT_AUTHOR_EMAIL"))
            && let Ok(sig) = Signature::now(&name, &email)
        {
            return sig;
        }
        if let Ok(sig) = self.inner.signature() {
            return sig.to_owned();
        }
        Signature::now("orchestrate", "orchestrate@localhost").expect("a valid fixed signature")
    }
}

/// The paths with conflicts in a merge index, sorted and deduplicated.
pub fn conflict_paths(index: &git2::Index) -> Vec<String> {
    let mut paths: Vec<String> = index
        .conflicts()
        .map(|conflicts| {
            conflicts
                .filter_map(|c| c.ok())
                .filter_map(|c| c.our.or(c.their).or(c.ancestor))
                .map(|e| String::from_utf8_lossy(&e.path).into_owned())
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    paths.dedup();
    paths
}

/// Short hex of a commit for messages.
pub fn short(oid: Oid) -> String {
    oid.to_string()[..10].to_string()
}
