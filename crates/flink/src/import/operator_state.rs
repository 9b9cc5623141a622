//! Operator list and broadcast state of a Flink savepoint: each element's bytes as Flink's
//! serializer wrote them, per subtask, and the stream header that names the serializers.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::builder::BinaryBuilder;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};

use super::{ListState, rewind_name, unsupported};
use crate::bytes::Reader;
use crate::metadata::Operator;
use crate::{FlinkError, FlinkSavepoint};

/// Operator list and broadcast state, element by element, as binary: each element's
/// bytes run from its offset to the next offset in the stream. Also the stream's header
/// (the states' serializers): the longest any subtask wrote.
pub(super) async fn operator_lists(
    sp: &FlinkSavepoint,
    op: &Operator,
) -> Result<(Vec<ListState>, Option<Vec<u8>>), FlinkError> {
    let mut states: BTreeMap<String, ListState> = BTreeMap::new();
    let mut header: Option<Vec<u8>> = None;
    let parallelism = op.parallelism.max(1) as usize;
    for s in &op.subtasks {
        let Some(h) = &s.operator_state else { continue };
        let bytes = sp.read(&h.delegate).await?;
        let serializers = operator_serializers(&bytes);
        let mut all: Vec<i64> = h
            .states
            .iter()
            .flat_map(|(_, _, o)| o.iter().copied())
            .collect();
        all.sort_unstable();
        let end = all.first().map_or(bytes.len(), |&o| {
            usize::try_from(o).unwrap_or(0).min(bytes.len())
        });
        if header.as_ref().is_none_or(|h| h.len() < end) {
            header = Some(bytes[..end].to_vec());
        }
        for (name, mode, offsets) in &h.states {
            let entry = states.entry(name.clone()).or_insert_with(|| ListState {
                name: rewind_name(name),
                flink_name: name.clone(),
                mode: *mode,
                serializer: serializers
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| "unknown".into()),
                per_subtask: vec![empty_binary(); parallelism],
            });
            let mut elements = BinaryBuilder::with_capacity(offsets.len(), 0);
            for &o in offsets {
                let start = usize::try_from(o).unwrap_or(usize::MAX).min(bytes.len());
                let end = all.iter().find(|&&x| x > o).map_or(bytes.len(), |&x| {
                    usize::try_from(x).unwrap_or(bytes.len()).min(bytes.len())
                });
                elements.append_value(&bytes[start..end.max(start)]);
            }
            let values: ArrayRef = Arc::new(elements.finish());
            let batch = RecordBatch::try_new(
                Arc::new(Schema::new(vec![Field::new(
                    "value",
                    DataType::Binary,
                    true,
                )])),
                vec![values],
            )
            .map_err(|e| unsupported(sp, e.to_string()))?;
            if let Some(slot) = entry.per_subtask.get_mut(s.index as usize) {
                *slot = batch;
            }
        }
    }
    Ok((states.into_values().collect(), header))
}

fn empty_binary() -> RecordBatch {
    RecordBatch::new_empty(Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Binary,
        true,
    )])))
}

/// The element serializer class of each operator state, from the stream's header.
fn operator_serializers(bytes: &[u8]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut r = Reader::new(bytes);
    let parse =
        |r: &mut Reader<'_>, out: &mut BTreeMap<String, String>| -> crate::bytes::Parse<()> {
            let version = r.i32()?;
            if version >= 6 {
                r.bool()?;
            }
            for _ in 0..2 {
                let n = r.i16()?;
                for _ in 0..n.max(0) {
                    let name = r.utf()?;
                    r.i32()?;
                    let options = r.count(4, "options")?;
                    for _ in 0..options {
                        r.utf()?;
                        r.utf()?;
                    }
                    let serializers = r.count(6, "serializers")?;
                    for _ in 0..serializers {
                        let key = r.utf()?;
                        let s = crate::serializers::snapshot_proxy(r)?;
                        if key == "VALUE_SERIALIZER" {
                            out.insert(name.clone(), s.class);
                        }
                    }
                }
            }
            Ok(())
        };
    let _ = parse(&mut r, &mut out);
    out
}
