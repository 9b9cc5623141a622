//! Sinks with two-phase commit: output is *staged* before a checkpoint's manifest is
//! written, its handles are saved in the checkpoint, and it is *committed* after the
//! manifest is written. A job restored from a checkpoint commits that checkpoint's handles
//! again (commit is idempotent), so output is neither lost nor duplicated whenever the
//! job stops or crashes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use rewind_savepoint::Location;

/// Receives output rendered as JSON lines, in two phases.
pub trait Sink: Send + Sync + 'static {
    /// Makes `lines` of `subtask` durable but invisible, as part of `checkpoint`; returns a
    /// handle that [`commit`](Sink::commit) takes. Called before the checkpoint's manifest
    /// is written.
    fn stage(&self, checkpoint: u64, subtask: u32, lines: Vec<String>) -> crate::Result<String>;
    /// Makes staged output visible. Called after the manifest is written, and again after
    /// a restore for the handles the checkpoint recorded: must be idempotent.
    fn commit(&self, handle: &str) -> crate::Result<()>;
}

/// Keeps output in memory (tests, examples): staged lines become visible on commit.
#[derive(Debug, Clone, Default)]
pub struct CollectSink {
    staged: Arc<Mutex<BTreeMap<String, Vec<String>>>>,
    lines: Arc<Mutex<Vec<String>>>,
}

impl CollectSink {
    /// Everything committed so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

fn poisoned() -> crate::EngineError {
    crate::EngineError::Internal("collect sink poisoned".into())
}

impl Sink for CollectSink {
    fn stage(&self, checkpoint: u64, subtask: u32, lines: Vec<String>) -> crate::Result<String> {
        let handle = format!("{checkpoint}-{subtask}");
        self.staged
            .lock()
            .map_err(|_| poisoned())?
            .insert(handle.clone(), lines);
        Ok(handle)
    }

    fn commit(&self, handle: &str) -> crate::Result<()> {
        // Unknown handles were committed already (or staged by another process).
        if let Some(lines) = self.staged.lock().map_err(|_| poisoned())?.remove(handle) {
            self.lines.lock().map_err(|_| poisoned())?.extend(lines);
        }
        Ok(())
    }
}

/// Writes output as JSON-lines files under a location: staged as `_pending/<name>`,
/// committed by copying to `<name>` (create-only) and deleting the pending file. Names are
/// `part-<checkpoint>-<subtask>-<run>.jsonl`; `<run>` is new for every start of the job,
/// so a job restored from an older savepoint never collides with later output.
#[derive(Debug, Clone)]
pub struct FileSink {
    location: Location,
    run: String,
}

impl FileSink {
    /// A sink writing under `location`.
    pub fn new(location: Location) -> crate::Result<FileSink> {
        // A short token for this start of the job: time and process id.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        let run = format!(
            "{:08x}",
            (nanos ^ (u64::from(std::process::id()) << 32)) as u32
        );
        Ok(FileSink { location, run })
    }

    fn error(&self, name: &str, e: impl std::fmt::Display) -> crate::EngineError {
        crate::EngineError::Operator {
            operator: "file sink".into(),
            message: format!("{}: {e}", self.location.describe(name)),
        }
    }

    fn block_on<T: Send>(
        &self,
        f: impl std::future::Future<Output = T> + Send,
    ) -> crate::Result<T> {
        crate::io::block_on(f)
    }
}

/// The committed output of a [`FileSink`] under `location`: every line of its `part-*`
/// files in name order (checkpoint, then subtask); staged, uncommitted output is not read.
pub fn read_committed(location: &Location) -> crate::Result<Vec<String>> {
    let store = location.store().clone();
    let root = location.root().clone();
    let read = crate::io::block_on(async move {
        use futures::TryStreamExt;
        let mut parts: Vec<object_store::path::Path> = store
            .list(Some(&root))
            .map_ok(|m| m.location)
            .try_filter(|p| {
                let name = p.filename().unwrap_or_default();
                futures::future::ready(name.starts_with("part-") && name.ends_with(".jsonl"))
            })
            .try_collect()
            .await?;
        // Directly under the location only: `_pending/` holds uncommitted parts.
        parts.retain(|p| p.prefix_match(&root).is_some_and(|rest| rest.count() == 1));
        parts.sort();
        let mut lines = Vec::new();
        for part in parts {
            let bytes = store.get(&part).await?.bytes().await?;
            lines.extend(String::from_utf8_lossy(&bytes).lines().map(str::to_string));
        }
        Ok::<_, object_store::Error>(lines)
    })?;
    read.map_err(|e| crate::EngineError::Operator {
        operator: "file sink".into(),
        message: format!("{location}: {e}"),
    })
}

impl Sink for FileSink {
    fn stage(&self, checkpoint: u64, subtask: u32, lines: Vec<String>) -> crate::Result<String> {
        let name = format!("part-{checkpoint:020}-{subtask:05}-{}.jsonl", self.run);
        if lines.is_empty() {
            return Ok(String::new());
        }
        let mut body = lines.join("\n");
        body.push('\n');
        let pending = self.location.child(&format!("_pending/{name}"));
        self.block_on(self.location.store().put(&pending, PutPayload::from(body)))?
            .map_err(|e| self.error(&name, e))?;
        Ok(name)
    }

    fn commit(&self, name: &str) -> crate::Result<()> {
        if name.is_empty() {
            return Ok(());
        }
        let store = self.location.store();
        let pending = self.location.child(&format!("_pending/{name}"));
        let done = self.location.child(name);
        self.block_on(async {
            let body = match store.get(&pending).await {
                Ok(r) => r.bytes().await?,
                // Committed before: the pending file is gone and the part is there.
                Err(object_store::Error::NotFound { .. }) => return Ok(()),
                Err(e) => return Err(e),
            };
            let create = PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            };
            match store.put_opts(&done, PutPayload::from(body), create).await {
                Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
            store.delete(&pending).await
        })?
        .map_err(|e| self.error(name, e))
    }
}

/// Prints output to standard output, one JSON line per record, when its checkpoint
/// completes. Staged lines live in memory: after a crash, the output of the checkpoint in
/// flight is printed by nobody (the restored job's recommit finds nothing), so stdout is
/// for watching a job, not for output that must be complete; use [`FileSink`] for that.
#[derive(Debug, Clone, Default)]
pub struct StdoutSink {
    staged: CollectSink,
}

impl Sink for StdoutSink {
    fn stage(&self, checkpoint: u64, subtask: u32, lines: Vec<String>) -> crate::Result<String> {
        self.staged.stage(checkpoint, subtask, lines)
    }

    fn commit(&self, handle: &str) -> crate::Result<()> {
        let lines = {
            let mut staged = self.staged.staged.lock().map_err(|_| poisoned())?;
            staged.remove(handle).unwrap_or_default()
        };
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for line in lines {
            // A closed pipe (`| head`) is not the job's failure.
            if writeln!(out, "{line}").is_err() {
                break;
            }
        }
        Ok(())
    }
}
