//! `orchestrate __sandbox --abi N [--tmpdir DIR] [--write PATH]… -- CMD…` (hidden): confines
//! itself with Landlock, then execs CMD, which keeps this process's pid. Run for `post_create` and
//! `merge`'s verify (a worker is confined by its supervisor instead: `worker/sandbox/confine.rs`). `main` calls
//! it before the command line parser and the logging set-up, which would cost more than the
//! rest of this step together, so its few arguments (always written by
//! [`sandbox::Confinement::args`]) are read here by hand.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use crate::exit_codes;
use crate::worker::sandbox::{self, Confinement, Entry};

/// `Some(exit code)` when this process was started as `orchestrate __sandbox …`; it returns
/// only when the program could not be started.
pub fn run_if_called() -> Option<i32> {
    let mut args = std::env::args_os().skip(1);
    if args.next()? != sandbox::SUBCOMMAND {
        return None;
    }
    let mut log = std::io::stderr();
    Some(match parse(args) {
        Ok(entry) => sandbox::enter(&entry, &mut log),
        Err(why) => {
            let _ = writeln!(log, "error: {} {why}", sandbox::SUBCOMMAND);
            exit_codes::USAGE
        }
    })
}

/// The arguments after `__sandbox`.
fn parse(mut args: impl Iterator<Item = OsString>) -> Result<Entry, String> {
    let (mut abi, mut tmpdir, mut writable, mut argv) = (None, None, Vec::new(), Vec::new());
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{} needs a value", arg.to_string_lossy()))
        };
        match arg.to_str() {
            Some("--abi") => {
                let v = value()?;
                abi = Some(
                    v.to_str()
                        .and_then(|v| v.parse().ok())
                        .ok_or_else(|| format!("--abi takes a number, not {v:?}"))?,
                );
            }
            Some("--tmpdir") => tmpdir = Some(PathBuf::from(value()?)),
            Some("--write") => writable.push(PathBuf::from(value()?)),
            Some("--") => {
                argv = args.collect();
                break;
            }
            _ => return Err(format!("does not take {arg:?}")),
        }
    }
    let abi = abi.ok_or("needs --abi N")?;
    if argv.is_empty() {
        return Err("needs `-- PROGRAM [ARGS…]`".into());
    }
    Ok(Entry {
        confinement: Confinement {
            abi,
            tmpdir,
            writable,
        },
        argv,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> impl Iterator<Item = OsString> {
        text.split(' ')
            .map(OsString::from)
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn reads_what_wrap_writes() {
        let written = Confinement {
            abi: 7,
            tmpdir: Some("/t".into()),
            writable: vec!["/a".into(), "/b".into()],
        };
        let argv = written
            .args()
            .into_iter()
            .chain(["--", "sh", "-c", "--write"].map(OsString::from));
        let e = parse(argv).unwrap();
        assert_eq!(e.confinement, written);
        assert_eq!(e.argv, ["sh", "-c", "--write"]);
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        for (args, why) in [
            ("--abi 7 --bogus -- x", "does not take \"--bogus\""),
            ("--abi 7 --stdin /p -- x", "does not take \"--stdin\""),
            ("--write /a -- x", "needs --abi N"),
            ("--abi seven -- x", "--abi takes a number"),
            ("--abi 7", "needs `-- PROGRAM"),
            ("--abi 7 --write", "--write needs a value"),
        ] {
            let err = parse(words(args)).err().unwrap();
            assert!(err.contains(why), "{args}: {err}");
        }
    }
}
