//! The conflict radar: the merges that will happen later, previewed in memory while streams
//! run, so a conflict is known when the second stream commits its side of it and not at merge
//! time.
//!
//! What meets: every pair of streams of which neither depends on the other (their work meets in
//! a common dependent's base or in the target), and each stream with the target's current tip.
//! A stream whose branch the target already contains has nothing left to meet.
//!
//! Invariants: nothing is written to `.git` (the handle's new objects go to memory) and no
//! checkout, index or ref is touched; results are cached by the pair of tips, so a branch move
//! recomputes only the pairs of the stream that moved; most pairs are settled without a merge,
//! by a walk of the three trees that descends only where both sides changed the same folder.
//! The radar reports; it never decides a state.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use git2::{ObjectType, Oid, Tree};

use super::error::{GitError, Result};
use super::repo::{Repo, conflict_paths};
use super::workspaces::MAIN_STREAM;
use crate::graph::StreamGraph;
use crate::names::StreamNames;

/// What a stream's work will meet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Other {
    /// Another stream's branch (neither depends on the other).
    Stream(String),
    /// The target branch's current tip.
    Target(String),
}

/// A merge that will conflict: `stream`'s branch with `other`, in `paths`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Predicted {
    pub stream: String,
    pub other: Other,
    pub paths: Vec<String>,
}

/// The branch tips the radar looks at: the one cheap read done on every wake-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tips {
    /// Streams with a branch the target does not contain yet, in the graph's order.
    pub streams: Vec<(String, Oid)>,
    pub target: Option<Oid>,
}

/// How many full merges a handle makes before it is opened afresh: merged blobs pile up in
/// its in-memory object database for as long as it lives.
const MERGES_PER_HANDLE: u32 = 256;

/// The radar of one project: its in-memory handle, the target, and the results so far.
pub struct Radar {
    repo: Repo,
    target: String,
    /// (lower tip, higher tip) → the conflicting paths (empty: merges cleanly).
    cache: HashMap<(Oid, Oid), Vec<String>>,
    merges: u32,
    /// Pairs computed by the last [`Radar::scan`] (not served from the cache).
    pub computed: usize,
}

impl Radar {
    pub fn open(root: &Path, target: &str) -> Result<Self> {
        Ok(Self {
            repo: Repo::open_in_memory(root)?,
            target: target.to_string(),
            cache: HashMap::new(),
            merges: 0,
            computed: 0,
        })
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    /// The current tips of `streams`' branches and of the target: a few ref reads, no object
    /// is looked at (the "already merged" check happens in [`Radar::scan`]).
    pub fn tips<'a>(&self, streams: impl IntoIterator<Item = &'a str>) -> Result<Tips> {
        let mut tips = Tips {
            target: self.repo.branch_tip(&self.target)?,
            ..Tips::default()
        };
        for id in streams {
            if id == MAIN_STREAM {
                continue;
            }
            if let Some(tip) = self.repo.branch_tip(&StreamNames::new(id).branch())? {
                tips.streams.push((id.to_string(), tip));
            }
        }
        Ok(tips)
    }

    /// Every predicted conflict at `tips`, by pair (each pair once, `stream` the earlier in
    /// the graph's order). Pairs whose tips did not change come from the cache.
    pub fn scan(&mut self, graph: &StreamGraph, tips: &Tips) -> Result<Vec<Predicted>> {
        self.computed = 0;
        let live: Vec<(String, Oid)> = match tips.target {
            Some(target) => {
                let mut live = Vec::new();
                for (s, tip) in &tips.streams {
                    if !self.repo.contains(target, *tip)? {
                        live.push((s.clone(), *tip));
                    }
                }
                live
            }
            None => tips.streams.clone(),
        };
        let mut out = Vec::new();
        let mut wanted = Vec::new();
        for (a, b) in pairs(graph, live.iter().map(|(s, _)| s.as_str())) {
            let tip = |id: &str| live.iter().find(|(s, _)| s == id).map(|(_, t)| *t);
            let (Some(ta), Some(tb)) = (tip(&a), tip(&b)) else {
                continue;
            };
            wanted.push(key(ta, tb));
            let paths = self.conflicts(ta, tb)?;
            if !paths.is_empty() {
                out.push(Predicted {
                    stream: a,
                    other: Other::Stream(b),
                    paths,
                });
            }
        }
        if let Some(target) = tips.target {
            for (s, tip) in &live {
                wanted.push(key(*tip, target));
                let paths = self.conflicts(*tip, target)?;
                if !paths.is_empty() {
                    out.push(Predicted {
                        stream: s.clone(),
                        other: Other::Target(self.target.clone()),
                        paths,
                    });
                }
            }
        }
        // Results for tips that moved on are never asked for again.
        self.cache.retain(|k, _| wanted.contains(k));
        Ok(out)
    }

    /// The conflicting paths of merging `a` and `b` (empty when clean), cached.
    fn conflicts(&mut self, a: Oid, b: Oid) -> Result<Vec<String>> {
        if let Some(hit) = self.cache.get(&key(a, b)) {
            return Ok(hit.clone());
        }
        self.computed += 1;
        let paths = self.merge(a, b)?;
        self.cache.insert(key(a, b), paths.clone());
        Ok(paths)
    }

    fn merge(&mut self, a: Oid, b: Oid) -> Result<Vec<String>> {
        let repo = &self.repo;
        if repo.contains(a, b)? || repo.contains(b, a)? {
            return Ok(Vec::new());
        }
        let compare = |source| GitError::Compare {
            from: a.to_string(),
            to: b.to_string(),
            source,
        };
        let base = match repo.inner.merge_base(a, b) {
            Ok(base) => Some(repo.commit(base)?.tree().map_err(compare)?),
            Err(e) if e.code() == git2::ErrorCode::NotFound => None,
            Err(e) => return Err(compare(e)),
        };
        let (ca, cb) = (repo.commit(a)?, repo.commit(b)?);
        let (ta, tb) = (ca.tree().map_err(compare)?, cb.tree().map_err(compare)?);
        if !both_changed(repo, base.as_ref(), &ta, &tb).map_err(compare)? {
            return Ok(Vec::new());
        }
        let index = repo
            .inner
            .merge_commits(&ca, &cb, None)
            .map_err(|source| GitError::Merge {
                ours: a.to_string(),
                theirs: b.to_string(),
                source,
            })?;
        let paths = conflict_paths(&index);
        drop((index, ca, cb, ta, tb, base));
        self.merges += 1;
        if self.merges >= MERGES_PER_HANDLE {
            self.repo = Repo::open_in_memory(&self.repo.path)?;
            self.merges = 0;
        }
        Ok(paths)
    }
}

fn key(a: Oid, b: Oid) -> (Oid, Oid) {
    if a <= b { (a, b) } else { (b, a) }
}

/// The pairs of `streams` (in the graph's order) whose work meets later: neither depends on
/// the other. The earlier of each pair comes first.
pub fn pairs<'a>(
    graph: &StreamGraph,
    streams: impl IntoIterator<Item = &'a str>,
) -> Vec<(String, String)> {
    let mut listed: Vec<&str> = streams.into_iter().collect();
    let position = |id: &str| {
        graph
            .streams()
            .iter()
            .position(|s| s.id() == id)
            .unwrap_or(usize::MAX)
    };
    listed.sort_by_key(|id| (position(id), id.to_string()));
    let mut out = Vec::new();
    for (i, a) in listed.iter().enumerate() {
        for b in &listed[i + 1..] {
            if graph.may_run_together(a, b) {
                out.push((a.to_string(), b.to_string()));
            }
        }
    }
    out
}

/// Whether some path was changed on both sides (differently) since `base`: only then can a
/// merge conflict. Descends only into folders both sides changed, so two streams working in
/// different parts of a large tree cost a handful of tree reads.
fn both_changed(
    repo: &Repo,
    base: Option<&Tree<'_>>,
    a: &Tree<'_>,
    b: &Tree<'_>,
) -> std::result::Result<bool, git2::Error> {
    let entries = |t: Option<&Tree<'_>>| -> BTreeMap<Vec<u8>, (Oid, Option<ObjectType>)> {
        t.map(|t| {
            t.iter()
                .map(|e| (e.name_bytes().to_vec(), (e.id(), e.kind())))
                .collect()
        })
        .unwrap_or_default()
    };
    let (e0, ea, eb) = (entries(base), entries(Some(a)), entries(Some(b)));
    let names: std::collections::BTreeSet<&Vec<u8>> = ea.keys().chain(eb.keys()).collect();
    for name in names {
        let (o, x, y) = (e0.get(name), ea.get(name), eb.get(name));
        let id = |e: Option<&(Oid, Option<ObjectType>)>| e.map(|e| e.0);
        // Changed on one side only, or the same way on both: merges cleanly.
        if id(x) == id(o) || id(y) == id(o) || id(x) == id(y) {
            continue;
        }
        let tree = |e: Option<&(Oid, Option<ObjectType>)>| -> std::result::Result<Option<Tree<'_>>, git2::Error> {
            match e {
                Some((oid, Some(ObjectType::Tree))) => repo.inner.find_tree(*oid).map(Some),
                _ => Ok(None),
            }
        };
        match (tree(x)?, tree(y)?) {
            (Some(tx), Some(ty)) => {
                // A folder on both sides: look inside (a file at the base counts as absent).
                if both_changed(repo, tree(o)?.as_ref(), &tx, &ty)? {
                    return Ok(true);
                }
            }
            _ => return Ok(true),
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taskdb::{Snapshot, StreamRecord};

    fn graph(streams: &[(&str, &[&str])]) -> StreamGraph {
        StreamGraph::build(&Snapshot {
            streams: streams
                .iter()
                .map(|(id, deps)| StreamRecord {
                    id: id.to_string(),
                    name: id.to_string(),
                    raw_dependencies: deps.iter().map(|d| d.to_string()).collect(),
                    ..StreamRecord::default()
                })
                .collect(),
            warnings: vec![],
        })
        .unwrap()
    }

    /// A commit on `parent` (or a root commit) with `files` written over its tree; no work
    /// tree involved.
    fn commit(repo: &git2::Repository, parent: Option<Oid>, files: &[(&str, &str)]) -> Oid {
        let mut index = git2::Index::new().unwrap();
        let parent = parent.map(|p| repo.find_commit(p).unwrap());
        if let Some(p) = &parent {
            index.read_tree(&p.tree().unwrap()).unwrap();
        }
        for (path, text) in files {
            let blob = repo.blob(text.as_bytes()).unwrap();
            index
                .add(&git2::IndexEntry {
                    ctime: git2::IndexTime::new(0, 0),
                    mtime: git2::IndexTime::new(0, 0),
                    dev: 0,
                    ino: 0,
                    mode: 0o100644,
                    uid: 0,
                    gid: 0,
                    file_size: text.len() as u32,
                    id: blob,
                    flags: 0,
                    flags_extended: 0,
                    path: path.as_bytes().to_vec(),
                })
                .unwrap();
        }
        let tree = repo.find_tree(index.write_tree_to(repo).unwrap()).unwrap();
        let sig = git2::Signature::new("t", "t@t", &git2::Time::new(0, 0)).unwrap();
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        repo.commit(None, &sig, &sig, "c", &tree, &parents).unwrap()
    }

    fn branch(repo: &git2::Repository, name: &str, at: Oid) {
        repo.reference(&format!("refs/heads/{name}"), at, true, "test")
            .unwrap();
    }

    #[test]
    fn streams_meet_unless_one_depends_on_the_other() {
        // A → {B, C} → Z, and D alone.
        let g = graph(&[
            ("A", &[]),
            ("B", &["A"]),
            ("C", &["A"]),
            ("Z", &["B", "C"]),
            ("D", &[]),
        ]);
        let all = pairs(&g, ["Z", "D", "C", "B", "A"]);
        let as_str: Vec<(&str, &str)> = all.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(
            as_str,
            // The graph's display order: (depth, id).
            [("A", "D"), ("D", "B"), ("D", "C"), ("D", "Z"), ("B", "C")]
        );
        // Only the streams given (those with a branch) are paired.
        assert_eq!(pairs(&g, ["B", "Z"]), Vec::<(String, String)>::new());
    }

    #[test]
    fn a_move_recomputes_only_the_moved_streams_pairs_and_disjoint_work_needs_no_merge() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(tmp.path()).unwrap();
        let base = commit(
            &repo,
            None,
            &[
                ("x.rs", "base\n"),
                ("src/a/one.rs", "1\n"),
                ("src/b/two.rs", "2\n"),
            ],
        );
        branch(&repo, "main", base);
        repo.set_head("refs/heads/main").unwrap();
        let b = commit(
            &repo,
            Some(base),
            &[("x.rs", "B\n"), ("src/a/one.rs", "1b\n")],
        );
        let c = commit(&repo, Some(base), &[("x.rs", "C\n")]);
        let d = commit(&repo, Some(base), &[("src/b/two.rs", "2d\n")]);
        for (s, tip) in [("B", b), ("C", c), ("D", d)] {
            branch(&repo, &format!("stream/{s}"), tip);
        }
        let g = graph(&[("B", &[]), ("C", &[]), ("D", &[])]);
        let mut radar = Radar::open(tmp.path(), "main").unwrap();
        let tips = radar.tips(["B", "C", "D"]).unwrap();
        let objects = walkdir_count(&tmp.path().join(".git/objects"));
        let found = radar.scan(&g, &tips).unwrap();
        // The merge was made in memory: nothing was written to the repository.
        assert_eq!(walkdir_count(&tmp.path().join(".git/objects")), objects);
        assert_eq!(
            found,
            [Predicted {
                stream: "B".into(),
                other: Other::Stream("C".into()),
                paths: vec!["x.rs".into()],
            }]
        );
        // Three pairs and three streams against the target; only B–C needed a merge (the
        // others changed different files, or only one side changed anything).
        assert_eq!(radar.computed, 6);
        assert_eq!(radar.merges, 1);
        // Nothing moved: everything from the cache.
        assert_eq!(radar.scan(&g, &tips).unwrap(), found);
        assert_eq!(radar.computed, 0);
        // D moves: its two pairs and its target pair, nothing else.
        let d2 = commit(&repo, Some(d), &[("src/b/three.rs", "3\n")]);
        branch(&repo, "stream/D", d2);
        let tips = radar.tips(["B", "C", "D"]).unwrap();
        assert_eq!(radar.scan(&g, &tips).unwrap(), found);
        assert_eq!(radar.computed, 3);
        // C takes B's version: resolved, nothing reported.
        let c2 = commit(&repo, Some(c), &[("x.rs", "B\n")]);
        branch(&repo, "stream/C", c2);
        let tips = radar.tips(["B", "C", "D"]).unwrap();
        assert_eq!(radar.scan(&g, &tips).unwrap(), []);
        // The target moving into D's folder with other content conflicts with D alone.
        let m = commit(&repo, Some(base), &[("src/b/two.rs", "2m\n")]);
        branch(&repo, "main", m);
        let tips = radar.tips(["B", "C", "D"]).unwrap();
        assert_eq!(
            radar.scan(&g, &tips).unwrap(),
            [Predicted {
                stream: "D".into(),
                other: Other::Target("main".into()),
                paths: vec!["src/b/two.rs".into()],
            }]
        );
        // A branch the target contains has nothing left to meet.
        branch(&repo, "main", d2);
        let tips = radar.tips(["B", "C", "D"]).unwrap();
        assert!(radar.scan(&g, &tips).unwrap().is_empty());
    }

    fn walkdir_count(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            walkdir_count(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
}
