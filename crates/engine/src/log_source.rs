//! A partitioned log on any object store: a directory with one append-only file of JSON
//! lines per partition (like a Kafka topic). Each partition is a split whose position is
//! the byte offset after the last line read, so a restored job resumes exactly there.

use std::marker::PhantomData;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use rewind_savepoint::Location;
use rewind_savepoint::format::SplitEntry;
use serde::de::DeserializeOwned;

use crate::source::{Source, SplitReader};
use crate::{EngineError, Result};

/// Reads every `*.jsonl` file under a location as one partition (split id = file name).
/// Bounded by default: a partition ends at the size it has when read. With
/// [`follow`](LogSource::follow) it waits for lines appended later, for long-running jobs.
pub struct LogSource<T> {
    location: Location,
    partitions: Vec<String>,
    follow: Option<Duration>,
    _t: PhantomData<fn() -> T>,
}

impl<T> LogSource<T> {
    /// The log at `location`; lists its partitions now.
    pub fn open(location: Location) -> Result<LogSource<T>> {
        let partitions = list_partitions(&location)?;
        if partitions.is_empty() {
            return Err(EngineError::InvalidJob(format!(
                "{location}: no partition files (*.jsonl)"
            )));
        }
        Ok(LogSource {
            location,
            partitions,
            follow: None,
            _t: PhantomData,
        })
    }

    /// Keeps reading lines appended after the end, polling every `interval`, and picks up
    /// partition files created later (looking at most every 100 ms).
    pub fn follow(mut self, interval: Duration) -> Self {
        self.follow = Some(interval);
        self
    }

    /// The partition files, in split order.
    pub fn partitions(&self) -> &[String] {
        &self.partitions
    }
}

/// The partition files (`*.jsonl` directly under `location`), sorted.
fn list_partitions(location: &Location) -> Result<Vec<String>> {
    let list = crate::io::block_on(async {
        let metas: Vec<object_store::ObjectMeta> = location
            .store()
            .list(Some(location.root()))
            .try_collect()
            .await?;
        Ok::<_, object_store::Error>(metas)
    })?;
    let metas = list.map_err(|e| EngineError::Operator {
        operator: "log source".into(),
        message: format!("{location}: {e}"),
    })?;
    let mut partitions: Vec<String> = metas
        .iter()
        .filter_map(|m| location.relative(&m.location))
        .filter(|p| is_partition(p))
        .collect();
    partitions.sort();
    Ok(partitions)
}

fn is_partition(name: &str) -> bool {
    name.ends_with(".jsonl") && !name.contains('/')
}

fn start_of(partition: &str) -> SplitEntry {
    SplitEntry {
        id: partition.to_string(),
        position: serde_json::json!({ "offset": 0 }),
        watermark: None,
    }
}

impl<T: DeserializeOwned + Send + 'static> Source for LogSource<T> {
    type Out = T;

    fn discovery_interval(&self) -> Option<Duration> {
        self.follow.map(|f| f.max(Duration::from_millis(100)))
    }

    fn discover(&self) -> Result<Vec<SplitEntry>> {
        Ok(list_partitions(&self.location)?
            .iter()
            .map(|p| start_of(p))
            .collect())
    }

    fn splits(&self) -> Vec<SplitEntry> {
        self.partitions.iter().map(|p| start_of(p)).collect()
    }

    fn reader(&self, split: &SplitEntry) -> Result<Box<dyn SplitReader<T>>> {
        let offset = split
            .position
            .get("offset")
            .and_then(|o| o.as_u64())
            .ok_or_else(|| {
                EngineError::Restore(format!(
                    "log split {}: position {} has no byte offset",
                    split.id, split.position
                ))
            })?;
        // A followed log may have gained the partition since it was opened.
        if !is_partition(&split.id)
            || (self.follow.is_none() && !self.partitions.contains(&split.id))
        {
            return Err(EngineError::Restore(format!(
                "log partition {:?} is not in {}",
                split.id, self.location
            )));
        }
        Ok(Box::new(LogReader {
            location: self.location.clone(),
            file: split.id.clone(),
            offset,
            buffer: Vec::new(),
            buffer_start: offset,
            follow: self.follow,
            ended: false,
            next_poll: None,
            _t: PhantomData,
        }))
    }
}

/// Bytes fetched per read.
const CHUNK: u64 = 1 << 20;

struct LogReader<T> {
    location: Location,
    file: String,
    /// Byte offset after the last line returned.
    offset: u64,
    /// Fetched bytes not yet returned as lines, starting at `buffer_start`.
    buffer: Vec<u8>,
    buffer_start: u64,
    follow: Option<Duration>,
    ended: bool,
    next_poll: Option<std::time::Instant>,
    _t: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> LogReader<T> {
    /// Fetches the next chunk after the buffer; false at the current end of the file.
    fn fetch(&mut self) -> bool {
        let path = self.location.child(&self.file);
        let from = self.buffer_start + self.buffer.len() as u64;
        let store = self.location.store().clone();
        let got = crate::io::block_on(async {
            let size = store.head(&path).await?.size;
            if from >= size {
                return Ok(None);
            }
            store
                .get_range(&path, from..size.min(from + CHUNK))
                .await
                .map(Some)
        });
        let got = got
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        match got {
            Ok(Some(bytes)) => {
                self.buffer.extend_from_slice(&bytes);
                true
            }
            Ok(None) => false,
            Err(e) => {
                // Read again at the next poll (a followed log) or taken as its end.
                let path = self.location.describe(&self.file);
                tracing::warn!(%path, "log partition {path}: {e}");
                false
            }
        }
    }
}

impl<T: DeserializeOwned + Send> SplitReader<T> for LogReader<T> {
    fn next(&mut self) -> Option<T> {
        loop {
            if self.ended {
                return None;
            }
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                self.buffer_start += line.len() as u64;
                self.offset = self.buffer_start;
                let text = &line[..line.len() - 1];
                if text.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match serde_json::from_slice(text) {
                    Ok(record) => return Some(record),
                    Err(e) => {
                        // A bad line is reported and skipped, not fatal: logs outlive code.
                        let path = self.location.describe(&self.file);
                        let offset = self.offset - line.len() as u64;
                        tracing::warn!(%path, offset, "{path} at byte {offset}: {e}");
                        continue;
                    }
                }
            }
            // A followed file is polled at most once per interval; in between the reader
            // answers at once, so other splits of the subtask and barriers do not wait.
            if self.follow.is_some()
                && self
                    .next_poll
                    .is_some_and(|at| std::time::Instant::now() < at)
            {
                return None;
            }
            if !self.fetch() {
                match self.follow {
                    Some(interval) => {
                        self.next_poll = Some(std::time::Instant::now() + interval);
                        return None;
                    }
                    None => {
                        self.ended = true;
                        return None;
                    }
                }
            }
        }
    }

    fn position(&self) -> serde_json::Value {
        serde_json::json!({ "offset": self.offset })
    }

    fn finished(&self) -> bool {
        self.ended
    }
}
