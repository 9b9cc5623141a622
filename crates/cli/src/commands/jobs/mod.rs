//! The job commands: `run`, `list`, `savepoint`, `stop`, `cancel`. They find jobs in the
//! registry and talk to each through its loopback control endpoint.

mod control;
mod list;
mod run;

pub use control::{cancel, savepoint, stop};
pub use list::list;
pub use run::run;

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use rewind_engine::{JobEntry, JobRegistry, JobStatus};

/// The registry, opened once per command.
fn registry() -> Result<JobRegistry> {
    Ok(JobRegistry::open_default()?)
}

/// The job `id` names, which must be running.
fn running_job(registry: &JobRegistry, id: &str) -> Result<JobEntry> {
    let entry = registry.find(id)?;
    if entry.status != JobStatus::Running {
        bail!(
            "job {} is not running: it {}{}",
            entry.id,
            entry.status.as_str(),
            entry
                .ended_at
                .as_deref()
                .map(|t| format!(" at {t}"))
                .unwrap_or_default()
        );
    }
    if !entry.process_alive() {
        bail!(
            "job {} is gone: its process {} no longer exists{}",
            entry.id,
            entry.pid,
            entry
                .last_checkpoint
                .as_ref()
                .map(|c| format!(" (last checkpoint: {})", c.location))
                .unwrap_or_default()
        );
    }
    Ok(entry)
}

/// Waits until the job's entry says it ended; returns the final entry.
fn wait_until_ended(registry: &JobRegistry, id: &str, timeout: Duration) -> Result<JobEntry> {
    let started = Instant::now();
    loop {
        let entry = registry.find(id)?;
        if entry.status != JobStatus::Running {
            return Ok(entry);
        }
        if !entry.process_alive() {
            bail!(
                "job {id}: its process {} ended without recording how",
                entry.pid
            );
        }
        if started.elapsed() > timeout {
            bail!(
                "job {id} has not ended after {}",
                humantime::format_duration(timeout)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A local path made absolute (the job runs in another directory); URLs as they are.
fn absolute(target: &str) -> String {
    if target.contains("://") {
        return target.to_string();
    }
    std::path::absolute(target)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| target.to_string())
}
