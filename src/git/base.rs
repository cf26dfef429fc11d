//! The commit a stream's new branch starts from, resolved when the stream starts:
//! no dependencies → the project's HEAD; one → that dependency's branch tip; several → a merge
//! of their tips made in memory and committed (the commit is only referenced by the new branch).
//! A conflicting merge yields the conflicting paths and no commit.

use git2::Oid;

use super::error::{GitError, Result};
use super::repo::{Repo, conflict_paths};
use crate::graph::Stream;
use crate::names::StreamNames;

/// Where a stream's dependencies' work is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    Commit {
        oid: Oid,
        /// How it was chosen, for the user ("HEAD of main", "tip of stream/A", "merge of …").
        how: String,
    },
    /// Merging the dependency branches conflicts in these paths.
    Conflict {
        branches: Vec<String>,
        paths: Vec<String>,
        /// The tips the merge was tried on (hex), in dependency order.
        tips: Vec<String>,
    },
}

/// The tips of `stream`'s dependencies: `(branch, tip)`. A dependency without a branch (the
/// `main` stream, or one that ran in the shared checkout) contributes the project's HEAD.
pub fn dependency_tips(repo: &Repo, stream: &Stream) -> Result<Vec<(String, Oid)>> {
    let mut tips = Vec::new();
    for dep in &stream.dependencies {
        let branch = StreamNames::new(dep).branch();
        match repo.branch_tip(&branch)? {
            Some(tip) => tips.push((branch, tip)),
            None => {
                let head = repo.head_commit()?.id();
                tips.push(("HEAD".to_string(), head));
            }
        }
    }
    Ok(tips)
}

/// Resolves the base for a stream whose branch does not exist yet.
pub fn resolve(repo: &Repo, stream: &Stream) -> Result<Base> {
    let tips = dependency_tips(repo, stream)?;
    match tips.as_slice() {
        [] => {
            let head = repo.head_commit()?.id();
            let on = repo.current_branch().unwrap_or_else(|| "HEAD".into());
            Ok(Base::Commit {
                oid: head,
                how: format!("HEAD of {on}"),
            })
        }
        [(branch, tip)] => Ok(Base::Commit {
            oid: *tip,
            how: format!("tip of {branch}"),
        }),
        many => merge_tips(repo, stream.id(), many),
    }
}

/// Merges the tips one by one; each merge is a real commit object, referenced only by the
/// stream's branch once the caller creates it.
fn merge_tips(repo: &Repo, stream: &str, tips: &[(String, Oid)]) -> Result<Base> {
    let branches: Vec<String> = tips.iter().map(|(b, _)| b.clone()).collect();
    let (first_branch, mut current) = tips[0].clone();
    let mut merged = vec![first_branch];
    for (branch, tip) in &tips[1..] {
        merged.push(branch.clone());
        if repo.contains(current, *tip)? {
            continue;
        }
        if repo.contains(*tip, current)? {
            current = *tip;
            continue;
        }
        let ours = repo.commit(current)?;
        let theirs = repo.commit(*tip)?;
        let merge_err = |source| GitError::Merge {
            ours: merged[..merged.len() - 1].join(" + "),
            theirs: branch.clone(),
            source,
        };
        let mut index = repo
            .inner
            .merge_commits(&ours, &theirs, None)
            .map_err(merge_err)?;
        if index.has_conflicts() {
            return Ok(Base::Conflict {
                branches,
                paths: conflict_paths(&index),
                tips: tips.iter().map(|(_, t)| t.to_string()).collect(),
            });
        }
        let tree_id = index.write_tree_to(&repo.inner).map_err(merge_err)?;
        let tree = repo.inner.find_tree(tree_id).map_err(merge_err)?;
        let sig = repo.signature();
        let message = format!(
            "orchestrate: base of stream {stream}: merge {}\n\nMade by orchestrate so that {stream} starts from all of its dependencies' work.\n",
            merged.join(", ")
        );
        current = repo
            .inner
            .commit(None, &sig, &sig, &message, &tree, &[&ours, &theirs])
            .map_err(|source| GitError::Commit {
                branch: StreamNames::new(stream).branch(),
                source,
            })?;
    }
    Ok(Base::Commit {
        oid: current,
        how: format!("merge of {}", branches.join(", ")),
    })
}

/// Resolves the base in memory (nothing is written to `.git`) and returns the conflict, if
/// merging the dependencies' branches conflicts.
pub fn probe(repo: &Repo, stream: &Stream) -> Result<Option<Base>> {
    let repo = Repo::open_in_memory(&repo.path)?;
    Ok(match resolve(&repo, stream)? {
        conflict @ Base::Conflict { .. } => Some(conflict),
        Base::Commit { .. } => None,
    })
}

/// Dependency branches whose current tip the (reused) branch `tip` does not contain.
pub fn missing_dependency_tips(repo: &Repo, stream: &Stream, tip: Oid) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    for (branch, dep_tip) in dependency_tips(repo, stream)? {
        if !repo.contains(tip, dep_tip)? {
            missing.push(branch);
        }
    }
    Ok(missing)
}
