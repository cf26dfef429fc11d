//! Waking up when the task database changes: an inotify watch on the database's folder, from a
//! helper thread, calling `wake` for every write to the database or its `-wal`/`-shm` files.
//! A wake-up only says "maybe": the caller confirms with the task source's cheap probe
//! (`PRAGMA data_version`). Used by the dispatcher and by `status --watch`.

use std::path::Path;
use std::time::Duration;

/// How often to probe for changes when no file watch could be set up.
pub const PROBE_WITHOUT_WATCH: Duration = Duration::from_millis(20);
/// The safety-net probe while a file watch runs (a write the watch missed, a file replaced).
pub const PROBE_WITH_WATCH: Duration = Duration::from_millis(100);

/// After a wake-up the watch reads no events for this long, so that a busy database's writes
/// arrive as one batch: 2,000 workers writing a task every 3 s made ~3,600 wake-ups a second,
/// 1.7 % of a core spent in this thread alone (BENCHMARKS.md §3b). The first write after a
/// quiet moment still wakes at once; a second one (the commit after the first frame) waits
/// at most this long.
const COALESCE: Duration = Duration::from_millis(2);

/// Watches `db`'s folder; `wake` is called for each batch of writes to the database's files
/// and the watch ends when it returns false. False if no watch could be set up.
pub fn watch_db(db: &Path, wake: impl Fn() -> bool + Send + 'static) -> bool {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let (Some(dir), Some(name)) = (db.parent(), db.file_name()) else {
        return false;
    };
    let name = name.to_os_string();
    let Ok(inotify) = Inotify::init(InitFlags::IN_CLOEXEC) else {
        return false;
    };
    let mask = AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_DELETE;
    if inotify.add_watch(dir, mask).is_err() {
        return false;
    }
    std::thread::Builder::new()
        .name("taskdb-watch".into())
        .spawn(move || {
            // Blocks in read; ends with the process, or when the listener is gone.
            while let Ok(events) = inotify.read_events() {
                // An overflowed queue names no file: some of the lost events may have been ours.
                let ours = events.iter().any(|e| match &e.name {
                    Some(n) => n.as_encoded_bytes().starts_with(name.as_encoded_bytes()),
                    None => e.mask.contains(AddWatchFlags::IN_Q_OVERFLOW),
                });
                if ours {
                    if !wake() {
                        break;
                    }
                    std::thread::sleep(COALESCE);
                }
            }
        })
        .is_ok()
}
