//! `orchestrate clean`: removes stream worktrees (and with `--branches` their branches) that
//! hold nothing of value, prunes stale worktree metadata, and registers orphaned worktrees (whose
//! `.git/worktrees/<name>` was deleted) with git again, keeping every file.
//!
//! Never removed, `--force` or not (promise 2 of PRODUCT.md): a worktree in use — a live worker
//! or a `start` preparing or launching it (the state store's claims and the worktree lock), or
//! any process working inside it. [`run`] decides each stream again, and carries the decision
//! out, under the stream's removal claim ([`StateStore::begin_removal`]), which no launch can
//! pass: nothing can start using a worktree between the check and its removal.
//!
//! `--force` overrides uncommitted changes, commits not in the target branch, and a HEAD that
//! left its branch. Even then no commit becomes unreachable (promise 3): a commit that only the
//! removed worktree (its HEAD, its reflog) or the deleted branch (its reflog) still reaches is
//! kept under `refs/orchestrate/rescued/<slug>/<time>-<n>`, and the output names the ref.
//! Without `--force` such a worktree or branch is kept, with the reason.
//!
//! [`plan`] decides and changes nothing (`--dry-run`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use git2::Oid;
use serde::Serialize;

use super::error::{GitError, Result, summarize};
use super::occupants;
use super::preview::target_branch;
use super::repo::{Repo, short};
use super::rescue::{self, Rescue};
use super::worktree::{self, Orphan, WorktreeInfo};
use crate::cmdline::quote;
use crate::graph::StreamGraph;
use crate::model::{Attention, Verdict};
use crate::names::{BRANCH_PREFIX, StreamNames};
use crate::proc::Identity;
use crate::project::Project;
use crate::state::{Removal, StateStore};

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
    /// The branch's tip when decided: deleted only if it still points there.
    #[serde(skip)]
    pub branch_tip: Option<Oid>,
    pub remove_worktree: bool,
    pub delete_branch: bool,
    /// In use (a live worker, a launch, a process inside): nothing removes it.
    pub in_use: bool,
    /// Why something is kept; empty when nothing is.
    pub refusals: Vec<String>,
    /// The command that would remove it anyway.
    pub override_command: Option<String>,
    /// Refs that keep commits reachable which the removal would otherwise strand.
    pub rescued: Vec<Rescue>,
    /// Disk space the worktree takes (what removing it frees).
    pub bytes: u64,
}

/// A worktree folder whose git record was deleted: registered again, never removed.
#[derive(Debug, Clone, Serialize)]
pub struct OrphanItem {
    pub stream: String,
    pub dir: PathBuf,
    /// Where its `.git` file says its record was.
    pub admin: PathBuf,
    pub reregistered: bool,
    /// Why it could not be registered again.
    pub refusal: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CleanPlan {
    pub target: Option<String>,
    pub items: Vec<CleanItem>,
    /// Stale worktree entries (folder gone) that would be / were pruned.
    pub stale: Vec<String>,
    pub orphans: Vec<OrphanItem>,
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

/// What a decision looks at.
struct Ctx<'a> {
    repo: Repo,
    target: Option<String>,
    target_tip: Option<Oid>,
    all: Vec<WorktreeInfo>,
    /// Streams a live worker or launch holds, with the pid to name.
    running: &'a BTreeMap<String, i32>,
    opts: &'a CleanOptions,
}

/// One stream's worktree and branch as found.
struct Candidate {
    stream: String,
    slug: String,
    worktree: Option<WorktreeInfo>,
    branch: Option<String>,
}

/// Decides what to clean; changes nothing. `running`: streams in use, with a pid to name.
pub fn plan(
    project: &Project,
    graph: Option<&StreamGraph>,
    running: &BTreeMap<String, i32>,
    opts: &CleanOptions,
) -> Result<CleanPlan> {
    let ctx = context(project, running, opts)?;
    let ids = stream_ids(project, graph)?;
    let mut items = Vec::new();
    for c in candidates(project, &ctx, &ids)? {
        items.push(decide(&ctx, &c)?);
    }
    let orphans = orphans(project, &ctx, &ids)
        .into_iter()
        .map(|(stream, o)| OrphanItem {
            stream,
            dir: o.dir,
            admin: o.admin,
            reregistered: false,
            refusal: None,
        })
        .collect();
    Ok(CleanPlan {
        target: ctx.target.clone(),
        stale: ctx
            .all
            .iter()
            .filter(|w| w.is_stale())
            .map(|w| w.name.clone())
            .collect(),
        items,
        orphans,
    })
}

/// Cleans: prunes stale entries, registers orphans again, and for each stream decides again
/// under its removal claim and carries the decision out (rescue refs, worktree, branch).
pub fn run(
    project: &Project,
    graph: Option<&StreamGraph>,
    running: &BTreeMap<String, i32>,
    opts: &CleanOptions,
) -> Result<CleanPlan> {
    let mut plan = plan(project, graph, running, opts)?;
    let repo = Repo::open(&project.root)?;
    worktree::prune_stale(&repo)?;
    let wants_change = plan
        .items
        .iter()
        .any(|i| i.remove_worktree || i.delete_branch);
    if !wants_change && plan.orphans.is_empty() {
        return Ok(plan);
    }
    let mut store = StateStore::open(&project.state_db())?;
    let me = Identity::current().ok_or_else(|| GitError::Io {
        action: "read the identity of",
        path: PathBuf::from("/proc/self"),
        source: std::io::Error::other("this process is not in /proc"),
    })?;
    let ids = stream_ids(project, graph)?;
    for item in &mut plan.items {
        if item.remove_worktree || item.delete_branch {
            *item = carry_out(project, &mut store, &me, running, opts, &ids, item)?;
        }
    }
    for orphan in &mut plan.orphans {
        reregister(&repo, &mut store, &me, orphan)?;
    }
    // Leave no empty `.claude/worktrees/` behind (fails harmlessly when something is kept).
    let _ = std::fs::remove_dir(project.worktrees_dir());
    Ok(plan)
}

fn context<'a>(
    project: &Project,
    running: &'a BTreeMap<String, i32>,
    opts: &'a CleanOptions,
) -> Result<Ctx<'a>> {
    let repo = Repo::open(&project.root)?;
    let target = target_branch(project, &repo, None).ok();
    let target_tip = match &target {
        Some(t) => repo.branch_tip(t)?,
        None => None,
    };
    let all = worktree::list(&repo)?;
    Ok(Ctx {
        repo,
        target,
        target_tip,
        all,
        running,
        opts,
    })
}

/// The stream worktrees under `.claude/worktrees/` and (with `--branches`) stream branches,
/// by slug, restricted to the streams asked for.
fn candidates(
    project: &Project,
    ctx: &Ctx<'_>,
    ids: &BTreeMap<String, String>,
) -> Result<Vec<Candidate>> {
    let under_ours = |w: &&WorktreeInfo| w.path.starts_with(project.worktrees_dir());
    let mut found: BTreeMap<String, (Option<WorktreeInfo>, Option<String>)> = BTreeMap::new();
    for w in ctx.all.iter().filter(under_ours).filter(|w| w.valid) {
        let slug = w
            .branch
            .as_deref()
            .and_then(|b| b.strip_prefix("refs/heads/"))
            .and_then(|b| b.strip_prefix(BRANCH_PREFIX))
            .map(str::to_string)
            .unwrap_or_else(|| file_name(&w.path));
        found.entry(slug).or_default().0 = Some(w.clone());
    }
    if ctx.opts.branches {
        for branch in stream_branches(&ctx.repo)? {
            let slug = branch[BRANCH_PREFIX.len()..].to_string();
            found.entry(slug).or_default().1 = Some(branch);
        }
    }
    Ok(found
        .into_iter()
        .map(|(slug, (worktree, branch))| Candidate {
            stream: ids.get(&slug).cloned().unwrap_or_else(|| slug.clone()),
            slug,
            worktree,
            branch,
        })
        .filter(|c| selected(ctx.opts, &c.stream, &c.slug))
        .collect())
}

fn selected(opts: &CleanOptions, stream: &str, slug: &str) -> bool {
    opts.streams.is_empty() || opts.streams.iter().any(|s| s == stream || s == slug)
}

/// Orphaned worktree folders of the streams asked for, with their stream ids.
fn orphans(
    project: &Project,
    ctx: &Ctx<'_>,
    ids: &BTreeMap<String, String>,
) -> Vec<(String, Orphan)> {
    worktree::orphans(&ctx.repo, &project.worktrees_dir())
        .into_iter()
        .map(|o| {
            (
                ids.get(&o.slug).cloned().unwrap_or_else(|| o.slug.clone()),
                o,
            )
        })
        .filter(|(stream, o)| selected(ctx.opts, stream, &o.slug))
        .collect()
}

/// What clean does with one stream's worktree and branch, and why it keeps what it keeps.
fn decide(ctx: &Ctx<'_>, c: &Candidate) -> Result<CleanItem> {
    let branch_name = c.branch.clone().or_else(|| {
        c.worktree
            .as_ref()
            .and_then(|w| w.branch.as_deref())
            .and_then(|b| b.strip_prefix("refs/heads/"))
            .map(str::to_string)
    });
    let stream_branch = StreamNames::new(&c.stream).branch();
    let mut item = CleanItem {
        stream: c.stream.clone(),
        worktree: c.worktree.as_ref().map(|w| w.path.clone()),
        worktree_name: c.worktree.as_ref().map(|w| w.name.clone()),
        branch: c.branch.clone(),
        branch_tip: match &c.branch {
            Some(b) => ctx.repo.branch_tip(b)?,
            None => None,
        },
        remove_worktree: false,
        delete_branch: false,
        in_use: false,
        refusals: Vec::new(),
        override_command: None,
        rescued: Vec::new(),
        bytes: 0,
    };
    let in_use = in_use_reasons(ctx, &c.stream, c.worktree.as_ref());
    item.in_use = !in_use.is_empty();
    let unmerged = match &branch_name {
        Some(b) => unmerged_commits(&ctx.repo, b, ctx.target_tip)?,
        None => 0,
    };
    let unmerged_reason = || match &ctx.target {
        Some(t) => format!(
            "branch {} has {unmerged} commit(s) not in {t}",
            branch_name.as_deref().unwrap_or("?")
        ),
        None => "there is no target branch to compare its branch with".into(),
    };
    let force = ctx.opts.force;
    let mut stranded_by_worktree = Vec::new();
    if let Some(w) = &c.worktree {
        let mut reasons = worktree_reasons(ctx, w, &stream_branch)?;
        if unmerged > 0 || ctx.target_tip.is_none() {
            reasons.push(unmerged_reason());
        }
        stranded_by_worktree = rescue::stranded(&ctx.repo, Some(w), None)?;
        if !stranded_by_worktree.is_empty() {
            reasons.push(stranded_reason(stranded_by_worktree.len()));
        }
        item.bytes = disk_usage(&w.path);
        item.remove_worktree = in_use.is_empty() && (reasons.is_empty() || force);
        item.refusals.extend(in_use.iter().cloned());
        if !force {
            item.refusals.extend(reasons);
        }
    }
    let mut stranded_all = stranded_by_worktree;
    if let Some(branch) = &c.branch {
        let keeps_worktree = c.worktree.is_some() && !item.remove_worktree;
        let removed = item.remove_worktree.then_some(()).and(c.worktree.as_ref());
        let stranded_branch = rescue::stranded(&ctx.repo, removed, Some(branch))?;
        if keeps_worktree {
            item.refusals
                .push("its branch stays with the kept worktree".into());
        } else if !in_use.is_empty() {
            item.refusals.extend(in_use.iter().cloned());
        } else if (unmerged > 0 || ctx.target_tip.is_none()) && !force {
            item.refusals.push(unmerged_reason());
        } else if !stranded_branch.is_empty() && !force {
            item.refusals.push(stranded_reason(stranded_branch.len()));
        } else if checked_out_outside(&ctx.repo, &ctx.all, branch, c.worktree.as_ref()) {
            item.refusals
                .push("its branch is checked out in another worktree".into());
        } else {
            item.delete_branch = true;
            stranded_all = stranded_branch;
        }
    }
    if item.remove_worktree || item.delete_branch {
        item.rescued = rescue::names(&c.slug, &stranded_all);
    }
    item.refusals.dedup();
    if !item.refusals.is_empty() {
        item.override_command = Some(override_command(ctx.opts, &item, &in_use));
    }
    Ok(item)
}

/// Why nothing may remove the worktree now (no `--force` overrides these).
fn in_use_reasons(ctx: &Ctx<'_>, stream: &str, wt: Option<&WorktreeInfo>) -> Vec<String> {
    let mut reasons = Vec::new();
    if let Some(pid) = ctx.running.get(stream) {
        reasons.push(format!(
            "in use: stream {stream} has a live worker or a `start` preparing it (pid {pid})"
        ));
    }
    let Some(w) = wt else {
        return reasons;
    };
    if let Some(pid) = w.live_lock_pid() {
        reasons.push(format!("in use: locked by a live worker (pid {pid})"));
    }
    let inside = occupants::inside(&w.path);
    if !inside.is_empty() {
        let pids: Vec<String> = inside.iter().map(u32::to_string).collect();
        reasons.push(format!(
            "in use: process(es) {} work inside it",
            pids.join(", ")
        ));
    }
    reasons
}

/// What `--force` overrides: someone else's lock, uncommitted changes, a HEAD that left the
/// stream's branch with commits the target lacks.
fn worktree_reasons(ctx: &Ctx<'_>, w: &WorktreeInfo, stream_branch: &str) -> Result<Vec<String>> {
    let mut reasons = Vec::new();
    if let Some(reason) = w.lock.as_deref()
        && worktree::lock_pid(reason).is_none()
    {
        reasons.push(format!("locked by someone else: {reason}"));
    }
    let wt = match Repo::open(&w.path) {
        Ok(wt) => wt,
        // Unknown is not clean: keep it.
        Err(e) => {
            reasons.push(format!("it cannot be opened ({e})"));
            return Ok(reasons);
        }
    };
    match wt.dirty_files() {
        Ok(dirty) if dirty.is_empty() => {}
        Ok(dirty) => {
            let paths: Vec<String> = dirty.into_iter().map(|f| f.path).collect();
            reasons.push(format!(
                "{} uncommitted or untracked file(s): {}",
                paths.len(),
                summarize(&paths)
            ));
        }
        Err(e) => reasons.push(format!("its status cannot be read ({e})")),
    }
    let on = wt.current_branch();
    if on.as_deref() != Some(stream_branch)
        && let Ok(head) = wt.head_commit().map(|c| c.id())
    {
        let ahead = match ctx.target_tip {
            Some(t) => ctx.repo.commits_ahead(t, head)?,
            None => 0,
        };
        if ahead > 0 {
            let where_ = match &on {
                Some(b) => format!("on branch {b}, not {stream_branch}"),
                None => format!("detached at {}", short(head)),
            };
            reasons.push(format!(
                "its HEAD is {where_}, with {ahead} commit(s) not in {}",
                ctx.target.as_deref().unwrap_or("the target")
            ));
        }
    }
    Ok(reasons)
}

fn stranded_reason(n: usize) -> String {
    format!(
        "{n} commit(s) that only it still reaches (its HEAD or reflog: work reset away, \
         rewritten or left on a detached HEAD) would become unreachable"
    )
}

fn override_command(opts: &CleanOptions, item: &CleanItem, in_use: &[String]) -> String {
    let branches = if opts.branches { " --branches" } else { "" };
    let cmd = format!(
        "orchestrate clean --force{branches} {}",
        quote(&item.stream)
    );
    if in_use.is_empty() {
        cmd
    } else {
        format!(
            "orchestrate stop {} (and leave its folder), then {cmd}",
            quote(&item.stream)
        )
    }
}

/// Under the stream's removal claim: decides again on fresh facts and carries it out.
fn carry_out(
    project: &Project,
    store: &mut StateStore,
    me: &Identity,
    running: &BTreeMap<String, i32>,
    opts: &CleanOptions,
    ids: &BTreeMap<String, String>,
    planned: &CleanItem,
) -> Result<CleanItem> {
    match store.begin_removal(&planned.stream, me)? {
        Removal::Granted => {}
        Removal::InUse(rec) => {
            let pid = rec.identity.or(rec.claimer).map_or(0, |i| i.pid);
            return Ok(kept_in_use(
                planned,
                opts,
                format!(
                    "in use: a worker of stream {} started meanwhile (pid {pid})",
                    planned.stream
                ),
            ));
        }
        Removal::Removing(by) => {
            return Ok(kept_in_use(
                planned,
                opts,
                format!(
                    "another `orchestrate clean` (pid {}) is removing it",
                    by.pid
                ),
            ));
        }
    }
    let result = decide_and_remove(project, running, opts, ids, planned);
    store.end_removal(&planned.stream, me)?;
    result
}

fn kept_in_use(planned: &CleanItem, opts: &CleanOptions, why: String) -> CleanItem {
    let mut item = planned.clone();
    item.remove_worktree = false;
    item.delete_branch = false;
    item.in_use = true;
    item.rescued.clear();
    item.refusals = vec![why.clone()];
    item.override_command = Some(override_command(opts, &item, &[why]));
    item
}

fn decide_and_remove(
    project: &Project,
    running: &BTreeMap<String, i32>,
    opts: &CleanOptions,
    ids: &BTreeMap<String, String>,
    planned: &CleanItem,
) -> Result<CleanItem> {
    let ctx = context(project, running, opts)?;
    let fresh = candidates(project, &ctx, ids)?
        .into_iter()
        .find(|c| c.stream == planned.stream);
    let Some(candidate) = fresh else {
        return Ok(planned.clone());
    };
    let item = decide(&ctx, &candidate)?;
    rescue::keep(&ctx.repo, &item.rescued)?;
    if item.remove_worktree
        && let Some(info) = candidate.worktree.as_ref()
    {
        worktree::remove(&ctx.repo, info)?;
        worktree::forget_incomplete(&ctx.repo, &StreamNames::new(&item.stream))?;
        if let Some(store) = StateStore::open_existing(&project.state_db())? {
            store.forget_worktree(&item.stream)?;
        }
    }
    if item.delete_branch
        && let (Some(b), Some(tip)) = (&item.branch, item.branch_tip)
    {
        delete_branch_at(&ctx.repo, b, tip)?;
    }
    Ok(item)
}

/// Deletes `branch` only if it still points at `tip` (libgit2 deletes with the loaded value as
/// the expected one: compare-and-swap).
fn delete_branch_at(repo: &Repo, branch: &str, tip: Oid) -> Result<()> {
    let err = |source| GitError::DeleteBranch {
        branch: branch.into(),
        source,
    };
    let mut r = repo
        .inner
        .find_reference(&format!("refs/heads/{branch}"))
        .map_err(err)?;
    if r.target() != Some(tip) {
        return Err(GitError::Moved {
            branch: branch.into(),
            expected: tip.to_string(),
            found: r.target().map(|t| t.to_string()).unwrap_or_default(),
        });
    }
    r.delete().map_err(err)
}

/// Registers an orphaned worktree again (under the stream's removal claim), and records that
/// its uncommitted work needs a person.
fn reregister(
    repo: &Repo,
    store: &mut StateStore,
    me: &Identity,
    orphan: &mut OrphanItem,
) -> Result<()> {
    match store.begin_removal(&orphan.stream, me)? {
        Removal::Granted => {}
        _ => {
            orphan.refusal = Some("in use: a `start` or another `clean` holds the stream".into());
            return Ok(());
        }
    }
    let names = StreamNames::new(&orphan.stream);
    let found = Orphan {
        slug: names.slug.clone(),
        dir: orphan.dir.clone(),
        admin: orphan.admin.clone(),
    };
    let done = worktree::reregister(repo, &found, &names);
    let outcome = match done {
        Ok(()) => {
            orphan.reregistered = true;
            let dirty: Vec<String> = Repo::open(&orphan.dir)?
                .dirty_files()?
                .into_iter()
                .map(|f| f.path)
                .collect();
            if dirty.is_empty() {
                store.clear_verdict(&orphan.stream)
            } else {
                let attention = Attention::DirtyFinish {
                    dir: orphan.dir.clone(),
                    files: dirty,
                };
                store.set_verdict(&orphan.stream, &Verdict::Attention { attention })
            }
        }
        Err(e) => {
            orphan.refusal = Some(e.to_string());
            Ok(())
        }
    };
    store.end_removal(&orphan.stream, me)?;
    outcome.map_err(GitError::from)
}

/// slug → stream id, from the state store's records and workers, and the task graph.
fn stream_ids(project: &Project, graph: Option<&StreamGraph>) -> Result<BTreeMap<String, String>> {
    let mut ids = BTreeMap::new();
    if let Some(store) = StateStore::open_existing(&project.state_db())? {
        for w in store.latest_workers()? {
            ids.insert(StreamNames::new(&w.stream).slug, w.stream);
        }
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

fn unmerged_commits(repo: &Repo, branch: &str, target_tip: Option<Oid>) -> Result<usize> {
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
    branch: &str,
    ours: Option<&WorktreeInfo>,
) -> bool {
    let full = format!("refs/heads/{branch}");
    let in_root = repo
        .inner
        .head()
        .ok()
        .and_then(|h| h.name().ok().map(str::to_string))
        .is_some_and(|h| h == full);
    in_root
        || all.iter().any(|w| {
            w.branch.as_deref() == Some(full.as_str()) && ours.is_none_or(|o| o.name != w.name)
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
