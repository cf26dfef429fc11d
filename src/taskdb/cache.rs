//! The incremental view of a task database: what a long-lived reader (`start`, `status
//! --watch`) keeps so that a change of one task costs work in proportion to what changed,
//! not to the size of the database.
//!
//! Both stores are written by other programs and opened read-only, so nothing can be added to
//! them (no trigger, no index). What is kept instead:
//!
//! * every row's [`Mark`]: a hash of the columns the fold reads, the stream it counts in
//!   ([`Key`]) and whether its metadata is malformed;
//! * each key's rows, so that one stream's record can be folded again from its own rows, read
//!   by rowid, in the order a full read meets them.
//!
//! A refresh (only when `PRAGMA data_version` moved) reads the rows whose `updated_at` is at or
//! after the start of the previous read less [`SLACK`], and every row above the highest rowid
//! it knows (a row inserted with an old stamp, as an import or a hand-made `INSERT` makes it),
//! in one statement that SQLite filters
//! without handing the other rows out; of those, rows whose hash changed are re-marked, and the
//! streams they left or joined are folded again from their rows. `tc` stamps whole seconds,
//! so a second update within the same second keeps the same `updated_at`: rows stay in the
//! window for `SLACK` after their stamp and are compared by hash each time, so equal stamps
//! hide nothing.
//!
//! What that cannot see is a change that leaves `updated_at` behind (a hand-made `UPDATE`, an
//! archival, a deleted row, a change to tc's `streams`, `prds` or `task_dependencies`): a full
//! read replaces the whole cache at least every [`RESYNC_MIN`] while the database changes, and
//! no more often than keeps it under 1/[`RESYNC_FACTOR`] of the reader's time. A read owed when
//! the writes stop is still made: `has_changed` says so once it falls due. A worker's exit
//! is judged on a re-read of its stream's own rows ([`super::TaskDb::reread`]), so a hand-made
//! completion is never missed there.
//!
//! Invariant (held by the property tests in `tests.rs`): after any refresh that found nothing
//! a full read would have seen differently through `updated_at`, the view equals a full read.

use std::collections::{BTreeMap, BTreeSet};

// Every row of the database has a mark: the maps are looked up once per changed row and
// rebuilt on a full read, and SipHash was a measurable part of `start` while 2,000 workers
// wrote (BENCHMARKS.md §3b).
use foldhash::HashMap;
use std::hash::Hasher;
use std::time::{Duration, Instant, SystemTime};

use rusqlite::Connection;

use super::streams::StreamAccumulator;
use super::{Changes, Reader, Snapshot, SourceWarning, StreamRecord, TaskDbError};

/// How far before the previous read's start a refresh looks: a writer's stamp may be up to a
/// second older than the second it commits in (`tc` stamps whole seconds), and a writer may
/// take its stamp before it waits for the write lock.
pub(crate) const SLACK: Duration = Duration::from_secs(5);
/// A full read at least this often while the database changes.
pub(crate) const RESYNC_MIN: Duration = Duration::from_secs(1);
/// …and no more often than once per this many times its own cost.
pub(crate) const RESYNC_FACTOR: u32 = 50;

/// The stream a row counts in, before names are resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Key {
    /// Its `metadata.streamId` (both stores).
    Stream(String),
    /// `tc`: no `streamId`; the `streams.name` of its `stream_id`.
    RowName(String),
}

/// What the cache remembers of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mark {
    /// A hash of every column the fold reads.
    pub hash: u64,
    /// Where it counts; `None` for a row that is no stream task (or archived, or out of scope).
    pub key: Option<Key>,
    /// The warning a full read gives for it (metadata not JSON, `files` malformed).
    pub malformed: Option<SourceWarning>,
}

/// Hashes the columns of one row, as the fold reads them.
#[derive(Default)]
pub(crate) struct RowHasher(std::collections::hash_map::DefaultHasher);

impl RowHasher {
    pub fn text(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            None => self.0.write_u8(0),
            Some(v) => {
                self.0.write_u8(1);
                self.0.write(v.as_bytes());
                // The length ends the field, so that ("ab", "c") and ("a", "bc") differ.
                self.0.write_usize(v.len());
            }
        }
        self
    }

    pub fn int(&mut self, value: Option<i64>) -> &mut Self {
        match value {
            None => self.0.write_u8(0),
            Some(v) => {
                self.0.write_u8(2);
                self.0.write_i64(v);
            }
        }
        self
    }

    pub fn finish(&self) -> u64 {
        self.0.finish()
    }
}

/// Every row's mark, each key's rows, and the malformed rows (the warnings, in row order).
#[derive(Debug, Default)]
pub(crate) struct Marks {
    rows: HashMap<i64, Mark>,
    members: HashMap<Key, BTreeSet<i64>>,
    malformed: BTreeMap<i64, SourceWarning>,
    /// The highest rowid ever marked: a row above it is new, whatever its `updated_at`.
    max_rowid: i64,
}

impl Marks {
    pub fn get(&self, rowid: i64) -> Option<&Mark> {
        self.rows.get(&rowid)
    }

    /// Records `mark` for `rowid` (`None`: the row is gone); returns the keys whose rows
    /// changed (the one it left and the one it joined), and whether the warnings changed.
    pub fn set(&mut self, rowid: i64, mark: Option<Mark>) -> (Vec<Key>, bool) {
        if mark.is_some() {
            self.max_rowid = self.max_rowid.max(rowid);
        }
        let old = match &mark {
            Some(m) => self.rows.insert(rowid, m.clone()),
            None => self.rows.remove(&rowid),
        };
        let (old_key, old_bad) = old.map_or((None, None), |m| (m.key, m.malformed));
        let (new_key, new_bad) = mark.map_or((None, None), |m| (m.key, m.malformed));
        let mut keys = Vec::new();
        if old_key != new_key {
            if let Some(k) = &old_key
                && let Some(rows) = self.members.get_mut(k)
            {
                rows.remove(&rowid);
                if rows.is_empty() {
                    self.members.remove(k);
                }
            }
            if let Some(k) = &new_key {
                self.members.entry(k.clone()).or_default().insert(rowid);
            }
        }
        // A row that stays in its stream but changed is that stream's change too.
        keys.extend(old_key.clone());
        if new_key != old_key {
            keys.extend(new_key);
        }
        let warnings = old_bad != new_bad;
        if warnings {
            match new_bad {
                Some(warning) => self.malformed.insert(rowid, warning),
                None => self.malformed.remove(&rowid),
            };
        }
        (keys, warnings)
    }

    /// The rows of `key`, in rowid order (the order a full read folds them in).
    pub fn members(&self, key: &Key) -> Vec<i64> {
        self.members
            .get(key)
            .map(|rows| rows.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The highest rowid marked so far (rows above it are new).
    pub fn max_rowid(&self) -> i64 {
        self.max_rowid
    }

    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        self.members.keys()
    }

    /// The warnings a full read gives: one per malformed row, in row order.
    pub fn warnings(&self) -> Vec<SourceWarning> {
        self.malformed.values().cloned().collect()
    }
}

/// How a store writes `updated_at`, for writing a bound it compares correctly with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stamp {
    /// `2026-01-09T12:34:56.789Z` (the legacy store, `orchestrate task set`).
    Iso,
    /// `2026-01-09 12:34:56` (`tc`: SQLite's `datetime('now')`).
    Sql,
}

impl Stamp {
    /// The form of `text`, if it is one of the two.
    pub fn of(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        let digits =
            |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
        let shape = b.len() >= 19
            && digits(0..4)
            && b[4] == b'-'
            && digits(5..7)
            && b[7] == b'-'
            && digits(8..10)
            && digits(11..13)
            && b[13] == b':'
            && digits(14..16)
            && b[16] == b':'
            && digits(17..19);
        match b.get(10) {
            Some(b'T') if shape => Some(Self::Iso),
            Some(b' ') if shape => Some(Self::Sql),
            _ => None,
        }
    }

    /// `at` in this form, to the second: a prefix of every stamp of that second or later.
    pub fn format(self, at: SystemTime) -> Option<String> {
        let ts = jiff::Timestamp::try_from(at).ok()?;
        Some(match self {
            Self::Iso => ts.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
            Self::Sql => ts.strftime("%Y-%m-%d %H:%M:%S").to_string(),
        })
    }
}

/// The kept state of one long-lived reader.
pub(crate) struct Cache {
    pub marks: Marks,
    /// `PRAGMA data_version` inside the read the view reflects.
    pub version: i64,
    /// When that read began (this process's clock).
    pub read_at: SystemTime,
    /// The form of the newest row's `updated_at`; `None`: unknown, every row is looked at.
    pub stamp: Option<Stamp>,
    /// When the last full read ended, and what it cost.
    pub full_at: Instant,
    pub full_cost: Duration,
    /// The database changed since the last full read (a refresh read only its window): a
    /// full read is owed, even if nothing is written again.
    pub unsynced: bool,
}

impl Cache {
    /// Whether the next read (the database changed) must be a full one: the last full read is
    /// at least `min` old, and at least [`RESYNC_FACTOR`] times its own cost.
    pub fn resync_due(&self, min: Duration) -> bool {
        self.full_at.elapsed() >= min.max(self.full_cost.saturating_mul(RESYNC_FACTOR))
    }

    /// Whether a refresh that sees `version` must read in full: something changed since the
    /// last full read and one is due.
    pub fn full_due(&self, version: i64, min: Duration) -> bool {
        (self.version != version || self.unsynced) && self.resync_due(min)
    }

    /// The lower bound on `updated_at` of the rows a refresh looks at.
    pub fn since(&self) -> Option<String> {
        let at = self.read_at.checked_sub(SLACK)?;
        self.stamp?.format(at)
    }
}

/// Folds the streams of `keys` again from their rows, read by rowid; a row found changed on
/// the way is re-marked, and the stream it joined (and any stream linked to it) is folded too.
/// The records by stream id (`None`: the stream has no rows left).
pub(crate) fn refold(
    reader: &dyn Reader,
    conn: &Connection,
    marks: &mut Marks,
    keys: Vec<Key>,
) -> Result<Vec<(String, Option<StreamRecord>)>, TaskDbError> {
    let mut work: BTreeSet<Key> = keys.into_iter().collect();
    let mut out: BTreeMap<String, Option<StreamRecord>> = BTreeMap::new();
    while let Some(key) = work.pop_first() {
        // A row placed by its stream row's name: only a full read places it (the caller
        // asks `partial_ok` afterwards).
        let Key::Stream(label) = &key else {
            continue;
        };
        let mut acc = StreamAccumulator::default();
        for rowid in marks.members(&key) {
            let mark = reader.fold_row(conn, rowid, &mut acc)?;
            let old = marks.get(rowid);
            if old == mark.as_ref() {
                continue;
            }
            // Changed without its `updated_at` saying so (a hand-made edit).
            let moved = old.map(|m| &m.key) != mark.as_ref().map(|m| &m.key);
            let (joined, _) = marks.set(rowid, mark);
            work.extend(joined.into_iter().filter(|k| *k != key));
            if moved {
                work.extend(reader.linked(&[rowid], marks));
            }
        }
        let record = acc.take(label).map(|r| reader.finish(r, marks));
        out.insert(label.clone(), record);
    }
    Ok(out.into_iter().collect())
}

/// Replaces the records of `labels` in `view` (sorted by id) with `records` (`None`: the
/// stream is gone) and says what changed.
pub(crate) fn apply(
    view: &mut Snapshot,
    records: Vec<(String, Option<StreamRecord>)>,
    changes: &mut Changes,
) {
    for (label, record) in records {
        let at = view.streams.binary_search_by(|s| s.id.as_str().cmp(&label));
        match (at, record) {
            (Ok(i), Some(new)) => {
                let old = &mut view.streams[i];
                if *old != new {
                    changes.structure |= old.raw_dependencies != new.raw_dependencies;
                    changes.streams.insert(label);
                    *old = new;
                }
            }
            (Ok(i), None) => {
                view.streams.remove(i);
                changes.structure = true;
                changes.streams.insert(label);
            }
            (Err(i), Some(new)) => {
                view.streams.insert(i, new);
                changes.structure = true;
                changes.streams.insert(label);
            }
            (Err(_), None) => {}
        }
    }
}

/// What differs between two views of the same database.
pub(crate) fn diff(old: &Snapshot, new: &Snapshot) -> Changes {
    let mut changes = Changes::default();
    let mut before: HashMap<&str, &StreamRecord> =
        old.streams.iter().map(|s| (s.id.as_str(), s)).collect();
    for s in &new.streams {
        match before.remove(s.id.as_str()) {
            Some(o) if o == s => {}
            Some(o) => {
                changes.structure |= o.raw_dependencies != s.raw_dependencies;
                changes.streams.insert(s.id.clone());
            }
            None => {
                changes.structure = true;
                changes.streams.insert(s.id.clone());
            }
        }
    }
    for gone in before.into_keys() {
        changes.structure = true;
        changes.streams.insert(gone.to_string());
    }
    changes.warnings = old.warnings != new.warnings;
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_told_apart_and_bounds_sort_before_their_second() {
        assert_eq!(Stamp::of("2026-01-09T12:34:56.789Z"), Some(Stamp::Iso));
        assert_eq!(Stamp::of("2026-01-09 12:34:56"), Some(Stamp::Sql));
        assert_eq!(Stamp::of("now"), None);
        assert_eq!(Stamp::of("2026-01-09"), None);
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_962_096);
        let iso = Stamp::Iso.format(at).unwrap();
        assert_eq!(iso, "2026-01-09T12:34:56");
        assert!(iso.as_str() <= "2026-01-09T12:34:56.000Z");
        assert!(iso.as_str() > "2026-01-09T12:34:55.999Z");
        let sql = Stamp::Sql.format(at).unwrap();
        assert_eq!(sql, "2026-01-09 12:34:56");
        assert!(sql.as_str() <= "2026-01-09 12:34:56");
        assert!(sql.as_str() > "2026-01-09 12:34:55");
    }

    #[test]
    fn marks_follow_rows_between_streams_and_warnings() {
        let mut marks = Marks::default();
        let a = Key::Stream("A".into());
        let b = Key::Stream("B".into());
        let mark = |key: &Key, hash| Mark {
            hash,
            key: Some(key.clone()),
            malformed: None,
        };
        assert_eq!(marks.set(2, Some(mark(&a, 1))), (vec![a.clone()], false));
        marks.set(1, Some(mark(&a, 1)));
        assert_eq!(marks.members(&a), vec![1, 2]);
        // Moving a row touches both streams.
        assert_eq!(
            marks.set(2, Some(mark(&b, 2))),
            (vec![a.clone(), b.clone()], false)
        );
        assert_eq!(marks.members(&a), vec![1]);
        let bad = Mark {
            hash: 3,
            key: None,
            malformed: Some(SourceWarning::MalformedMetadata {
                task_id: "T1".into(),
            }),
        };
        assert_eq!(marks.set(1, Some(bad)), (vec![a.clone()], true));
        assert!(marks.members(&a).is_empty());
        assert_eq!(marks.warnings().len(), 1);
        assert_eq!(marks.set(1, None), (vec![], true));
        assert!(marks.warnings().is_empty());
    }
}
