//! Creates the demo's Task Copilot database: `cargo run --example make-demo-db -- FILE`.
//!
//! Used by `scripts/demo.sh`, so the demo needs nothing beyond a Rust toolchain and git (no
//! `sqlite3` or Python). The schema is Task Copilot's `tasks` table and neighbours,
//! `orchestrate::taskdb::TASK_COPILOT_SCHEMA`, the one the tests use. The streams form a diamond:
//! `Stream-A` → {`Stream-B`, `Stream-C`} → `Stream-Z`.

use std::path::PathBuf;

use orchestrate::taskdb::TASK_COPILOT_SCHEMA;
use rusqlite::{Connection, params};
use serde_json::json;

/// (stream id, name, phase, dependencies, task titles)
type StreamSpec = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

const STREAMS: [StreamSpec; 4] = [
    (
        "Stream-A",
        "Foundation",
        "foundation",
        &[],
        &["Data model", "Storage layer", "Config loading"],
    ),
    (
        "Stream-B",
        "API",
        "parallel",
        &["Stream-A"],
        &["List endpoint", "Create endpoint", "API errors"],
    ),
    (
        "Stream-C",
        "Web UI",
        "parallel",
        &["Stream-A"],
        &["List page", "Create form", "Styles"],
    ),
    (
        "Stream-Z",
        "Integration",
        "integration",
        &["Stream-B", "Stream-C"],
        &["Wire UI to API", "End-to-end check"],
    ),
];

const PRD_ID: &str = "PRD-7d0c5a4e-0000-4000-8000-000000000001";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or("usage: make-demo-db FILE")?
        .into();
    if path.exists() {
        return Err(format!("{} already exists; not overwriting it", path.display()).into());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let conn = Connection::open(&path)?;
    // As Task Copilot's server does.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.execute_batch(TASK_COPILOT_SCHEMA)?;
    let now = "2026-01-09T12:00:00.000Z";
    conn.execute(
        "INSERT INTO prds (id, title, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
        params![PRD_ID, "Demo shop: list and create items", now],
    )?;
    let mut n = 0u32;
    for (stream, name, phase, deps, titles) in STREAMS {
        for title in titles {
            n += 1;
            let id = format!("TASK-5e1f0c2a-0000-4000-8000-{n:012x}");
            let meta = json!({
                "streamId": stream,
                "streamName": name,
                "streamPhase": phase,
                "dependencies": deps,
            });
            conn.execute(
                "INSERT INTO tasks (id, prd_id, title, description, status, metadata,
                                    created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?6)",
                params![
                    id,
                    PRD_ID,
                    format!("{stream}: {title}"),
                    format!("{title} for the {name} stream of the demo."),
                    meta.to_string(),
                    now
                ],
            )?;
        }
    }
    Ok(())
}
