//! One pass over a state: footers for bytes by column, then every row for the spread over
//! subtasks and hash slices, each key's size, value statistics and timers.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, UInt64Type};
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;
use futures::TryStreamExt;
use rewind_format::{OperatorEntry, StateEntry, StateKind, subtask_for_hash};

use super::{
    ColumnBytes, FieldStats, Growth, HASH_SLICES, KeyEntry, KeySize, KeySizes, Share,
    StateAnalysis, TimerStats, WindowRows,
};
use crate::reader::open_shard;
use crate::spec::columns;
use crate::{Error, ReadOptions, Result, SavepointReader};

/// Values kept per field for its histogram.
const SAMPLE: usize = 100_000;

/// A state scanned: its analysis without growth, each key's size, and the key columns the
/// sizes point into.
pub(crate) struct Scanned {
    pub analysis: StateAnalysis,
    pub sizes: KeySizes,
    pub keys: Vec<ArrayRef>,
}

/// How `rewind state` shows the key of `entry`.
fn show(keys: &[ArrayRef], entry: &KeyEntry) -> String {
    keys.get(entry.batch as usize)
        .and_then(|k| {
            arrow_cast::display::array_value_to_string(k.as_ref(), entry.row as usize).ok()
        })
        .unwrap_or_default()
}

/// Running statistics of one value field.
#[derive(Default)]
struct FieldAcc {
    name: String,
    data_type: String,
    nulls: u64,
    count: u64,
    sum: f64,
    min: Option<f64>,
    max: Option<f64>,
    sample: Vec<f64>,
    seen: u64,
    rng: u64,
    numeric: bool,
}

impl FieldAcc {
    fn new(name: &str, dt: &DataType) -> Self {
        FieldAcc {
            name: name.to_string(),
            data_type: rewind_format::type_name(dt).unwrap_or_else(|_| dt.to_string()),
            numeric: dt.is_numeric(),
            rng: 0x9E37_79B9_7F4A_7C15,
            ..FieldAcc::default()
        }
    }

    fn add(&mut self, array: &ArrayRef) -> Result<()> {
        self.nulls += array.null_count() as u64;
        if !self.numeric {
            return Ok(());
        }
        let floats = arrow_cast::cast(array, &DataType::Float64)
            .map_err(|e| Error::Internal(e.to_string()))?;
        for v in floats.as_primitive::<Float64Type>().iter().flatten() {
            self.count += 1;
            self.sum += v;
            self.min = Some(self.min.map_or(v, |m| m.min(v)));
            self.max = Some(self.max.map_or(v, |m| m.max(v)));
            // Reservoir sample (deterministic: the same savepoint gives the same figures).
            self.seen += 1;
            if self.sample.len() < SAMPLE {
                self.sample.push(v);
            } else {
                self.rng ^= self.rng << 13;
                self.rng ^= self.rng >> 7;
                self.rng ^= self.rng << 17;
                let slot = self.rng % self.seen;
                if let Some(s) = self.sample.get_mut(slot as usize) {
                    *s = v;
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> FieldStats {
        let mut histogram = Vec::new();
        if let (Some(min), Some(max)) = (self.min, self.max) {
            histogram = vec![0u64; 10];
            let width = (max - min) / 10.0;
            for v in &self.sample {
                let i = if width > 0.0 {
                    (((v - min) / width) as usize).min(9)
                } else {
                    0
                };
                histogram[i] += 1;
            }
        }
        FieldStats {
            field: self.name,
            data_type: self.data_type,
            nulls: self.nulls,
            min: self.min,
            max: self.max,
            mean: (self.count > 0).then(|| self.sum / self.count as f64),
            histogram,
        }
    }
}

/// Approximate encoded bytes of the value at `row`: widths of fixed-size values, lengths
/// of strings and binaries, summed through lists and structs.
fn row_bytes(array: &dyn Array, row: usize) -> u64 {
    if array.is_null(row) {
        return 0;
    }
    match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().value(row).len() as u64,
        DataType::LargeUtf8 => array.as_string::<i64>().value(row).len() as u64,
        DataType::Binary => array.as_binary::<i32>().value(row).len() as u64,
        DataType::LargeBinary => array.as_binary::<i64>().value(row).len() as u64,
        DataType::List(_) => {
            let items = array.as_list::<i32>().value(row);
            (0..items.len()).map(|i| row_bytes(items.as_ref(), i)).sum()
        }
        DataType::LargeList(_) => {
            let items = array.as_list::<i64>().value(row);
            (0..items.len()).map(|i| row_bytes(items.as_ref(), i)).sum()
        }
        DataType::Map(..) => {
            let entries = array.as_map().value(row);
            entries
                .columns()
                .iter()
                .map(|c| (0..c.len()).map(|i| row_bytes(c.as_ref(), i)).sum::<u64>())
                .sum()
        }
        DataType::Struct(_) => array
            .as_struct()
            .columns()
            .iter()
            .map(|c| row_bytes(c.as_ref(), row))
            .sum(),
        dt => dt.primitive_width().unwrap_or(1) as u64,
    }
}

/// The accumulators of a value column: one per struct field, else one for the column
/// (list state: its elements).
fn field_accs(kind: StateKind, value: &DataType) -> Vec<FieldAcc> {
    let target = match (kind, value) {
        (StateKind::List, DataType::List(item) | DataType::LargeList(item)) => {
            item.data_type().clone()
        }
        (_, dt) => dt.clone(),
    };
    match &target {
        DataType::Struct(fields) => fields
            .iter()
            .map(|f| FieldAcc::new(f.name(), f.data_type()))
            .collect(),
        dt => vec![FieldAcc::new("value", dt)],
    }
}

fn feed(accs: &mut [FieldAcc], kind: StateKind, value: &ArrayRef) -> Result<()> {
    let target = match (kind, value.data_type()) {
        (StateKind::List, DataType::List(_)) => value.as_list::<i32>().values().clone(),
        (StateKind::List, DataType::LargeList(_)) => value.as_list::<i64>().values().clone(),
        _ => value.clone(),
    };
    match target.data_type() {
        DataType::Struct(_) => {
            for (acc, c) in accs.iter_mut().zip(target.as_struct().columns()) {
                acc.add(c)?;
            }
        }
        _ => {
            if let Some(acc) = accs.first_mut() {
                acc.add(&target)?;
            }
        }
    }
    Ok(())
}

/// Bytes of each top-level column over every shard, from the footers.
async fn column_bytes(reader: &SavepointReader, st: &StateEntry) -> Result<Vec<ColumnBytes>> {
    let mut by: Vec<(String, u64)> = Vec::new();
    for shard in &st.shards {
        let builder = open_shard(reader.location(), shard, 8192).await?;
        for rg in builder.metadata().row_groups() {
            for c in rg.columns() {
                let name = c.column_path().parts().first().cloned().unwrap_or_default();
                let size = u64::try_from(c.compressed_size()).unwrap_or(0);
                match by.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, b)) => *b += size,
                    None => by.push((name, size)),
                }
            }
        }
    }
    Ok(by
        .into_iter()
        .map(|(column, bytes)| ColumnBytes { column, bytes })
        .collect())
}

fn skew(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 || counts.is_empty() {
        return 1.0;
    }
    let mean = total as f64 / counts.len() as f64;
    counts.iter().copied().max().unwrap_or(0) as f64 / mean
}

/// Scans one state: every row of a keyed state (operator state by its shards' counts),
/// then the footers, into its analysis without growth.
pub(crate) async fn scan(
    reader: &SavepointReader,
    op: &OperatorEntry,
    st: &StateEntry,
    top: usize,
) -> Result<Scanned> {
    let mut tally = Tally::new(reader, op, st)?;
    if st.kind.is_keyed() {
        tally.read_keyed(reader, &op.uid, st).await?;
    } else {
        tally.count_operator_rows(st);
    }
    tally.into_scanned(reader, op, st, top).await
}

/// What one pass over a state's rows accumulates.
struct Tally {
    parallelism: u32,
    subtask_rows: Vec<u64>,
    slices: Vec<u64>,
    /// Rows per window start, for a window namespace.
    windows: std::collections::BTreeMap<i64, u64>,
    sizes: KeySizes,
    /// Every batch's key column, which `sizes` points into.
    key_columns: Vec<ArrayRef>,
    accs: Vec<FieldAcc>,
    timers: TimerStats,
    /// Rows as read: an incremental checkpoint's layers merged (the manifest counts every
    /// layer's rows, deletes too).
    read_rows: u64,
}

/// The columns of one keyed batch the per-row figures read.
struct KeyedColumns {
    hashes: arrow_array::UInt64Array,
    value: Option<ArrayRef>,
    /// A timers state's domain and timestamp columns.
    timers: Option<(arrow_array::StringArray, arrow_array::Int64Array)>,
}

impl Tally {
    /// Empty accumulators for `st`, with one accumulator per value field.
    fn new(reader: &SavepointReader, op: &OperatorEntry, st: &StateEntry) -> Result<Tally> {
        let parallelism = op.parallelism.max(1);
        let value_type = st
            .value_type
            .as_deref()
            .map(rewind_format::parse_type)
            .transpose()
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(Tally {
            parallelism,
            subtask_rows: vec![0u64; parallelism as usize],
            slices: vec![0u64; HASH_SLICES],
            windows: std::collections::BTreeMap::new(),
            sizes: KeySizes::default(),
            key_columns: Vec::new(),
            accs: value_type
                .as_ref()
                .map(|dt| field_accs(st.kind, dt))
                .unwrap_or_default(),
            timers: TimerStats {
                event_time: 0,
                processing_time: 0,
                earliest: None,
                latest: None,
                watermark: reader.manifest().least_watermark(),
                behind_watermark: 0,
            },
            read_rows: 0,
        })
    }

    /// Reads every row of keyed state `st` (its layers merged) into the tally.
    async fn read_keyed(
        &mut self,
        reader: &SavepointReader,
        uid: &str,
        st: &StateEntry,
    ) -> Result<()> {
        let mut stream = reader
            .read_state(uid, &st.name, ReadOptions::default())
            .await?;
        while let Some(batch) = stream.try_next().await? {
            self.add_batch(st.kind, &batch)?;
        }
        Ok(())
    }

    /// Adds one keyed batch: its key column, window starts, value statistics, then each
    /// row's subtask, slice, key size and timer.
    fn add_batch(&mut self, kind: StateKind, batch: &arrow_array::RecordBatch) -> Result<()> {
        self.read_rows += batch.num_rows() as u64;
        let hashes = batch
            .column_by_name(columns::KEY_HASH)
            .and_then(|c| c.as_primitive_opt::<UInt64Type>())
            .ok_or_else(|| Error::Internal("a keyed batch without key_hash".into()))?
            .clone();
        let keys = batch
            .column_by_name(columns::KEY)
            .ok_or_else(|| Error::Internal("a keyed batch without key".into()))?
            .clone();
        let value = batch.column_by_name(columns::VALUE).cloned();
        let batch_index = u32::try_from(self.key_columns.len()).unwrap_or(u32::MAX);
        self.key_columns.push(keys);
        // A window namespace: a struct with an int64 `start`.
        let starts = batch
            .column_by_name(columns::NAMESPACE)
            .and_then(|c| c.as_struct_opt())
            .and_then(|s| s.column_by_name("start"))
            .and_then(|c| c.as_primitive_opt::<Int64Type>().cloned());
        if let Some(starts) = &starts {
            for start in starts.iter().flatten() {
                *self.windows.entry(start).or_default() += 1;
            }
        }
        if let Some(v) = &value {
            feed(&mut self.accs, kind, v)?;
        }
        let timers = if kind == StateKind::Timers {
            batch
                .column_by_name(columns::TIMER_DOMAIN)
                .and_then(|c| c.as_string_opt::<i32>().cloned())
                .zip(
                    batch
                        .column_by_name(columns::TIMER_TIMESTAMP)
                        .and_then(|c| c.as_primitive_opt::<Int64Type>().cloned()),
                )
        } else {
            None
        };
        let batch_columns = KeyedColumns {
            hashes,
            value,
            timers,
        };
        for row in 0..batch.num_rows() {
            self.add_row(kind, &batch_columns, batch_index, row);
        }
        Ok(())
    }

    /// Adds one row of a keyed batch.
    fn add_row(&mut self, kind: StateKind, batch: &KeyedColumns, batch_index: u32, row: usize) {
        let h = batch.hashes.value(row);
        self.subtask_rows[subtask_for_hash(h, self.parallelism) as usize] += 1;
        self.slices[(h >> 58) as usize] += 1;
        self.sizes.add(
            h,
            key_size(kind, batch.value.as_ref(), row),
            batch_index,
            row as u32,
        );
        if let Some((domains, stamps)) = &batch.timers {
            let timers = &mut self.timers;
            let ts = stamps.value(row);
            timers.earliest = Some(timers.earliest.map_or(ts, |e| e.min(ts)));
            timers.latest = Some(timers.latest.map_or(ts, |e| e.max(ts)));
            if domains.value(row) == "processing_time" {
                timers.processing_time += 1;
            } else {
                timers.event_time += 1;
                if timers.watermark.is_some_and(|w| ts <= w) {
                    timers.behind_watermark += 1;
                }
            }
        }
    }

    /// Operator state: rows per subtask from its shards' counts, without reading them.
    fn count_operator_rows(&mut self, st: &StateEntry) {
        for shard in &st.shards {
            if let Some(s) = shard.subtask.filter(|s| *s < self.parallelism) {
                self.subtask_rows[s as usize] += shard.rows;
            }
        }
    }

    /// The state's analysis from the tally and its footers' column bytes.
    async fn into_scanned(
        mut self,
        reader: &SavepointReader,
        op: &OperatorEntry,
        st: &StateEntry,
        top: usize,
    ) -> Result<Scanned> {
        let keyed = st.kind.is_keyed();
        let rows = if keyed { self.read_rows } else { st.rows() };
        let bytes = st.bytes();
        let sizes = &mut self.sizes;
        sizes.finish();
        let keys = keyed.then_some(sizes.len() as u64);
        let total_size: u64 = sizes.iter().map(|(_, e)| e.size).sum();
        let analysis = StateAnalysis {
            operator: op.uid.clone(),
            state: st.name.clone(),
            kind: st.kind.as_str().to_string(),
            rows,
            bytes,
            keys,
            bytes_per_key: keys.filter(|k| *k > 0).map(|k| bytes as f64 / k as f64),
            columns: column_bytes(reader, st).await?,
            skew: skew(&self.subtask_rows),
            subtasks: shares(st, &self.subtask_rows, rows),
            slice_skew: if keyed { skew(&self.slices) } else { 1.0 },
            slices: if keyed { self.slices } else { Vec::new() },
            size_unit: size_unit(st.kind),
            mean_size: (!sizes.is_empty()).then(|| total_size as f64 / sizes.len() as f64),
            sizes: size_histogram(sizes),
            top_keys: largest(sizes, top, |_, e| e.size as i128)
                .into_iter()
                .map(|(_, e)| KeySize {
                    key: show(&self.key_columns, &e),
                    size: e.size,
                    before: None,
                })
                .collect(),
            fields: self.accs.into_iter().map(FieldAcc::finish).collect(),
            timers: (st.kind == StateKind::Timers).then_some(self.timers),
            windows: self
                .windows
                .into_iter()
                .map(|(start, rows)| WindowRows { start, rows })
                .collect(),
            growth: None,
            layers: layers(st),
        };
        Ok(Scanned {
            analysis,
            sizes: self.sizes,
            keys: self.key_columns,
        })
    }
}

/// The size of the key at `row` in the state's unit: a list's elements, a value's bytes,
/// else one (a map's entries and timers add up per row).
fn key_size(kind: StateKind, value: Option<&ArrayRef>, row: usize) -> u64 {
    match (kind, value) {
        (StateKind::List, Some(v)) => match v.data_type() {
            DataType::List(_) if !v.is_null(row) => v.as_list::<i32>().value_length(row) as u64,
            DataType::LargeList(_) if !v.is_null(row) => {
                v.as_list::<i64>().value_length(row) as u64
            }
            _ => 0,
        },
        (StateKind::Value, Some(v)) => row_bytes(v.as_ref(), row),
        _ => 1,
    }
}

/// Rows and bytes per subtask: an operator list's bytes are its shards', a keyed state's
/// its rows' share of the state's bytes.
fn shares(st: &StateEntry, subtask_rows: &[u64], rows: u64) -> Vec<Share> {
    let bytes = st.bytes();
    let per_row = if rows > 0 {
        bytes as f64 / rows as f64
    } else {
        0.0
    };
    subtask_rows
        .iter()
        .enumerate()
        .map(|(i, &r)| Share {
            subtask: i as u32,
            rows: r,
            bytes: match st.kind {
                StateKind::OperatorList => st
                    .shards
                    .iter()
                    .filter(|s| s.subtask == Some(i as u32))
                    .map(|s| s.bytes)
                    .sum(),
                _ => (r as f64 * per_row).round() as u64,
            },
        })
        .collect()
}

/// Keys per power-of-two size bucket (bucket `i` holds sizes from 2^i up to 2^(i+1)).
fn size_histogram(sizes: &KeySizes) -> Vec<u64> {
    let mut histogram = Vec::new();
    for (_, e) in sizes.iter() {
        let bucket = (64 - e.size.max(1).leading_zeros() - 1) as usize;
        if histogram.len() <= bucket {
            histogram.resize(bucket + 1, 0);
        }
        histogram[bucket] += 1;
    }
    histogram
}

/// What a key's size counts, by state kind.
fn size_unit(kind: StateKind) -> Option<&'static str> {
    match kind {
        StateKind::List => Some("elements"),
        StateKind::Map => Some("entries"),
        StateKind::Value => Some("bytes"),
        StateKind::Timers => Some("timers"),
        StateKind::OperatorList => None,
    }
}

/// The `top` keys of largest `measure` (ties by key hash, so the order is the same every
/// time), in one pass keeping the best `top` so far (ranking every key first took a copy
/// of all of them: 400 MB at 10M keys).
fn largest(
    sizes: &KeySizes,
    top: usize,
    measure: impl Fn(u64, &KeyEntry) -> i128,
) -> Vec<(u64, KeyEntry)> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    if top == 0 {
        return Vec::new();
    }
    // Greater ranks first: larger measure, then smaller hash. The heap's top is the
    // worst kept.
    let mut kept: BinaryHeap<Reverse<(i128, Reverse<u64>)>> = BinaryHeap::with_capacity(top + 1);
    for (h, e) in sizes.iter() {
        let rank = (measure(h, e), Reverse(h));
        if kept.len() < top {
            kept.push(Reverse(rank));
        } else if kept.peek().is_some_and(|Reverse(worst)| rank > *worst) {
            kept.pop();
            kept.push(Reverse(rank));
        }
    }
    kept.into_sorted_vec()
        .into_iter()
        .filter_map(|Reverse((_, Reverse(h)))| sizes.get(h).map(|e| (h, *e)))
        .collect()
}

/// The state's layers, when it has more than a self-contained base.
fn layers(st: &StateEntry) -> Vec<super::Layer> {
    let incremental = st
        .shards
        .iter()
        .any(|sh| sh.is_delta() || sh.sibling.is_some());
    if !incremental {
        return Vec::new();
    }
    let mut layers: std::collections::BTreeMap<u32, super::Layer> = Default::default();
    for sh in &st.shards {
        let l = layers.entry(sh.layer).or_insert(super::Layer {
            layer: sh.layer,
            shards: 0,
            rows: 0,
            bytes: 0,
            shared_bytes: 0,
        });
        l.shards += 1;
        l.rows += sh.rows;
        l.bytes += sh.bytes;
        if sh.sibling.is_some() {
            l.shared_bytes += sh.bytes;
        }
    }
    layers.into_values().collect()
}

/// The state's analysis, with its growth since `before`.
pub(crate) fn finish(now: Scanned, before: Option<Scanned>, top: usize) -> StateAnalysis {
    let mut a = now.analysis;
    let Some(before) = before else { return a };
    let then = |h: u64| before.sizes.get(h).map_or(0, |e| e.size);
    let mut both = 0u64;
    let mut grew = 0u64;
    for (h, e) in now.sizes.iter() {
        if let Some(b) = before.sizes.get(h) {
            both += 1;
            if e.size > b.size {
                grew += 1;
            }
        }
    }
    // The same order as `top_keys` was made in.
    let top_now = largest(&now.sizes, top, |_, e| e.size as i128);
    for (k, (h, _)) in a.top_keys.iter_mut().zip(&top_now) {
        k.before = Some(then(*h));
    }
    let top_growth = largest(&now.sizes, top, |h, e| e.size as i128 - then(h) as i128)
        .into_iter()
        .filter(|(h, e)| e.size > then(*h))
        .map(|(h, e)| KeySize {
            key: show(&now.keys, &e),
            size: e.size,
            before: Some(then(h)),
        })
        .collect();
    let b = before.analysis;
    a.growth = Some(Growth {
        rows_before: b.rows,
        bytes_before: b.bytes,
        keys_before: b.keys.unwrap_or(0),
        keys_grew: if both > 0 {
            grew as f64 / both as f64
        } else {
            0.0
        },
        mean_size_before: b.mean_size,
        subtask_rows_before: b.subtasks.iter().map(|s| s.rows).collect(),
        top_growth,
    });
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The largest first, ties by smaller hash; fewer keys than `top` gives them all.
    #[test]
    fn largest_ranks_by_measure_then_hash() {
        let mut sizes = KeySizes::default();
        for (h, size) in [(1, 5), (2, 9), (3, 5), (4, 1), (5, 9), (6, 7)] {
            sizes.add(h, size, 0, 0);
        }
        sizes.finish();
        let ranked = |top| -> Vec<u64> {
            largest(&sizes, top, |_, e| e.size as i128)
                .into_iter()
                .map(|(h, _)| h)
                .collect()
        };
        assert_eq!(ranked(4), [2, 5, 6, 1]);
        assert_eq!(ranked(10), [2, 5, 6, 1, 3, 4]);
        assert_eq!(ranked(0), Vec::<u64>::new());
        let by_hash: Vec<u64> = largest(&sizes, 2, |h, _| -(h as i128))
            .into_iter()
            .map(|(h, _)| h)
            .collect();
        assert_eq!(by_hash, [1, 2]);
    }
}
