//! The events and their generator. Event `i` is a pure function of the spec and `i`, so
//! a log can be written in segments by several runs, and a test can recompute any result.

use object_store::ObjectStoreExt;
use object_store::buffered::BufWriter;
use rewind_savepoint::Location;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

/// What happened to a post.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The post was shown.
    View,
    /// The post was clicked.
    Click,
}

/// One event of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostEvent {
    /// The post.
    pub post: i64,
    /// Who saw or clicked it.
    pub user: u32,
    /// View or click.
    pub action: Action,
    /// A paid (promoted) impression rather than an organic one.
    pub paid: bool,
    /// Event time, ms since the Unix epoch.
    pub ts: i64,
}

/// The shape of a generated log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    /// Seed of every random choice.
    pub seed: u64,
    /// Distinct posts (a few are far more popular than the rest).
    pub posts: u32,
    /// Partitions (a post's events all go to one, as with a keyed Kafka topic).
    pub partitions: u32,
    /// Event time of event 0, ms since the epoch.
    pub start_ms: i64,
    /// Event time between consecutive events, ms.
    pub step_ms: i64,
    /// The most an event's time lags behind its place in the log, ms (events are out of
    /// order by up to this; it stays below [`crate::MAX_OUT_OF_ORDERNESS`]).
    pub max_delay_ms: i64,
}

impl Default for EventSpec {
    fn default() -> Self {
        EventSpec {
            seed: 7,
            posts: 500,
            partitions: 4,
            // 2026-01-01T09:00:00Z
            start_ms: 1_767_258_000_000,
            step_ms: 10,
            max_delay_ms: 3_000,
        }
    }
}

impl EventSpec {
    /// Event `i` and its partition.
    pub fn event(&self, i: u64) -> (u32, PostEvent) {
        let mut state = self.seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut next = || splitmix64(&mut state);
        // u^2 for uniform u: low post ids are the popular ones.
        let u = (next() >> 11) as f64 / (1u64 << 53) as f64;
        let post = ((u * u * f64::from(self.posts)) as i64).min(i64::from(self.posts) - 1);
        // Every fourth post is promoted: 40% of its impressions are paid.
        let paid = post % 4 == 0 && next() % 100 < 40;
        let action = if next() % 100 < if paid { 4 } else { 7 } {
            Action::Click
        } else {
            Action::View
        };
        let user = (next() % 50_000) as u32;
        let delay = if self.max_delay_ms > 0 {
            (next() % self.max_delay_ms as u64) as i64
        } else {
            0
        };
        let ts = self.start_ms + i as i64 * self.step_ms - delay;
        let partition = (post % i64::from(self.partitions.max(1))) as u32;
        (
            partition,
            PostEvent {
                post,
                user,
                action,
                paid,
                ts,
            },
        )
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Writes events `first..first + count` under `out` as one new file per partition,
/// `part-<partition>-<first>.jsonl` (object stores cannot append, so each run adds a
/// segment; a following job discovers it). Returns the files written and their events.
pub async fn write_events(
    out: &Location,
    spec: &EventSpec,
    first: u64,
    count: u64,
) -> Result<Vec<(String, u64)>, object_store::Error> {
    let partitions = spec.partitions.max(1);
    let mut written = Vec::new();
    for p in 0..partitions {
        let name = format!("part-{p:03}-{first:012}.jsonl");
        let path = out.child(&name);
        // Written under a temporary name and renamed when complete, so a following job
        // never reads half a segment.
        let tmp = out.child(&format!("_tmp-{name}.partial"));
        let mut writer = BufWriter::new(out.store().clone(), tmp.clone());
        let mut events = 0u64;
        let mut line = Vec::with_capacity(128);
        for i in first..first + count {
            let (partition, event) = spec.event(i);
            if partition != p {
                continue;
            }
            line.clear();
            serde_json::to_writer(&mut line, &event).map_err(|e| object_store::Error::Generic {
                store: "post-events",
                source: Box::new(e),
            })?;
            line.push(b'\n');
            writer.write_all(&line).await.map_err(io_error)?;
            events += 1;
        }
        writer.shutdown().await.map_err(io_error)?;
        if events == 0 {
            out.store().delete(&tmp).await?;
            continue;
        }
        out.store().rename(&tmp, &path).await?;
        written.push((name, events));
    }
    Ok(written)
}

fn io_error(e: std::io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "post-events",
        source: Box::new(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_deterministic_in_order_within_bounds() {
        let spec = EventSpec::default();
        assert_eq!(spec.event(42), spec.event(42));
        let mut max_seen = i64::MIN;
        for i in 0..20_000 {
            let (p, e) = spec.event(i);
            assert!(p < spec.partitions && e.post < i64::from(spec.posts));
            assert!(
                e.ts > max_seen.saturating_sub(spec.max_delay_ms + 1),
                "event {i} late"
            );
            max_seen = max_seen.max(e.ts);
            assert!(!e.paid || e.post % 4 == 0);
        }
        let clicks = (0..20_000)
            .filter(|i| spec.event(*i).1.action == Action::Click)
            .count();
        assert!((800..1600).contains(&clicks), "{clicks} clicks");
    }
}
