//! Managed jobs: how an application runs under `rewind run` and answers `rewind list`,
//! `savepoint`, `stop` and `cancel`.
//!
//! [`execute`] starts the job, opens a control endpoint on a loopback port with a random
//! secret, and writes the job's entry into the registry ([`JobRegistry`]): id, pid,
//! address, secret, status, last checkpoint. The entry is updated as checkpoints complete
//! and when the job ends, so a job that crashed still names its last checkpoint.
//! A client reads the entry (only the owner can) and sends one request per connection
//! ([`JobEntry::request`]). SIGTERM and SIGINT stop the job with a savepoint into its
//! savepoint dir, a second one cancels it (`signals.rs`); [`execute`] keeps handling them
//! for the rest of the process, ending it as by default once the job has ended.

mod protocol;
mod registry;
mod server;
mod signals;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use rewind_savepoint::Location;

pub use protocol::{ControlCommand, ControlReply, JobReport};
pub use registry::{CheckpointRef, JobEntry, JobRegistry, JobStatus, KEEP_FINISHED};
use server::{EndRequest, Server, Shared};
pub use signals::watch_stop_signals;

use crate::{EngineError, EngineOptions, Job, Result};

/// How often a running job looks for a new completed checkpoint to record.
const RECORD_EVERY: Duration = Duration::from_millis(200);

/// Runs `job` as an application does: writes the restore plan to `out` (the
/// application's standard output) and returns with `--dry-run`; otherwise runs it to its
/// end, registered in the job registry and controllable through its endpoint. A registry
/// that cannot be written is logged (`tracing`) and the job runs uncontrolled.
pub fn execute(job: Job, options: &EngineOptions, out: &mut dyn std::io::Write) -> Result<()> {
    let run_options = options.run_options()?;
    if options.dry_run {
        let plan = crate::restore_plan(&job, &run_options)?;
        writeln!(out, "{plan}")
            .and_then(|()| out.flush())
            .map_err(EngineError::Output)?;
        return Ok(());
    }
    let id = match &options.job_id {
        Some(id) => check_job_id(id)?,
        None => new_job_id(),
    };
    let savepoint_dir = options
        .savepoint_dir
        .as_deref()
        .map(|d| Location::parse(&absolute(d)))
        .transpose()?;
    let name = job.name.clone();
    let restored_from = run_options.from_savepoint.as_ref().map(|l| l.to_string());
    let handle = crate::run(job, run_options)?;
    let shared = Arc::new(Shared {
        id: id.clone(),
        name: name.clone(),
        secret: new_secret(),
        control: handle.control(),
        savepoint_dir,
        end: Mutex::new(None),
        ended: AtomicBool::new(false),
    });
    if let Err(e) = signals::watch(shared.clone()) {
        tracing::warn!(job = %id, "job {id} ignores SIGTERM and SIGINT: {e}");
    }
    let managed = match register(&shared, restored_from) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::warn!(job = %id, "job {id} runs without control: {e}");
            None
        }
    };
    let result = handle.wait();
    shared.ended.store(true, Ordering::SeqCst);
    if let Some(m) = managed {
        m.finish(&shared, &result);
    }
    result.map(|_| ())
}

/// A registered job: its endpoint, its entry and the thread that keeps the entry current.
struct Managed {
    server: Server,
    registry: JobRegistry,
    entry: Arc<Mutex<JobEntry>>,
    done: Arc<AtomicBool>,
    recorder: std::thread::JoinHandle<()>,
}

fn register(shared: &Arc<Shared>, restored_from: Option<String>) -> Result<Managed> {
    let registry = JobRegistry::open_default()?;
    let server = Server::start(shared.clone())?;
    let mut entry = JobEntry::new(
        shared.id.clone(),
        shared.name.clone(),
        server.address().to_string(),
        shared.secret.clone(),
    );
    entry.restored_from = restored_from;
    if let Err(e) = registry.write(&entry) {
        server.close();
        return Err(e);
    }
    let entry = Arc::new(Mutex::new(entry));
    let done = Arc::new(AtomicBool::new(false));
    let recorder = {
        let (registry, entry, done, control) = (
            registry.clone(),
            entry.clone(),
            done.clone(),
            shared.control.clone(),
        );
        std::thread::Builder::new()
            .name("registry".into())
            .spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    std::thread::sleep(RECORD_EVERY);
                    record_checkpoint(&registry, &entry, &control.stats());
                }
            })
            .map_err(|e| EngineError::Internal(e.to_string()))?
    };
    Ok(Managed {
        server,
        registry,
        entry,
        done,
        recorder,
    })
}

fn record_checkpoint(registry: &JobRegistry, entry: &Mutex<JobEntry>, stats: &crate::JobStats) {
    let Some(last) = stats.last_checkpoint.as_ref().map(CheckpointRef::from) else {
        return;
    };
    let Ok(mut entry) = entry.lock() else { return };
    if entry.last_checkpoint.as_ref() != Some(&last) {
        entry.last_checkpoint = Some(last);
        if let Err(e) = registry.write(&entry) {
            tracing::warn!(job = %entry.id, "{e}");
        }
    }
}

impl Managed {
    /// Records how the job ended and closes its endpoint.
    fn finish(self, shared: &Shared, result: &Result<Vec<rewind_savepoint::format::Manifest>>) {
        self.server.close();
        self.done.store(true, Ordering::SeqCst);
        let _ = self.recorder.join();
        let Ok(mut entry) = self.entry.lock() else {
            return;
        };
        let stats = shared.control.stats();
        if let Some(last) = stats.last_checkpoint.as_ref() {
            entry.last_checkpoint = Some(CheckpointRef::from(last));
        }
        let end = shared.end.lock().ok().and_then(|e| *e);
        entry.status = match (result, end) {
            (Err(e), _) => {
                entry.error = Some(e.to_string());
                JobStatus::Failed
            }
            (Ok(_), Some(EndRequest::Cancel)) => JobStatus::Cancelled,
            (Ok(_), Some(EndRequest::Stop)) => JobStatus::Stopped,
            (Ok(_), None) => JobStatus::Finished,
        };
        entry.ended_at = Some(registry::now());
        if let Err(e) = self.registry.write(&entry) {
            tracing::warn!(job = %entry.id, "{e}");
        }
    }
}

/// A new job id: 32 hex digits, like Flink's.
fn new_job_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn check_job_id(id: &str) -> Result<String> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(id.to_string())
    } else {
        Err(EngineError::InvalidJob(format!(
            "job id {id:?}: use 1 to 64 letters, digits, '-' or '_'"
        )))
    }
}

/// 244 random bits from the operating system's generator.
fn new_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// A local path made absolute (the job's working directory is not its clients'); URLs as
/// they are.
pub(crate) fn absolute(target: &str) -> String {
    if target.contains("://") {
        return target.to_string();
    }
    std::path::absolute(target)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| target.to_string())
}

/// Refuses a savepoint target that already holds a savepoint or cannot be written, before
/// a stop commits to ending the job: an empty probe object is created and removed.
pub(crate) fn check_writable(control: &crate::JobControl, target: &Location) -> Result<()> {
    let store = target.store().clone();
    let manifest = target.child(rewind_savepoint::format::MANIFEST_FILE);
    let probe_name = format!("_probe-{}", uuid::Uuid::new_v4().simple());
    let probe = target.child(&probe_name);
    let outcome = control.io()?.block_on(async move {
        match store.head(&manifest).await {
            Ok(_) => return Err("it already holds a savepoint".to_string()),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.to_string()),
        }
        let create = PutOptions::from(PutMode::Create);
        store
            .put_opts(&probe, PutPayload::new(), create)
            .await
            .map_err(|e| e.to_string())?;
        store.delete(&probe).await.map_err(|e| e.to_string())
    })?;
    outcome.map_err(|e| EngineError::Control(format!("cannot write a savepoint to {target}: {e}")))
}
