//! `orchestrate __supervise` (hidden): runs one worker as its process-group leader and records
//! how it ended. Spawned by `start`; its stdout/stderr are the stream's log.

use crate::cli::SuperviseArgs;
use crate::error::Result;
use crate::worker::sandbox::Confinement;
use crate::worker::supervise;

pub fn run(args: &SuperviseArgs) -> Result<i32> {
    let confinement = args.abi.map(|abi| Confinement {
        abi,
        tmpdir: args.tmpdir.clone(),
        writable: args.writable.clone(),
    });
    Ok(supervise::run(
        args.record,
        &args.state,
        &args.argv,
        args.stdin.as_deref(),
        confinement.as_ref(),
        &mut std::io::stderr(),
    ))
}
