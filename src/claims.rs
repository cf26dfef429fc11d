//! File claims: the paths a stream's tasks say they will touch (`metadata.files`), and the
//! streams that may run at the same time while claiming the same paths.
//!
//! Pure: a claim is text. It is normalised as text (never resolved against the filesystem, never
//! used to open anything) and shown escaped by `ui`. A claim covers itself and, read as a
//! folder, everything beneath it: `src/auth` overlaps `src/auth/login.rs`.

use serde::Serialize;

use crate::graph::StreamGraph;

/// Two streams that may run at the same time (neither reaches the other through its
/// dependencies) and claim overlapping paths. `earlier` comes first in the graph's display
/// order (depth, then id): with `strict_files` the later one waits for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overlap {
    pub earlier: String,
    pub later: String,
    /// The overlapping claims, the more specific of each overlapping pair, sorted.
    pub paths: Vec<String>,
}

/// The overlap in a sentence, unescaped: for warnings, which `ui` escapes as it prints them
/// (and JSON carries as data).
impl std::fmt::Display for Overlap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} and {} may run at the same time and both claim {}",
            self.earlier,
            self.later,
            self.paths.join(", ")
        )
    }
}

/// One claim as written, as text a comparison can use: trimmed, without leading `./` and
/// trailing `/`. `None` for a claim that names nothing (empty, `.`, `/`).
pub fn normalise(raw: &str) -> Option<String> {
    let mut path = raw.trim();
    while let Some(rest) = path.strip_prefix("./") {
        path = rest.trim_start_matches('/');
    }
    let path = path.trim_end_matches('/');
    (!path.is_empty() && path != ".").then(|| path.to_string())
}

/// Whether `outer` is `inner` or a folder holding it.
fn covers(outer: &str, inner: &str) -> bool {
    inner
        .strip_prefix(outer)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The overlapping claims of two sorted, deduplicated claim lists (the more specific path of
/// each overlapping pair).
pub fn overlapping(a: &[String], b: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for x in a {
        for y in b {
            if covers(x, y) {
                out.push(y.clone());
            } else if covers(y, x) {
                out.push(x.clone());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Every pair of streams of `graph` that may run at the same time and claim overlapping paths,
/// in display order. Only streams with claims are compared, so a graph without any costs a
/// scan.
pub fn find(graph: &StreamGraph) -> Vec<Overlap> {
    let claiming: Vec<_> = graph
        .streams()
        .iter()
        .filter(|s| !s.record.files.is_empty())
        .collect();
    let mut out = Vec::new();
    let claims: Vec<&[String]> = claiming.iter().map(|s| s.record.files.as_slice()).collect();
    for (i, j) in candidates(&claims) {
        let (earlier, later) = (claiming[i], claiming[j]);
        let paths = overlapping(&earlier.record.files, &later.record.files);
        if !paths.is_empty() && graph.may_run_together(earlier.id(), later.id()) {
            out.push(Overlap {
                earlier: earlier.id().to_string(),
                later: later.id().to_string(),
                paths,
            });
        }
    }
    out
}

/// The pairs (i < j, in order) of `claiming` that may overlap: one claims a path the other
/// claims, or a folder holding it. Found through an index of exact claims and each claim's
/// folders, so that thousands of streams cost their claims, not every pair (comparing every
/// pair made `status` 45× a raw read at 1,000 streams with a file a task).
///
/// The index maps a path to the first claim of it, and claims of the same path are chained
/// through `next` (no list allocated per path); it hashes with foldhash, not SipHash: at 20,000
/// claims SipHash and a `Vec` per path were a quarter of `status` (BENCHMARKS.md §2c).
fn candidates(claims: &[&[String]]) -> Vec<(usize, usize)> {
    /// A claim: which list it is in, and the next claim of the same path.
    struct Entry {
        list: usize,
        next: Option<usize>,
    }
    let total = claims.iter().map(|files| files.len()).sum();
    let mut first: foldhash::HashMap<&str, usize> = foldhash::HashMap::default();
    first.reserve(total);
    let mut entries: Vec<Entry> = Vec::with_capacity(total);
    for (i, files) in claims.iter().enumerate() {
        for path in *files {
            let at = entries.len();
            let next = first.insert(path.as_str(), at);
            entries.push(Entry { list: i, next });
        }
    }
    let mut pairs = Vec::new();
    for (j, files) in claims.iter().enumerate() {
        for path in *files {
            // The path itself and every folder holding it.
            let mut at = Some(path.len());
            while let Some(end) = at {
                let mut claim = first.get(&path[..end]).copied();
                while let Some(k) = claim {
                    let i = entries[k].list;
                    if i != j {
                        pairs.push((i.min(j), i.max(j)));
                    }
                    claim = entries[k].next;
                }
                at = path[..end].rfind('/');
            }
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

/// The overlaps that still matter: neither stream is complete or cancelled (they may yet
/// run at the same time).
pub fn open<'g>(
    graph: &'g StreamGraph,
    model: &crate::model::Model,
) -> impl Iterator<Item = &'g Overlap> {
    use crate::model::State;
    let open = |id: &str| {
        model
            .state(id)
            .is_some_and(|s| !matches!(s, State::Complete | State::Cancelled))
    };
    graph
        .overlaps()
        .iter()
        .filter(move |o| open(&o.earlier) && open(&o.later))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index finds exactly the pairs that comparing every pair finds.
    #[test]
    fn candidates_are_every_overlapping_pair() {
        let paths = [
            "src",
            "src/a.rs",
            "src/a",
            "src/a/b.rs",
            "src/ab.rs",
            "docs/x.md",
            "docs",
        ];
        let claims: Vec<Vec<String>> = (0..40usize)
            .map(|n| {
                let mut c: Vec<String> = (0..paths.len())
                    .filter(|k| (n * 7 + k * 3) % 5 == 0)
                    .map(|k| paths[(n + k) % paths.len()].to_string())
                    .collect();
                c.sort();
                c.dedup();
                c
            })
            .collect();
        let lists: Vec<&[String]> = claims.iter().map(Vec::as_slice).collect();
        let mut every = Vec::new();
        for i in 0..lists.len() {
            for j in i + 1..lists.len() {
                if !overlapping(lists[i], lists[j]).is_empty() {
                    every.push((i, j));
                }
            }
        }
        assert!(!every.is_empty());
        let found: Vec<_> = candidates(&lists)
            .into_iter()
            .filter(|&(i, j)| !overlapping(lists[i], lists[j]).is_empty())
            .collect();
        assert_eq!(found, every);
    }

    fn list(paths: &[&str]) -> Vec<String> {
        paths.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn claims_are_normalised_as_text() {
        assert_eq!(normalise(" ./src/x.rs ").as_deref(), Some("src/x.rs"));
        assert_eq!(normalise(".//src/").as_deref(), Some("src"));
        assert_eq!(normalise("../up").as_deref(), Some("../up"));
        assert_eq!(normalise("./"), None);
        assert_eq!(normalise("."), None);
        assert_eq!(normalise("/"), None);
        assert_eq!(normalise("  "), None);
    }

    #[test]
    fn a_folder_claims_what_is_beneath_it_but_not_its_namesakes() {
        assert_eq!(
            overlapping(
                &list(&["src/auth"]),
                &list(&["src/auth/login.rs", "src/authz.rs"])
            ),
            list(&["src/auth/login.rs"])
        );
        assert_eq!(
            overlapping(&list(&["a.rs", "b.rs"]), &list(&["b.rs", "c.rs"])),
            list(&["b.rs"])
        );
        assert!(overlapping(&list(&["a.rs"]), &list(&["a.rs.orig"])).is_empty());
    }
}
