//! Database faults the reader must ride out: a writer holding the lock, a malformed row that
//! appears mid-run, the file replaced under a running `status --watch`.

use std::time::Duration;

use crate::support::{TestEnv, Watched};

#[test]
fn status_reads_while_another_process_holds_the_write_lock() {
    let mut env = TestEnv::new();
    let ids = env.add_stream("S", &[], 2, "pending");
    let writer = env.conn();
    writer.execute_batch("BEGIN EXCLUSIVE").unwrap();
    writer
        .execute(
            "UPDATE tasks SET status = 'completed' WHERE id = ?1",
            [&ids[0]],
        )
        .unwrap();
    // Uncommitted: the reader must not block or fail, and must see the committed state.
    let doc = env.run(&["status", "--json"]).success().json();
    assert_eq!(doc["streams"][0]["tasks"]["completed"], 0);
    writer.execute_batch("COMMIT").unwrap();
    let doc = env.run(&["status", "--json"]).success().json();
    assert_eq!(doc["streams"][0]["tasks"]["completed"], 1);
}

#[test]
fn watch_survives_a_malformed_row_appearing_mid_run() {
    let mut env = TestEnv::new();
    let ids = env.add_stream("S", &[], 2, "pending");
    let watch = Watched::spawn(env.cmd(&["status", "--watch", "60"]));
    watch.wait_stdout("the first dashboard", Duration::from_secs(10), |o| {
        o.contains("0/2")
    });
    env.add_task_raw("bad", "pending", Some("{\"streamId\": \"S\""));
    env.set_status(&ids[0], "completed");
    watch.wait_stdout(
        "the change after the bad row",
        Duration::from_secs(10),
        |o| o.contains("1/2"),
    );
}

#[test]
fn watch_follows_the_database_file_when_it_is_replaced() {
    let mut env = TestEnv::new();
    env.add_stream("Before", &[], 1, "pending");
    let watch = Watched::spawn(env.cmd(&["status", "--watch", "60"]));
    watch.wait_stdout("the first dashboard", Duration::from_secs(10), |o| {
        o.contains("Before")
    });

    // Build a new database beside it and rename it over the old one (a restore from backup).
    let mut other = TestEnv::new();
    other.add_stream("After", &[], 1, "completed");
    let conn = other.conn();
    conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
    drop(conn);
    let staged = env.db_path().with_extension("new");
    std::fs::copy(other.db_path(), &staged).unwrap();
    std::fs::rename(&staged, env.db_path()).unwrap();
    watch.wait_stdout("the replaced database", Duration::from_secs(10), |o| {
        o.contains("After")
    });
}
