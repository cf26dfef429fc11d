//! The `__sandbox` step: confines this process with Landlock, then execs the program (same
//! pid). What runs confined without a supervisor (`post_create`, `merge`'s verify) goes through
//! it; a worker is confined by its supervisor instead ([`super::confine`]).

use std::ffi::OsString;
use std::io::Write;

use super::{Confinement, SandboxError};
use crate::worker::render::MARK;

/// What `__sandbox` is asked to do.
#[derive(Debug, Clone)]
pub struct Entry {
    pub confinement: Confinement,
    pub argv: Vec<OsString>,
}

/// `__sandbox`: restricts this process, then execs the program (same pid). Returns only on
/// failure, with the exit code, after saying why on `log`.
pub fn enter(entry: &Entry, log: &mut dyn Write) -> i32 {
    let err = match entry
        .confinement
        .prepare(log)
        .and_then(super::Prepared::restrict_self)
    {
        Ok(tmpdir) => exec(&entry.argv, tmpdir),
        Err(e) => e,
    };
    // The message, its causes and the hint, on one line.
    let text = format!("{:?}", crate::error::Error::from(err));
    let _ = writeln!(log, "{MARK} orchestrate: {text}");
    crate::worker::supervise::CANNOT_EXEC
}

/// Replaces this process by the program; returns only the error.
fn exec(argv: &[OsString], tmpdir: Option<std::path::PathBuf>) -> SandboxError {
    use std::os::unix::process::CommandExt;
    let Some((program, args)) = argv.split_first() else {
        return SandboxError::NoProgram;
    };
    let mut cmd = std::process::Command::new(program);
    cmd.args(args);
    if let Some(tmpdir) = tmpdir {
        cmd.env("TMPDIR", tmpdir);
    }
    let source = cmd.exec();
    SandboxError::Exec {
        program: program.to_string_lossy().into_owned(),
        source,
    }
}
