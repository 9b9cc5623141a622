//! Differences in the rows of one state: a streaming merge of A and B by key hash.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_ord::ord::{DynComparator, make_comparator};
use arrow_schema::SortOptions;
use futures::StreamExt;
use futures::stream::BoxStream;
use rewind_format::{HashRange, StateEntry};
use serde::Serialize;

use crate::spec::columns;
use crate::{Error, ReadOptions, Result, SavepointReader};

/// How a row differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowChangeKind {
    /// Only in B.
    Added,
    /// Only in A.
    Removed,
    /// In both, with different values.
    Changed,
}

/// One example of a row difference, decoded as JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowChange {
    /// Added, removed or changed.
    pub kind: RowChangeKind,
    /// The row's identity: key, and namespace, user key or timer where the state has them.
    pub key: serde_json::Value,
    /// The value in A (absent for added rows and for timers).
    pub a: Option<serde_json::Value>,
    /// The value in B (absent for removed rows and for timers).
    pub b: Option<serde_json::Value>,
}

/// The row differences of one state present in both savepoints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateDiff {
    /// Operator uid.
    pub uid: String,
    /// State name.
    pub state: String,
    /// Rows (entries, elements, timers) only in A.
    pub only_in_a: u64,
    /// Rows only in B.
    pub only_in_b: u64,
    /// Rows in both with different values.
    pub changed: u64,
    /// Rows in both with equal values (not counting skipped shards).
    pub same: u64,
    /// Rows in shards skipped as identical (same range, rows and checksum).
    pub skipped_rows: u64,
    /// The first examples of each kind, up to the limit asked for.
    pub examples: Vec<RowChange>,
}

impl StateDiff {
    /// Whether A and B hold the same rows.
    pub fn is_identical(&self) -> bool {
        self.only_in_a == 0 && self.only_in_b == 0 && self.changed == 0
    }

    fn new(state: &StateEntry, uid: &str) -> StateDiff {
        StateDiff {
            uid: uid.to_string(),
            state: state.name.clone(),
            only_in_a: 0,
            only_in_b: 0,
            changed: 0,
            same: 0,
            skipped_rows: 0,
            examples: Vec::new(),
        }
    }

    fn note(
        &mut self,
        kind: RowChangeKind,
        limit: usize,
        example: impl FnOnce() -> Result<RowChange>,
    ) -> Result<()> {
        match kind {
            RowChangeKind::Added => self.only_in_b += 1,
            RowChangeKind::Removed => self.only_in_a += 1,
            RowChangeKind::Changed => self.changed += 1,
        }
        if self.examples.iter().filter(|e| e.kind == kind).count() < limit {
            self.examples.push(example()?);
        }
        Ok(())
    }
}

/// Compares the rows of a keyed state. Shards equal in range, rows and CRC-32C on both
/// sides are skipped unread; the rest is merged by key hash with memory bounded by the
/// rows of one hash.
pub(crate) async fn diff_keyed(
    a: &SavepointReader,
    b: &SavepointReader,
    uid: &str,
    sa: &StateEntry,
    sb: &StateEntry,
    examples: usize,
) -> Result<StateDiff> {
    let mut diff = StateDiff::new(sa, uid);
    let mut skipped = Vec::new();
    // A shard equal on both sides holds equal rows, unless delta layers change them.
    let layered = crate::layers::is_layered(sa) || crate::layers::is_layered(sb);
    for shard in sa.shards.iter().filter(|_| !layered) {
        let twin = sb.shards.iter().any(|o| {
            o.hash_range == shard.hash_range
                && o.rows == shard.rows
                && o.crc32c == shard.crc32c
                && o.bytes == shard.bytes
        });
        if let (true, Some(r)) = (twin, shard.hash_range) {
            skipped.push(r);
            diff.skipped_rows += shard.rows;
        }
    }
    for range in complement(skipped) {
        let options = || ReadOptions {
            hash_range: Some(range),
            ..Default::default()
        };
        let left = Cursor::new(a.read_state(uid, &sa.name, options()).await?);
        let right = Cursor::new(b.read_state(uid, &sb.name, options()).await?);
        merge(left, right, &mut diff, examples).await?;
    }
    Ok(diff)
}

/// The parts of the hash space not covered by `ranges` (which do not overlap).
fn complement(mut ranges: Vec<HashRange>) -> Vec<HashRange> {
    ranges.sort();
    let mut out = Vec::new();
    let mut next = Some(0u64);
    for r in ranges {
        if let Some(n) = next {
            if r.start() > n {
                out.extend(HashRange::new(n, r.start() - 1));
            }
        }
        next = r.end().checked_add(1);
    }
    if let Some(n) = next {
        out.extend(HashRange::new(n, u64::MAX));
    }
    out
}

/// A row of some batch: which batch (by sequence number) and where.
#[derive(Clone)]
struct RowRef {
    seq: u64,
    batch: Arc<RecordBatch>,
    row: usize,
}

/// Reads a state stream row by row, in groups of equal key hash.
struct Cursor {
    stream: BoxStream<'static, Result<RecordBatch>>,
    batch: Option<(u64, Arc<RecordBatch>, Vec<u64>)>,
    row: usize,
    seq: u64,
}

impl Cursor {
    fn new(stream: BoxStream<'static, Result<RecordBatch>>) -> Cursor {
        Cursor {
            stream,
            batch: None,
            row: 0,
            seq: 0,
        }
    }

    /// The key hash of the next row, loading the next batch when needed.
    async fn peek(&mut self) -> Result<Option<u64>> {
        loop {
            if let Some((_, _, hashes)) = &self.batch {
                if self.row < hashes.len() {
                    return Ok(Some(hashes[self.row]));
                }
            }
            match self.stream.next().await {
                None => return Ok(None),
                Some(batch) => {
                    let batch = batch?;
                    let hashes = batch
                        .column_by_name(columns::KEY_HASH)
                        .and_then(|c| c.as_primitive_opt::<UInt64Type>())
                        .map(|h| h.values().to_vec())
                        .ok_or_else(|| Error::Internal("keyed state without key_hash".into()))?;
                    self.seq += 1;
                    self.batch = Some((self.seq, Arc::new(batch), hashes));
                    self.row = 0;
                }
            }
        }
    }

    /// All rows with key hash `hash` (the next ones).
    async fn group(&mut self, hash: u64) -> Result<Vec<RowRef>> {
        let mut out = Vec::new();
        while self.peek().await? == Some(hash) {
            if let Some((seq, batch, _)) = &self.batch {
                out.push(RowRef {
                    seq: *seq,
                    batch: batch.clone(),
                    row: self.row,
                });
            }
            self.row += 1;
        }
        Ok(out)
    }
}

/// One comparator per column (but `key_hash`), with the column's name.
type ColumnComparators = Arc<Vec<(String, DynComparator)>>;

/// Column comparators between the batches of A and B, cached for the current batch pair.
#[derive(Default)]
struct Comparators {
    cache: HashMap<(u64, u64), ColumnComparators>,
}

impl Comparators {
    fn get(&mut self, a: &RowRef, b: &RowRef) -> Result<ColumnComparators> {
        if let Some(c) = self.cache.get(&(a.seq, b.seq)) {
            return Ok(c.clone());
        }
        if self.cache.len() > 16 {
            self.cache.clear();
        }
        let mut comparators = Vec::new();
        for (i, field) in a.batch.schema().fields().iter().enumerate() {
            if field.name() == columns::KEY_HASH {
                continue;
            }
            let other = b
                .batch
                .column_by_name(field.name())
                .ok_or_else(|| Error::Internal(format!("column {} missing in B", field.name())))?;
            let cmp = make_comparator(
                a.batch.column(i).as_ref(),
                other.as_ref(),
                SortOptions::default(),
            )
            .map_err(|e| Error::Internal(format!("comparing column {}: {e}", field.name())))?;
            comparators.push((field.name().clone(), cmp));
        }
        let comparators = Arc::new(comparators);
        self.cache.insert((a.seq, b.seq), comparators.clone());
        Ok(comparators)
    }
}

/// (identity equal, value equal) of two rows.
fn compare(cmps: &[(String, DynComparator)], a: &RowRef, b: &RowRef) -> (bool, bool) {
    compare_rows(cmps, a.row, b.row)
}

fn compare_rows(cmps: &[(String, DynComparator)], i: usize, j: usize) -> (bool, bool) {
    let mut identity = true;
    let mut value = true;
    for (name, cmp) in cmps {
        let equal = cmp(i, j).is_eq();
        if name == columns::VALUE {
            value = equal;
        } else {
            identity &= equal;
        }
    }
    (identity, value)
}

async fn merge(
    mut left: Cursor,
    mut right: Cursor,
    diff: &mut StateDiff,
    limit: usize,
) -> Result<()> {
    let mut comparators = Comparators::default();
    loop {
        let (ha, hb) = (left.peek().await?, right.peek().await?);
        if ha.is_some() && hb.is_some() {
            fast_path(&mut left, &mut right, &mut comparators, diff, limit)?;
        }
        let (ha, hb) = (left.peek().await?, right.peek().await?);
        let hash = match (ha, hb) {
            (None, None) => return Ok(()),
            (Some(x), None) => x,
            (None, Some(y)) => y,
            (Some(x), Some(y)) => x.min(y),
        };
        let ga = if ha == Some(hash) {
            left.group(hash).await?
        } else {
            Vec::new()
        };
        let gb = if hb == Some(hash) {
            right.group(hash).await?
        } else {
            Vec::new()
        };
        merge_group(&ga, &gb, &mut comparators, diff, limit)?;
    }
}

/// The common case without allocation: both sides inside a loaded batch, and each key hash
/// held by one row per side. Stops where a group has several rows or reaches a batch end.
fn fast_path(
    left: &mut Cursor,
    right: &mut Cursor,
    comparators: &mut Comparators,
    diff: &mut StateDiff,
    limit: usize,
) -> Result<()> {
    let (Some((seq_a, batch_a, ha)), Some((seq_b, batch_b, hb))) = (&left.batch, &right.batch)
    else {
        return Ok(());
    };
    let ref_a = |row| RowRef {
        seq: *seq_a,
        batch: batch_a.clone(),
        row,
    };
    let ref_b = |row| RowRef {
        seq: *seq_b,
        batch: batch_b.clone(),
        row,
    };
    let cmps = comparators.get(&ref_a(0), &ref_b(0))?;
    let single = |h: &[u64], i: usize| i + 1 < h.len() && h[i + 1] != h[i];
    while left.row < ha.len() && right.row < hb.len() {
        let (i, j) = (left.row, right.row);
        let (x, y) = (ha[i], hb[j]);
        if x == y && single(ha, i) && single(hb, j) {
            match compare_rows(&cmps, i, j) {
                (true, true) => diff.same += 1,
                (true, false) => diff.note(RowChangeKind::Changed, limit, || {
                    example(RowChangeKind::Changed, Some(&ref_a(i)), Some(&ref_b(j)))
                })?,
                (false, _) => {
                    diff.note(RowChangeKind::Removed, limit, || {
                        example(RowChangeKind::Removed, Some(&ref_a(i)), None)
                    })?;
                    diff.note(RowChangeKind::Added, limit, || {
                        example(RowChangeKind::Added, None, Some(&ref_b(j)))
                    })?;
                }
            }
            left.row += 1;
            right.row += 1;
        } else if x < y && single(ha, i) {
            diff.note(RowChangeKind::Removed, limit, || {
                example(RowChangeKind::Removed, Some(&ref_a(i)), None)
            })?;
            left.row += 1;
        } else if y < x && single(hb, j) {
            diff.note(RowChangeKind::Added, limit, || {
                example(RowChangeKind::Added, None, Some(&ref_b(j)))
            })?;
            right.row += 1;
        } else {
            break;
        }
    }
    Ok(())
}

/// Matches the rows of one key hash on both sides by identity, then compares values.
fn merge_group(
    ga: &[RowRef],
    gb: &[RowRef],
    comparators: &mut Comparators,
    diff: &mut StateDiff,
    limit: usize,
) -> Result<()> {
    let mut matched_b = vec![false; gb.len()];
    for ra in ga {
        let mut found = None;
        for (j, rb) in gb.iter().enumerate() {
            if matched_b[j] {
                continue;
            }
            let (identity, value) = compare(&comparators.get(ra, rb)?, ra, rb);
            if identity {
                found = Some((j, value));
                break;
            }
        }
        match found {
            Some((j, true)) => {
                matched_b[j] = true;
                diff.same += 1;
            }
            Some((j, false)) => {
                matched_b[j] = true;
                let rb = &gb[j];
                diff.note(RowChangeKind::Changed, limit, || {
                    example(RowChangeKind::Changed, Some(ra), Some(rb))
                })?;
            }
            None => diff.note(RowChangeKind::Removed, limit, || {
                example(RowChangeKind::Removed, Some(ra), None)
            })?,
        }
    }
    for (j, rb) in gb.iter().enumerate() {
        if !matched_b[j] {
            diff.note(RowChangeKind::Added, limit, || {
                example(RowChangeKind::Added, None, Some(rb))
            })?;
        }
    }
    Ok(())
}

/// The rows of a batch as JSON objects, column name to value.
fn json_rows(batch: &RecordBatch) -> Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    let mut writer = arrow_json::ArrayWriter::new(Vec::new());
    writer
        .write(batch)
        .map_err(|e| Error::Internal(e.to_string()))?;
    writer
        .finish()
        .map_err(|e| Error::Internal(e.to_string()))?;
    serde_json::from_slice(&writer.into_inner()).map_err(|e| Error::Internal(e.to_string()))
}

/// Decodes one row's identity and values to JSON, for an example.
fn example(kind: RowChangeKind, a: Option<&RowRef>, b: Option<&RowRef>) -> Result<RowChange> {
    let any = a
        .or(b)
        .ok_or_else(|| Error::Internal("example of nothing".into()))?;
    let row_json = |r: &RowRef| -> Result<serde_json::Map<String, serde_json::Value>> {
        json_rows(&r.batch.slice(r.row, 1))?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Internal("empty row".into()))
    };
    let mut identity = row_json(any)?;
    identity.remove(columns::KEY_HASH);
    identity.remove(columns::VALUE);
    let value = |r: Option<&RowRef>| -> Result<Option<serde_json::Value>> {
        match r {
            Some(r) if r.batch.column_by_name(columns::VALUE).is_some() => Ok(Some(
                row_json(r)?
                    .remove(columns::VALUE)
                    .unwrap_or(serde_json::Value::Null),
            )),
            _ => Ok(None),
        }
    };
    let key = if identity.len() == 1 {
        identity
            .into_iter()
            .next()
            .map(|(_, v)| v)
            .unwrap_or_default()
    } else {
        serde_json::Value::Object(identity)
    };
    Ok(RowChange {
        kind,
        key,
        a: value(a)?,
        b: value(b)?,
    })
}

/// Compares operator list state as multisets of elements: all subtasks together, or for
/// `broadcast` state the one list every subtask restores (subtask 0's), so savepoints
/// at different parallelism compare by what a job would restore.
pub(crate) async fn diff_operator_list(
    a: &SavepointReader,
    b: &SavepointReader,
    uid: &str,
    sa: &StateEntry,
    examples: usize,
) -> Result<StateDiff> {
    let mut diff = StateDiff::new(sa, uid);
    let elements = |r: &SavepointReader| {
        let r = r.clone();
        let (uid, name) = (uid.to_string(), sa.name.clone());
        let broadcast = r
            .manifest()
            .operator(&uid)
            .and_then(|o| o.states.iter().find(|s| s.name == name))
            .and_then(|s| s.redistribution)
            == Some(rewind_format::Redistribution::Broadcast);
        async move {
            let mut stream = if broadcast {
                let list = r.read_operator_list(&uid, &name, 0, 1).await?;
                futures::stream::iter([Ok(list)]).boxed()
            } else {
                r.read_state(&uid, &name, ReadOptions::default()).await?
            };
            let mut out: Vec<serde_json::Value> = Vec::new();
            while let Some(batch) = stream.next().await {
                let rows = json_rows(&batch?)?;
                out.extend(
                    rows.into_iter()
                        .map(|mut m| m.remove(columns::VALUE).unwrap_or_default()),
                );
            }
            Ok::<_, Error>(out)
        }
    };
    let (ea, eb) = (elements(a).await?, elements(b).await?);
    let mut counts: HashMap<String, (Vec<serde_json::Value>, i64)> = HashMap::new();
    for e in ea {
        counts
            .entry(e.to_string())
            .or_insert_with(|| (vec![e.clone()], 0))
            .1 += 1;
    }
    for e in eb {
        counts
            .entry(e.to_string())
            .or_insert_with(|| (vec![e.clone()], 0))
            .1 -= 1;
    }
    let mut keys: Vec<_> = counts.into_iter().collect();
    keys.sort_by(|x, y| x.0.cmp(&y.0));
    for (_, (value, n)) in keys {
        let value = value.into_iter().next().unwrap_or_default();
        let kind = if n > 0 {
            RowChangeKind::Removed
        } else {
            RowChangeKind::Added
        };
        for _ in 0..n.unsigned_abs() {
            diff.note(kind, examples, || {
                Ok(RowChange {
                    kind,
                    key: value.clone(),
                    a: None,
                    b: None,
                })
            })?;
        }
        if n == 0 {
            diff.same += 1;
        }
    }
    Ok(diff)
}
