//! Domain types of the task source: what a stream and a task are, independent of SQLite.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A task's status, as Task Copilot's CHECK constraint allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Pending,
    InProgress,
    Blocked,
    Completed,
    Cancelled,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 5] = [
        Self::Pending,
        Self::InProgress,
        Self::Blocked,
        Self::Completed,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InProgress => "in_progress",
            Self::Blocked => "blocked",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status string that is not one of Task Copilot's five.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "unknown task status `{0}` (expected pending, in_progress, blocked, completed or cancelled)"
)]
pub struct UnknownStatus(pub String);

impl TaskStatus {
    /// The status a store's `status` text means: exactly one of the five as written (what
    /// every tool writes, and checked first so a read allocates nothing per row), else loosely
    /// (case, spaces, `-`); `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .or_else(|| s.parse().ok())
    }
}

impl FromStr for TaskStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == norm)
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

/// How many of a stream's tasks are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TaskCounts {
    pub total: u32,
    pub completed: u32,
    pub in_progress: u32,
    pub pending: u32,
    pub blocked: u32,
    pub cancelled: u32,
}

/// Counts summed field by field (a stream's tasks over several records, streams over a
/// dashboard).
impl std::ops::AddAssign for TaskCounts {
    fn add_assign(&mut self, o: Self) {
        self.total += o.total;
        self.completed += o.completed;
        self.in_progress += o.in_progress;
        self.pending += o.pending;
        self.blocked += o.blocked;
        self.cancelled += o.cancelled;
    }
}

impl TaskCounts {
    /// Counts from each status's number of tasks (the total is their sum).
    pub fn of(
        completed: u32,
        in_progress: u32,
        pending: u32,
        blocked: u32,
        cancelled: u32,
    ) -> Self {
        Self {
            total: completed + in_progress + pending + blocked + cancelled,
            completed,
            in_progress,
            pending,
            blocked,
            cancelled,
        }
    }

    /// All tasks completed or cancelled, and at least one completed.
    pub fn is_complete(&self) -> bool {
        self.completed > 0 && self.completed + self.cancelled == self.total
    }

    /// Every task cancelled: the stream was dropped on purpose.
    pub fn is_cancelled(&self) -> bool {
        self.total > 0 && self.cancelled == self.total
    }

    /// Tasks that are neither completed nor cancelled.
    pub fn open(&self) -> u32 {
        self.total - self.completed - self.cancelled
    }

    /// What the counts alone say about the stream.
    pub fn progress(&self) -> Progress {
        if self.is_cancelled() {
            Progress::Cancelled
        } else if self.is_complete() {
            Progress::Complete
        } else if self.in_progress > 0 {
            Progress::InProgress
        } else if self.blocked > 0 {
            Progress::Blocked
        } else if self.completed > 0 {
            Progress::InProgress
        } else {
            Progress::Pending
        }
    }
}

/// A stream's progress judged from its task counts only (no workers, no dependencies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Progress {
    Pending,
    InProgress,
    Blocked,
    Complete,
    Cancelled,
}

/// A blocked task and why, shown so a person can unblock it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockedTask {
    pub id: String,
    pub title: String,
    pub reason: Option<String>,
}

/// A stream as the task source reports it: the aggregate of its non-archived tasks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamRecord {
    pub id: String,
    /// `streamName`, falling back to the id.
    pub name: String,
    /// Dependencies exactly as written (ids or task-title forms), unioned over the stream's
    /// tasks, sorted and deduplicated. `graph` resolves them to stream ids.
    pub raw_dependencies: Vec<String>,
    pub counts: TaskCounts,
    pub blocked: Vec<BlockedTask>,
    pub phase: Option<String>,
    /// `worktreePath` / `branchName` set by Task Copilot's own worktree tools.
    pub worktree_path: Option<String>,
    pub branch_name: Option<String>,
    /// `metadata.verify`: the command this stream's work must pass (overrides the run's).
    pub verify: Option<String>,
    /// tc's `streams.status` is `paused`: shown, never launched (the legacy store has no such
    /// state).
    pub paused: bool,
    /// `metadata.files` unioned over its tasks, normalised (`claims::normalise`), sorted and
    /// deduplicated: the paths the stream expects to touch. Data only: never opened.
    pub files: Vec<String>,
}

/// Something odd in the source that did not stop the read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceWarning {
    /// A task whose `metadata` is not valid JSON; it is ignored.
    MalformedMetadata { task_id: String },
    /// A task whose `metadata.files` is not an array of paths; what could be read counts.
    MalformedFiles { task_id: String, stream: String },
}

impl fmt::Display for SourceWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MalformedMetadata { task_id } => {
                write!(
                    f,
                    "task {task_id} has metadata that is not valid JSON; it is ignored"
                )
            }
            Self::MalformedFiles { task_id, stream } => write!(
                f,
                "task {task_id} of stream {stream} has `metadata.files` that is not a list of \
                 paths; only the paths in it are used for file claims"
            ),
        }
    }
}

/// One consistent read of every stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Sorted by id.
    pub streams: Vec<StreamRecord>,
    pub warnings: Vec<SourceWarning>,
}

impl Snapshot {
    pub fn stream(&self, id: &str) -> Option<&StreamRecord> {
        self.streams.iter().find(|s| s.id == id)
    }
}

/// What a refresh of a long-lived reader found changed since the previous one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Streams whose record changed, appeared or vanished.
    pub streams: BTreeSet<String>,
    /// A stream appeared or vanished, or a stream's dependencies changed: the graph must be
    /// built again (otherwise only the records of `streams` need replacing in it).
    pub structure: bool,
    /// The source's warnings changed.
    pub warnings: bool,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty() && !self.structure && !self.warnings
    }

    /// Adds `other` (found later) to these.
    pub fn merge(&mut self, other: Changes) {
        self.streams.extend(other.streams);
        self.structure |= other.structure;
        self.warnings |= other.warnings;
    }
}

/// One task, in full.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    pub status: TaskStatus,
    pub stream_id: Option<String>,
    pub assigned_agent: Option<String>,
    pub blocked_reason: Option<String>,
    pub notes: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub archived: bool,
    /// The parsed metadata; `Null` when absent or malformed.
    pub metadata: serde_json::Value,
}

/// A change to one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskUpdate {
    pub status: TaskStatus,
    /// Replaces the task's notes when given.
    pub notes: Option<String>,
    /// Required with [`TaskStatus::Blocked`]; recorded as `blocked_reason`.
    pub blocked_reason: Option<String>,
}

/// What the task looked like before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskChange {
    pub id: String,
    pub title: String,
    pub from: String,
    pub to: TaskStatus,
    pub updated_at: String,
}

/// Which of the two Task Copilot stores a database is (see `TASK-COPILOT.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// The MCP-server era's `<TASK_DB_PATH>/<workspace>/tasks.db`.
    Legacy,
    /// The `tc` CLI's `.copilot/tasks.db` (Task Copilot v3).
    Tc,
}

impl StoreKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Legacy => "legacy",
            Self::Tc => "tc",
        }
    }

    /// How a person names it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Legacy => "legacy Task Copilot store",
            Self::Tc => "tc (Task Copilot v3) store",
        }
    }

    /// What a worker runs to mark a task, for its prompt: `orchestrate task set` works with
    /// either store; with tc's, its own CLI writes the same.
    pub fn task_commands(self) -> &'static str {
        match self {
            Self::Legacy => {
                "Task Copilot's MCP tool `task_update` if you have it, otherwise \
                 `orchestrate task set ID in_progress`, `orchestrate task set ID completed --notes \
                 \"what you did\"` and `orchestrate task set ID blocked --reason \"…\"`"
            }
            Self::Tc => {
                "`orchestrate task set ID in_progress`, `orchestrate task set ID completed --notes \
                 \"what you did\"` and `orchestrate task set ID blocked --reason \"…\"` (ids are \
                 the numbers listed above). This project keeps its tasks with the `tc` CLI, so \
                 `tc task update ID --status in_progress` and `tc task update ID --status completed` \
                 work too; only `orchestrate task set` records your notes and a blocked reason"
            }
        }
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use TaskCounts as C;

    fn counts(c: u32, i: u32, p: u32, b: u32, x: u32) -> TaskCounts {
        C::of(c, i, p, b, x)
    }

    #[test]
    fn cancelled_tasks_do_not_keep_a_stream_from_completing() {
        assert_eq!(counts(2, 0, 0, 0, 1).progress(), Progress::Complete);
        assert!(counts(2, 0, 0, 0, 1).is_complete());
    }

    #[test]
    fn all_cancelled_is_cancelled_not_complete() {
        let c = counts(0, 0, 0, 0, 3);
        assert_eq!(c.progress(), Progress::Cancelled);
        assert!(!c.is_complete());
    }

    #[test]
    fn progress_orders_in_progress_over_blocked_over_pending() {
        assert_eq!(counts(0, 1, 1, 1, 0).progress(), Progress::InProgress);
        assert_eq!(counts(0, 0, 1, 1, 0).progress(), Progress::Blocked);
        assert_eq!(counts(1, 0, 1, 0, 0).progress(), Progress::InProgress);
        assert_eq!(counts(0, 0, 2, 0, 0).progress(), Progress::Pending);
        assert_eq!(TaskCounts::default().progress(), Progress::Pending);
    }

    #[test]
    fn status_parses_loosely_and_rejects_unknown() {
        assert_eq!(
            "In-Progress".parse::<TaskStatus>().unwrap(),
            TaskStatus::InProgress
        );
        assert!("done".parse::<TaskStatus>().is_err());
    }
}
