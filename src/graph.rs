//! Streams and their dependencies as a DAG: resolving dependency spellings, rejecting unknown
//! dependencies and cycles, depths (levels), and which streams are waiting for which.
//!
//! Pure and synchronous: it takes a [`Snapshot`] and answers questions; it never reads the
//! database or looks at workers. Readiness that depends on workers is the scheduler's.

use std::collections::{BTreeMap, BTreeSet};

use foldhash::HashMap;
use std::fmt;

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::error::Diagnostic;
use crate::exit_codes;
use crate::taskdb::{Snapshot, StreamRecord};

/// A dependency that names no stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownDependency {
    pub stream: String,
    pub missing: String,
    pub suggestion: Option<String>,
}

impl fmt::Display for UnknownDependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stream `{}` depends on `{}`, which is not a stream",
            self.stream, self.missing
        )?;
        if let Some(s) = &self.suggestion {
            write!(f, " (did you mean `{s}`?)")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("{}", format_unknown(.0))]
    UnknownDependencies(Vec<UnknownDependency>),
    #[error("dependency cycle: {}", .0.join(" → "))]
    Cycle(Vec<String>),
}

fn format_unknown(list: &[UnknownDependency]) -> String {
    match list {
        [one] => format!("unknown dependency: {one}"),
        many => {
            let lines: Vec<String> = many.iter().map(|u| format!("\n  {u}")).collect();
            format!("{} unknown dependencies:{}", many.len(), lines.concat())
        }
    }
}

impl Diagnostic for GraphError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            Self::UnknownDependencies(_) => {
                "fix `metadata.dependencies` of the stream's tasks to name \
                existing stream ids (`orchestrate task list` shows them)"
                    .into()
            }
            Self::Cycle(_) => {
                "remove one of these dependencies so the streams can run in order".into()
            }
        })
    }

    fn exit_code(&self) -> i32 {
        exit_codes::INVALID_GRAPH
    }
}

/// A stream with its dependencies resolved to stream ids.
#[derive(Debug, Clone)]
pub struct Stream {
    pub record: StreamRecord,
    /// Resolved dependency ids, sorted.
    pub dependencies: Vec<String>,
    /// 0 for a stream without dependencies, else 1 + the deepest dependency.
    pub depth: usize,
    /// With `strict_files` ([`StreamGraph::strict_files`]): the streams before it that claim
    /// the same files and may run with it; it waits for them as if it depended on them.
    /// Empty otherwise.
    pub claim_waits: Vec<ClaimWait>,
}

/// A stream another one waits for because both claim `paths` (`strict_files`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimWait {
    pub stream: String,
    pub paths: Vec<String>,
    /// The other stream's tasks were complete when the graph was built: its work goes into
    /// this stream's base, as a dependency's would.
    pub complete: bool,
}

impl Stream {
    pub fn id(&self) -> &str {
        &self.record.id
    }
}

/// The validated dependency graph of one snapshot.
#[derive(Debug, Clone)]
pub struct StreamGraph {
    /// Sorted by (depth, id): the display order and a valid topological order.
    streams: Vec<Stream>,
    index: HashMap<String, usize>,
    /// Streams that may run together and claim the same files (`claims::find`).
    overlaps: Vec<crate::claims::Overlap>,
}

impl StreamGraph {
    /// Resolves every dependency and checks the graph is acyclic.
    pub fn build(snapshot: &Snapshot) -> Result<Self, GraphError> {
        Self::from_records(snapshot.streams.clone())
    }

    /// [`StreamGraph::build`] from records the caller no longer needs (a one-shot read):
    /// they move into the graph instead of being copied.
    pub fn from_records(records: Vec<StreamRecord>) -> Result<Self, GraphError> {
        let known: BTreeSet<&str> = records.iter().map(|s| s.id.as_str()).collect();
        let mut unknown = Vec::new();
        // Per record, in the records' order: its dependencies as stream ids, sorted.
        let mut resolved: Vec<Vec<String>> = Vec::with_capacity(records.len());
        for stream in &records {
            let mut deps = BTreeSet::new();
            for raw in &stream.raw_dependencies {
                match resolve_dependency(raw, &known) {
                    Some(id) => {
                        deps.insert(id);
                    }
                    None => unknown.push(UnknownDependency {
                        stream: stream.id.clone(),
                        missing: raw.clone(),
                        suggestion: closest(raw, &known),
                    }),
                }
            }
            resolved.push(deps.into_iter().map(str::to_string).collect());
        }
        if !unknown.is_empty() {
            return Err(GraphError::UnknownDependencies(unknown));
        }

        let mut graph = DiGraph::<&str, ()>::new();
        let nodes: BTreeMap<&str, NodeIndex> =
            known.iter().map(|id| (*id, graph.add_node(*id))).collect();
        for (record, deps) in records.iter().zip(&resolved) {
            for dep in deps {
                // Edge dependency → dependent: the direction work flows.
                graph.add_edge(nodes[dep.as_str()], nodes[record.id.as_str()], ());
            }
        }
        if let Some(cycle) = find_cycle(&graph, &nodes) {
            return Err(GraphError::Cycle(cycle));
        }

        let order = petgraph::algo::toposort(&graph, None).expect("cycles were rejected above");
        let mut depth: HashMap<&str, usize> = HashMap::default();
        for node in order {
            let d = graph
                .neighbors_directed(node, Direction::Incoming)
                .map(|dep| depth[graph[dep]] + 1)
                .max()
                .unwrap_or(0);
            depth.insert(graph[node], d);
        }
        let depths: Vec<usize> = records.iter().map(|r| depth[r.id.as_str()]).collect();
        drop((graph, nodes, depth, known));

        let mut streams: Vec<Stream> = records
            .into_iter()
            .zip(resolved)
            .zip(depths)
            .map(|((record, dependencies), depth)| Stream {
                dependencies,
                depth,
                record,
                claim_waits: Vec::new(),
            })
            .collect();
        streams.sort_by(|a, b| (a.depth, a.id()).cmp(&(b.depth, b.id())));
        let index = streams
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id().to_string(), i))
            .collect();
        let mut graph = Self {
            streams,
            index,
            overlaps: Vec::new(),
        };
        graph.overlaps = crate::claims::find(&graph);
        Ok(graph)
    }

    /// Streams that may run at the same time and claim the same files, in display order.
    pub fn overlaps(&self) -> &[crate::claims::Overlap] {
        &self.overlaps
    }

    /// `strict_files`: the later stream of each overlap waits for the earlier one (the model
    /// reads [`Stream::claim_waits`]; bases include the earlier one's work once complete).
    pub fn strict_files(mut self) -> Self {
        for o in &self.overlaps {
            let complete = self.streams[self.index[&o.earlier]]
                .record
                .counts
                .is_complete();
            let i = self.index[&o.later];
            self.streams[i].claim_waits.push(ClaimWait {
                stream: o.earlier.clone(),
                paths: o.paths.clone(),
                complete,
            });
        }
        self
    }

    /// Whether `from` depends on `to`, directly or through other streams.
    pub fn reaches(&self, from: &str, to: &str) -> bool {
        let mut stack = vec![from];
        let mut seen = BTreeSet::new();
        while let Some(id) = stack.pop() {
            let Some(s) = self.get(id) else { continue };
            for dep in &s.dependencies {
                if dep == to {
                    return true;
                }
                if seen.insert(dep.as_str()) {
                    stack.push(dep);
                }
            }
        }
        false
    }

    /// Neither stream depends on the other: they may run at the same time, and their work
    /// meets only later (in a common dependent, or in the target).
    pub fn may_run_together(&self, a: &str, b: &str) -> bool {
        a != b && !self.reaches(a, b) && !self.reaches(b, a)
    }

    /// Replaces the record of an existing stream whose dependencies and files did not change (a
    /// count or a name did): the graph's shape stays. False when the stream is unknown or its
    /// dependencies or files differ (then the graph must be built again).
    pub fn replace_record(&mut self, record: &StreamRecord) -> bool {
        let Some(&i) = self.index.get(&record.id) else {
            return false;
        };
        let stream = &mut self.streams[i];
        // Files may order streams too (`--strict-files`).
        if stream.record.raw_dependencies != record.raw_dependencies
            || stream.record.files != record.files
        {
            return false;
        }
        stream.record.clone_from(record);
        true
    }

    /// Every stream, by (depth, id): dependencies always come before their dependents.
    pub fn streams(&self) -> &[Stream] {
        &self.streams
    }

    pub fn get(&self, id: &str) -> Option<&Stream> {
        self.index.get(id).map(|&i| &self.streams[i])
    }

    /// Where `id` is in [`StreamGraph::streams`].
    pub fn position(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    pub fn len(&self) -> usize {
        self.streams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// The greatest depth, or `None` for an empty graph.
    pub fn max_depth(&self) -> Option<usize> {
        self.streams.iter().map(|s| s.depth).max()
    }

    /// Streams grouped by depth, in order.
    pub fn levels(&self) -> Vec<(usize, Vec<&Stream>)> {
        let mut levels: BTreeMap<usize, Vec<&Stream>> = BTreeMap::new();
        for s in &self.streams {
            levels.entry(s.depth).or_default().push(s);
        }
        levels.into_iter().collect()
    }

    /// Streams that list `id` as a direct dependency.
    pub fn dependents(&self, id: &str) -> impl Iterator<Item = &Stream> {
        self.streams
            .iter()
            .filter(move |s| s.dependencies.iter().any(|d| d == id))
    }

    /// `id`'s direct dependencies that are not complete by `is_complete`.
    pub fn waiting_for(&self, id: &str, is_complete: impl Fn(&str) -> bool) -> Vec<String> {
        self.get(id)
            .map(|s| {
                s.dependencies
                    .iter()
                    .filter(|d| !is_complete(d))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Maps one dependency as written to a stream id: the id itself, or a task-title form
/// `"Stream-A: Foundation"` / `"[Stream-A] Foundation"`.
pub fn resolve_dependency<'a>(raw: &str, known: &BTreeSet<&'a str>) -> Option<&'a str> {
    let raw = raw.trim();
    let exact = |s: &str| known.get(s.trim()).copied();
    if let Some(id) = exact(raw) {
        return Some(id);
    }
    if let Some(rest) = raw.strip_prefix('[')
        && let Some((inner, _)) = rest.split_once(']')
        && let Some(id) = exact(inner)
    {
        return Some(id);
    }
    // Ids may themselves contain ':'; try every split point, longest prefix first.
    raw.char_indices()
        .filter(|&(_, c)| c == ':')
        .rev()
        .find_map(|(i, _)| exact(&raw[..i]))
}

/// Stream names the user typed that match no stream: the one error every command that takes
/// names gives (same wording, same exit code, a "did you mean").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe_unknown(.unknown))]
pub struct UnknownStreams {
    /// Each unknown name with the closest known one.
    pub unknown: Vec<(String, Option<String>)>,
    pub known: Vec<String>,
}

fn describe_unknown(unknown: &[(String, Option<String>)]) -> String {
    let names: Vec<String> = unknown
        .iter()
        .map(|(name, near)| match near {
            Some(near) => format!("`{name}` (did you mean `{near}`?)"),
            None => format!("`{name}`"),
        })
        .collect();
    format!("no stream named {}", names.join(", "))
}

impl UnknownStreams {
    /// Checks `names` against `known` (a name matches an id exactly, or once trimmed).
    pub fn check<'a>(
        names: &[String],
        known: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), Self> {
        let known: BTreeSet<&str> = known.into_iter().collect();
        let unknown: Vec<(String, Option<String>)> = names
            .iter()
            .filter(|n| !known.contains(n.as_str()) && !known.contains(n.trim()))
            .map(|n| (n.clone(), closest(n, &known)))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        Err(Self {
            unknown,
            known: known.into_iter().map(str::to_string).collect(),
        })
    }
}

impl Diagnostic for UnknownStreams {
    fn hint(&self) -> Option<String> {
        Some(if self.known.is_empty() {
            "there are no streams yet: create tasks with `metadata.streamId`".into()
        } else {
            const SHOWN: usize = 10;
            let mut list = self
                .known
                .iter()
                .take(SHOWN)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if self.known.len() > SHOWN {
                list.push_str(&format!(" and {} more", self.known.len() - SHOWN));
            }
            format!("the streams are: {list} (`orchestrate status` shows them)")
        })
    }

    fn exit_code(&self) -> i32 {
        exit_codes::NO_STREAMS
    }
}

/// The known id closest to `raw`, if it is close enough to be a plausible typo.
fn closest(raw: &str, known: &BTreeSet<&str>) -> Option<String> {
    let raw_lower = raw.trim().to_lowercase();
    known
        .iter()
        .map(|id| (strsim::levenshtein(&raw_lower, &id.to_lowercase()), *id))
        .filter(|(dist, id)| *dist <= (id.chars().count() / 3).max(2))
        .min()
        .map(|(_, id)| id.to_string())
}

/// A cycle as a path that starts and ends at the same (smallest) id, or `None`.
fn find_cycle(graph: &DiGraph<&str, ()>, nodes: &BTreeMap<&str, NodeIndex>) -> Option<Vec<String>> {
    let mut components = petgraph::algo::tarjan_scc(graph);
    components.retain(|c| c.len() > 1 || graph.contains_edge(c[0], c[0]));
    let component = components
        .into_iter()
        .min_by_key(|c| c.iter().map(|n| graph[*n]).min())?;
    let members: BTreeSet<&str> = component.iter().map(|n| graph[*n]).collect();
    let start = *members.first()?;
    // Depth-first search inside the component, visiting neighbours in id order, for a path back
    // to `start`. The edges point dependency → dependent; we report "X depends on Y" order
    // reversed so it reads as the work flows: A → B means B waits for A.
    let mut path = vec![start];
    let mut visited = BTreeSet::from([start]);
    if dfs_back(
        graph,
        nodes,
        &members,
        start,
        start,
        &mut path,
        &mut visited,
    ) {
        return Some(path.into_iter().map(str::to_string).collect());
    }
    None
}

fn dfs_back<'a>(
    graph: &DiGraph<&'a str, ()>,
    nodes: &BTreeMap<&str, NodeIndex>,
    members: &BTreeSet<&'a str>,
    start: &'a str,
    at: &'a str,
    path: &mut Vec<&'a str>,
    visited: &mut BTreeSet<&'a str>,
) -> bool {
    let mut next: Vec<&str> = graph
        .neighbors(nodes[at])
        .map(|n| graph[n])
        .filter(|n| members.contains(n))
        .collect();
    next.sort_unstable();
    for n in next {
        if n == start {
            path.push(n);
            return true;
        }
        if visited.insert(n) {
            path.push(n);
            if dfs_back(graph, nodes, members, start, n, path, visited) {
                return true;
            }
            path.pop();
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taskdb::TaskCounts;

    fn record(id: &str, deps: &[&str]) -> StreamRecord {
        StreamRecord {
            id: id.into(),
            name: id.into(),
            raw_dependencies: deps.iter().map(|d| d.to_string()).collect(),
            counts: TaskCounts::default(),
            blocked: vec![],
            phase: None,
            worktree_path: None,
            branch_name: None,
            verify: None,
            paused: false,
            files: vec![],
        }
    }

    fn snapshot(streams: &[(&str, &[&str])]) -> Snapshot {
        Snapshot {
            streams: streams.iter().map(|(id, deps)| record(id, deps)).collect(),
            warnings: vec![],
        }
    }

    fn diamond() -> Snapshot {
        snapshot(&[
            ("Stream-A", &[]),
            ("Stream-B", &["Stream-A"]),
            ("Stream-C", &["[Stream-A] Foundation"]),
            ("Stream-Z", &["Stream-B: Backend", "Stream-C"]),
        ])
    }

    #[test]
    fn diamond_depths_and_order() {
        let g = StreamGraph::build(&diamond()).unwrap();
        let order: Vec<(&str, usize)> = g.streams().iter().map(|s| (s.id(), s.depth)).collect();
        assert_eq!(
            order,
            vec![
                ("Stream-A", 0),
                ("Stream-B", 1),
                ("Stream-C", 1),
                ("Stream-Z", 2)
            ]
        );
        assert_eq!(
            g.get("Stream-Z").unwrap().dependencies,
            vec!["Stream-B", "Stream-C"]
        );
        assert_eq!(g.get("Stream-C").unwrap().dependencies, vec!["Stream-A"]);
        assert_eq!(g.levels().len(), 3);
    }

    #[test]
    fn unknown_dependency_names_stream_missing_id_and_suggestion() {
        let err = StreamGraph::build(&snapshot(&[
            ("Stream-A", &[]),
            ("Stream-B", &["Stream-X", "stream-a"]),
        ]))
        .unwrap_err();
        let GraphError::UnknownDependencies(list) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].stream, "Stream-B");
        assert_eq!(list[0].missing, "Stream-X");
        assert_eq!(list[0].suggestion.as_deref(), Some("Stream-A"));
        assert!(
            err.to_string().contains("did you mean `Stream-A`?"),
            "{err}"
        );
    }

    #[test]
    fn three_cycle_is_named_in_order() {
        let err = StreamGraph::build(&snapshot(&[
            ("A", &["C"]),
            ("B", &["A"]),
            ("C", &["B"]),
            ("D", &[]),
        ]))
        .unwrap_err();
        assert_eq!(
            err,
            GraphError::Cycle(vec!["A".into(), "B".into(), "C".into(), "A".into()])
        );
        assert_eq!(err.to_string(), "dependency cycle: A → B → C → A");
    }

    #[test]
    fn self_dependency_is_a_cycle() {
        let err = StreamGraph::build(&snapshot(&[("A", &["A"])])).unwrap_err();
        assert_eq!(err, GraphError::Cycle(vec!["A".into(), "A".into()]));
    }

    #[test]
    fn title_forms_resolve_and_ids_with_colons_work() {
        let known: BTreeSet<&str> = ["Stream-A", "ns:api"].into_iter().collect();
        assert_eq!(
            resolve_dependency("Stream-A: Foundation", &known),
            Some("Stream-A")
        );
        assert_eq!(
            resolve_dependency("[Stream-A] Foundation", &known),
            Some("Stream-A")
        );
        assert_eq!(resolve_dependency(" Stream-A ", &known), Some("Stream-A"));
        assert_eq!(
            resolve_dependency("ns:api: the API", &known),
            Some("ns:api")
        );
        assert_eq!(resolve_dependency("Stream-B", &known), None);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::taskdb::TaskCounts;

    /// Hostile-looking ids: path tricks, quotes, shell syntax, newlines, non-ASCII, colons.
    fn id() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z0-9 _./:\\-\\[\\]]{0,12}",
            Just("../etc".to_string()),
            Just("$(rm -rf ~)".to_string()),
            Just("a\nb".to_string()),
            Just("Ström ☃".to_string()),
            Just("[x] y: z".to_string()),
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn build_never_panics_and_orders_dependencies_first(
            streams in proptest::collection::vec((id(), proptest::collection::vec(id(), 0..4)), 0..12)
        ) {
            let snapshot = Snapshot {
                streams: streams
                    .into_iter()
                    .map(|(id, deps)| StreamRecord {
                        name: id.clone(),
                        id,
                        raw_dependencies: deps,
                        counts: TaskCounts::default(),
                        blocked: vec![],
                        phase: None,
                        worktree_path: None,
                        branch_name: None,
                        verify: None,
                        paused: false,
                        files: vec![],
                    })
                    .collect(),
                warnings: vec![],
            };
            if let Ok(graph) = StreamGraph::build(&snapshot) {
                let position: HashMap<&str, usize> =
                    graph.streams().iter().enumerate().map(|(i, s)| (s.id(), i)).collect();
                for s in graph.streams() {
                    for d in &s.dependencies {
                        prop_assert!(position[d.as_str()] < position[s.id()]);
                        prop_assert!(graph.get(d).unwrap().depth < s.depth);
                    }
                }
            }
        }

        #[test]
        fn resolve_dependency_never_panics(raw in any::<String>(), known in proptest::collection::vec(id(), 0..6)) {
            let known: BTreeSet<&str> = known.iter().map(String::as_str).collect();
            if let Some(id) = resolve_dependency(&raw, &known) {
                prop_assert!(known.contains(id));
            }
        }
    }
}
