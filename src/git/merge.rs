//! `orchestrate merge`: brings complete stream branches into the target branch, in dependency
//! order, as `--no-ff` merge commits `Merge stream <id>: <name>`.
//!
//! Each merge is computed in memory first; the work tree, index and branch are updated only
//! when it is clean (checkout in safe mode, then the ref moves). A conflict therefore stops the
//! run with the project root exactly as it was before that merge: nothing to abort, nothing lost.

use git2::Oid;

use super::error::{GitError, Result};
use super::preview::{MergePreview, StreamMerge, merge_in_memory};
use super::repo::Repo;
use crate::graph::Stream;

/// What a merge run did.
#[derive(Debug, Clone, Default)]
pub struct MergeReport {
    pub target: String,
    /// Merged streams with their merge commits, in order.
    pub merged: Vec<(StreamMerge, Oid)>,
    /// Already merged, or not complete.
    pub skipped: Vec<StreamMerge>,
    /// The stream whose merge conflicted (with the paths); the run stopped there.
    pub conflict: Option<StreamMerge>,
}

/// Merges `streams` (dependency order) into `target`, which the project root must have
/// checked out with no uncommitted changes to tracked files.
pub fn merge_streams(
    repo: &Repo,
    target: &str,
    streams: &[&Stream],
    is_complete: impl Fn(&Stream) -> bool,
) -> Result<MergeReport> {
    let state = repo.inner.state();
    if state != git2::RepositoryState::Clean {
        return Err(GitError::Busy {
            path: repo.path.clone(),
            operation: format!("{state:?}").to_lowercase(),
        });
    }
    let current = repo
        .current_branch()
        .unwrap_or_else(|| "(detached HEAD)".into());
    if current != target {
        return Err(GitError::NotOnTarget {
            path: repo.path.clone(),
            current,
            target: target.into(),
        });
    }
    let dirty: Vec<String> = repo
        .dirty_files()?
        .into_iter()
        .filter(|f| !f.untracked)
        .map(|f| f.path)
        .collect();
    if !dirty.is_empty() {
        return Err(GitError::RootDirty {
            path: repo.path.clone(),
            files: dirty,
        });
    }
    let start = repo.require_tip(target)?;
    let mut report = MergeReport {
        target: target.into(),
        ..Default::default()
    };
    for stream in streams {
        let names = crate::names::StreamNames::new(stream.id());
        let branch = names.branch();
        let Some(tip) = repo.branch_tip(&branch)? else {
            continue;
        };
        let head = repo.head_commit()?.id();
        let mut entry = StreamMerge {
            stream: stream.id().into(),
            name: stream.record.name.clone(),
            branch: branch.clone(),
            commits_ahead: repo.commits_ahead(start, tip)?,
            preview: MergePreview::Clean,
        };
        if repo.contains(head, tip)? {
            entry.preview = if is_complete(stream) {
                MergePreview::AlreadyMerged
            } else {
                MergePreview::NoCommits
            };
            report.skipped.push(entry);
            continue;
        }
        if !is_complete(stream) {
            entry.preview = MergePreview::Incomplete;
            report.skipped.push(entry);
            continue;
        }
        match merge_in_memory(repo, head, tip, target, &branch, stream)? {
            Ok(commit) => {
                apply(repo, target, &branch, commit)?;
                report.merged.push((entry, commit));
            }
            Err(paths) => {
                entry.preview = MergePreview::Conflicts { paths };
                report.conflict = Some(entry);
                break;
            }
        }
    }
    Ok(report)
}

/// Checks out `commit`'s tree (safe mode: refuses to overwrite anything not committed) and then
/// moves `target` to it.
fn apply(repo: &Repo, target: &str, branch: &str, commit: Oid) -> Result<()> {
    let checkout_err = |source| GitError::Checkout {
        path: repo.path.clone(),
        source,
    };
    let tree = repo.commit(commit)?.tree().map_err(checkout_err)?;
    // libgit2 checks every path before writing any, so a refusal changes nothing; collect the
    // paths in the way (untracked files the merge would add) to name them.
    let mut in_the_way = Vec::new();
    let checked_out = {
        let mut opts = git2::build::CheckoutBuilder::new();
        opts.safe();
        opts.notify_on(git2::CheckoutNotificationType::CONFLICT);
        opts.notify(|_, path, _, _, _| {
            if let Some(p) = path {
                in_the_way.push(p.to_string_lossy().into_owned());
            }
            true
        });
        repo.inner.checkout_tree(tree.as_object(), Some(&mut opts))
    };
    match checked_out {
        Err(e) if e.code() == git2::ErrorCode::Conflict && !in_the_way.is_empty() => {
            return Err(GitError::UntrackedInTheWay {
                path: repo.path.clone(),
                branch: branch.into(),
                files: in_the_way,
            });
        }
        other => other.map_err(checkout_err)?,
    }
    let refname = format!("refs/heads/{target}");
    repo.inner
        .find_reference(&refname)
        .and_then(|mut r| r.set_target(commit, "orchestrate merge"))
        .map(|_| ())
        .map_err(|source| GitError::Commit {
            branch: target.into(),
            source,
        })
}
