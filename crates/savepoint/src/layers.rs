//! Incremental checkpoints (spec: "Incremental checkpoints"): shards that live in a sibling
//! folder, and delta layers of upserts and deletes merged over a keyed state's base.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use rewind_format::{ShardEntry, StateEntry};

use crate::spec::columns;
use crate::{Error, Location, Result};

/// The column that marks a delta row as a delete.
pub(crate) const DELETED: &str = "deleted";

/// The location that holds `shard`'s file: the savepoint's own, or its sibling folder.
pub(crate) fn home(location: &Location, shard: &ShardEntry) -> Result<Location> {
    match &shard.sibling {
        None => Ok(location.clone()),
        Some(sibling) => location.sibling(sibling),
    }
}

/// Whether reading the state means merging delta layers over its base.
pub(crate) fn is_layered(state: &StateEntry) -> bool {
    state.shards.iter().any(|s| s.is_delta())
}

/// Whether the savepoint uses shards of another folder or delta layers.
pub fn is_incremental(manifest: &rewind_format::Manifest) -> bool {
    manifest
        .shards()
        .any(|(_, _, s)| s.sibling.is_some() || s.is_delta())
}

/// The `deleted` field a delta shard has after the state's columns.
pub(crate) fn deleted_field() -> Field {
    Field::new(DELETED, DataType::Boolean, false)
}

/// `schema` with the `deleted` column appended: a delta shard's schema.
pub(crate) fn with_deleted(schema: &Schema) -> Arc<Schema> {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(deleted_field());
    Arc::new(Schema::new(fields))
}

/// One layer's rows, in key-hash order, with `key_hash` first; `deleted` last for a delta.
pub(crate) struct Layer {
    pub(crate) number: u32,
    pub(crate) rows: BoxStream<'static, Result<RecordBatch>>,
}

/// The rows of a layered state: for each identity (the columns other than `key_hash` and
/// `value`), the row of the highest layer holding it, unless that row is a delete. Output
/// keeps key-hash order, and every batch has the base's columns.
pub(crate) fn merge(
    described: String,
    layers: Vec<Layer>,
    batch_size: usize,
) -> BoxStream<'static, Result<RecordBatch>> {
    let mut cursors: Vec<Cursor> = layers
        .into_iter()
        .map(|l| Cursor {
            number: l.number,
            rows: l.rows,
            batch: None,
            row: 0,
            done: false,
        })
        .collect();
    // Highest layer first: the first row of an identity seen in a group wins.
    cursors.sort_by_key(|c| std::cmp::Reverse(c.number));
    let merger = Merger {
        described,
        heads: vec![None; cursors.len()],
        stale: vec![true; cursors.len()],
        cursors,
        batch_size: batch_size.max(1),
        parts_seen: 0,
        comparators: std::collections::HashMap::new(),
    };
    futures::stream::try_unfold(merger, |mut m| async move {
        let out = m.next_batch().await?;
        Ok(out.map(|b| (b, m)))
    })
    .try_filter(|b| futures::future::ready(b.num_rows() > 0))
    .boxed()
}

/// A decoded batch of one layer, split into its columns and its delete marks.
struct Part {
    /// Unique within a merge: names the batch in the comparator cache.
    id: u64,
    batch: RecordBatch,
    hashes: arrow_array::UInt64Array,
    deleted: Option<BooleanArray>,
}

struct Cursor {
    number: u32,
    rows: BoxStream<'static, Result<RecordBatch>>,
    batch: Option<Arc<Part>>,
    row: usize,
    done: bool,
}

impl Cursor {
    /// The key hash of the next row, fetching the next batch when this one is used up.
    async fn head(&mut self, described: &str, parts_seen: &mut u64) -> Result<Option<u64>> {
        loop {
            if let Some(part) = &self.batch {
                if self.row < part.batch.num_rows() {
                    return Ok(Some(part.hashes.value(self.row)));
                }
            }
            if self.done {
                return Ok(None);
            }
            match self.rows.try_next().await? {
                Some(batch) => {
                    *parts_seen += 1;
                    self.batch = Some(Arc::new(split(described, batch, *parts_seen)?));
                    self.row = 0;
                }
                None => {
                    self.done = true;
                    self.batch = None;
                }
            }
        }
    }
}

/// A layer's batch without its `deleted` column, and the column's marks (`None` for a
/// base layer's batch).
fn take_deleted(
    described: &str,
    batch: RecordBatch,
) -> Result<(RecordBatch, Option<BooleanArray>)> {
    let Ok(i) = batch.schema().index_of(DELETED) else {
        return Ok((batch, None));
    };
    let marks = batch
        .column(i)
        .as_boolean_opt()
        .cloned()
        .ok_or_else(|| Error::corrupt(described, "the deleted column is not boolean"))?;
    if marks.null_count() > 0 {
        return Err(Error::corrupt(described, "the deleted column holds a null"));
    }
    let mut batch = batch;
    batch.remove_column(i);
    Ok((batch, Some(marks)))
}

/// Rows of one layer of a keyed state, as
/// [`SavepointReader::read_state_layers`](crate::SavepointReader::read_state_layers)
/// streams them; both carry the state's columns (`key_hash` first).
#[derive(Debug, Clone)]
pub enum LayerRows {
    /// Rows that insert their identity or replace its row (a base's rows, a delta's
    /// upserts).
    Upserts(RecordBatch),
    /// Identities a delta layer removes (their `value` is null).
    Deletes(RecordBatch),
}

/// A layer's batch as upserts and deletes: a delta's batch as one or both, whichever it
/// holds; a base's batch as upserts, whatever its rows.
pub(crate) fn layer_rows(described: &str, batch: RecordBatch) -> Result<Vec<LayerRows>> {
    let (batch, deleted) = take_deleted(described, batch)?;
    let Some(deleted) = deleted else {
        return Ok(vec![LayerRows::Upserts(batch)]);
    };
    let pick = |marks: &BooleanArray| {
        arrow_select::filter::filter_record_batch(&batch, marks)
            .map_err(|e| Error::Internal(format!("{described}: splitting a delta: {e}")))
    };
    let deletes = deleted.true_count();
    let mut out = Vec::with_capacity(2);
    if deletes < batch.num_rows() {
        let upserts = if deletes == 0 {
            batch.clone()
        } else {
            pick(&BooleanArray::new(!deleted.values(), None))?
        };
        out.push(LayerRows::Upserts(upserts));
    }
    if deletes > 0 {
        out.push(LayerRows::Deletes(pick(&deleted)?));
    }
    Ok(out)
}

fn split(described: &str, batch: RecordBatch, id: u64) -> Result<Part> {
    let hashes = batch
        .column_by_name(columns::KEY_HASH)
        .and_then(|c| c.as_primitive_opt::<UInt64Type>().cloned())
        .ok_or_else(|| Error::Internal(format!("{described}: no key_hash column")))?;
    let (batch, deleted) = take_deleted(described, batch)?;
    Ok(Part {
        id,
        batch,
        hashes,
        deleted,
    })
}

struct Merger {
    described: String,
    cursors: Vec<Cursor>,
    /// Each cursor's next key hash, and whether it moved since (its head must be read
    /// again): a run taken from one layer moves that layer alone, so the others' heads
    /// are not read again for every run.
    heads: Vec<Option<u64>>,
    stale: Vec<bool>,
    batch_size: usize,
    /// Batches read so far, over all layers (their ids).
    parts_seen: u64,
    /// The identity comparators of pairs of batches, by their ids: rows of one key in
    /// several layers are compared many times over the same pair of batches.
    comparators: std::collections::HashMap<(u64, u64), Vec<arrow_ord::ord::DynComparator>>,
}

/// Rows of one key hash compared pairwise when resolving (a key of value or list state has
/// one row per layer that changed it); larger groups are sorted.
const SMALL_GROUP: usize = 16;

/// Comparator cache entries kept before the cache is emptied: batches move on, and the
/// cache must not keep every batch of the merge alive.
const MAX_CACHED_PAIRS: usize = 256;

/// The rows chosen for one output batch: the batches they come from and (batch, row) pairs.
#[derive(Default)]
struct Chosen {
    parts: Vec<Arc<Part>>,
    rows: Vec<(usize, usize)>,
}

impl Chosen {
    fn part_index(&mut self, part: &Arc<Part>) -> usize {
        match self.parts.iter().rposition(|p| Arc::ptr_eq(p, part)) {
            Some(at) => at,
            None => {
                self.parts.push(part.clone());
                self.parts.len() - 1
            }
        }
    }

    /// Adds rows `from..to` of `part`, leaving out deletes.
    fn take(&mut self, part: &Arc<Part>, from: usize, to: usize) {
        let at = self.part_index(part);
        match &part.deleted {
            None => self.rows.extend((from..to).map(|r| (at, r))),
            Some(d) => self
                .rows
                .extend((from..to).filter(|&r| !d.value(r)).map(|r| (at, r))),
        }
    }
}

impl Merger {
    /// The next output batch, or `None` when every layer is used up.
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let mut chosen = Chosen::default();
        let mut group: Vec<(Arc<Part>, usize)> = Vec::new();
        let mut holders: Vec<usize> = Vec::with_capacity(self.cursors.len());
        while chosen.rows.len() < self.batch_size {
            for (i, c) in self.cursors.iter_mut().enumerate() {
                if self.stale[i] {
                    self.heads[i] = c.head(&self.described, &mut self.parts_seen).await?;
                    self.stale[i] = false;
                }
            }
            let heads = &self.heads;
            let Some(least) = heads.iter().flatten().min().copied() else {
                break;
            };
            holders.clear();
            holders.extend((0..heads.len()).filter(|&i| heads[i] == Some(least)));
            if let [only] = holders[..] {
                // A run of one layer below every other layer's next hash: no row of it
                // meets another layer's row, so it is taken as it is.
                let bound = (0..heads.len())
                    .filter(|&i| i != only)
                    .filter_map(|i| heads[i])
                    .min();
                let c = &mut self.cursors[only];
                let part = c
                    .batch
                    .clone()
                    .ok_or_else(|| Error::Internal("a layer cursor lost its batch".into()))?;
                let hashes = &part.hashes.values()[..];
                let end = match bound {
                    Some(b) => c.row + hashes[c.row..].partition_point(|&h| h < b),
                    None => hashes.len(),
                };
                let end = end.min(c.row + (self.batch_size - chosen.rows.len()));
                chosen.take(&part, c.row, end);
                c.row = end;
                self.stale[only] = true;
                continue;
            }
            // Rows of several layers with one key hash, highest layer first.
            group.clear();
            for &i in &holders {
                let c = &mut self.cursors[i];
                while c.head(&self.described, &mut self.parts_seen).await? == Some(least) {
                    let part = c
                        .batch
                        .clone()
                        .ok_or_else(|| Error::Internal("a layer cursor lost its batch".into()))?;
                    group.push((part, c.row));
                    c.row += 1;
                }
                self.stale[i] = true;
            }
            self.resolve(&group, &mut chosen)?;
        }
        if chosen.rows.is_empty() {
            return Ok(None);
        }
        assemble(&chosen).map(Some)
    }

    /// Keeps, of rows with one key hash from several layers, the first row of each identity
    /// (the highest layer's), unless it is a delete.
    fn resolve(&mut self, group: &[(Arc<Part>, usize)], chosen: &mut Chosen) -> Result<()> {
        if group.len() > SMALL_GROUP {
            return self.resolve_sorted(group, chosen);
        }
        let mut winners: Vec<&(Arc<Part>, usize)> = Vec::new();
        for candidate in group {
            let mut seen = false;
            for w in &winners {
                if self.compare(&w.0, w.1, &candidate.0, candidate.1)?.is_eq() {
                    seen = true;
                    break;
                }
            }
            if !seen {
                winners.push(candidate);
            }
        }
        for (part, row) in winners {
            chosen.take(part, *row, row + 1);
        }
        Ok(())
    }

    /// [`resolve`](Self::resolve) of a large group (a map state's key holds a row per user
    /// key in every layer that changed it): sorted by identity, stably so that the highest
    /// layer's row comes first among equal ones, instead of compared with every winner.
    fn resolve_sorted(&mut self, group: &[(Arc<Part>, usize)], chosen: &mut Chosen) -> Result<()> {
        let mut failure = None;
        let mut order: Vec<usize> = (0..group.len()).collect();
        let mut compare = |x: usize, y: usize| {
            let ((a, i), (b, j)) = (&group[x], &group[y]);
            self.compare(a, *i, b, *j).unwrap_or_else(|e| {
                failure.get_or_insert(e);
                std::cmp::Ordering::Equal
            })
        };
        order.sort_by(|&x, &y| compare(x, y));
        let mut last: Option<usize> = None;
        for &at in &order {
            if last.is_some_and(|l| compare(l, at).is_eq()) {
                continue;
            }
            last = Some(at);
            let (part, row) = &group[at];
            chosen.take(part, *row, row + 1);
        }
        failure.map_or(Ok(()), Err)
    }

    /// How two rows' identifying columns compare: every column but `key_hash` and
    /// `value`, by value (floats by their bits).
    fn compare(&mut self, a: &Part, i: usize, b: &Part, j: usize) -> Result<std::cmp::Ordering> {
        if self.comparators.len() >= MAX_CACHED_PAIRS {
            self.comparators.clear();
        }
        let comparators = match self.comparators.entry((a.id, b.id)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(
                identity_comparators(&a.batch, &b.batch)
                    .map_err(|m| Error::corrupt(&self.described, m))?,
            ),
        };
        Ok(comparators
            .iter()
            .map(|cmp| cmp(i, j))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal))
    }
}

/// Comparators of the identifying columns of two batches (every column but `key_hash`
/// and `value`).
fn identity_comparators(
    a: &RecordBatch,
    b: &RecordBatch,
) -> Result<Vec<arrow_ord::ord::DynComparator>, String> {
    let mut out = Vec::new();
    for (field, left) in a.schema().fields().iter().zip(a.columns()) {
        let name = field.name().as_str();
        if name == columns::KEY_HASH || name == columns::VALUE {
            continue;
        }
        let right = b
            .column_by_name(name)
            .ok_or_else(|| format!("a layer has no {name} column"))?;
        out.push(
            arrow_ord::ord::make_comparator(
                left.as_ref(),
                right.as_ref(),
                arrow_schema::SortOptions::default(),
            )
            .map_err(|e| format!("comparing {name}: {e}"))?,
        );
    }
    Ok(out)
}

/// One batch of the chosen rows, with the base layer's columns.
fn assemble(chosen: &Chosen) -> Result<RecordBatch> {
    let schema = chosen.parts[0].batch.schema();
    let mut out: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for c in 0..schema.fields().len() {
        let arrays: Vec<&dyn Array> = chosen
            .parts
            .iter()
            .map(|p| p.batch.column(c).as_ref())
            .collect();
        out.push(
            arrow_select::interleave::interleave(&arrays, &chosen.rows)
                .map_err(|e| Error::Internal(format!("merging layers: {e}")))?,
        );
    }
    RecordBatch::try_new(schema, out).map_err(|e| Error::Internal(format!("merging layers: {e}")))
}

#[cfg(test)]
mod tests {
    use arrow_array::types::Int64Type;
    use arrow_array::{Int64Array, UInt64Array};

    use super::*;

    /// One layer of a map state whose rows all have key 7 (one key hash): (user key,
    /// value), a `None` value marking a delete.
    fn layer(number: u32, rows: &[(i64, Option<i64>)]) -> Layer {
        let n = rows.len();
        let mut fields = vec![
            Field::new(columns::KEY_HASH, DataType::UInt64, false),
            Field::new("key", DataType::Int64, false),
            Field::new("user_key", DataType::Int64, false),
            Field::new(columns::VALUE, DataType::Int64, true),
        ];
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from(vec![5u64; n])),
            Arc::new(Int64Array::from(vec![7i64; n])),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.1))),
        ];
        if number > 0 {
            fields.push(deleted_field());
            columns.push(Arc::new(BooleanArray::from_iter(
                rows.iter().map(|r| Some(r.1.is_none())),
            )));
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
        Layer {
            number,
            rows: futures::stream::iter(vec![Ok(batch)]).boxed(),
        }
    }

    /// A key with a row per user key in every layer (as map state's delta layers hold):
    /// the highest layer's row of each user key counts, deletes remove, whatever the rows'
    /// order within a layer (the large group is sorted, not compared pairwise).
    #[test]
    fn a_large_group_of_one_key_keeps_the_highest_layers_row_of_each_identity() {
        let base: Vec<(i64, Option<i64>)> = (0..100).rev().map(|u| (u, Some(u))).collect();
        let first: Vec<(i64, Option<i64>)> = (0..50)
            .map(|u| (u, (u % 2 == 0).then_some(1000 + u)))
            .collect();
        let second = [(1, Some(2000)), (0, None), (99, None)];
        let layers = vec![layer(1, &first), layer(0, &base), layer(2, &second)];
        let merged: Vec<RecordBatch> =
            futures::executor::block_on(merge("test".into(), layers, 1000).try_collect()).unwrap();
        let mut rows: Vec<(i64, i64)> = merged
            .iter()
            .flat_map(|b| {
                assert!(b.column_by_name(DELETED).is_none());
                let uk = b
                    .column_by_name("user_key")
                    .unwrap()
                    .as_primitive::<Int64Type>();
                let v = b
                    .column_by_name(columns::VALUE)
                    .unwrap()
                    .as_primitive::<Int64Type>();
                (0..b.num_rows())
                    .map(|i| (uk.value(i), v.value(i)))
                    .collect::<Vec<_>>()
            })
            .collect();
        rows.sort();
        let expected: Vec<(i64, i64)> = (0..99)
            .filter_map(|u| match u {
                0 => None,
                1 => Some((1, 2000)),
                u if u < 50 && u % 2 == 0 => Some((u, 1000 + u)),
                u if u < 50 => None,
                u => Some((u, u)),
            })
            .collect();
        assert_eq!(rows, expected);
    }
}
