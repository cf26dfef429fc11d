//! Property tests of the incremental view (`cache.rs`): after any sequence of writes the view a
//! refresh keeps equals a full read of the same database, for both stores, and the changes it
//! reports are exactly the streams whose records differ.
//!
//! Writes are made as the stores' own tools make them (`updated_at` set by SQLite's clock in
//! the store's form, so that `tc`'s whole seconds make several updates share a stamp), plus
//! the writes no `updated_at` reveals (a hand-made `UPDATE`, a deleted row, a `tc` stream
//! paused, an edge added): those must show after a full read is due, and a stream's own rows
//! must show at once through `reread`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;
use rusqlite::{Connection, params};

use super::{Changes, Snapshot, TaskDb, TaskSource};

const STREAMS: [&str; 4] = ["A", "B", "C", " D "];
const STATUSES: [&str; 5] = [
    "pending",
    "in_progress",
    "blocked",
    "completed",
    "cancelled",
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Legacy,
    Tc,
}

/// A task's metadata, as the generator picks it.
#[derive(Debug, Clone)]
enum Meta {
    Stream {
        stream: usize,
        deps: Vec<usize>,
        /// Which optional keys it carries (name, phase, verify, blocked reason).
        extras: u8,
    },
    /// Not JSON.
    Malformed,
    Null,
    /// JSON, but no object.
    Array,
    /// An object without `streamId` (a tc task then goes by its stream row's name).
    NoStream,
    /// A `streamName` that is no string: the typed read finds no stream task.
    BadName(usize),
    /// `files` that are no paths: a warning naming the task and its stream.
    BadFiles(usize),
}

impl Meta {
    fn text(&self) -> Option<String> {
        Some(match self {
            Self::Stream {
                stream,
                deps,
                extras,
            } => {
                let mut m = serde_json::json!({ "streamId": STREAMS[*stream] });
                let deps: Vec<&str> = deps.iter().map(|d| STREAMS[*d]).collect();
                if extras & 1 != 0 {
                    m["streamName"] = format!("Stream {}", STREAMS[*stream]).into();
                }
                if extras & 2 != 0 {
                    m["streamDependencies"] = deps.into();
                } else {
                    m["dependencies"] = deps.into();
                }
                if extras & 4 != 0 {
                    m["verify"] = "make check".into();
                    m["streamPhase"] = "parallel".into();
                }
                if extras & 8 != 0 {
                    m["blockedReason"] = "needs a key".into();
                }
                m.to_string()
            }
            Self::Malformed => r#"{"streamId": "A""#.to_string(),
            Self::Null => return None,
            Self::Array => "[1, 2]".to_string(),
            Self::NoStream => r#"{"files": ["a.rs"]}"#.to_string(),
            Self::BadFiles(s) => {
                serde_json::json!({ "streamId": STREAMS[*s], "files": {"a": 1} }).to_string()
            }
            Self::BadName(s) => {
                serde_json::json!({ "streamId": STREAMS[*s], "streamName": 5 }).to_string()
            }
        })
    }
}

/// One write; `task` picks an existing task by index (modulo how many there are).
#[derive(Debug, Clone)]
enum Op {
    Insert(Meta, usize),
    Status(usize, usize),
    SetMeta(usize, Meta),
    /// Legacy: archived with `updated_at` set; tc: its stream row (`stream_id`) changed.
    Archive(usize),
    /// tc: its PRD changed (scope); legacy: its title changed.
    Prd(usize, usize),
    /// Status set without `updated_at` (a hand-made `UPDATE`).
    HandStatus(usize, usize),
    Delete(usize),
    /// tc: a stream row paused, archived or renamed; an edge added. Legacy: archived by hand.
    Tables(usize, usize),
    /// The reader refreshes here.
    Refresh,
}

fn meta() -> impl Strategy<Value = Meta> {
    prop_oneof![
        6 => (0..STREAMS.len(), proptest::collection::vec(0..STREAMS.len(), 0..3), 0u8..16)
            .prop_map(|(stream, deps, extras)| Meta::Stream { stream, deps, extras }),
        1 => Just(Meta::Malformed),
        1 => Just(Meta::Null),
        1 => Just(Meta::Array),
        1 => Just(Meta::NoStream),
        1 => (0..STREAMS.len()).prop_map(Meta::BadName),
        1 => (0..STREAMS.len()).prop_map(Meta::BadFiles),
    ]
}

/// Writes the stores' tools make (each sets `updated_at`).
fn tool_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (meta(), 0..STATUSES.len()).prop_map(|(m, s)| Op::Insert(m, s)),
        4 => (any::<usize>(), 0..STATUSES.len()).prop_map(|(t, s)| Op::Status(t, s)),
        2 => (any::<usize>(), meta()).prop_map(|(t, m)| Op::SetMeta(t, m)),
        1 => any::<usize>().prop_map(Op::Archive),
        1 => (any::<usize>(), 0..3usize).prop_map(|(t, p)| Op::Prd(t, p)),
        3 => Just(Op::Refresh),
    ]
}

/// Any write, including those no `updated_at` reveals.
fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => tool_op(),
        1 => (any::<usize>(), 0..STATUSES.len()).prop_map(|(t, s)| Op::HandStatus(t, s)),
        1 => any::<usize>().prop_map(Op::Delete),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Op::Tables(a, b)),
    ]
}

/// A database of one kind with a writer, as its tool keeps one.
struct Db {
    _dir: tempfile::TempDir,
    path: PathBuf,
    kind: Kind,
    conn: Connection,
}

impl Db {
    fn new(kind: Kind) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tasks.db");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        match kind {
            Kind::Legacy => conn.execute_batch(super::TASK_COPILOT_SCHEMA).unwrap(),
            Kind::Tc => {
                conn.execute_batch(super::TC_SCHEMA).unwrap();
                conn.execute_batch(
                    "INSERT INTO prds (id, title, status) VALUES (1, 'P', 'active'),
                        (2, 'Old', 'archived'), (3, 'Done', 'completed');
                     INSERT INTO streams (id, name, status) VALUES (1, 'A', 'active'),
                        (2, 'Stream B', 'active'), (3, 'Gamma', 'paused');",
                )
                .unwrap();
            }
        }
        let db = Self {
            _dir: dir,
            path,
            kind,
            conn,
        };
        // A first row, so the reader can tell how this store writes `updated_at`.
        db.insert(
            &Meta::Stream {
                stream: 0,
                deps: vec![],
                extras: 1,
            },
            0,
        );
        db
    }

    fn now(&self) -> &'static str {
        match self.kind {
            Kind::Legacy => "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            Kind::Tc => "datetime('now')",
        }
    }

    fn ids(&self) -> Vec<String> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM tasks ORDER BY rowid")
            .unwrap();
        stmt.query_map([], |r| r.get::<_, rusqlite::types::Value>(0))
            .unwrap()
            .map(|v| match v.unwrap() {
                rusqlite::types::Value::Text(t) => t,
                rusqlite::types::Value::Integer(i) => i.to_string(),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    /// The task picked by `n`, if there is any.
    fn pick(&self, n: usize) -> Option<String> {
        let ids = self.ids();
        (!ids.is_empty()).then(|| ids[n % ids.len()].clone())
    }

    fn insert(&self, meta: &Meta, status: usize) {
        let status = STATUSES[status];
        match self.kind {
            Kind::Legacy => {
                let n: i64 = self
                    .conn
                    .query_row("SELECT count(*) FROM tasks", [], |r| r.get(0))
                    .unwrap();
                self.conn
                    .execute(
                        &format!(
                            "INSERT INTO tasks (id, title, status, blocked_reason, metadata,
                                created_at, updated_at)
                             VALUES (?1, ?2, ?3, ?4, ?5, {now}, {now})",
                            now = self.now()
                        ),
                        params![
                            format!("TASK-{n:04}-{}", rand_suffix()),
                            format!("Task {n}"),
                            status,
                            (status == "blocked").then_some("waiting"),
                            meta.text()
                        ],
                    )
                    .unwrap();
            }
            Kind::Tc => {
                self.conn
                    .execute(
                        "INSERT INTO tasks (prd_id, stream_id, title, status, metadata)
                         VALUES (1, ?1, 'Task', ?2, ?3)",
                        params![(status.len() % 3) as i64 + 1, status, meta.text()],
                    )
                    .unwrap();
            }
        }
    }

    fn update(&self, id: &str, set: &str, value: &dyn rusqlite::ToSql, bump: bool) {
        let stamp = if bump {
            format!(", updated_at = {}", self.now())
        } else {
            String::new()
        };
        self.conn
            .execute(
                &format!("UPDATE tasks SET {set} = ?2{stamp} WHERE id = ?1"),
                params![id, value],
            )
            .unwrap();
    }

    /// Applies `op`; true for a refresh point.
    fn apply(&self, op: &Op) -> bool {
        let pick = |n: &usize| self.pick(*n);
        match op {
            Op::Refresh => return true,
            Op::Insert(meta, status) => self.insert(meta, *status),
            Op::Status(t, s) => {
                if let Some(id) = pick(t) {
                    self.update(&id, "status", &STATUSES[*s], true);
                }
            }
            Op::SetMeta(t, m) => {
                if let Some(id) = pick(t) {
                    self.update(&id, "metadata", &m.text(), true);
                }
            }
            Op::Archive(t) => {
                if let Some(id) = pick(t) {
                    match self.kind {
                        Kind::Legacy => self.update(&id, "archived", &1, true),
                        Kind::Tc => {
                            let row = [None, Some(1), Some(2), Some(3)][t % 4];
                            self.update(&id, "stream_id", &row, true)
                        }
                    }
                }
            }
            Op::Prd(t, p) => {
                if let Some(id) = pick(t) {
                    match self.kind {
                        Kind::Legacy => self.update(&id, "title", &format!("T{p}"), true),
                        Kind::Tc => {
                            let prd = (*p > 0).then_some(*p as i64);
                            self.update(&id, "prd_id", &prd, true)
                        }
                    }
                }
            }
            Op::HandStatus(t, s) => {
                if let Some(id) = pick(t) {
                    self.update(&id, "status", &STATUSES[*s], false);
                }
            }
            Op::Delete(t) => {
                if let Some(id) = pick(t) {
                    if self.kind == Kind::Tc {
                        self.conn
                            .execute(
                                "DELETE FROM task_dependencies WHERE task_id = ?1 OR depends_on = ?1",
                                [&id],
                            )
                            .unwrap();
                    }
                    self.conn
                        .execute("DELETE FROM tasks WHERE id = ?1", [&id])
                        .unwrap();
                }
            }
            Op::Tables(a, b) => self.tables(*a, *b),
        }
        false
    }

    /// A write to what is not a task row (tc), or an archival by hand (legacy).
    fn tables(&self, a: usize, b: usize) {
        match self.kind {
            Kind::Legacy => {
                if let Some(id) = self.pick(a) {
                    self.update(&id, "archived", &((b % 2) as i64), false);
                }
            }
            Kind::Tc => match b % 4 {
                0 => {
                    let status = ["active", "paused", "archived"][a % 3];
                    self.conn
                        .execute(
                            "UPDATE streams SET status = ?2 WHERE id = ?1",
                            params![(b % 3) as i64 + 1, status],
                        )
                        .unwrap();
                }
                1 => {
                    self.conn
                        .execute(
                            "UPDATE streams SET name = ?2 WHERE id = ?1",
                            params![(a % 3) as i64 + 1, ["A", "B", "Gamma", "Delta"][b % 4]],
                        )
                        .map(drop)
                        .unwrap_or(()); // a name another row holds: UNIQUE refuses, as tc would
                }
                _ => {
                    if let (Some(x), Some(y)) = (self.pick(a), self.pick(b / 4)) {
                        self.conn
                            .execute(
                                "INSERT OR IGNORE INTO task_dependencies (task_id, depends_on)
                                 SELECT ?1, ?2 WHERE ?1 != ?2",
                                params![x, y],
                            )
                            .unwrap();
                    }
                }
            },
        }
    }

    fn full(&self) -> Snapshot {
        TaskDb::open(&self.path, "test")
            .unwrap()
            .snapshot()
            .unwrap()
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// The streams whose records differ between two views, and whether the graph must change.
fn expected_changes(old: &Snapshot, new: &Snapshot) -> Changes {
    let ids: BTreeSet<&str> = old
        .streams
        .iter()
        .chain(&new.streams)
        .map(|s| s.id.as_str())
        .collect();
    let mut changes = Changes::default();
    for id in ids {
        match (old.stream(id), new.stream(id)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => {
                changes.structure |= a.raw_dependencies != b.raw_dependencies;
                changes.streams.insert(id.to_string());
            }
            _ => {
                changes.structure = true;
                changes.streams.insert(id.to_string());
            }
        }
    }
    changes.warnings = old.warnings != new.warnings;
    changes
}

/// A reader that never reads in full unless told to.
fn reader(path: &Path) -> TaskDb {
    let mut db = TaskDb::open(path, "test").unwrap();
    db.set_resync_min(Duration::MAX);
    db
}

/// Refreshes `db`, checks what it reports against `before`, and returns its view.
fn refresh_checked(db: &mut TaskDb, before: &Snapshot) -> Result<Snapshot, TestCaseError> {
    let changes = db.refresh().unwrap();
    let view = db.view().clone();
    prop_assert_eq!(changes, expected_changes(before, &view));
    Ok(view)
}

fn tool_writes_show_at_once(kind: Kind, ops: &[Op]) -> Result<(), TestCaseError> {
    let db = Db::new(kind);
    let mut inc = reader(&db.path);
    let mut seen = refresh_checked(&mut inc, &Snapshot::default())?;
    for op in ops.iter().chain([&Op::Refresh]) {
        if db.apply(op) {
            seen = refresh_checked(&mut inc, &seen)?;
            prop_assert_eq!(&seen, &db.full(), "after {:?}", ops);
        }
    }
    Ok(())
}

fn every_write_shows_by_the_next_full_read(kind: Kind, ops: &[Op]) -> Result<(), TestCaseError> {
    let db = Db::new(kind);
    let mut inc = reader(&db.path);
    let mut seen = refresh_checked(&mut inc, &Snapshot::default())?;
    for op in ops.iter().chain([&Op::Refresh]) {
        if !db.apply(op) {
            continue;
        }
        seen = refresh_checked(&mut inc, &seen)?;
        let full = db.full();
        // Each stream's own rows, read again, are exact for the rows it had.
        let streams: Vec<String> = seen.streams.iter().map(|s| s.id.clone()).collect();
        let changes = inc.reread(&streams).unwrap();
        let reread = inc.view().clone();
        prop_assert_eq!(changes, expected_changes(&seen, &reread));
        for s in &reread.streams {
            if let Some(f) = full.stream(&s.id)
                && kind == Kind::Legacy
            {
                prop_assert_eq!(s.counts, f.counts, "{} after {:?}", s.id, ops);
            }
        }
        // A full read when one is due.
        inc.set_resync_min(Duration::ZERO);
        seen = refresh_checked(&mut inc, &reread)?;
        inc.set_resync_min(Duration::MAX);
        if seen != full {
            // The full read owed is not due yet (it waits 50 times its own cost): the probe
            // says when it is, with nothing written meanwhile.
            inc.set_resync_min(Duration::ZERO);
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            // The first probe may answer for the writes already read; the later ones only
            // for the full read falling due.
            inc.has_changed().unwrap();
            while !inc.has_changed().unwrap() {
                prop_assert!(
                    std::time::Instant::now() < deadline,
                    "no full read fell due"
                );
            }
            seen = refresh_checked(&mut inc, &seen)?;
            inc.set_resync_min(Duration::MAX);
        }
        prop_assert_eq!(&seen, &db.full(), "after {:?}", ops);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn legacy_tool_writes_show_at_once(ops in proptest::collection::vec(tool_op(), 1..24)) {
        tool_writes_show_at_once(Kind::Legacy, &ops)?;
    }

    #[test]
    fn tc_tool_writes_show_at_once(ops in proptest::collection::vec(tool_op(), 1..24)) {
        tool_writes_show_at_once(Kind::Tc, &ops)?;
    }

    #[test]
    fn legacy_every_write_shows_by_the_next_full_read(
        ops in proptest::collection::vec(any_op(), 1..16)
    ) {
        every_write_shows_by_the_next_full_read(Kind::Legacy, &ops)?;
    }

    #[test]
    fn tc_every_write_shows_by_the_next_full_read(ops in proptest::collection::vec(any_op(), 1..16)) {
        every_write_shows_by_the_next_full_read(Kind::Tc, &ops)?;
    }
}

/// tc stamps whole seconds: a second update within the second of the first, after the reader
/// saw the first, leaves `updated_at` as it was.
#[test]
fn a_second_tc_update_within_the_same_second_is_seen() {
    let db = Db::new(Kind::Tc);
    let id = db.pick(0).unwrap();
    let mut inc = reader(&db.path);
    inc.refresh().unwrap();
    let stamp = |db: &Db| -> String {
        db.conn
            .query_row("SELECT updated_at FROM tasks WHERE id = ?1", [&id], |r| {
                r.get(0)
            })
            .unwrap()
    };
    // Retried until both updates land in one second (a second boundary may fall between).
    for _ in 0..20 {
        db.conn
            .execute(
                "UPDATE tasks SET status = 'in_progress', updated_at = '2026-01-01 00:00:00' WHERE id = ?1",
                [&id],
            )
            .unwrap();
        inc.refresh().unwrap();
        db.update(&id, "status", &"in_progress", true);
        let first = stamp(&db);
        inc.refresh().unwrap();
        assert_eq!(inc.view().streams[0].counts.in_progress, 1);
        db.update(&id, "status", &"completed", true);
        if stamp(&db) != first {
            continue;
        }
        let changes = inc.refresh().unwrap();
        assert!(changes.streams.contains("A"), "{changes:?}");
        assert_eq!(inc.view().streams[0].counts.completed, 1);
        assert_eq!(inc.view(), &db.full());
        return;
    }
    panic!("never two updates within one second");
}

/// The database replaced by another file: the reader reopens it and says what differs.
#[test]
fn a_replaced_file_is_read_in_full_and_compared() {
    let db = Db::new(Kind::Legacy);
    let mut inc = reader(&db.path);
    inc.refresh().unwrap();
    let other = Db::new(Kind::Legacy);
    other.insert(
        &Meta::Stream {
            stream: 1,
            deps: vec![0],
            extras: 0,
        },
        3,
    );
    let copy = db.path.with_extension("new");
    other
        .conn
        .execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
        .unwrap();
    drop(other);
    std::fs::rename(&copy, &db.path).unwrap();
    let _ = std::fs::remove_file(db.path.with_extension("db-wal"));
    let changes = inc.refresh().unwrap();
    assert!(
        changes.structure && changes.streams.contains("B"),
        "{changes:?}"
    );
    assert_eq!(inc.view(), &db.full());
}

/// One stream's tasks are read by rowid from the rows the view knows, in the store's order,
/// and agree with a read of every task.
#[test]
fn one_streams_tasks_agree_with_all_tasks() {
    for kind in [Kind::Legacy, Kind::Tc] {
        let db = Db::new(kind);
        for (i, s) in [1, 0, 2, 1, 0, 3].into_iter().enumerate() {
            db.insert(
                &Meta::Stream {
                    stream: s,
                    deps: vec![],
                    extras: 0,
                },
                i % 5,
            );
        }
        let mut inc = reader(&db.path);
        let all = inc.tasks(None).unwrap();
        for s in STREAMS {
            let id = s.trim();
            let mine = inc.tasks(Some(id)).unwrap();
            let expected: Vec<_> = all
                .iter()
                .filter(|t| t.stream_id.as_deref() == Some(id))
                .cloned()
                .collect();
            assert_eq!(mine, expected, "{kind:?} {id}");
            assert!(!mine.is_empty(), "{kind:?} {id}");
        }
    }
}

/// tc: a task another stream's task depends on moves to a third stream; the dependent stream's
/// dependencies follow it without a full read.
#[test]
fn a_tc_edge_follows_the_task_it_names() {
    let db = Db::new(Kind::Tc);
    let stream = |s| Meta::Stream {
        stream: s,
        deps: vec![],
        extras: 0,
    };
    db.insert(&stream(1), 0);
    let ids = db.ids();
    let (a, b) = (&ids[0], &ids[1]);
    db.conn
        .execute(
            "INSERT INTO task_dependencies (task_id, depends_on) VALUES (?1, ?2)",
            [a, b],
        )
        .unwrap();
    let mut inc = reader(&db.path);
    inc.refresh().unwrap();
    assert_eq!(inc.view().stream("A").unwrap().raw_dependencies, ["B"]);
    db.update(b, "metadata", &stream(2).text(), true);
    let changes = inc.refresh().unwrap();
    assert_eq!(inc.view().stream("A").unwrap().raw_dependencies, ["C"]);
    assert!(
        changes.structure && changes.streams.contains("A"),
        "{changes:?}"
    );
    assert_eq!(inc.view(), &db.full());
}

/// A writer may take its stamp before it waits for the write lock: a row committed after the
/// reader's last look but stamped a few seconds before it is still seen.
#[test]
fn a_row_stamped_before_the_last_read_but_committed_after_is_seen() {
    for kind in [Kind::Legacy, Kind::Tc] {
        let db = Db::new(kind);
        let id = db.pick(0).unwrap();
        let mut inc = reader(&db.path);
        inc.refresh().unwrap();
        let stamp = match kind {
            Kind::Legacy => "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-3 seconds')",
            Kind::Tc => "datetime('now', '-3 seconds')",
        };
        db.conn
            .execute(
                &format!(
                    "UPDATE tasks SET status = 'completed', updated_at = {stamp} WHERE id = ?1"
                ),
                [&id],
            )
            .unwrap();
        inc.refresh().unwrap();
        assert_eq!(inc.view().streams[0].counts.completed, 1, "{kind:?}");
    }
}

/// A write no `updated_at` reveals (tc: a stream paused), seen by a refresh that read only what
/// changed: once a full read is due it shows, and the probe says so, even if nothing is written
/// after it (a quiet database once kept the old view for ever).
#[test]
fn a_hidden_write_shows_once_a_full_read_is_due_without_another_write() {
    let db = Db::new(Kind::Tc);
    let id = db.pick(0).unwrap();
    let mut inc = reader(&db.path);
    inc.refresh().unwrap();
    assert!(inc.has_changed().unwrap());
    assert!(!inc.view().streams[0].paused);
    db.conn
        .execute("UPDATE streams SET status = 'paused'", [])
        .unwrap();
    db.update(&id, "status", &"in_progress", true);
    assert!(inc.has_changed().unwrap());
    inc.refresh().unwrap();
    assert_eq!(inc.view().streams[0].counts.in_progress, 1);
    // Nothing more is written; a full read falls due (once 50 times its own cost has passed).
    inc.set_resync_min(Duration::ZERO);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !inc.has_changed().unwrap() {
        assert!(
            std::time::Instant::now() < deadline,
            "the probe never asked for the due read"
        );
    }
    let changes = inc.refresh().unwrap();
    assert!(changes.streams.contains("A"), "{changes:?}");
    assert!(inc.view().streams[0].paused);
    assert_eq!(inc.view(), &db.full());
    // And then it is quiet again.
    assert!(!inc.has_changed().unwrap());
}

/// A row inserted with an old `updated_at` (an import, a hand-made `INSERT`) is new all the
/// same: the next refresh sees it (a malformed one said mid-run was once missed this way).
#[test]
fn a_row_inserted_with_an_old_stamp_is_seen_at_once() {
    for kind in [Kind::Legacy, Kind::Tc] {
        let db = Db::new(kind);
        let mut inc = reader(&db.path);
        inc.refresh().unwrap();
        db.insert(&Meta::Malformed, 0);
        db.insert(
            &Meta::Stream {
                stream: 1,
                deps: vec![],
                extras: 0,
            },
            0,
        );
        db.conn
            .execute("UPDATE tasks SET updated_at = '2020-01-01 00:00:00'", [])
            .unwrap();
        let changes = inc.refresh().unwrap();
        assert!(
            changes.warnings && changes.streams.contains("B"),
            "{kind:?} {changes:?}"
        );
        assert_eq!(inc.view(), &db.full(), "{kind:?}");
    }
}
