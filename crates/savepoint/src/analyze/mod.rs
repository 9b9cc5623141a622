//! Why is a savepoint as big as it is: per state its size by column (from the Parquet
//! footers), its spread over subtasks and over 64 slices of the hash space, its largest
//! keys, value statistics, overdue timers and, against an older savepoint, its growth; and
//! a few findings worth a look, each with the number behind it.

mod findings;
mod scan;

use serde::Serialize;

use crate::{Result, SavepointReader};
pub use findings::Finding;

/// Slices of the hash space the keyed rows are counted in.
pub const HASH_SLICES: usize = 64;

/// What [`analyze`] looks at.
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    /// How many of the largest keys to list per state.
    pub top: usize,
    /// Only this operator.
    pub operator: Option<String>,
    /// Only this state.
    pub state: Option<String>,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            top: 10,
            operator: None,
            state: None,
        }
    }
}

/// The analysis of a savepoint.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    /// The savepoint's id.
    pub id: String,
    /// The baseline's id, with `--baseline`.
    pub baseline_id: Option<String>,
    /// Seconds between the baseline's and this savepoint's commit times.
    pub elapsed_seconds: Option<f64>,
    /// The few things worth a look, most important first.
    pub findings: Vec<Finding>,
    /// Every state analysed.
    pub states: Vec<StateAnalysis>,
}

/// One state.
#[derive(Debug, Clone, Serialize)]
pub struct StateAnalysis {
    /// Operator uid.
    pub operator: String,
    /// State name.
    pub state: String,
    /// State kind.
    pub kind: String,
    /// Rows.
    pub rows: u64,
    /// Bytes on storage.
    pub bytes: u64,
    /// Distinct keys (keyed state).
    pub keys: Option<u64>,
    /// Bytes on storage per distinct key.
    pub bytes_per_key: Option<f64>,
    /// Bytes on storage by column, from the Parquet footers (no data read).
    pub columns: Vec<ColumnBytes>,
    /// Rows and bytes per subtask of the operator's parallelism (keyed state: by hash
    /// range; bytes apportioned by rows; operator lists: by shard).
    pub subtasks: Vec<Share>,
    /// Largest subtask's rows over the mean (1.0 = even).
    pub skew: f64,
    /// Rows in each of 64 equal slices of the hash space (keyed state).
    pub slices: Vec<u64>,
    /// Largest slice's rows over the mean.
    pub slice_skew: f64,
    /// What a key's size is measured in: `elements` (list), `entries` (map), `bytes`
    /// (value), `timers`.
    pub size_unit: Option<&'static str>,
    /// Mean size of a key.
    pub mean_size: Option<f64>,
    /// Keys by size in powers of two: `sizes[i]` keys have a size in `[2^i, 2^(i+1))`
    /// (`sizes[0]` also counts 0).
    pub sizes: Vec<u64>,
    /// The largest keys.
    pub top_keys: Vec<KeySize>,
    /// Statistics of the value (of each field of a struct value).
    pub fields: Vec<FieldStats>,
    /// Timers.
    pub timers: Option<TimerStats>,
    /// State namespaced by a window (a struct with a `start`): rows per window start, in
    /// start order.
    pub windows: Vec<WindowRows>,
    /// Growth since the baseline.
    pub growth: Option<Growth>,
    /// An incremental checkpoint's layers of the state, base first; empty when the state is
    /// one self-contained base.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<Layer>,
}

/// One layer of a state in an incremental checkpoint: its base (layer 0) or a delta layer
/// of upserted and deleted rows over the layers below it.
#[derive(Debug, Clone, Serialize)]
pub struct Layer {
    /// 0 for the base.
    pub layer: u32,
    /// Shards in it.
    pub shards: u64,
    /// Rows stored (a delta layer's deletes included), from the manifest.
    pub rows: u64,
    /// Bytes on storage.
    pub bytes: u64,
    /// Of those, bytes in files that earlier checkpoints wrote (listed from a sibling
    /// folder, shared with them).
    pub shared_bytes: u64,
}

/// Bytes of one column.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnBytes {
    /// Column name (top-level).
    pub column: String,
    /// Compressed bytes of its column chunks.
    pub bytes: u64,
}

/// One subtask's share.
#[derive(Debug, Clone, Serialize)]
pub struct Share {
    /// Subtask index.
    pub subtask: u32,
    /// Rows.
    pub rows: u64,
    /// Bytes.
    pub bytes: u64,
}

/// A key and its size.
#[derive(Debug, Clone, Serialize)]
pub struct KeySize {
    /// The key, as `rewind state` shows it.
    pub key: String,
    /// Its size in the state's unit.
    pub size: u64,
    /// With a baseline: its size there (0 when it was not there).
    pub before: Option<u64>,
}

/// Statistics of a value field.
#[derive(Debug, Clone, Serialize)]
pub struct FieldStats {
    /// Field (`value` for a plain value).
    pub field: String,
    /// Type.
    pub data_type: String,
    /// Nulls.
    pub nulls: u64,
    /// Smallest, largest and mean (numeric fields).
    pub min: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
    /// Mean.
    pub mean: Option<f64>,
    /// Ten equal-width buckets between min and max (numeric fields), from a sample of up
    /// to 100,000 values.
    pub histogram: Vec<u64>,
}

/// The rows of one window start.
#[derive(Debug, Clone, Serialize)]
pub struct WindowRows {
    /// Window start (milliseconds since the epoch).
    pub start: i64,
    /// Rows (open windows of that start, over all keys).
    pub rows: u64,
}

/// Timers of a `timers` state.
#[derive(Debug, Clone, Serialize)]
pub struct TimerStats {
    /// Event-time timers.
    pub event_time: u64,
    /// Processing-time timers.
    pub processing_time: u64,
    /// Earliest timestamp.
    pub earliest: Option<i64>,
    /// Latest timestamp.
    pub latest: Option<i64>,
    /// The least watermark the savepoint records for its sources.
    pub watermark: Option<i64>,
    /// Event-time timers at or before that watermark: due, yet not fired.
    pub behind_watermark: u64,
}

/// Growth since the baseline.
#[derive(Debug, Clone, Serialize)]
pub struct Growth {
    /// Rows then.
    pub rows_before: u64,
    /// Bytes then.
    pub bytes_before: u64,
    /// Keys then.
    pub keys_before: u64,
    /// Of the keys in both, the share whose size grew (0 to 1).
    pub keys_grew: f64,
    /// Mean key size then.
    pub mean_size_before: Option<f64>,
    /// Rows per subtask then.
    pub subtask_rows_before: Vec<u64>,
    /// The keys whose size grew most (`before` is their size then).
    pub top_growth: Vec<KeySize>,
}

/// Analyses `source` (and its growth since `baseline`).
pub async fn analyze(
    source: &SavepointReader,
    baseline: Option<&SavepointReader>,
    options: &AnalyzeOptions,
) -> Result<Analysis> {
    let manifest = source.manifest();
    let mut states = Vec::new();
    for op in &manifest.operators {
        if options.operator.as_ref().is_some_and(|o| o != &op.uid) {
            continue;
        }
        for st in &op.states {
            if options.state.as_ref().is_some_and(|s| s != &st.name) {
                continue;
            }
            let now = scan::scan(source, op, st, options.top).await?;
            let before = match baseline.and_then(|b| {
                b.manifest()
                    .operator(&op.uid)
                    .and_then(|o| o.state(&st.name).map(|s| (o, s)))
            }) {
                Some((bop, bst)) => match baseline {
                    Some(b) => Some(scan::scan(b, bop, bst, options.top).await?),
                    None => None,
                },
                None => None,
            };
            states.push(scan::finish(now, before, options.top));
        }
    }
    let elapsed_seconds = baseline.and_then(|b| {
        let at = |t: &str| humantime::parse_rfc3339(t).ok();
        let (now, then) = (at(&manifest.created_at)?, at(&b.manifest().created_at)?);
        Some(match now.duration_since(then) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        })
    });
    let findings = findings::findings(&states, elapsed_seconds);
    Ok(Analysis {
        id: manifest.id.clone(),
        baseline_id: baseline.map(|b| b.manifest().id.clone()),
        elapsed_seconds,
        findings,
        states,
    })
}

/// A key's size, and where its key is among the scan's key columns (formatted only when it
/// is shown).
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyEntry {
    pub size: u64,
    pub batch: u32,
    pub row: u32,
}

/// Per key hash: its size and where its key is, sorted by key hash.
///
/// Built from rows in read order: a keyed state's rows of one key hash come one after
/// another (shards are sorted by key hash and hold disjoint ranges; layers are merged), so
/// a row adds to the last entry or starts a new one. A hash map of 10M keys, each row a
/// lookup missing the cache, was most of `analyze`'s time.
#[derive(Default)]
pub(crate) struct KeySizes {
    entries: Vec<(u64, KeyEntry)>,
}

impl KeySizes {
    /// Adds `size` to key hash `hash`, first seen at (`batch`, `row`).
    pub(crate) fn add(&mut self, hash: u64, size: u64, batch: u32, row: u32) {
        match self.entries.last_mut() {
            Some((h, e)) if *h == hash => e.size += size,
            _ => self.entries.push((hash, KeyEntry { size, batch, row })),
        }
    }

    /// Puts the entries in hash order, each hash once (its sizes summed, the first
    /// position kept): needed only when the rows did not come in hash order.
    pub(crate) fn finish(&mut self) {
        if !self.entries.windows(2).all(|w| w[0].0 < w[1].0) {
            self.entries.sort_by_key(|(h, _)| *h);
            self.entries.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    kept.1.size += later.1.size;
                }
                same
            });
        }
    }

    /// The entry of `hash` (after [`finish`](Self::finish)).
    pub(crate) fn get(&self, hash: u64) -> Option<&KeyEntry> {
        let at = self.entries.binary_search_by_key(&hash, |(h, _)| *h).ok()?;
        Some(&self.entries[at].1)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &KeyEntry)> {
        self.entries.iter().map(|(h, e)| (*h, e))
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::KeySizes;

    /// Rows of one hash in a run add up; runs out of hash order (shards listed out of
    /// range order) and a hash met again later are sorted and summed, keeping where the
    /// hash was first seen.
    #[test]
    fn key_sizes_sum_runs_and_sort_what_came_out_of_order() {
        let mut sizes = KeySizes::default();
        for (h, size, row) in [(5, 1, 0), (5, 2, 1), (9, 4, 2), (2, 8, 3), (9, 16, 4)] {
            sizes.add(h, size, 0, row);
        }
        sizes.finish();
        let got: Vec<(u64, u64, u32)> = sizes.iter().map(|(h, e)| (h, e.size, e.row)).collect();
        assert_eq!(got, [(2, 8, 3), (5, 3, 0), (9, 20, 2)]);
        assert_eq!(sizes.get(9).map(|e| e.size), Some(20));
        assert!(sizes.get(7).is_none());
        assert_eq!(sizes.len(), 3);
    }
}
