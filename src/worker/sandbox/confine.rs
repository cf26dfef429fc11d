//! Confining one program: the Landlock rule set built from a [`Confinement`] (what `start`
//! planned), and the two places it is applied — the child of the supervisor's fork, or the
//! `__sandbox` step itself.
//!
//! Where, and why: a worker (and `verify`) is confined by its supervisor in the forked child,
//! between `fork` and `exec` (a `pre_exec` hook). The supervisor makes the temp dir, opens
//! every path and builds the rule set before it forks; the child only calls
//! `prctl(PR_SET_NO_NEW_PRIVS)` and `landlock_restrict_self` on that rule set, then execs the
//! worker, which is the supervisor's direct child. The first version went through
//! `orchestrate __sandbox … -- <worker>`, which confined itself and exec'd the worker: one more
//! start of this 60 MB binary per launch, 1.4–1.7 ms of CPU — most of the 2 ms a launch may
//! cost for its sandbox, and more than that on a busy machine (BENCHMARKS.md §7). Rejected on
//! the way:
//! * a thread of the supervisor that restricts itself and then spawns (no `unsafe` at all):
//!   the worker's domain would then hold a thread of the supervisor until it exits, which the
//!   worker could signal meanwhile (SIGKILL by `tgkill` ends the whole supervisor) or trace;
//!   with the hook, the domain exists only on the child's side of the fork;
//! * the `landlock` crate's `restrict_self` in the hook: it allocates nothing when it succeeds,
//!   but it takes the rule set by value and builds a status; two raw calls are plainly safe.
//!
//! `post_create` and `merge`'s verify still go through `__sandbox` ([`super::enter`]): they are
//! not on the launch path, and the rule set grants the files the program's stdout and stderr
//! write to, read from the descriptors of the process that builds it — `__sandbox` has the
//! program's, `start` and `merge` their own.
//!
//! Invariants: the hook makes two system calls and nothing else (no allocation, no lock), so it
//! is sound in the child of a fork whatever threads the parent has (the supervisor has one);
//! if either call fails the child exits without exec'ing, and the supervisor learns it was the
//! sandbox (one byte on a close-on-exec pipe) rather than the program; an exec failure is
//! reported by `spawn` itself. A rule set the kernel would enforce none of is refused before
//! the fork. The supervisor is never confined: it writes the state store and the log.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::process::Command;

use landlock::{
    ABI, Access, AccessFs, BitFlags, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr,
    Scope,
};
use nix::errno::Errno;

use super::SandboxError;
use super::rules::make_temp_dir;
use crate::worker::render::MARK;

/// What confines one program, as `start` planned it and passes it on the command line of
/// `__supervise` and `__sandbox`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confinement {
    /// The Landlock ABI to use.
    pub abi: u32,
    /// Its temp dir, made before and exported as `TMPDIR`.
    pub tmpdir: Option<PathBuf>,
    /// Where it may write (existing paths; one that cannot be opened is skipped, with a line).
    pub writable: Vec<PathBuf>,
}

impl Confinement {
    /// As arguments: `--abi N [--tmpdir DIR] [--write PATH]…`.
    pub fn args(&self) -> Vec<OsString> {
        let mut out: Vec<OsString> = vec!["--abi".into(), self.abi.to_string().into()];
        if let Some(tmpdir) = &self.tmpdir {
            out.extend(["--tmpdir".into(), tmpdir.into()]);
        }
        for path in &self.writable {
            out.extend(["--write".into(), path.into()]);
        }
        out
    }

    /// Makes the temp dir and builds the rule set: nothing is restricted yet. Paths it cannot
    /// open are skipped with a line on `log` (less to write is never less safe).
    pub fn prepare(&self, log: &mut dyn Write) -> Result<Prepared, SandboxError> {
        if let Some(tmpdir) = &self.tmpdir {
            make_temp_dir(tmpdir)?;
        }
        Ok(Prepared {
            ruleset: ruleset(self, log)?,
            tmpdir: self.tmpdir.clone(),
        })
    }
}

/// A rule set the kernel accepted, ready to confine a program.
#[derive(Debug)]
pub struct Prepared {
    ruleset: OwnedFd,
    tmpdir: Option<PathBuf>,
}

impl Prepared {
    /// Confines this process (the `__sandbox` step, just before it execs); returns the temp dir
    /// to export.
    pub fn restrict_self(self) -> Result<Option<PathBuf>, SandboxError> {
        restrict(self.ruleset.as_fd()).map_err(|e| SandboxError::Restrict(e.into()))?;
        Ok(self.tmpdir)
    }

    /// Makes `cmd` confine its child between fork and exec, with `TMPDIR` set. The returned
    /// [`Hook`] tells, when the spawn fails, whether the sandbox was why.
    pub fn confine_child(self, cmd: &mut Command) -> Result<Hook, SandboxError> {
        use std::os::unix::process::CommandExt;
        if let Some(tmpdir) = &self.tmpdir {
            cmd.env("TMPDIR", tmpdir);
        }
        let (reader, writer) = std::io::pipe().map_err(SandboxError::Pipe)?;
        let ruleset = self.ruleset;
        let hook = move || {
            restrict(ruleset.as_fd()).map_err(|errno| {
                // The supervisor reads it only when the spawn fails.
                let _ = nix::unistd::write(&writer, &(errno as i32).to_ne_bytes());
                std::io::Error::from(errno)
            })
        };
        // SAFETY: the hook runs in the child of a fork. It makes two system calls
        // (`restrict`), maybe a `write` on a pipe it owns, and builds an `io::Error` from a
        // raw errno: no allocation, no lock, nothing that is not async-signal-safe.
        #[expect(
            unsafe_code,
            reason = "confining the child between fork and exec, so no second program has to be \
                      started to do it (see the module header)"
        )]
        unsafe {
            cmd.pre_exec(hook);
        }
        Ok(Hook { reader })
    }
}

/// The sandbox's side of a spawn with [`Prepared::confine_child`].
#[derive(Debug)]
pub struct Hook {
    reader: std::io::PipeReader,
}

impl Hook {
    /// After a failed spawn of `cmd`: the error that kept the child from being confined, or
    /// `None` when the program itself could not be executed. Drops `cmd`, which holds the
    /// pipe's other end.
    pub fn refusal(mut self, cmd: Command) -> Option<std::io::Error> {
        drop(cmd);
        let mut errno = [0; 4];
        self.reader.read_exact(&mut errno).ok()?;
        Some(std::io::Error::from_raw_os_error(i32::from_ne_bytes(errno)))
    }
}

/// Confines the calling thread (and what it execs or forks next) with `ruleset`:
/// `no_new_privs`, which Landlock requires of an unprivileged process, then
/// `landlock_restrict_self`. Two system calls and nothing else: safe between fork and exec.
fn restrict(ruleset: BorrowedFd<'_>) -> Result<(), Errno> {
    nix::sys::prctl::set_no_new_privs()?;
    // SAFETY: a system call taking an fd and flags; it reads and writes no memory of ours.
    #[expect(
        unsafe_code,
        reason = "landlock_restrict_self has no wrapper that leaves the rule set with the caller"
    )]
    let done = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_landlock_restrict_self,
            ruleset.as_raw_fd(),
            0u32,
        )
    };
    if done == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

/// The regular files our stdout and stderr write to, which the confined program inherits: a
/// program that reopens them (`echo x > /dev/stderr` goes through `/proc/self/fd/2` to the
/// file's own path) must not be refused what it can already do through the descriptor.
fn output_files() -> Vec<PathBuf> {
    [1, 2]
        .iter()
        .filter_map(|fd| std::fs::read_link(format!("/proc/self/fd/{fd}")).ok())
        .filter(|p| p.is_file())
        .collect()
}

/// The one rule-set builder. Read and execute everywhere; every write right only beneath the
/// granted paths. Device ioctls and connecting to sockets are not handled: they write no
/// file, and a handled right is denied everywhere it is not granted.
fn ruleset(confinement: &Confinement, log: &mut dyn Write) -> Result<OwnedFd, SandboxError> {
    let abi = ABI::from(confinement.abi.min(i32::MAX as u32) as i32);
    let unhandled: BitFlags<AccessFs> = AccessFs::IoctlDev | AccessFs::ResolveUnix;
    let write = AccessFs::from_all(abi) & !unhandled;
    let mut ruleset = Ruleset::default().handle_access(write)?;
    if abi >= ABI::V6 {
        // Signals to processes outside the sandbox (the supervisor, other workers, `start`)
        // are refused.
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
    let paths = confinement.tmpdir.iter().chain(&confinement.writable);
    for path in paths.chain(&outputs) {
        let fd = match PathFd::new(path) {
            Ok(fd) => fd,
            Err(e) => {
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
    // No descriptor: the kernel would enforce none of it (the crate's "not enforced").
    Option::<OwnedFd>::from(created).ok_or(SandboxError::NotEnforced)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn abi() -> Option<u32> {
        super::super::Support::probe().abi()
    }

    #[test]
    fn arguments_list_the_abi_the_temp_dir_and_each_writable_path() {
        let c = Confinement {
            abi: 6,
            tmpdir: Some("/t".into()),
            writable: vec!["/a".into(), "/b c".into()],
        };
        assert_eq!(
            c.args(),
            [
                "--abi", "6", "--tmpdir", "/t", "--write", "/a", "--write", "/b c"
            ]
        );
    }

    /// The child is confined, the process that spawned it is not.
    #[test]
    fn only_the_child_is_confined() {
        let Some(abi) = abi() else { return };
        let tmp = tempfile::tempdir().unwrap();
        let (inside, outside) = (tmp.path().join("in"), tmp.path().join("out"));
        std::fs::create_dir(&inside).unwrap();
        let prepared = Confinement {
            abi,
            tmpdir: None,
            writable: vec![inside.clone(), "/dev/null".into()],
        }
        .prepare(&mut std::io::sink())
        .unwrap();
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "touch \"$1/ok\"; touch \"$2\" 2>/dev/null; exit 0",
            "sh",
        ])
        .arg(&inside)
        .arg(&outside);
        let _hook = prepared.confine_child(&mut cmd).unwrap();
        assert!(cmd.status().unwrap().success());
        assert!(inside.join("ok").exists());
        assert!(!outside.exists(), "the child wrote outside");
        std::fs::write(&outside, "").expect("the parent is not confined");
    }

    /// A child that cannot be confined does not run, and the spawn says it was the sandbox.
    #[test]
    fn a_failed_confinement_keeps_the_program_from_running_and_says_so() {
        let tmp = tempfile::tempdir().unwrap();
        let ran = tmp.path().join("ran");
        // Not a rule set: landlock_restrict_self refuses it (EBADFD, or ENOSYS without
        // Landlock), as it would refuse a domain nested too deep.
        let prepared = Prepared {
            ruleset: std::fs::File::open("/dev/null").unwrap().into(),
            tmpdir: None,
        };
        let mut cmd = Command::new("touch");
        cmd.arg(&ran);
        let hook = prepared.confine_child(&mut cmd).unwrap();
        let err = cmd.spawn().expect_err("the hook fails");
        let refusal = hook.refusal(cmd).expect("the sandbox was why");
        assert_eq!(refusal.raw_os_error(), err.raw_os_error());
        assert!(!ran.exists());
        // A program that cannot be executed is not the sandbox's doing.
        let Some(abi) = abi() else { return };
        let prepared = Confinement {
            abi,
            tmpdir: None,
            writable: Vec::new(),
        }
        .prepare(&mut std::io::sink())
        .unwrap();
        let mut cmd = Command::new(tmp.path().join("no-such-program"));
        let hook = prepared.confine_child(&mut cmd).unwrap();
        let err = cmd.spawn().expect_err("no program");
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        assert!(hook.refusal(cmd).is_none());
    }
}
