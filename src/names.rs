//! Stream id → branch `stream/<slug>`, worktree folder `.claude/worktrees/<slug>` and worktree
//! name `<slug>`.
//!
//! Stream ids are free text; refs, folder names and libgit2 worktree names are not (no `/` in a
//! worktree name, no `..`, no trailing `.lock`, no control characters, …). The mapping is pure and
//! deterministic, so any process derives the same names, and collision-free: whenever sanitising
//! changed the id, a short hash of the *original* id is appended, and an id that merely looks like
//! such a hashed slug is hashed too.

use std::path::{Path, PathBuf};

use crate::project::WORKTREES_DIR;

/// Prefix of every stream branch.
pub const BRANCH_PREFIX: &str = "stream/";
/// Longest slug stem kept before the hash suffix.
const MAX_STEM: usize = 48;
/// Hex digits of the hash suffix.
const HASH_LEN: usize = 10;

/// The git names of one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamNames {
    /// The stream id as written in the task database.
    pub stream: String,
    /// The sanitised id: the worktree name and folder name, and the branch suffix.
    pub slug: String,
}

impl StreamNames {
    pub fn new(stream: &str) -> Self {
        Self {
            stream: stream.to_string(),
            slug: slug(stream),
        }
    }

    /// `stream/<slug>`.
    pub fn branch(&self) -> String {
        format!("{BRANCH_PREFIX}{}", self.slug)
    }

    /// `refs/heads/stream/<slug>`.
    pub fn branch_ref(&self) -> String {
        format!("refs/heads/{}", self.branch())
    }

    /// The libgit2 worktree (admin) name: `.git/worktrees/<slug>`.
    pub fn worktree_name(&self) -> &str {
        &self.slug
    }

    /// `.claude/worktrees/<slug>`, relative to the project root.
    pub fn worktree_rel(&self) -> PathBuf {
        Path::new(WORKTREES_DIR).join(&self.slug)
    }

    /// Whether the names differ from the id (the mapping is then worth showing).
    pub fn sanitised(&self) -> bool {
        self.slug != self.stream
    }
}

/// The slug of a stream id (see the module doc).
pub fn slug(id: &str) -> String {
    let mut stem = String::with_capacity(id.len());
    for ch in id.chars() {
        let keep = ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.');
        let ch = if keep { ch } else { '-' };
        // Collapse runs of replaced characters and of dots (`..` is forbidden in refs).
        if (ch == '-' && stem.ends_with('-') && !keep) || (ch == '.' && stem.ends_with('.')) {
            continue;
        }
        stem.push(ch);
    }
    let mut stem = stem
        .trim_start_matches(['.', '-'])
        .trim_end_matches(['.', '-'])
        .to_string();
    while let Some(s) = stem.strip_suffix(".lock") {
        stem = s.trim_end_matches(['.', '-']).to_string();
    }
    if stem.len() > MAX_STEM {
        stem.truncate(MAX_STEM);
        stem = stem.trim_end_matches(['.', '-']).to_string();
    }
    if stem == id && !stem.is_empty() && !looks_hashed(id) {
        return stem;
    }
    let hash = format!("{:016x}", fnv1a(id.as_bytes()));
    if stem.is_empty() {
        format!("stream-{}", &hash[..HASH_LEN])
    } else {
        format!("{stem}-{}", &hash[..HASH_LEN])
    }
}

/// `<anything>-<HASH_LEN hex digits>`: the shape of a hashed slug.
fn looks_hashed(id: &str) -> bool {
    id.rsplit_once('-').is_some_and(|(_, tail)| {
        tail.len() == HASH_LEN && tail.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// FNV-1a, 64 bit: tiny, stable across versions and platforms (unlike `DefaultHasher`).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_everywhere(id: &str) {
        let n = StreamNames::new(id);
        assert!(
            crate::git::is_valid_ref_name(&n.branch_ref()),
            "{id:?} → invalid ref {}",
            n.branch_ref()
        );
        assert!(!n.slug.is_empty() && n.slug.len() <= MAX_STEM + 1 + HASH_LEN);
        assert!(!n.slug.contains('/') && !n.slug.contains(".."));
        assert!(!n.slug.starts_with('.') && !n.slug.ends_with(".lock"));
        assert!(n.slug.bytes().all(|b| b.is_ascii_graphic()));
    }

    #[test]
    fn plain_ids_are_kept() {
        for id in ["Stream-A", "stream_b", "v1.2", "Z"] {
            assert_eq!(slug(id), id);
            assert!(!StreamNames::new(id).sanitised());
        }
        assert_eq!(StreamNames::new("Stream-A").branch(), "stream/Stream-A");
        assert_eq!(
            StreamNames::new("Stream-A").worktree_rel(),
            PathBuf::from(".claude/worktrees/Stream-A")
        );
    }

    #[test]
    fn awkward_ids_become_valid_and_get_a_hash() {
        let ids = [
            "has space",
            "a/b",
            "../../etc",
            "..",
            "",
            "Ström-ü",
            "名前",
            "x.lock",
            "x.lock.lock",
            "tab\there",
            "nul\0x",
            "@{upstream}",
            "a~1^2:b?*[c\\",
            ".hidden",
            "-dash",
            "trailing.",
        ];
        for id in ids {
            valid_everywhere(id);
            assert!(StreamNames::new(id).sanitised(), "{id:?}");
        }
        let long = "x".repeat(500);
        valid_everywhere(&long);
        assert!(slug("has space").starts_with("has-space-"));
        assert!(slug("a/b").starts_with("a-b-"));
    }

    #[test]
    fn mapping_is_deterministic_and_collision_free() {
        assert_eq!(slug("a b"), slug("a b"));
        let ids = ["a b", "a/b", "a  b", "a-b", "a\tb", "a b ", "a?b"];
        let slugs: std::collections::BTreeSet<String> = ids.iter().map(|i| slug(i)).collect();
        assert_eq!(slugs.len(), ids.len(), "{slugs:?}");
        // An id shaped like a hashed slug cannot capture another id's slug.
        let hashed = slug("a b");
        assert_ne!(slug(&hashed), hashed);
    }
}
