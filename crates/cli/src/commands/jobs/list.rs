//! `rewind list`: the registry's jobs, with live figures from the running ones.

use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use rewind_engine::{ControlCommand, ControlReply, JobEntry, JobStatus, KEEP_FINISHED};
use serde::Serialize;

use super::registry;
use crate::output;

/// The `list --json` document (docs/json.md).
#[derive(Debug, Serialize)]
struct ListView {
    jobs: Vec<JobView>,
}

#[derive(Debug, Serialize)]
struct JobView {
    id: String,
    name: String,
    /// running, finished, stopped, cancelled, failed; lost (the process is gone) or
    /// unresponsive (alive, but its endpoint does not answer).
    status: String,
    pid: u32,
    started_at: String,
    ended_at: Option<String>,
    restored_from: Option<String>,
    last_checkpoint: Option<CheckpointView>,
    records_read: Option<u64>,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct CheckpointView {
    id: u64,
    location: String,
    savepoint: bool,
    completed_at: String,
}

pub fn list(json: bool, out: &mut dyn Write) -> Result<u8> {
    let registry = registry()?;
    registry.prune(KEEP_FINISHED)?;
    let mut views = Vec::new();
    for entry in registry.list()? {
        let view = view(&entry);
        // A job registered as running whose process is gone crashed or was killed: shown
        // once, with its last checkpoint, then forgotten.
        if view.status == "lost" {
            registry.remove(&entry.id)?;
        }
        views.push(view);
    }
    if json {
        crate::json::write_document(out, &ListView { jobs: views })?;
        return Ok(crate::EXIT_OK);
    }
    if views.is_empty() {
        writeln!(out, "no jobs in {}", registry.dir().display())?;
        return Ok(crate::EXIT_OK);
    }
    let mut table = output::table(&[
        "job id",
        "name",
        "status",
        "started",
        "last checkpoint",
        "restored from",
    ]);
    for v in &views {
        let status = match (&v.error, v.records_read) {
            (Some(e), _) => format!("{}: {e}", v.status),
            (None, Some(n)) => format!("{} ({n} records read)", v.status),
            (None, None) => v.status.clone(),
        };
        table.add_row(vec![
            v.id.clone(),
            v.name.clone(),
            status,
            v.started_at.clone(),
            v.last_checkpoint
                .as_ref()
                .map(|c| format!("{} ({})", c.location, c.completed_at))
                .unwrap_or_else(|| "-".into()),
            v.restored_from.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    writeln!(out, "{table}")?;
    Ok(crate::EXIT_OK)
}

fn view(entry: &JobEntry) -> JobView {
    let mut view = JobView {
        id: entry.id.clone(),
        name: entry.name.clone(),
        status: entry.status.as_str().to_string(),
        pid: entry.pid,
        started_at: entry.started_at.clone(),
        ended_at: entry.ended_at.clone(),
        restored_from: entry.restored_from.clone(),
        last_checkpoint: entry.last_checkpoint.as_ref().map(|c| CheckpointView {
            id: c.id,
            location: c.location.clone(),
            savepoint: c.savepoint,
            completed_at: c.completed_at.clone(),
        }),
        records_read: None,
        error: entry.error.clone(),
    };
    if entry.status != JobStatus::Running {
        return view;
    }
    if !entry.process_alive() {
        view.status = "lost".into();
        return view;
    }
    match entry.request(ControlCommand::Status, Duration::from_secs(2)) {
        Ok(ControlReply::Status(report)) => {
            view.records_read = Some(report.records_read);
            if let Some(c) = report.last_checkpoint {
                view.last_checkpoint = Some(CheckpointView {
                    id: c.id,
                    location: c.location,
                    savepoint: c.savepoint,
                    completed_at: c.completed_at,
                });
            }
        }
        _ => view.status = "unresponsive".into(),
    }
    view
}
