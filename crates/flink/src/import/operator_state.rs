//! Operator list and broadcast state of a Flink savepoint, imported as binary elements
//! per subtask, with the stream header that names the serializers.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::builder::BinaryBuilder;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};

use super::{ListState, rewind_name, unsupported};
use crate::error::FlinkError;
use crate::metadata::Operator;
use crate::operator_state;
use crate::savepoint::FlinkSavepoint;

/// Operator list and broadcast state, element by element, as binary. Also the stream's
/// header (the states' serializers): the longest any subtask wrote.
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
        let serializers = operator_state::serializers(&bytes);
        let read = operator_state::elements(&bytes, h);
        if header.as_ref().is_none_or(|h| h.len() < read.header.len()) {
            header = Some(read.header.to_vec());
        }
        for (state, elements) in h.states.iter().zip(read.states) {
            let entry = states
                .entry(state.name.clone())
                .or_insert_with(|| ListState {
                    name: rewind_name(&state.name),
                    flink_name: state.name.clone(),
                    mode: state.distribution,
                    serializer: serializers
                        .get(&state.name)
                        .cloned()
                        .unwrap_or_else(|| "unknown".into()),
                    per_subtask: vec![empty_binary(); parallelism],
                });
            let mut values = BinaryBuilder::with_capacity(elements.len(), 0);
            for element in elements {
                values.append_value(element);
            }
            let values: ArrayRef = Arc::new(values.finish());
            let batch = RecordBatch::try_new(binary_schema(), vec![values])
                .map_err(|e| unsupported(sp, e.to_string()))?;
            if let Some(slot) = entry.per_subtask.get_mut(s.index as usize) {
                *slot = batch;
            }
        }
    }
    Ok((states.into_values().collect(), header))
}

fn binary_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Binary,
        true,
    )]))
}

fn empty_binary() -> RecordBatch {
    RecordBatch::new_empty(binary_schema())
}
