//! `orchestrate __sandbox` (hidden): confines itself with Landlock, then execs the program, so
//! the program keeps this process's pid. Run by the supervisor (and for `post_create`); its
//! stderr is the stream's log.

use crate::cli::SandboxArgs;
use crate::error::Result;
use crate::worker::sandbox;

pub fn run(args: &SandboxArgs) -> Result<i32> {
    Ok(sandbox::enter(
        &sandbox::Entry {
            abi: args.abi,
            tmpdir: args.tmpdir.clone(),
            writable: args.write.clone(),
            report_stdin: args.report_stdin,
            argv: args.argv.clone(),
        },
        &mut std::io::stderr(),
    ))
}
