//! Sinks with two-phase commit: output is *staged* before a checkpoint's manifest is
//! written, its handles are saved in the checkpoint, and it is *committed* after the
//! manifest is written. A job restored from a checkpoint commits that checkpoint's handles
//! again (commit is idempotent), so output is neither lost nor duplicated whenever the
//! job stops or crashes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use rewind_savepoint::Location;

pub(crate) mod pending;
mod staging;

pub use staging::{StagedOrphans, find_staged_orphans, remove_staged_orphans};

/// Receives output rendered as JSON lines, in two phases.
pub trait Sink: Send + Sync + 'static {
    /// Makes `chunk` (whole JSON lines of `subtask`'s output, each ending in a newline)
    /// durable but invisible, and returns a token naming it: a plain file name (letters,
    /// digits, `-`, `_`, `.`). `seq` numbers the subtask's chunks in output order within
    /// this run of the job; chunks may be staged out of that order, so a sink that orders
    /// its output should follow `seq`. Called whenever a subtask has buffered enough
    /// output, and for the rest at each checkpoint, before the checkpoint's manifest is
    /// written; from any thread.
    fn stage(&self, subtask: u32, seq: u64, chunk: &[u8]) -> crate::Result<String>;
    /// Makes the staged chunk `token` visible as output of `checkpoint`. Called after the
    /// manifest is written, and again after a restore for the tokens the checkpoint
    /// recorded: must be idempotent. A subtask's chunks are committed in `seq` order.
    fn commit(&self, checkpoint: u64, token: &str) -> crate::Result<()>;
    /// Records that the checkpoint or savepoint `checkpoint` about to be written at
    /// `location` lists the staged chunks `tokens`; called before its manifest is written,
    /// so that cleanup never removes a chunk a committed manifest lists. Sinks whose staged
    /// output does not outlive the process need not record anything.
    fn record_listing(
        &self,
        checkpoint: u64,
        location: &str,
        tokens: &[String],
    ) -> crate::Result<()> {
        let _ = (checkpoint, location, tokens);
        Ok(())
    }
    /// Removes staged output that no committed checkpoint or savepoint lists (left by a
    /// crash or cancel): called once when a job starts, after the restored checkpoint's
    /// output is committed and before anything is staged. Returns the files removed.
    fn remove_orphans(&self) -> crate::Result<usize> {
        Ok(0)
    }
    /// Every chunk listed by checkpoints up to `checkpoint` is committed (their listings
    /// can go).
    fn committed_through(&self, checkpoint: u64) -> crate::Result<()> {
        let _ = checkpoint;
        Ok(())
    }
}

/// Keeps output in memory (tests, examples): staged lines become visible on commit.
#[derive(Debug, Clone, Default)]
pub struct CollectSink {
    staged: Arc<Mutex<BTreeMap<String, Vec<String>>>>,
    seq: Arc<AtomicU64>,
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
    fn stage(&self, subtask: u32, seq: u64, chunk: &[u8]) -> crate::Result<String> {
        // A restored job numbers its chunks from 0 again: the counter keeps tokens unique.
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let token = format!("{subtask:05}-{seq:010}-{n}");
        let lines = String::from_utf8_lossy(chunk)
            .lines()
            .map(str::to_string)
            .collect();
        self.staged
            .lock()
            .map_err(|_| poisoned())?
            .insert(token.clone(), lines);
        Ok(token)
    }

    fn commit(&self, _checkpoint: u64, token: &str) -> crate::Result<()> {
        // Unknown tokens were committed already (or staged by another process).
        let lines = self.staged.lock().map_err(|_| poisoned())?.remove(token);
        if let Some(lines) = lines {
            self.lines.lock().map_err(|_| poisoned())?.extend(lines);
        }
        Ok(())
    }
}

/// Writes output as JSON-lines files under a location. A chunk is staged as
/// `_pending/<token>.jsonl` and committed by copying it to `part-<checkpoint>-<token>.jsonl`
/// (create-only), then deleting the pending file. Which chunks each checkpoint lists is
/// recorded beside them, so that chunks no checkpoint can commit are removed when a job
/// starts (see [`find_staged_orphans`]). Tokens are `<subtask>-<seq>-<run>`:
/// `<seq>` is the chunk's place in the subtask's output, and `<run>` is random and new for
/// every start of the job, so a job restored from an older savepoint never collides with
/// later output. The parts in name order are the output in order (checkpoint, subtask,
/// chunk).
#[derive(Debug, Clone)]
pub struct FileSink {
    location: Location,
    run: String,
    /// Listing records this run wrote: (checkpoint, file name), removed once committed.
    records: Arc<Mutex<Vec<(u64, String)>>>,
}

impl FileSink {
    /// A sink writing under `location`.
    pub fn new(location: Location) -> crate::Result<FileSink> {
        // 64 random bits for this start of the job.
        let run = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
        Ok(FileSink {
            location,
            run,
            records: Arc::default(),
        })
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

/// A token or legacy part name read from a checkpoint, checked before it names a file:
/// one path segment of letters, digits, `-`, `_` and `.`, not starting with a dot.
fn check_token(token: &str) -> crate::Result<()> {
    let safe = !token.is_empty()
        && !token.starts_with('.')
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if safe {
        Ok(())
    } else {
        Err(crate::EngineError::Restore(format!(
            "file sink: staged output {token:?} is not a valid token"
        )))
    }
}

impl Sink for FileSink {
    fn stage(&self, subtask: u32, seq: u64, chunk: &[u8]) -> crate::Result<String> {
        let token = format!("{subtask:05}-{seq:010}-{}", self.run);
        let name = format!("_pending/{token}.jsonl");
        let pending = self.location.child(&name);
        let body = PutPayload::from(chunk.to_vec());
        self.block_on(self.location.store().put(&pending, body))?
            .map_err(|e| self.error(&name, e))?;
        Ok(token)
    }

    fn record_listing(
        &self,
        checkpoint: u64,
        location: &str,
        tokens: &[String],
    ) -> crate::Result<()> {
        let name = staging::record_listing(&self.location, checkpoint, location, tokens)?;
        self.records
            .lock()
            .map_err(|_| poisoned())?
            .push((checkpoint, name));
        Ok(())
    }

    fn committed_through(&self, checkpoint: u64) -> crate::Result<()> {
        let done: Vec<String> = {
            let mut records = self.records.lock().map_err(|_| poisoned())?;
            let (done, open): (Vec<_>, Vec<_>) =
                records.drain(..).partition(|(c, _)| *c <= checkpoint);
            *records = open;
            done.into_iter().map(|(_, name)| name).collect()
        };
        staging::remove_files(&self.location, &done)
    }

    fn remove_orphans(&self) -> crate::Result<usize> {
        // Nothing of this run is staged yet: every file may be checked, whatever its age.
        let orphans = find_staged_orphans(&self.location, std::time::Duration::ZERO)?;
        remove_staged_orphans(&self.location, &orphans)?;
        Ok(orphans.files().count())
    }

    fn commit(&self, checkpoint: u64, token: &str) -> crate::Result<()> {
        check_token(token)?;
        // Checkpoints of earlier versions recorded the part's final name.
        let (name, pending_name) = if token.starts_with("part-") {
            (token.to_string(), format!("_pending/{token}"))
        } else {
            (
                format!("part-{checkpoint:020}-{token}.jsonl"),
                format!("_pending/{token}.jsonl"),
            )
        };
        let store = self.location.store();
        let pending = self.location.child(&pending_name);
        let done = self.location.child(&name);
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
        .map_err(|e| self.error(&name, e))
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
    fn stage(&self, subtask: u32, seq: u64, chunk: &[u8]) -> crate::Result<String> {
        self.staged.stage(subtask, seq, chunk)
    }

    fn commit(&self, _checkpoint: u64, token: &str) -> crate::Result<()> {
        let lines = {
            let mut staged = self.staged.staged.lock().map_err(|_| poisoned())?;
            staged.remove(token).unwrap_or_default()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(dir: &std::path::Path) -> FileSink {
        FileSink::new(Location::parse(dir.to_str().unwrap()).unwrap()).unwrap()
    }

    fn files(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = walk(dir)
            .into_iter()
            .map(|p| p.strip_prefix(dir).unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
        out
    }

    #[test]
    fn chunks_commit_once_in_staging_order() {
        let dir = tempfile::tempdir().unwrap();
        let sink = sink(dir.path());
        // Staged out of order (the rest at a barrier comes after the subtask's chunks):
        // names follow `seq`.
        let b = sink.stage(1, 1, b"{\"n\":3}\n").unwrap();
        let a = sink.stage(1, 0, b"{\"n\":1}\n{\"n\":2}\n").unwrap();
        let c = sink.stage(0, 0, b"{\"n\":0}\n").unwrap();
        // Staged output is invisible.
        assert!(read_committed(&sink.location).unwrap().is_empty());
        for token in [&a, &b, &c] {
            sink.commit(7, token).unwrap();
        }
        // Committing again (a restore's recommit) changes nothing.
        for token in [&a, &b, &c] {
            sink.commit(7, token).unwrap();
        }
        assert_eq!(
            read_committed(&sink.location).unwrap(),
            [r#"{"n":0}"#, r#"{"n":1}"#, r#"{"n":2}"#, r#"{"n":3}"#]
        );
        let names = files(dir.path());
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(
            names
                .iter()
                .all(|n| n.starts_with("part-00000000000000000007-"))
        );
    }

    #[test]
    fn parts_recorded_by_earlier_versions_still_commit() {
        let dir = tempfile::tempdir().unwrap();
        let name = "part-00000000000000000003-00001-0badcafe.jsonl";
        std::fs::create_dir(dir.path().join("_pending")).unwrap();
        std::fs::write(dir.path().join("_pending").join(name), "{}\n").unwrap();
        let sink = sink(dir.path());
        sink.commit(3, name).unwrap();
        assert_eq!(files(dir.path()), [name]);
    }

    #[test]
    fn tokens_that_would_leave_the_sink_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let sink = sink(dir.path());
        for token in ["../escape", "a/b", "", ".hidden", "part-x/../../y"] {
            let err = sink.commit(1, token).unwrap_err();
            assert!(
                matches!(err, crate::EngineError::Restore(_)),
                "{token}: {err}"
            );
        }
    }
}
