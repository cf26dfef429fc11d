//! Commits that would become unreachable (promise 3 of PRODUCT.md), and the refs that keep
//! them: removing a worktree drops its HEAD and HEAD reflog, deleting a branch drops its
//! reflog; a commit that only those still reach, and no ref that stays, is *stranded*.
//! `clean` refuses to strand a commit, and with `--force` keeps each one under
//! `refs/orchestrate/rescued/<slug>/<time>-<n>` before removing anything.

use std::collections::BTreeSet;

use git2::Oid;
use serde::Serialize;

use super::error::{GitError, Result};
use super::repo::Repo;
use super::worktree::WorktreeInfo;

/// Where rescued commits are kept.
pub const PREFIX: &str = "refs/orchestrate/rescued/";

/// A ref made to keep a commit reachable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rescue {
    pub refname: String,
    pub commit: String,
}

/// Commits that only `wt` (its HEAD and HEAD reflog) and `branch` (its tip and reflog) reach,
/// among those the removal would drop: reachable from no ref that survives. Minimal: a commit
/// that another stranded one contains is left out.
pub fn stranded(repo: &Repo, wt: Option<&WorktreeInfo>, branch: Option<&str>) -> Result<Vec<Oid>> {
    let mut tips: BTreeSet<Oid> = BTreeSet::new();
    if let Some(w) = wt
        && let Ok(wt_repo) = git2::Repository::open(&w.path)
    {
        if let Ok(head) = wt_repo.head().and_then(|h| h.peel_to_commit()) {
            tips.insert(head.id());
        }
        tips.extend(reflog_ids(&wt_repo, "HEAD"));
    }
    let branch_ref = branch.map(|b| format!("refs/heads/{b}"));
    if let Some(name) = &branch_ref {
        if let Some(tip) = repo.branch_tip(&name["refs/heads/".len()..])? {
            tips.insert(tip);
        }
        tips.extend(reflog_ids(&repo.inner, name));
    }
    tips.retain(|t| repo.inner.find_commit(*t).is_ok());
    if tips.is_empty() {
        return Ok(Vec::new());
    }
    let err = |source| GitError::Compare {
        from: "the refs that stay".into(),
        to: "what the worktree and branch reach".into(),
        source,
    };
    let mut walk = repo.inner.revwalk().map_err(err)?;
    for t in &tips {
        walk.push(*t).map_err(err)?;
    }
    let refs = repo.inner.references().map_err(err)?;
    for r in refs.flatten() {
        if r.name().ok().is_some() && r.name().ok() == branch_ref.as_deref() {
            continue;
        }
        if let Ok(c) = r.peel_to_commit() {
            walk.hide(c.id()).map_err(err)?;
        }
    }
    let lost: BTreeSet<Oid> = walk.filter_map(|r| r.ok()).collect();
    let mut out: Vec<Oid> = tips.into_iter().filter(|t| lost.contains(t)).collect();
    let all = out.clone();
    out.retain(|t| {
        !all.iter()
            .any(|o| o != t && repo.contains(*o, *t).unwrap_or(false))
    });
    Ok(out)
}

/// Every commit a reflog names (old and new sides).
fn reflog_ids(repo: &git2::Repository, name: &str) -> Vec<Oid> {
    let Ok(log) = repo.reflog(name) else {
        return Vec::new();
    };
    log.iter()
        .flat_map(|e| [e.id_old(), e.id_new()])
        .filter(|id| !id.is_zero())
        .collect()
}

/// The refs that would keep `commits` of the stream `slug` reachable.
pub fn names(slug: &str, commits: &[Oid]) -> Vec<Rescue> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    commits
        .iter()
        .enumerate()
        .map(|(i, c)| Rescue {
            refname: format!("{PREFIX}{slug}/{stamp}-{}", i + 1),
            commit: c.to_string(),
        })
        .collect()
}

/// Creates the refs (never overwriting one).
pub fn keep(repo: &Repo, rescues: &[Rescue]) -> Result<()> {
    for r in rescues {
        let oid = Oid::from_str(&r.commit).map_err(|source| GitError::CreateBranch {
            branch: r.refname.clone(),
            source,
        })?;
        repo.inner
            .reference(
                &r.refname,
                oid,
                false,
                "orchestrate clean: keep a commit reachable",
            )
            .map_err(|source| GitError::CreateBranch {
                branch: r.refname.clone(),
                source,
            })?;
    }
    Ok(())
}
