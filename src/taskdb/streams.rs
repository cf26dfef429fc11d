//! Folding task rows into stream records, shared by both stores: the metadata keys a stream is
//! made of (`streamId`, `streamName`, `dependencies` ∪ `streamDependencies`, …), parsed without
//! building a `serde_json::Value`, and the per-stream aggregate.
//!
//! Invariants: a row whose metadata is malformed becomes a warning, never an error; dependencies
//! are unioned over a stream's tasks and sorted and deduplicated once, in [`StreamAccumulator::finish`].

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::{BlockedTask, Snapshot, SourceWarning, StreamRecord, TaskCounts, TaskStatus};

/// The metadata keys a stream is made of; everything else is skipped unparsed.
#[derive(Deserialize, Default)]
pub(crate) struct StreamMeta<'a> {
    #[serde(rename = "streamId", borrow, default)]
    pub stream_id: Option<IdValue<'a>>,
    #[serde(rename = "streamName", borrow, default)]
    pub stream_name: Option<Cow<'a, str>>,
    #[serde(rename = "streamPhase", borrow, default)]
    pub stream_phase: Option<Cow<'a, str>>,
    #[serde(rename = "worktreePath", borrow, default)]
    pub worktree_path: Option<Cow<'a, str>>,
    #[serde(rename = "branchName", borrow, default)]
    pub branch_name: Option<Cow<'a, str>>,
    /// The command this stream's work must pass before dependents start on it.
    #[serde(borrow, default)]
    pub verify: Option<Cow<'a, str>>,
    /// tc has no `blocked_reason` column: `orchestrate task set` keeps the reason here.
    #[serde(rename = "blockedReason", borrow, default)]
    pub blocked_reason: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub dependencies: Deps<'a>,
    #[serde(rename = "streamDependencies", borrow, default)]
    pub stream_dependencies: Deps<'a>,
    /// The files the task expects to touch (early conflict warnings).
    #[serde(borrow, default)]
    pub files: Files<'a>,
}

/// What a row's metadata text turned out to be.
#[expect(
    clippy::large_enum_variant,
    reason = "one lives on the stack per row read; boxing it would allocate once per task"
)]
pub(crate) enum Parsed<'a> {
    Meta(StreamMeta<'a>),
    /// Valid JSON but not an object (`[]`, a string): not a stream task, not a problem.
    NotAnObject,
    /// Not JSON at all: reported as a warning.
    Malformed,
}

impl<'a> StreamMeta<'a> {
    pub fn parse(text: &'a str) -> Parsed<'a> {
        if let Some(meta) = super::meta_scan::scan(text) {
            return Parsed::Meta(meta);
        }
        match serde_json::from_str(text) {
            Ok(meta) => Parsed::Meta(meta),
            Err(_) if serde_json::from_str::<IgnoredAny>(text).is_ok() => Parsed::NotAnObject,
            Err(_) => Parsed::Malformed,
        }
    }

    /// `streamId`, trimmed; `None` when absent, empty or not a string or number.
    pub fn stream_id(&mut self) -> Option<Cow<'a, str>> {
        self.stream_id.take().and_then(IdValue::into_id)
    }
}

/// A task's stream id as the snapshot reads it from its metadata text: `None` when the text
/// names none (or is no JSON object the snapshot reads). `task list` and `task show` use it, so
/// they place a task where the snapshot counts it.
pub(crate) fn stream_id_in(text: &str) -> Option<String> {
    match StreamMeta::parse(text) {
        Parsed::Meta(mut meta) => meta.stream_id().map(Cow::into_owned),
        Parsed::NotAnObject | Parsed::Malformed => None,
    }
}

/// `streamId` as written: usually a string, sometimes a number; anything else is no id.
///
/// Read by a visitor rather than an untagged enum: serde buffers an untagged enum's value
/// before trying each variant, which cost more than the rest of the row's parse.
pub(crate) struct IdValue<'a>(Option<Cow<'a, str>>);

impl<'a> IdValue<'a> {
    /// An id written as a string.
    pub fn text(id: &'a str) -> Self {
        Self(Some(Cow::Borrowed(id)))
    }

    /// Trimmed; `None` when absent, empty or not a string or number.
    pub fn into_id(self) -> Option<Cow<'a, str>> {
        let id = match self.0? {
            Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
            Cow::Owned(s) if s.trim().len() == s.len() => Cow::Owned(s),
            Cow::Owned(s) => Cow::Owned(s.trim().to_string()),
        };
        (!id.is_empty()).then_some(id)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for IdValue<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IdVisitor)
    }
}

struct IdVisitor;

impl<'de> serde::de::Visitor<'de> for IdVisitor {
    type Value = IdValue<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a stream id")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(IdValue(Some(Cow::Borrowed(v))))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(IdValue(Some(Cow::Owned(v.to_string()))))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(IdValue(Some(Cow::Owned(v.to_string()))))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(IdValue(Some(Cow::Owned(v.to_string()))))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        // Spelled as serde_json spells the number.
        let text = serde_json::Number::from_f64(v).map(|n| n.to_string());
        Ok(IdValue(text.map(Cow::Owned)))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(IdValue(None))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(IdValue(None))
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(IdValue(None))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(IdValue(None))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(IdValue(None))
    }
}

/// The columns of one task row the aggregate needs, borrowed from the row.
pub(crate) struct TaskRow<'a> {
    pub id: &'a dyn Fn() -> String,
    pub status: Option<&'a str>,
    /// Only read for blocked tasks.
    pub title: Option<&'a str>,
    /// Only read for blocked tasks.
    pub blocked_reason: Option<&'a str>,
}

/// Folds task rows into stream records.
///
/// Records live in a vector indexed by id, with the last one touched remembered: a store's rows
/// mostly come stream by stream, and a lookup by id per row was a measurable part of a read.
#[derive(Default)]
pub(crate) struct StreamAccumulator {
    records: Vec<StreamRecord>,
    index: HashMap<String, usize>,
    /// The record the previous row went to.
    last: Option<usize>,
    pub warnings: Vec<SourceWarning>,
}

fn empty_record(id: &str) -> StreamRecord {
    StreamRecord {
        id: id.to_string(),
        name: String::new(),
        raw_dependencies: Vec::new(),
        counts: TaskCounts::default(),
        blocked: Vec::new(),
        phase: None,
        worktree_path: None,
        branch_name: None,
        verify: None,
        paused: false,
        files: Vec::new(),
    }
}

impl StreamAccumulator {
    pub fn malformed(&mut self, task_id: String) {
        self.warnings
            .push(SourceWarning::MalformedMetadata { task_id });
    }

    /// The record of stream `id`, made empty if new.
    fn record(&mut self, id: &str) -> &mut StreamRecord {
        let at = match self.last {
            Some(i) if self.records[i].id == id => i,
            _ => match self.index.get(id) {
                Some(&i) => i,
                None => {
                    self.records.push(empty_record(id));
                    self.index.insert(id.to_string(), self.records.len() - 1);
                    self.records.len() - 1
                }
            },
        };
        self.last = Some(at);
        &mut self.records[at]
    }

    /// Every record so far, in the order first seen.
    pub fn records(&self) -> &[StreamRecord] {
        &self.records
    }

    /// Takes the record of `id` out (the accumulator is not used after).
    pub fn take(&mut self, id: &str) -> Option<StreamRecord> {
        let i = *self.index.get(id)?;
        Some(std::mem::take(&mut self.records[i]))
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut StreamRecord> {
        let i = *self.index.get(id)?;
        Some(&mut self.records[i])
    }

    /// Takes every record out, sorted by id.
    pub fn take_sorted(&mut self) -> Vec<StreamRecord> {
        self.index.clear();
        self.last = None;
        let mut records = std::mem::take(&mut self.records);
        records.sort_by(|a, b| a.id.cmp(&b.id));
        records
    }

    /// Adds one task of stream `id`; returns the stream's record for store-specific extras.
    pub fn add(&mut self, id: &str, meta: StreamMeta<'_>, row: &TaskRow<'_>) -> &mut StreamRecord {
        if meta.files.malformed {
            self.warnings.push(files_warning(id, row));
        }
        let record = self.record(id);
        let keep = |slot: &mut Option<String>, value: Option<Cow<'_, str>>| {
            if slot.is_none() {
                *slot = value.map(Cow::into_owned).filter(|v| !v.trim().is_empty());
            }
        };
        if record.name.is_empty()
            && let Some(name) = meta.stream_name.filter(|n| !n.trim().is_empty())
        {
            record.name = name.into_owned();
        }
        keep(&mut record.phase, meta.stream_phase);
        keep(&mut record.worktree_path, meta.worktree_path);
        keep(&mut record.branch_name, meta.branch_name);
        keep(&mut record.verify, meta.verify);
        for dep in meta
            .dependencies
            .0
            .into_iter()
            .chain(meta.stream_dependencies.0)
        {
            // Tasks of a stream usually repeat the same list: allocate only what is new.
            if !record.raw_dependencies.iter().any(|d| *d == dep) {
                record.raw_dependencies.push(dep.into_owned());
            }
        }
        // Sorted and deduplicated once, in `finish_record`: a lookup per path here made a
        // stream of many tasks quadratic in its claims.
        record.files.extend(meta.files.paths);
        let c = &mut record.counts;
        c.total += 1;
        match row.status.and_then(TaskStatus::parse) {
            Some(TaskStatus::Completed) => c.completed += 1,
            Some(TaskStatus::InProgress) => c.in_progress += 1,
            Some(TaskStatus::Blocked) => {
                c.blocked += 1;
                let reason = row
                    .blocked_reason
                    .map(str::to_string)
                    .or_else(|| meta.blocked_reason.map(Cow::into_owned));
                record.blocked.push(BlockedTask {
                    id: (row.id)(),
                    title: row.title.unwrap_or_default().to_string(),
                    reason,
                });
            }
            Some(TaskStatus::Cancelled) => c.cancelled += 1,
            // Anything that is not one of the other four counts as pending.
            Some(TaskStatus::Pending) | None => c.pending += 1,
        }
        record
    }

    /// Folds `other` (tasks found under another key) into the stream `id`.
    pub fn absorb(&mut self, id: &str, other: StreamRecord) {
        let record = self.record(id);
        if record.name.is_empty() {
            record.name = other.name;
        }
        for (slot, value) in [
            (&mut record.phase, other.phase),
            (&mut record.worktree_path, other.worktree_path),
            (&mut record.branch_name, other.branch_name),
            (&mut record.verify, other.verify),
        ] {
            if slot.is_none() {
                *slot = value;
            }
        }
        record.raw_dependencies.extend(other.raw_dependencies);
        record.files.extend(other.files);
        record.counts += other.counts;
        record.blocked.extend(other.blocked);
        record.paused |= other.paused;
    }

    pub fn finish(mut self) -> Snapshot {
        let streams = self.take_sorted().into_iter().map(finish_record).collect();
        Snapshot {
            streams,
            warnings: self.warnings,
        }
    }
}

/// The warning for a task whose `files` are malformed (also what the incremental view keeps).
pub(crate) fn files_warning(stream: &str, row: &TaskRow<'_>) -> SourceWarning {
    SourceWarning::MalformedFiles {
        task_id: (row.id)(),
        stream: stream.to_string(),
    }
}

/// What a stream's record looks like once all its tasks are in: a name (its id when none),
/// dependencies sorted and deduplicated, blocked tasks by id.
pub(crate) fn finish_record(mut s: StreamRecord) -> StreamRecord {
    if s.name.is_empty() {
        s.name = s.id.clone();
    }
    s.raw_dependencies.sort();
    s.raw_dependencies.dedup();
    s.files.sort();
    s.files.dedup();
    s.blocked.sort_by(|a, b| a.id.cmp(&b.id));
    s
}

/// One task's `dependencies` value, read without building a `serde_json::Value`: the ids in a
/// string, a number, or (nested) arrays of them; a string holding a JSON array is unpacked;
/// objects, booleans and nulls contribute nothing.
#[derive(Default)]
pub(crate) struct Deps<'a>(pub Vec<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Deps<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut ids = Vec::new();
        d.deserialize_any(DepsVisitor(&mut ids))?;
        Ok(Deps(ids))
    }
}

struct DepsVisitor<'o, 'a>(&'o mut Vec<Cow<'a, str>>);

impl<'o, 'a> DepsVisitor<'o, 'a> {
    fn push(self, id: Cow<'a, str>) {
        let trimmed = id.trim();
        if trimmed.starts_with('[')
            && let Ok(Deps(inner)) = serde_json::from_str::<Deps<'_>>(trimmed)
        {
            self.0
                .extend(inner.into_iter().map(|d| Cow::Owned(d.into_owned())));
            return;
        }
        if trimmed.is_empty() {
            return;
        }
        self.0.push(match id {
            Cow::Borrowed(b) => Cow::Borrowed(b.trim()),
            Cow::Owned(o) => Cow::Owned(o.trim().to_string()),
        });
    }
}

impl<'de: 'a, 'a, 'o> serde::de::Visitor<'de> for DepsVisitor<'o, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stream ids")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<(), E> {
        self.push(Cow::Borrowed(v));
        Ok(())
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.push(Cow::Owned(v.to_string()));
        Ok(())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.0.push(Cow::Owned(v.to_string()));
        Ok(())
    }

    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.0.push(Cow::Owned(v.to_string()));
        Ok(())
    }

    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.0.push(Cow::Owned(v.to_string()));
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(DepsSeed(self.0))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

/// One task's `files` value: an array of paths (or one path as a string). Anything else
/// (an object, a number, an array holding one) marks the value malformed: a warning, and the
/// paths that were readable still count. Paths are data: normalised as text only.
#[derive(Default)]
pub(crate) struct Files<'a> {
    pub paths: Vec<String>,
    pub malformed: bool,
    _text: std::marker::PhantomData<&'a str>,
}

impl Files<'_> {
    pub fn push(&mut self, path: &str) {
        match crate::claims::normalise(path) {
            Some(p) => self.paths.push(p),
            None => self.malformed = true,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Files<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut files = Files::default();
        d.deserialize_any(FilesVisitor(&mut files))?;
        Ok(files)
    }
}

struct FilesVisitor<'o, 'a>(&'o mut Files<'a>);

impl<'de, 'o, 'a> serde::de::Visitor<'de> for FilesVisitor<'o, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("paths")
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.0.push(v);
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.0.malformed = true;
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.0.malformed = true;
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        self.0.malformed = true;
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.0.malformed = true;
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<FileItem>()? {
            match item {
                FileItem::Path(p) => self.0.push(&p),
                FileItem::Other(_) => self.0.malformed = true,
            }
        }
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        self.0.malformed = true;
        Ok(())
    }
}

/// One element of a `files` array.
#[derive(Deserialize)]
#[serde(untagged)]
enum FileItem<'a> {
    Path(#[serde(borrow)] Cow<'a, str>),
    Other(IgnoredAny),
}

struct DepsSeed<'o, 'a>(&'o mut Vec<Cow<'a, str>>);

impl<'de: 'a, 'a, 'o> serde::de::DeserializeSeed<'de> for DepsSeed<'o, 'a> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(DepsVisitor(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(text: &str) -> (Vec<String>, bool) {
        let meta: StreamMeta<'_> = serde_json::from_str(text).unwrap();
        (meta.files.paths, meta.files.malformed)
    }

    #[test]
    fn files_are_read_leniently_and_malformed_values_are_flagged() {
        assert_eq!(
            files(r#"{"files": ["./src/x.rs", "src/dir/", " a\u001b[31m "]}"#),
            (
                vec!["src/x.rs".into(), "src/dir".into(), "a\u{1b}[31m".into()],
                false
            )
        );
        assert_eq!(
            files(r#"{"files": "one.rs"}"#),
            (vec!["one.rs".into()], false)
        );
        assert_eq!(files(r#"{"files": null}"#), (vec![], false));
        assert_eq!(files(r#"{}"#), (vec![], false));
        assert_eq!(files(r#"{"files": {"a": 1}}"#), (vec![], true));
        assert_eq!(files(r#"{"files": 7}"#), (vec![], true));
        assert_eq!(
            files(r#"{"files": ["ok.rs", 3, [1], "", "  "]}"#),
            (vec!["ok.rs".into()], true)
        );
    }

    #[test]
    fn dependencies_accept_arrays_strings_and_nested_json() {
        let text =
            r#"[["A","B"], null, " C ", ["A"], "[\"D\"]", 7, -1, 2.5, "", {"x": "no"}, true]"#;
        let Deps(ids) = serde_json::from_str(text).unwrap();
        assert_eq!(ids, vec!["A", "B", "C", "A", "D", "7", "-1", "2.5"]);
        let Deps(one) = serde_json::from_str(r#""Stream-A: Foundation""#).unwrap();
        assert_eq!(one, vec!["Stream-A: Foundation"]);
    }
}
