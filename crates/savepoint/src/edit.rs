//! Offline edits: a new savepoint derived from another by a list of edits, applied in
//! order. Untouched shards are copied whole; only shards holding edited keys are rewritten.

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt32Array};
use futures::TryStreamExt;
use rewind_format::{
    HashRange, Manifest, ShardEntry, SplitEntry, StateEntry, StateKind, check_name, encode_key,
    hash_keys,
};

use crate::spec::columns;
use crate::{
    Error, Location, ReadOptions, Result, SavepointInfo, SavepointReader, SavepointWriter,
    StateSpec, WriterOptions,
};

/// One edit. Edits name operators by uid and states by `uid` + name; they apply in order,
/// so a later edit sees the result of earlier ones (a renamed operator has its new uid).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Edit {
    /// Remove an operator and all its state.
    RemoveOperator {
        /// Its uid.
        uid: String,
    },
    /// Give an operator a new uid (after a refactor renamed it in the job).
    RenameOperator {
        /// Current uid.
        from: String,
        /// New uid; must not exist yet.
        to: String,
    },
    /// Set a source split's position.
    SetPosition {
        /// Source operator uid.
        uid: String,
        /// Split id.
        split: String,
        /// New position (source-specific JSON).
        position: serde_json::Value,
    },
    /// Set a source split's watermark (milliseconds since the epoch).
    SetWatermark {
        /// Source operator uid.
        uid: String,
        /// Split id.
        split: String,
        /// New watermark.
        watermark: i64,
    },
    /// Remove a split from a source.
    RemoveSplit {
        /// Source operator uid.
        uid: String,
        /// Split id.
        split: String,
    },
    /// Add a split to a source (or make an operator a source).
    AddSplit {
        /// Operator uid.
        uid: String,
        /// The new split.
        split: SplitEntry,
    },
    /// Drop one state of an operator.
    DropState {
        /// Operator uid.
        uid: String,
        /// State name.
        state: String,
    },
    /// Delete every row of the given keys (all namespaces and map entries of each key).
    DeleteKeys {
        /// Operator uid.
        uid: String,
        /// Keyed state name.
        state: String,
        /// Batches with a `key` column of the state's key type.
        keys: Vec<RecordBatch>,
    },
    /// Insert rows, replacing rows with the same identity (key, and namespace and user key
    /// where the state has them).
    Upsert {
        /// Operator uid.
        uid: String,
        /// Keyed state name.
        state: String,
        /// Rows with the state's columns (`key`, ..., `value`), without `key_hash`.
        rows: Vec<RecordBatch>,
    },
}

impl Edit {
    fn describe(&self) -> String {
        match self {
            Edit::RemoveOperator { uid } => format!("remove-operator {uid}"),
            Edit::RenameOperator { from, to } => format!("rename-operator {from}={to}"),
            Edit::SetPosition {
                uid,
                split,
                position,
            } => format!("set-position {uid}/{split}={position}"),
            Edit::SetWatermark {
                uid,
                split,
                watermark,
            } => format!("set-watermark {uid}/{split}={watermark}"),
            Edit::RemoveSplit { uid, split } => format!("remove-split {uid}/{split}"),
            Edit::AddSplit { uid, split } => format!("add-split {uid}/{}", split.id),
            Edit::DropState { uid, state } => format!("drop-state {uid}/{state}"),
            Edit::DeleteKeys { uid, state, keys } => {
                format!(
                    "delete-keys {uid}/{state} ({} keys)",
                    keys.iter().map(|b| b.num_rows()).sum::<usize>()
                )
            }
            Edit::Upsert { uid, state, rows } => {
                format!(
                    "upsert {uid}/{state} ({} rows)",
                    rows.iter().map(|b| b.num_rows()).sum::<usize>()
                )
            }
        }
    }
}

/// An operator of the result: where its state comes from and what changes.
struct OperatorDraft {
    uid: String,
    source_uid: String,
    name: String,
    parallelism: u32,
    splits: Option<Vec<SplitEntry>>,
    states: Vec<StateDraft>,
}

struct StateDraft {
    entry: StateEntry,
    spec: StateSpec,
    /// Canonical encodings of keys whose rows are deleted.
    deleted_keys: HashSet<Vec<u8>>,
    deleted_hashes: Vec<u64>,
    /// Rows to insert, with `key_hash` first, and their identities.
    upserts: Vec<RecordBatch>,
    upsert_ids: HashSet<Vec<u8>>,
}

impl StateDraft {
    fn touched(&self) -> bool {
        !self.deleted_keys.is_empty() || !self.upserts.is_empty()
    }
}

/// Writes `dest`: `source` with `edits` applied in order. Every edit is checked before
/// anything is written; `source` is never modified; the result's lineage names `source`
/// as parent with operation `edit` and lists the edits.
pub async fn edit(source: &SavepointReader, dest: Location, edits: &[Edit]) -> Result<Manifest> {
    let manifest = source.manifest();
    let mut ops: Vec<OperatorDraft> = manifest
        .operators
        .iter()
        .map(|op| {
            Ok(OperatorDraft {
                uid: op.uid.clone(),
                source_uid: op.uid.clone(),
                name: op.name.clone(),
                parallelism: op.parallelism,
                splits: op.source.as_ref().map(|s| s.splits.clone()),
                states: op
                    .states
                    .iter()
                    .map(|st| {
                        Ok(StateDraft {
                            entry: st.clone(),
                            spec: StateSpec::from_entry(st)?,
                            deleted_keys: HashSet::new(),
                            deleted_hashes: Vec::new(),
                            upserts: Vec::new(),
                            upsert_ids: HashSet::new(),
                        })
                    })
                    .collect::<Result<_>>()?,
            })
        })
        .collect::<Result<_>>()?;
    for e in edits {
        apply(&mut ops, e)?;
    }

    let mut info = SavepointInfo::derived_from(source, "edit");
    info.lineage.parameters =
        Some(serde_json::json!({ "edits": edits.iter().map(Edit::describe).collect::<Vec<_>>() }));
    let writer =
        SavepointWriter::create_with_options(dest, info, WriterOptions::like(source.manifest()))
            .await?;
    for op in &ops {
        writer.add_operator(&op.uid, &op.name, op.parallelism)?;
        if let Some(splits) = &op.splits {
            writer.set_source_splits(&op.uid, splits.clone())?;
        }
        for st in &op.states {
            writer.add_state(&op.uid, st.spec.clone())?;
        }
    }
    writer.carry_operator_extensions(manifest, &|uid| {
        ops.iter()
            .find(|o| o.uid == uid)
            .map_or_else(|| uid.to_string(), |o| o.source_uid.clone())
    })?;
    for op in &ops {
        for st in &op.states {
            // Edited rows of a layered state are read merged: its base shards are rewritten
            // whole (deltas applied) and its delta shards dropped.
            let merged = st.touched() && crate::layers::is_layered(&st.entry);
            for shard in &st.entry.shards {
                if merged && shard.is_delta() {
                    continue;
                }
                if merged || st.touched() && shard.hash_range.is_some_and(|r| st.affects(r)) {
                    rewrite_shard(source, &writer, op, st, shard).await?;
                } else {
                    writer
                        .copy_shard(source, &op.uid, &st.entry.name, shard)
                        .await?;
                }
            }
        }
    }
    writer.commit().await
}

fn find_op<'a>(ops: &'a mut [OperatorDraft], uid: &str) -> Result<&'a mut OperatorDraft> {
    let known: Vec<String> = ops.iter().map(|o| o.uid.clone()).collect();
    ops.iter_mut()
        .find(|o| o.uid == uid)
        .ok_or_else(|| Error::UnknownOperator {
            uid: uid.to_string(),
            known,
        })
}

fn find_state<'a>(op: &'a mut OperatorDraft, state: &str) -> Result<&'a mut StateDraft> {
    let known: Vec<String> = op.states.iter().map(|s| s.entry.name.clone()).collect();
    let uid = op.uid.clone();
    op.states
        .iter_mut()
        .find(|s| s.entry.name == state)
        .ok_or_else(|| Error::UnknownState {
            uid,
            state: state.to_string(),
            known,
        })
}

fn find_split<'a>(op: &'a mut OperatorDraft, split: &str) -> Result<&'a mut SplitEntry> {
    let uid = op.uid.clone();
    op.splits
        .as_mut()
        .and_then(|s| s.iter_mut().find(|x| x.id == split))
        .ok_or_else(|| {
            Error::InvalidInput(format!("operator {uid:?} has no source split {split:?}"))
        })
}

fn apply(ops: &mut Vec<OperatorDraft>, e: &Edit) -> Result<()> {
    match e {
        Edit::RemoveOperator { uid } => {
            find_op(ops, uid)?;
            ops.retain(|o| &o.uid != uid);
        }
        Edit::RenameOperator { from, to } => {
            check_name("operator uid", to).map_err(Error::InvalidInput)?;
            if ops.iter().any(|o| &o.uid == to) {
                return Err(Error::InvalidInput(format!(
                    "cannot rename {from:?} to {to:?}: that uid exists already"
                )));
            }
            find_op(ops, from)?.uid = to.clone();
        }
        Edit::SetPosition {
            uid,
            split,
            position,
        } => find_split(find_op(ops, uid)?, split)?.position = position.clone(),
        Edit::SetWatermark {
            uid,
            split,
            watermark,
        } => find_split(find_op(ops, uid)?, split)?.watermark = Some(*watermark),
        Edit::RemoveSplit { uid, split } => {
            let op = find_op(ops, uid)?;
            find_split(op, split)?;
            if let Some(s) = op.splits.as_mut() {
                s.retain(|x| &x.id != split);
            }
        }
        Edit::AddSplit { uid, split } => {
            let op = find_op(ops, uid)?;
            let splits = op.splits.get_or_insert_with(Vec::new);
            if split.id.is_empty() || splits.iter().any(|s| s.id == split.id) {
                return Err(Error::InvalidInput(format!(
                    "operator {uid:?} has a split {:?} already",
                    split.id
                )));
            }
            splits.push(split.clone());
        }
        Edit::DropState { uid, state } => {
            let op = find_op(ops, uid)?;
            find_state(op, state)?;
            op.states.retain(|s| &s.entry.name != state);
        }
        Edit::DeleteKeys { uid, state, keys } => {
            let op = find_op(ops, uid)?;
            let st = find_state(op, state)?;
            keyed_only(uid, st)?;
            for batch in keys {
                let key = batch.column_by_name(columns::KEY).ok_or_else(|| {
                    Error::InvalidInput(format!(
                        "{uid}/{state}: the key file has no \"key\" column"
                    ))
                })?;
                let declared =
                    rewind_format::parse_type(st.entry.key_type.as_deref().unwrap_or_default())
                        .map_err(|e| Error::Internal(e.to_string()))?;
                if !rewind_format::same_type(key.data_type(), &declared) {
                    return Err(Error::InvalidInput(format!(
                        "{uid}/{state}: column \"key\" has type {}, the state's keys are {}",
                        key.data_type(),
                        st.entry.key_type.as_deref().unwrap_or_default()
                    )));
                }
                st.deleted_hashes.extend(
                    hash_keys(key.as_ref()).map_err(|e| Error::InvalidInput(e.to_string()))?,
                );
                for row in 0..key.len() {
                    let mut buf = Vec::new();
                    encode_key(key.as_ref(), row, &mut buf)
                        .map_err(|e| Error::InvalidInput(e.to_string()))?;
                    st.deleted_keys.insert(buf);
                }
            }
            st.deleted_hashes.sort_unstable();
        }
        Edit::Upsert { uid, state, rows } => {
            let op = find_op(ops, uid)?;
            let st = find_state(op, state)?;
            keyed_only(uid, st)?;
            for batch in rows {
                let checked = st.spec.check_input(uid, batch)?;
                let hashes = hash_keys(checked[0].as_ref())
                    .map_err(|e| Error::InvalidInput(e.to_string()))?;
                let mut columns_with_hash: Vec<ArrayRef> =
                    vec![Arc::new(arrow_array::UInt64Array::from(hashes))];
                columns_with_hash.extend(checked);
                let schema = st.spec.shard_schema();
                let fields: Vec<_> = schema
                    .fields()
                    .iter()
                    .zip(&columns_with_hash)
                    .map(|(f, c)| f.as_ref().clone().with_data_type(c.data_type().clone()))
                    .collect();
                let with_hash = RecordBatch::try_new(
                    Arc::new(arrow_schema::Schema::new(fields)),
                    columns_with_hash,
                )
                .map_err(|e| Error::InvalidInput(format!("{uid}/{state}: {e}")))?;
                for row in 0..with_hash.num_rows() {
                    st.upsert_ids.insert(identity(&with_hash, row)?);
                }
                st.upserts.push(with_hash);
            }
        }
    }
    Ok(())
}

fn keyed_only(uid: &str, st: &StateDraft) -> Result<()> {
    if st.entry.kind.is_keyed() && st.entry.kind != StateKind::Timers {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "{uid}/{}: key edits need keyed value, list or map state, not {}",
            st.entry.name,
            st.entry.kind.as_str()
        )))
    }
}

/// The canonical encoding of a row's identity: key, then namespace and user key if any.
fn identity(batch: &RecordBatch, row: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for name in [columns::KEY, columns::NAMESPACE, columns::USER_KEY] {
        if let Some(c) = batch.column_by_name(name) {
            let mut part = Vec::new();
            encode_key(c.as_ref(), row, &mut part)
                .map_err(|e| Error::InvalidInput(format!("column {name:?}: {e}")))?;
            out.extend((part.len() as u32).to_le_bytes());
            out.extend(part);
        }
    }
    Ok(out)
}

impl StateDraft {
    fn affects(&self, range: HashRange) -> bool {
        let first = self.deleted_hashes.partition_point(|&h| h < range.start());
        if self
            .deleted_hashes
            .get(first)
            .is_some_and(|&h| h <= range.end())
        {
            return true;
        }
        self.upserts.iter().any(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<arrow_array::UInt64Array>()
                .is_some_and(|h| h.values().iter().any(|&x| range.contains(x)))
        })
    }
}

/// Reads one shard, drops deleted and replaced rows, adds the upserts of its range, sorts
/// by key hash and writes it as a new shard with the same range.
async fn rewrite_shard(
    source: &SavepointReader,
    writer: &SavepointWriter,
    op: &OperatorDraft,
    st: &StateDraft,
    shard: &ShardEntry,
) -> Result<()> {
    let range = shard
        .hash_range
        .ok_or_else(|| Error::Internal("keyed shard without range".into()))?;
    let options = ReadOptions {
        hash_range: Some(range),
        ..Default::default()
    };
    let batches: Vec<RecordBatch> = source
        .read_state(&op.source_uid, &st.entry.name, options)
        .await?
        .try_collect()
        .await?;
    let mut kept = Vec::new();
    for batch in batches {
        let key = batch
            .column_by_name(columns::KEY)
            .ok_or_else(|| Error::Internal("no key column".into()))?;
        let mut mask = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            let mut k = Vec::new();
            encode_key(key.as_ref(), row, &mut k).map_err(|e| Error::Internal(e.to_string()))?;
            mask.push(
                !st.deleted_keys.contains(&k) && !st.upsert_ids.contains(&identity(&batch, row)?),
            );
        }
        let filtered = arrow_select::filter::filter_record_batch(&batch, &BooleanArray::from(mask))
            .map_err(|e| Error::Internal(e.to_string()))?;
        kept.push(filtered);
    }
    for upsert in &st.upserts {
        let hashes = upsert
            .column(0)
            .as_any()
            .downcast_ref::<arrow_array::UInt64Array>()
            .ok_or_else(|| Error::Internal("upsert without hashes".into()))?;
        let mask: BooleanArray = hashes
            .values()
            .iter()
            .map(|&h| Some(range.contains(h)))
            .collect();
        let part = arrow_select::filter::filter_record_batch(upsert, &mask)
            .map_err(|e| Error::Internal(e.to_string()))?;
        kept.push(part);
    }
    let mut out = writer.keyed_shard(&op.uid, &st.entry.name, range)?;
    if let Some(first) = kept.iter().find(|b| b.num_rows() > 0) {
        // Align column types to the first batch (file and input may name list items differently).
        let schema = first.schema();
        let aligned: Vec<RecordBatch> = kept
            .into_iter()
            .filter(|b| b.num_rows() > 0)
            .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| {
                Error::InvalidInput(format!(
                    "{}/{}: upsert rows do not fit the state: {e}",
                    op.uid, st.entry.name
                ))
            })?;
        let all = arrow_select::concat::concat_batches(&schema, &aligned)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let hashes = all
            .column(0)
            .as_any()
            .downcast_ref::<arrow_array::UInt64Array>()
            .ok_or_else(|| Error::Internal("no key_hash".into()))?;
        let mut order: Vec<u32> = (0..all.num_rows() as u32).collect();
        order.sort_by_key(|&i| hashes.value(i as usize));
        let sorted = arrow_select::take::take_record_batch(&all, &UInt32Array::from(order))
            .map_err(|e| Error::Internal(e.to_string()))?;
        out.write_with_hashes(sorted).await?;
    }
    out.finish().await?;
    Ok(())
}
