//! Sinks that make output visible only when the checkpoint covering it completes, so a job
//! restored from a savepoint neither duplicates nor loses output.

use std::sync::{Arc, Mutex};

use object_store::{PutMode, PutOptions, PutPayload};
use rewind_savepoint::Location;

/// Receives output, already rendered as JSON lines, once its checkpoint has completed.
pub trait Sink: Send + Sync + 'static {
    /// Makes `lines` of `subtask` visible as part of checkpoint `checkpoint`. Called once
    /// per checkpoint and subtask, in checkpoint order; must be idempotent by
    /// `(checkpoint, subtask)`.
    fn commit(&self, checkpoint: u64, subtask: u32, lines: Vec<String>) -> crate::Result<()>;
}

/// Keeps committed output in memory (tests, examples).
#[derive(Debug, Clone, Default)]
pub struct CollectSink {
    lines: Arc<Mutex<Vec<String>>>,
}

impl CollectSink {
    /// Everything committed so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Sink for CollectSink {
    fn commit(&self, _checkpoint: u64, _subtask: u32, lines: Vec<String>) -> crate::Result<()> {
        self.lines
            .lock()
            .map_err(|_| crate::EngineError::Internal("collect sink poisoned".into()))?
            .extend(lines);
        Ok(())
    }
}

/// Writes committed output as JSON-lines files `part-<checkpoint>-<subtask>-<run>.jsonl`
/// under a location, each with a create-only put: a file appears whole, once. `<run>` is
/// new for every start of the job, so a job restored from an older savepoint never
/// collides with output of a later checkpoint of an earlier run.
#[derive(Debug, Clone)]
pub struct FileSink {
    location: Location,
    run: String,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl FileSink {
    /// A sink writing under `location`.
    pub fn new(location: Location) -> crate::Result<FileSink> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| crate::EngineError::Internal(e.to_string()))?;
        // A short token for this start of the job: time and process id.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        let run = format!(
            "{:08x}",
            (nanos ^ (u64::from(std::process::id()) << 32)) as u32
        );
        Ok(FileSink {
            location,
            run,
            runtime: Arc::new(runtime),
        })
    }
}

impl Sink for FileSink {
    fn commit(&self, checkpoint: u64, subtask: u32, lines: Vec<String>) -> crate::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let name = format!("part-{checkpoint:020}-{subtask:05}-{}.jsonl", self.run);
        let mut body = lines.join("\n");
        body.push('\n');
        let path = self.location.child(&name);
        let options = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let result = self.runtime.block_on(self.location.store().put_opts(
            &path,
            PutPayload::from(body),
            options,
        ));
        match result {
            Ok(_) => Ok(()),
            Err(e) => Err(crate::EngineError::Operator {
                operator: "file sink".into(),
                message: format!("{}: {e}", self.location.describe(&name)),
            }),
        }
    }
}
