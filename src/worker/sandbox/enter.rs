//! The `__sandbox` step: confines this process with Landlock, then execs the program (same
//! pid); and its report channel to the supervisor, a pipe on its stdin that says why the
//! program could not be started and stays silent when the exec succeeds.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, BitFlags, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr,
    RulesetStatus, Scope,
};

use super::rules::make_temp_dir;
use super::{REPORT_FLAG, SUBCOMMAND, SandboxError};
use crate::worker::render::MARK;

/// True if `argv` is a `__sandbox` wrapper that reports on stdin.
pub fn reports_on_stdin(argv: &[OsString]) -> bool {
    argv.get(1).is_some_and(|a| a == SUBCOMMAND)
        && argv
            .iter()
            .take_while(|a| *a != "--")
            .any(|a| a == REPORT_FLAG)
}

/// Reads the launch report from `__sandbox` until it execs or exits: `None` if the program
/// started, else why it could not.
pub fn read_report(mut pipe: impl Read) -> Option<String> {
    let mut text = String::new();
    let _ = pipe.read_to_string(&mut text);
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// What `__sandbox` is asked to do.
#[derive(Debug, Clone)]
pub struct Entry {
    pub abi: u32,
    pub tmpdir: Option<PathBuf>,
    pub writable: Vec<PathBuf>,
    /// The program's stdin (the prompt file); else `/dev/null` when stdin is the report pipe,
    /// else ours.
    pub stdin: Option<PathBuf>,
    pub report_stdin: bool,
    pub argv: Vec<OsString>,
}

/// `__sandbox`: restricts this process, then execs the program (same pid). Returns only on
/// failure, with the exit code, after saying why on `log` and the report pipe.
pub fn enter(entry: &Entry, log: &mut dyn Write) -> i32 {
    let mut report = entry.report_stdin.then(take_report_pipe).flatten();
    let err = match give_stdin(entry).and_then(|()| confine(entry, log)) {
        Ok(()) => exec(entry),
        Err(e) => e,
    };
    // The message, its causes and the hint, on one line.
    let text = format!("{:?}", crate::error::Error::from(err));
    let _ = writeln!(log, "{MARK} orchestrate: {text}");
    if let Some(pipe) = &mut report {
        let _ = pipe.write_all(text.as_bytes());
    }
    crate::worker::supervise::CANNOT_EXEC
}

/// A close-on-exec copy of the report pipe on our stdin, so the program does not inherit it.
fn take_report_pipe() -> Option<File> {
    use std::os::fd::AsFd;
    let pipe = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
    Some(File::from(pipe))
}

/// Puts the program's stdin in place: the prompt file, or `/dev/null` instead of the report
/// pipe. Opened before the restriction (reading is allowed anyway).
fn give_stdin(entry: &Entry) -> Result<(), SandboxError> {
    let path = match &entry.stdin {
        Some(path) => path.as_path(),
        None if entry.report_stdin => Path::new("/dev/null"),
        None => return Ok(()),
    };
    let err = |source| SandboxError::Stdin {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(err)?;
    nix::unistd::dup2_stdin(file).map_err(|e| err(e.into()))
}

/// The regular files our stdout and stderr write to: a program that reopens them
/// (`echo x > /dev/stderr` goes through `/proc/self/fd/2` to the file's own path) must not be
/// refused what it can already do through the descriptor.
fn output_files() -> Vec<PathBuf> {
    [1, 2]
        .iter()
        .filter_map(|fd| std::fs::read_link(format!("/proc/self/fd/{fd}")).ok())
        .filter(|p| p.is_file())
        .collect()
}

/// Read and execute everywhere; every write right only beneath the granted paths. Device
/// ioctls and connecting to sockets are not handled: they write no file, and a handled right
/// is denied everywhere it is not granted.
fn confine(entry: &Entry, log: &mut dyn Write) -> Result<(), SandboxError> {
    if let Some(tmpdir) = &entry.tmpdir {
        make_temp_dir(tmpdir)?;
    }
    let abi = ABI::from(entry.abi.min(i32::MAX as u32) as i32);
    let unhandled: BitFlags<AccessFs> = AccessFs::IoctlDev | AccessFs::ResolveUnix;
    let write = AccessFs::from_all(abi) & !unhandled;
    let mut ruleset = Ruleset::default().handle_access(write)?;
    if abi >= ABI::V6 {
        // Signals to processes outside the sandbox (other workers, `start`) are refused.
        ruleset = ruleset.scope(Scope::Signal)?;
    }
    let mut created = ruleset.create()?.add_rule(PathBeneath::new(
        PathFd::new("/").map_err(|source| SandboxError::Open {
            path: "/".into(),
            source,
        })?,
        AccessFs::from_read(abi),
    ))?;
    let outputs = output_files();
    for path in entry.tmpdir.iter().chain(&entry.writable).chain(&outputs) {
        let fd = match PathFd::new(path) {
            Ok(fd) => fd,
            Err(e) => {
                // Less to write is never less safe: note it and go on.
                let _ = writeln!(
                    log,
                    "{MARK} orchestrate: sandbox: {} is not writable ({e})",
                    path.display()
                );
                continue;
            }
        };
        let access = if path.is_dir() {
            write
        } else {
            write & AccessFs::from_file(abi)
        };
        created = created.add_rule(PathBeneath::new(fd, access))?;
    }
    let status = created.restrict_self()?;
    if status.ruleset == RulesetStatus::NotEnforced {
        return Err(SandboxError::NotEnforced);
    }
    Ok(())
}

/// Replaces this process by the program; returns only the error.
fn exec(entry: &Entry) -> SandboxError {
    use std::os::unix::process::CommandExt;
    let Some((program, args)) = entry.argv.split_first() else {
        return SandboxError::NoProgram;
    };
    let mut cmd = std::process::Command::new(program);
    cmd.args(args);
    if let Some(tmpdir) = &entry.tmpdir {
        cmd.env("TMPDIR", tmpdir);
    }
    let source = cmd.exec();
    SandboxError::Exec {
        program: program.to_string_lossy().into_owned(),
        source,
    }
}
