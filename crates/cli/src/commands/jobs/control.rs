//! `rewind savepoint`, `rewind stop`, `rewind cancel`: one request to a running job.

use std::io::Write;
use std::time::Duration;

use anyhow::{Result, bail};
use rewind_engine::{ControlCommand, ControlReply, JobStatus};

use super::{absolute, registry, running_job, wait_until_ended};
use crate::cli::{CancelArgs, SavepointArgs, StopArgs};

pub fn savepoint(args: SavepointArgs, out: &mut dyn Write) -> Result<u8> {
    let registry = registry()?;
    let job = running_job(&registry, &args.job_id)?;
    let command = ControlCommand::Savepoint {
        target: args.target.as_deref().map(absolute),
    };
    let location = savepoint_location(job.request(command, args.timeout.into())?)?;
    writeln!(out, "{location}")?;
    Ok(crate::EXIT_OK)
}

pub fn stop(args: StopArgs, out: &mut dyn Write) -> Result<u8> {
    let registry = registry()?;
    let job = running_job(&registry, &args.job_id)?;
    let command = ControlCommand::Stop {
        target: args.savepoint.as_deref().map(absolute),
        drain: args.drain,
    };
    let location = savepoint_location(job.request(command, args.timeout.into())?)?;
    let ended = wait_until_ended(&registry, &job.id, args.timeout.into())?;
    if ended.status != JobStatus::Stopped {
        bail!(
            "job {} wrote savepoint {location} but then {}: {}",
            job.id,
            ended.status.as_str(),
            ended.error.unwrap_or_default()
        );
    }
    writeln!(out, "{location}")?;
    Ok(crate::EXIT_OK)
}

pub fn cancel(args: CancelArgs, out: &mut dyn Write) -> Result<u8> {
    let registry = registry()?;
    let job = running_job(&registry, &args.job_id)?;
    match job.request(ControlCommand::Cancel, Duration::from_secs(30))? {
        ControlReply::Accepted => {}
        other => bail!("job {}: unexpected answer {other:?}", job.id),
    }
    let ended = wait_until_ended(&registry, &job.id, Duration::from_secs(60))?;
    writeln!(out, "job {} {}", ended.id, ended.status.as_str())?;
    Ok(crate::EXIT_OK)
}

fn savepoint_location(reply: ControlReply) -> Result<String> {
    match reply {
        ControlReply::Savepoint { location, .. } => Ok(location),
        other => bail!("unexpected answer from the job: {other:?}"),
    }
}
