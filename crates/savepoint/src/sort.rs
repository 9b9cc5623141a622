//! Sorting unsorted keyed rows into per-subtask shards (in memory; for small state).

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, UInt32Array, UInt64Array};
use arrow_select::concat::concat_batches;
use arrow_select::take::take_record_batch;
use rewind_format::{hash_keys, sort_by_hash, subtask_for_hash};

use crate::spec::StateSpec;
use crate::{Error, Result};

/// Concatenates `batches`, adds `key_hash`, sorts by it (stable, so rows of one key keep
/// their order) and cuts the result at the subtask boundaries of `parallelism`.
/// Entry `i` is `None` when subtask `i` gets no rows.
pub(crate) fn sort_and_split(
    uid: &str,
    spec: &StateSpec,
    batches: &[RecordBatch],
    parallelism: u32,
) -> Result<Vec<Option<RecordBatch>>> {
    let mut out = vec![None; parallelism as usize];
    let mut checked = Vec::with_capacity(batches.len());
    for batch in batches {
        let columns = spec.check_input(uid, batch)?;
        let fields: Vec<_> = spec
            .input_fields()
            .into_iter()
            .zip(&columns)
            .map(|(f, c)| f.with_data_type(c.data_type().clone()))
            .collect();
        checked.push(
            RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), columns)
                .map_err(|e| Error::InvalidInput(format!("{uid}/{}: {e}", spec.name())))?,
        );
    }
    let Some(first) = checked.first() else {
        return Ok(out);
    };
    let input = concat_batches(&first.schema(), &checked)
        .map_err(|e| Error::InvalidInput(format!("{uid}/{}: {e}", spec.name())))?;
    let key = input
        .column_by_name(crate::spec::columns::KEY)
        .ok_or_else(|| {
            Error::InvalidInput(format!("state {:?}: no \"key\" column", spec.name()))
        })?;
    let hashes = hash_keys(key.as_ref())
        .map_err(|e| Error::InvalidInput(format!("state {:?}: {e}", spec.name())))?;
    let mut order: Vec<(u64, u32)> = hashes.iter().zip(0u32..).map(|(&h, i)| (h, i)).collect();
    sort_by_hash(&mut order, |&(h, _)| h);
    let indices = UInt32Array::from_iter_values(order.iter().map(|&(_, i)| i));
    let sorted = take_record_batch(&input, &indices).map_err(|e| Error::Internal(e.to_string()))?;
    let sorted_hashes = UInt64Array::from_iter_values(order.iter().map(|&(h, _)| h));

    let mut columns = vec![Arc::new(sorted_hashes.clone()) as ArrayRef];
    let mut fields = vec![arrow_schema::Field::new(
        crate::spec::columns::KEY_HASH,
        arrow_schema::DataType::UInt64,
        false,
    )];
    for field in spec.input_fields() {
        let column = sorted.column_by_name(field.name()).ok_or_else(|| {
            Error::InvalidInput(format!(
                "state {:?}: no {:?} column",
                spec.name(),
                field.name()
            ))
        })?;
        fields.push(field.with_data_type(column.data_type().clone()));
        columns.push(column.clone());
    }
    let with_hash = RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), columns)
        .map_err(|e| Error::InvalidInput(format!("state {:?}: {e}", spec.name())))?;

    let mut start = 0usize;
    for (subtask, slot) in out.iter_mut().enumerate() {
        let end = start
            + sorted_hashes.values()[start..]
                .iter()
                .take_while(|&&h| subtask_for_hash(h, parallelism) as usize == subtask)
                .count();
        if end > start {
            *slot = Some(with_hash.slice(start, end - start));
        }
        start = end;
    }
    Ok(out)
}
