//! Rendering the dashboard: the versioned JSON document, and the [`Board`] every other view
//! draws (plain text, once on a terminal, live with `--watch`).

use std::time::{Duration, SystemTime};

use super::board::{self, Board, Life, Look, Row, WorkerCell};
use super::live::LiveArea;
use super::{Palette, Ui, printable as p};
use crate::dashboard::{Dashboard, StreamStatus};
use crate::error::Error;

/// The `--json` format version; bump on any incompatible change (see docs/status-json.md).
pub const JSON_VERSION: u32 = 2;

/// The `--json` document: the dashboard's own types serialised directly (no intermediate
/// `serde_json::Value`, which cost a third of the run on 20,000 tasks).
pub fn render_json(d: &Dashboard, merge_back: Option<&crate::git::MergeBackPlan>) -> String {
    #[derive(serde::Serialize)]
    struct Document<'a> {
        version: u32,
        workspace: &'a Option<String>,
        /// Lossy: a path that is not UTF-8 must not make the document fail.
        db: std::borrow::Cow<'a, str>,
        source: &'a Option<crate::project::StoreSource>,
        overall: &'a crate::dashboard::Overall,
        streams: &'a [StreamStatus],
        warnings: &'a [String],
        file_claims: &'a [crate::claims::Overlap],
        merge_back: Option<&'a crate::git::MergeBackPlan>,
    }
    let doc = Document {
        version: JSON_VERSION,
        workspace: &d.workspace,
        db: d.db.to_string_lossy(),
        source: &d.source,
        overall: &d.overall,
        streams: &d.streams,
        warnings: &d.warnings,
        file_claims: &d.file_claims,
        merge_back,
    };
    super::json(&doc)
}

/// The dashboard as a [`Board`]: the one look every view draws.
pub fn board(d: &Dashboard) -> Board {
    let rows = d
        .streams
        .iter()
        .map(|s| {
            let mut note = board::reason_notes(s.reason.as_ref(), &s.blocked_tasks);
            if let Some(branch) = &s.branch {
                note.push(branch_note(branch, s.commits_since_base));
            }
            note.extend(super::reason::conflicts_note(&s.conflicts_with));
            Row {
                id: p(&s.id).into_owned(),
                depth: s.depth,
                state: s.state,
                tasks: s.tasks,
                worker: s.worker.as_ref().map(worker_cell),
                note,
                details: s
                    .reason
                    .as_ref()
                    .map(super::reason::detail_lines)
                    .unwrap_or_default(),
            }
        })
        .collect();
    Board::new(
        board::source_line(d.workspace.as_deref(), &d.db, d.source.as_ref()),
        rows,
    )
}

/// "stream/A: 3 commits since its base" (the branch's own work; the merge-back section says
/// how far it is ahead of the target).
fn branch_note(branch: &str, since_base: Option<usize>) -> String {
    match since_base {
        Some(n) => format!(
            "{}: {n} commit{} since its base",
            p(branch),
            if n == 1 { "" } else { "s" }
        ),
        None => format!("branch {}", p(branch)),
    }
}

/// A worker row of the state store as the board's worker cell.
fn worker_cell(w: &crate::state::WorkerInfo) -> WorkerCell {
    use crate::state::{WorkerState, time};
    let at = |text: &str| {
        time::parse_unix_millis(text)
            .and_then(|ms| u64::try_from(ms).ok())
            .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
    };
    let started = at(&w.started_at);
    let ran = match (started, w.ended_at.as_deref().and_then(at)) {
        (Some(s), Some(e)) => e.duration_since(s).ok().map(board::runtime),
        _ => None,
    };
    let after = |words: String| match &ran {
        Some(ran) => format!("{words} after {ran}"),
        None => words,
    };
    let life = match w.state {
        WorkerState::Running => Life::Running(started),
        WorkerState::Exited => Life::Ended(after(match w.exit_code {
            Some(code) => format!("exited {code}"),
            None => "exited".into(),
        })),
        WorkerState::Stopped => Life::Ended(after("stopped".into())),
        WorkerState::Lost => Life::Ended("lost (ended without a record)".into()),
    };
    let mut agent = Vec::new();
    if let Some(cost) = w.cost_usd {
        agent.push(format!("${cost:.4}"));
    }
    if let Some(turns) = w.turns {
        agent.push(format!("{turns} turns"));
    }
    if let Some(session) = &w.session_id {
        agent.push(format!("session {}", p(session)));
    }
    if let Some(sandbox) = w.sandbox {
        agent.push(sandbox.to_string());
    }
    WorkerCell {
        pid: w.pid,
        attempt: w.attempt,
        life,
        agent,
    }
}

/// Plain aligned text, grouped by depth, deterministic (depth, then id), ASCII bars, full
/// lines; no escape codes unless `palette` has colour on. For a pipe or a file.
pub fn render_plain(d: &Dashboard, palette: &Palette) -> String {
    let look = Look {
        palette: *palette,
        unicode: false,
        width: None,
    };
    board::render(&board(d), &look, SystemTime::now()) + "\n"
}

/// The dashboard once, for stdout on a terminal: the live view's look (Unicode bars where the
/// terminal allows), every line fitted to the terminal's width, written in one piece.
pub fn render_for_terminal(d: &Dashboard, ui: &Ui) -> String {
    let look = Look {
        palette: ui.out,
        unicode: ui.unicode,
        width: console::Term::stdout()
            .size_checked()
            .map(|(_, cols)| usize::from(cols)),
    };
    board::render(&board(d), &look, SystemTime::now()) + "\n"
}

/// The `--watch` view: the live area on a terminal, otherwise a fresh plain dashboard on
/// stdout each time it looks different.
pub struct LiveView<'a> {
    ui: &'a Ui,
    area: Option<LiveArea>,
    last_plain: Option<String>,
}

impl<'a> LiveView<'a> {
    pub fn new(ui: &'a Ui) -> Self {
        let area =
            (ui.mode == super::OutputMode::Progress).then(|| LiveArea::start(ui.err, ui.unicode));
        Self {
            ui,
            area,
            last_plain: None,
        }
    }

    pub fn show(&mut self, d: &Dashboard) {
        match &self.area {
            Some(area) => area.show(board(d)),
            None => {
                // A log, not a flicker: print only when something changed.
                let text = render_plain(d, &self.ui.out);
                if self.last_plain.as_deref() != Some(text.as_str()) {
                    self.ui.print(&text);
                    self.last_plain = Some(text);
                }
            }
        }
    }

    /// Shows why there is nothing to draw (no database yet, no streams), and keeps waiting.
    pub fn show_problem(&mut self, err: &Error) {
        let text = format!("{err} (waiting for it to change)");
        if self.last_plain.as_deref() != Some(text.as_str()) {
            // Above the live area, which keeps the last board it had.
            self.ui.info(&text);
            self.last_plain = Some(text);
        }
    }

    /// Leaves the last frame on screen.
    pub fn finish(self) {
        if let Some(area) = self.area {
            area.finish(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{WorkerInfo, WorkerState};

    fn worker(state: WorkerState, exit_code: Option<i32>, attempt: u32) -> WorkerInfo {
        WorkerInfo {
            stream: "S".into(),
            pid: 42,
            state,
            started_at: "2026-01-01T00:00:00.000Z".into(),
            ended_at: Some("2026-01-01T00:03:05.000Z".into()),
            attempt,
            exit_code,
            session_id: None,
            sandbox: None,
            cost_usd: None,
            turns: None,
        }
    }

    fn words(w: &WorkerInfo) -> String {
        worker_cell(w).words(SystemTime::now())
    }

    #[test]
    fn worker_notes_say_what_happened_and_for_how_long() {
        assert_eq!(
            words(&worker(WorkerState::Exited, Some(0), 1)),
            "pid 42 exited 0 after 3 minutes"
        );
        assert_eq!(
            words(&worker(WorkerState::Stopped, None, 2)),
            "pid 42 stopped after 3 minutes (attempt 2)"
        );
        assert_eq!(
            words(&worker(WorkerState::Lost, None, 1)),
            "pid 42 lost (ended without a record)"
        );
        let running = worker_cell(&worker(WorkerState::Running, None, 1));
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        assert_eq!(
            running.words(start + Duration::from_secs(42)),
            "pid 42 running 42 seconds"
        );
        let agent = WorkerInfo {
            session_id: Some("9f1c\u{1b}[2J".into()),
            cost_usd: Some(0.4216),
            turns: Some(12),
            ..worker(WorkerState::Exited, Some(0), 1)
        };
        assert_eq!(
            words(&agent),
            "pid 42 exited 0 after 3 minutes, $0.4216, 12 turns, session 9f1c\\u{1b}[2J"
        );
    }

    const DOC: &str = include_str!("../../docs/status-json.md");

    fn serde_name<T: serde::Serialize>(value: &T) -> String {
        serde_json::to_value(value)
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    }

    /// docs/status-json.md lists the states in the model's precedence order, twice (the
    /// machine-read comment and the numbered list), and names every reason kind and cause.
    #[test]
    fn the_json_doc_matches_the_model() {
        use crate::model::{
            Attention, Block, ExitStatus, Failure, Park, ParkCause, Reason, State, VerifyRun,
        };
        let park = |cause| Park {
            until: 2,
            since: 1,
            cause,
            session_id: None,
        };
        let verify = || VerifyRun {
            command: "make test".into(),
            exit: Some(ExitStatus::Code { code: 1 }),
            output_lines: vec![],
            attempts: 1,
        };
        let all: Vec<String> = State::ALL.iter().map(serde_name).collect();
        let listed = DOC
            .lines()
            .find_map(|l| l.strip_prefix("<!-- states: "))
            .and_then(|l| l.strip_suffix(" -->"))
            .expect("the states comment");
        assert_eq!(listed.split(' ').collect::<Vec<_>>(), all);
        let numbered: Vec<String> = DOC
            .lines()
            .filter_map(|l| {
                let (n, rest) = l.split_once(". `")?;
                n.parse::<usize>().ok()?;
                Some(rest.split('`').next()?.to_string())
            })
            .collect();
        assert_eq!(numbered, all);
        assert!(DOC.contains(&format!("format version {JSON_VERSION}")));

        let exited = Failure::Exited {
            attempts: 1,
            exit: ExitStatus::Lost,
            agent_error: None,
            log_lines: vec![],
        };
        let reasons = [
            Reason::Waiting {
                on: vec![crate::model::Wait {
                    stream: "A".into(),
                    state: State::Running,
                    exit_unprocessed: true,
                    verify_pending: true,
                    claims: vec!["x.rs".into()],
                }],
            },
            Reason::BlockedTasks { tasks: vec![] },
            Reason::Blocked(Block::BaseConflict {
                branches: vec![],
                paths: vec![],
                tips: vec![],
            }),
            Reason::Blocked(Block::WorktreeInTheWay {
                path: "/w".into(),
                branch: "b".into(),
            }),
            Reason::Blocked(Block::CheckedOutElsewhere {
                branch: "b".into(),
                path: "/w".into(),
            }),
            Reason::NeedsAttention(Attention::DirtyFinish {
                dir: "/w".into(),
                files: vec![],
            }),
            Reason::NeedsAttention(Attention::LeftBranch {
                dir: "/w".into(),
                branch: "b".into(),
                head_branch: None,
                head: "0".into(),
            }),
            Reason::Failed(exited),
            Reason::Failed(Failure::CannotRun {
                program: "p".into(),
                detail: "d".into(),
            }),
            Reason::Failed(Failure::Prepare { detail: "d".into() }),
            Reason::Failed(Failure::BadTaskData { what: "w".into() }),
            Reason::Failed(Failure::Legacy { text: "t".into() }),
            Reason::Stopped,
            Reason::Skipped {
                dependency: "A".into(),
                dependency_state: State::Failed,
            },
            Reason::Paused,
            Reason::Parked {
                park: park(ParkCause::UsageLimit {
                    limit_type: None,
                    reset_known: false,
                    message: "m".into(),
                }),
                hit_by: None,
            },
            Reason::Parked {
                park: park(ParkCause::Overloaded {
                    status: 529,
                    tries: 1,
                    message: "m".into(),
                }),
                hit_by: Some("A".into()),
            },
            Reason::VerifyFailed(verify()),
            Reason::Failed(Failure::VerifyFailed { verify: verify() }),
            Reason::Failed(Failure::BudgetExceeded {
                message: "m".into(),
            }),
            Reason::Failed(Failure::Unavailable {
                status: 500,
                tries: 3,
                message: "m".into(),
            }),
            Reason::BudgetReached,
        ];
        // Every key and every tag value, nested ones too, is named in the doc.
        fn documented(json: &serde_json::Value) {
            let Some(object) = json.as_object() else {
                return;
            };
            for (key, value) in object {
                let named = |word: &str| {
                    DOC.contains(&format!("`{word}`")) || DOC.contains(&format!("\"{word}\""))
                };
                assert!(named(key), "field {key} undocumented");
                if let ("kind" | "cause" | "how", Some(tag)) = (key.as_str(), value.as_str()) {
                    assert!(named(tag), "{key} {tag} undocumented");
                }
                documented(value);
            }
        }
        for reason in &reasons {
            documented(&serde_json::to_value(reason).unwrap());
        }
        // The radar's and the claims' objects, with every key present.
        documented(&serde_json::json!({
            "conflicts_with": [crate::model::ConflictWith {
                stream: Some("C".into()),
                branch: "stream/C".into(),
                paths: vec!["x.rs".into()],
            }],
            "file_claims": [crate::claims::Overlap {
                earlier: "B".into(),
                later: "C".into(),
                paths: vec!["x.rs".into()],
            }],
        }));
        for exit in [
            ExitStatus::Code { code: 1 },
            ExitStatus::Signal { signal: 9 },
            ExitStatus::Lost,
        ] {
            let json = serde_json::to_string(&exit).unwrap();
            let how = serde_json::to_value(exit).unwrap()["how"].clone();
            assert!(
                DOC.contains(&format!("\"how\": {how}")),
                "{json} undocumented"
            );
        }
    }

    #[test]
    fn branches_say_their_commits_are_since_their_base() {
        assert_eq!(
            branch_note("stream/A", Some(1)),
            "stream/A: 1 commit since its base"
        );
        assert_eq!(branch_note("stream/A", None), "branch stream/A");
    }
}
