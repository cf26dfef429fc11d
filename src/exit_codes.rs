//! Exit codes of `orchestrate`, documented in one place (README "Exit codes" mirrors this list).
//!
//! Scripts may rely on these numbers; a change is a breaking change.

/// Success: the command did what was asked (for `start`: every stream is complete).
pub const OK: i32 = 0;
/// A failure not covered by a more specific code (git error, I/O error, worker failure, …).
pub const FAILURE: i32 = 1;
/// Bad command line (unknown flag, bad value); also used by clap itself.
pub const USAGE: i32 = 2;
/// The task database could not be found or opened, is not a Task Copilot database (either store),
/// or two stores both hold stream tasks (`--db` must choose).
pub const NO_DATABASE: i32 = 3;
/// The database holds no (non-archived) stream tasks, or a named stream does not exist.
pub const NO_STREAMS: i32 = 4;
/// The stream graph is invalid: a dependency cycle or an unknown dependency.
pub const INVALID_GRAPH: i32 = 5;
/// `start` ended with streams not complete (failed, blocked, skipped, stopped); a summary says why.
pub const INCOMPLETE: i32 = 6;
/// `start STREAM…` refused because a dependency is not complete; or `merge` stopped at a conflict.
pub const REFUSED: i32 = 7;
/// The command was interrupted (Ctrl-C / SIGTERM); workers keep running.
pub const INTERRUPTED: i32 = 130;
