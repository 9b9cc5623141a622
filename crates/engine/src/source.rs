//! Resettable sources: every split reports a position from which reading resumes.

use rewind_savepoint::format::SplitEntry;
use serde::{Deserialize, Serialize};

/// A source of records, divided into splits (log partitions, files, ranges) that are
/// assigned to the source's subtasks.
pub trait Source: Send + Sync + 'static {
    /// The records it produces.
    type Out: Send + 'static;
    /// Every split with its starting position (for a fresh start).
    fn splits(&self) -> Vec<SplitEntry>;
    /// A reader of one split, resuming at the split's position.
    fn reader(&self, split: &SplitEntry) -> crate::Result<Box<dyn SplitReader<Self::Out>>>;
    /// For a source that grows (a followed directory gaining files): how often to look for
    /// new splits with [`discover`](Source::discover). `None` (the default): never.
    fn discovery_interval(&self) -> Option<std::time::Duration> {
        None
    }
    /// Every split that exists now; the engine starts reading the ones it does not know,
    /// from their starting position, each on one subtask.
    fn discover(&self) -> crate::Result<Vec<SplitEntry>> {
        Ok(Vec::new())
    }
}

/// Reads one split.
pub trait SplitReader<T>: Send {
    /// The next record, or `None` when there is none now: at the end of a bounded split, or
    /// while a followed split waits for new data (see [`SplitReader::finished`]).
    fn next(&mut self) -> Option<T>;
    /// Whether the split has ended for good (`next` returned `None` and always will).
    /// Splits that follow new data never finish.
    fn finished(&self) -> bool {
        true
    }
    /// Where reading resumes after the records returned so far.
    fn position(&self) -> serde_json::Value;
}

/// An event of the [`GeneratorSource`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratedEvent {
    /// Sequence number over the whole source, `0..events`.
    pub seq: u64,
    /// Key in `0..keys`.
    pub key: i64,
}

/// A deterministic, bounded source: `events` events with keys spread over `0..keys`.
/// Split `j` of `splits` yields the sequence numbers `j, j + splits, ...`; its position is
/// how many it has yielded.
#[derive(Debug, Clone)]
pub struct GeneratorSource {
    /// Distinct keys.
    pub keys: u64,
    /// Total events.
    pub events: u64,
    /// Seed of the key sequence.
    pub seed: u64,
    /// Number of splits.
    pub splits: u32,
    /// At most this many events per second per split (`None`: as fast as possible), so
    /// tests can stop a job mid-stream and compare fast and throttled reads.
    pub rate_per_split: Option<u64>,
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl GeneratorSource {
    /// The key of event `seq`.
    pub fn key_of(&self, seq: u64) -> i64 {
        (splitmix64(self.seed ^ seq) % self.keys.max(1)) as i64
    }
}

impl Source for GeneratorSource {
    type Out = GeneratedEvent;

    fn splits(&self) -> Vec<SplitEntry> {
        (0..self.splits.max(1))
            .map(|j| SplitEntry {
                id: format!("split-{j}"),
                position: serde_json::json!({ "offset": 0 }),
                watermark: None,
            })
            .collect()
    }

    fn reader(&self, split: &SplitEntry) -> crate::Result<Box<dyn SplitReader<GeneratedEvent>>> {
        let index: u64 = split
            .id
            .strip_prefix("split-")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                crate::EngineError::Restore(format!(
                    "generator split {:?} is not split-N",
                    split.id
                ))
            })?;
        let offset = split
            .position
            .get("offset")
            .and_then(|o| o.as_u64())
            .ok_or_else(|| {
                crate::EngineError::Restore(format!(
                    "generator split {}: position {} has no offset",
                    split.id, split.position
                ))
            })?;
        Ok(Box::new(GeneratorReader {
            source: self.clone(),
            index,
            stride: self.splits.max(1) as u64,
            offset,
            started: std::time::Instant::now(),
            emitted: 0,
        }))
    }
}

struct GeneratorReader {
    source: GeneratorSource,
    index: u64,
    stride: u64,
    offset: u64,
    started: std::time::Instant,
    emitted: u64,
}

impl SplitReader<GeneratedEvent> for GeneratorReader {
    fn next(&mut self) -> Option<GeneratedEvent> {
        let seq = self.index + self.offset * self.stride;
        if seq >= self.source.events {
            return None;
        }
        if let Some(rate) = self.source.rate_per_split.filter(|r| *r > 0) {
            let due = std::time::Duration::from_secs_f64(self.emitted as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(self.started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        self.offset += 1;
        self.emitted += 1;
        Some(GeneratedEvent {
            seq,
            key: self.source.key_of(seq),
        })
    }

    fn position(&self) -> serde_json::Value {
        serde_json::json!({ "offset": self.offset })
    }
}
