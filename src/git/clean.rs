//! `orchestrate clean`: removes stream worktrees (and with `--branches` their branches) that
//! hold nothing of value, and prunes stale worktree metadata.
//!
//! Without `force`, a worktree is kept when it has uncommitted or untracked changes, when its
//! branch has commits the target branch does not contain, when a live worker holds its lock,
//! or when its stream is running; each refusal carries its reasons and the overriding command.
//! [`plan`] decides and changes nothing; [`execute`] carries a plan out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::{GitError, Result, summarize};
use super::preview::target_branch;
use super::repo::Repo;
use super::worktree::{self, WorktreeInfo};
use crate::cmdline::quote;
use crate::graph::StreamGraph;
use crate::names::{BRANCH_PREFIX, StreamNames};
use crate::project::Project;
use crate::state::StateStore;

#[derive(Debug, Clone, Default)]
pub struct CleanOptions {
    /// Only these streams (ids or slugs); empty: all.
    pub streams: Vec<String>,
    pub force: bool,
    pub branches: bool,
}

/// One stream's worktree and branch, and what clean does with them.
#[derive(Debug, Clone, Serialize)]
pub struct CleanItem {
    pub stream: String,
    pub worktree: Option<PathBuf>,
    /// Admin name of the worktree.
    #[serde(skip)]
    pub worktree_name: Option<String>,
    pub branch: Option<String>,
    pub remove_worktree: bool,
    pub delete_branch: bool,
    /// Why something is kept; empty when nothing is.
    pub refusals: Vec<String>,
    /// The command that would remove it anyway.
    pub override_command: Option<String>,
    /// Disk space the worktree takes (what removing it frees).
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CleanPlan {
    pub target: Option<String>,
    pub items: Vec<CleanItem>,
    /// Stale worktree entries (folder gone) that would be / were pruned.
    pub stale: Vec<String>,
}

impl CleanPlan {
    pub fn bytes_freed(&self) -> u64 {
        self.items
            .iter()
            .filter(|i| i.remove_worktree)
            .map(|i| i.bytes)
            .sum()
    }
}

/// Decides what to clean; changes nothing. `running` holds the ids of streams with a live worker.
pub fn plan(
    project: &Project,
    graph: Option<&StreamGraph>,
    running: &BTreeMap<String, i32>,
    opts: &CleanOptions,
) -> Result<CleanPlan> {
    let repo = Repo::open(&project.root)?;
    let target = target_branch(project, &repo, None).ok();
    let target_tip = match &target {
        Some(t) => repo.branch_tip(t)?,
        None => None,
    };
    let all = worktree::list(&repo)?;
    let stale = all
        .iter()
        .filter(|w| w.is_stale())
        .map(|w| w.name.clone())
        .collect();
    let ids = stream_ids(project, graph)?;
    let under_ours = |w: &&WorktreeInfo| w.path.starts_with(project.worktrees_dir());

    // slug → (worktree, branch)
    let mut found: BTreeMap<String, (Option<WorktreeInfo>, Option<String>)> = BTreeMap::new();
    for w in all.iter().filter(under_ours).filter(|w| w.valid) {
        let slug = w
            .branch
            .as_deref()
            .and_then(|b| b.strip_prefix("refs/heads/"))
            .and_then(|b| b.strip_prefix(BRANCH_PREFIX))
            .map(str::to_string)
            .unwrap_or_else(|| file_name(&w.path));
        found.entry(slug).or_default().0 = Some(w.clone());
    }
    if opts.branches {
        for branch in stream_branches(&repo)? {
            let slug = branch[BRANCH_PREFIX.len()..].to_string();
            found.entry(slug).or_default().1 = Some(branch);
        }
    }

    let mut items = Vec::new();
    for (slug, (wt, branch)) in found {
        let stream = ids.get(&slug).cloned().unwrap_or_else(|| slug.clone());
        if !opts.streams.is_empty() && !opts.streams.iter().any(|s| *s == stream || *s == slug) {
            continue;
        }
        let branch_name = branch.clone().or_else(|| {
            wt.as_ref()
                .and_then(|w| w.branch.as_deref())
                .and_then(|b| b.strip_prefix("refs/heads/"))
                .map(str::to_string)
        });
        let mut item = CleanItem {
            stream: stream.clone(),
            worktree: wt.as_ref().map(|w| w.path.clone()),
            worktree_name: wt.as_ref().map(|w| w.name.clone()),
            branch: branch.clone(),
            remove_worktree: false,
            delete_branch: false,
            refusals: Vec::new(),
            override_command: None,
            bytes: 0,
        };
        let unmerged = match &branch_name {
            Some(b) => unmerged_commits(&repo, b, target_tip)?,
            None => 0,
        };
        let unmerged_reason = || match &target {
            Some(t) => format!(
                "branch {} has {unmerged} commit(s) not in {t}",
                branch_name.as_deref().unwrap_or("?")
            ),
            None => "there is no target branch to compare its branch with".into(),
        };
        if let Some(w) = &wt {
            let mut reasons = Vec::new();
            if let Some(pid) = w.live_lock_pid() {
                reasons.push(format!("locked by a live worker (pid {pid})"));
            } else if w
                .lock
                .as_deref()
                .is_some_and(|r| worktree::lock_pid(r).is_none())
            {
                reasons.push(format!(
                    "locked by someone else: {}",
                    w.lock.as_deref().unwrap_or_default()
                ));
            }
            if let Some(pid) = running.get(&stream) {
                reasons.push(format!("stream {stream} is running (worker pid {pid})"));
            }
            match Repo::open(&w.path).and_then(|r| r.dirty_files()) {
                Ok(dirty) if dirty.is_empty() => {}
                Ok(dirty) => {
                    let paths: Vec<String> = dirty.into_iter().map(|f| f.path).collect();
                    reasons.push(format!(
                        "{} uncommitted or untracked file(s): {}",
                        paths.len(),
                        summarize(&paths)
                    ));
                }
                // Unknown is not clean: keep it.
                Err(e) => reasons.push(format!("its status cannot be read ({e})")),
            }
            if unmerged > 0 || target_tip.is_none() {
                reasons.push(unmerged_reason());
            }
            item.bytes = disk_usage(&w.path);
            item.remove_worktree = reasons.is_empty() || opts.force;
            if !opts.force {
                item.refusals.extend(reasons);
            }
        }
        if branch.is_some() {
            let keeps_worktree = wt.is_some() && !item.remove_worktree;
            if keeps_worktree {
                item.refusals
                    .push("its branch stays with the kept worktree".into());
            } else if (unmerged > 0 || target_tip.is_none()) && !opts.force {
                item.refusals.push(unmerged_reason());
            } else {
                item.delete_branch = true;
            }
            if item.delete_branch && checked_out_outside(&repo, &all, &branch_name, &wt) {
                item.delete_branch = false;
                item.refusals
                    .push("its branch is checked out in another worktree".into());
            }
        }
        item.refusals.dedup();
        if !item.refusals.is_empty() {
            let branches = if opts.branches { " --branches" } else { "" };
            let mut cmd = format!("orchestrate clean --force{branches} {}", quote(&stream));
            if running.contains_key(&stream)
                || wt.as_ref().and_then(|w| w.live_lock_pid()).is_some()
            {
                cmd = format!("orchestrate stop {}, then {cmd}", quote(&stream));
            }
            item.override_command = Some(cmd);
        }
        items.push(item);
    }
    Ok(CleanPlan {
        target,
        items,
        stale,
    })
}

/// Carries out a plan: prunes stale entries, removes worktrees, deletes branches, forgets
/// removed streams in the state store.
pub fn execute(project: &Project, plan: &CleanPlan) -> Result<()> {
    let repo = Repo::open(&project.root)?;
    worktree::prune_stale(&repo)?;
    let records = StateStore::open_existing(&project.state_db())?;
    let all = worktree::list(&repo)?;
    for item in &plan.items {
        if item.remove_worktree
            && let Some(info) = all
                .iter()
                .find(|w| Some(&w.name) == item.worktree_name.as_ref())
        {
            worktree::remove(&repo, info)?;
            if let Some(r) = &records {
                r.forget_worktree(&item.stream)?;
            }
        }
        if item.delete_branch
            && let Some(b) = &item.branch
        {
            repo.delete_branch(b)?;
        }
    }
    // Leave no empty `.claude/worktrees/` behind (fails harmlessly when something is kept).
    let _ = std::fs::remove_dir(project.worktrees_dir());
    Ok(())
}

/// slug → stream id, from the state store's records and the task graph.
fn stream_ids(project: &Project, graph: Option<&StreamGraph>) -> Result<BTreeMap<String, String>> {
    let mut ids = BTreeMap::new();
    if let Some(store) = StateStore::open_existing(&project.state_db())? {
        for r in store.worktrees()? {
            ids.insert(r.slug, r.stream);
        }
    }
    for s in graph.map(|g| g.streams()).unwrap_or_default() {
        ids.insert(StreamNames::new(s.id()).slug, s.id().to_string());
    }
    Ok(ids)
}

fn stream_branches(repo: &Repo) -> Result<BTreeSet<String>> {
    let branches = repo
        .inner
        .branches(Some(git2::BranchType::Local))
        .map_err(|source| GitError::ReadBranch {
            branch: format!("{BRANCH_PREFIX}*"),
            source,
        })?;
    Ok(branches
        .filter_map(|b| b.ok())
        .filter_map(|(b, _)| b.name().ok().flatten().map(str::to_string))
        .filter(|n| n.starts_with(BRANCH_PREFIX))
        .collect())
}

fn unmerged_commits(repo: &Repo, branch: &str, target_tip: Option<git2::Oid>) -> Result<usize> {
    let Some(tip) = repo.branch_tip(branch)? else {
        return Ok(0);
    };
    match target_tip {
        Some(target) => repo.commits_ahead(target, tip),
        None => Ok(0),
    }
}

/// The branch is HEAD of the main checkout or of a worktree other than `ours`.
fn checked_out_outside(
    repo: &Repo,
    all: &[WorktreeInfo],
    branch: &Option<String>,
    ours: &Option<WorktreeInfo>,
) -> bool {
    let Some(branch) = branch else {
        return false;
    };
    let full = format!("refs/heads/{branch}");
    let in_root = repo
        .inner
        .head()
        .ok()
        .and_then(|h| h.name().ok().map(str::to_string))
        .is_some_and(|h| h == full);
    in_root
        || all.iter().any(|w| {
            w.branch.as_deref() == Some(full.as_str())
                && ours.as_ref().is_none_or(|o| o.name != w.name)
        })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Bytes used by the files under `path` (symlinks not followed).
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| disk_usage(&e.path())).sum())
        .unwrap_or(0)
}
