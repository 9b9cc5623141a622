//! State values and their Arrow columns: the `value` field traced from a value type, and
//! conversions both ways (common primitive types directly, the rest through serde_arrow).

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, FieldRef, Schema};
use serde::{Deserialize, Serialize};
use serde_arrow::schema::{SchemaLike, TracingOptions};

use crate::keyed::StateValue;
use crate::{EngineError, Result};

#[derive(Serialize, Deserialize)]
struct Row<V> {
    value: V,
}

/// The Arrow field `value` of a value type, traced from the type itself.
pub(crate) fn value_field<V: StateValue>() -> Result<FieldRef> {
    let options = TracingOptions::default()
        .strings_as_large_utf8(false)
        .sequence_as_large_list(false)
        .allow_null_fields(true);
    let fields = Vec::<FieldRef>::from_type::<Row<V>>(options)
        .map_err(|e| EngineError::InvalidJob(format!("state value type: {e}")))?;
    fields
        .into_iter()
        .next()
        .ok_or_else(|| EngineError::Internal("no value field".into()))
}

/// Values to an Arrow array of [`value_field`]'s type.
pub(crate) fn values_to_array<V: StateValue>(values: &[&V]) -> Result<ArrayRef> {
    if let Some(array) = primitive_array(values) {
        return Ok(array);
    }
    let field = value_field::<V>()?;
    if let Some(array) = crate::keyed::flat_struct::to_array(values, &field) {
        return Ok(array);
    }
    let rows: Vec<Row<&V>> = values.iter().map(|v| Row { value: *v }).collect();
    let batch = serde_arrow::to_record_batch(std::slice::from_ref(&field), &rows)
        .map_err(|e| EngineError::Internal(format!("state value to Arrow: {e}")))?;
    Ok(batch.column(0).clone())
}

/// The common primitive value types, built directly (serde_arrow costs about as much as
/// the rest of a checkpoint for them). Same types as `value_field` traces.
fn primitive_array<V: 'static>(values: &[&V]) -> Option<ArrayRef> {
    use std::any::Any;
    fn collect<V: 'static, T: Copy + 'static>(values: &[&V]) -> Option<Vec<T>> {
        // Sized up front: collecting into `Option<Vec<_>>` grows the vector by doubling
        // (a seventh of a checkpoint's encoding time, most of it page faults).
        let mut out = Vec::with_capacity(values.len());
        for v in values {
            out.push(*(*v as &dyn Any).downcast_ref::<T>()?);
        }
        Some(out)
    }
    let id = std::any::TypeId::of::<V>();
    use std::any::TypeId;
    Some(if id == TypeId::of::<i64>() {
        Arc::new(Int64Array::from(collect::<V, i64>(values)?))
    } else if id == TypeId::of::<u64>() {
        Arc::new(arrow_array::UInt64Array::from(collect::<V, u64>(values)?))
    } else if id == TypeId::of::<i32>() {
        Arc::new(arrow_array::Int32Array::from(collect::<V, i32>(values)?))
    } else if id == TypeId::of::<f64>() {
        Arc::new(arrow_array::Float64Array::from(collect::<V, f64>(values)?))
    } else {
        return None;
    })
}

/// The values of a column of a common primitive type without nulls, read directly (as
/// [`primitive_array`] writes them) instead of deserialized row by row by serde_arrow.
/// `None` for other types or a column with nulls: serde_arrow reads or refuses those.
fn primitive_values<V: 'static>(array: &ArrayRef) -> Option<Vec<V>> {
    fn read<V: 'static, T: arrow_array::ArrowPrimitiveType>(array: &ArrayRef) -> Option<Vec<V>> {
        let array = array.as_primitive_opt::<T>()?;
        if array.null_count() > 0 {
            return None;
        }
        // `V` is `T::Native` here.
        let values: Box<dyn std::any::Any> = Box::new(array.values().to_vec());
        values.downcast::<Vec<V>>().ok().map(|v| *v)
    }
    use arrow_array::types::{Float64Type, Int32Type, Int64Type, UInt64Type};
    use std::any::TypeId;
    let id = TypeId::of::<V>();
    if id == TypeId::of::<i64>() {
        read::<V, Int64Type>(array)
    } else if id == TypeId::of::<u64>() {
        read::<V, UInt64Type>(array)
    } else if id == TypeId::of::<i32>() {
        read::<V, Int32Type>(array)
    } else if id == TypeId::of::<f64>() {
        read::<V, Float64Type>(array)
    } else {
        None
    }
}

/// An Arrow array back to values; the array's type must be `V`'s (see [`check_type`]).
pub(crate) fn values_from_array<V: StateValue>(array: &ArrayRef) -> Result<Vec<V>> {
    if let Some(values) = primitive_values(array) {
        return Ok(values);
    }
    let schema = Schema::new(vec![Field::new("value", array.data_type().clone(), true)]);
    let batch = RecordBatch::try_new(Arc::new(schema), vec![array.clone()])
        .map_err(|e| EngineError::Restore(e.to_string()))?;
    let rows: Vec<Row<V>> =
        serde_arrow::from_record_batch(&batch).map_err(|e| EngineError::Restore(e.to_string()))?;
    Ok(rows.into_iter().map(|r| r.value).collect())
}

/// The stored column adapted to the job's type where the change is safe (see
/// `evolve`); otherwise a restore error naming the field.
pub(crate) fn evolve_column(
    column: &str,
    stored: &ArrayRef,
    expected: &DataType,
) -> Result<ArrayRef> {
    crate::keyed::evolve::evolve(column, stored, expected).map_err(|m| {
        EngineError::Restore(format!(
            "state type changed at {m}; this change cannot be applied automatically (convert the savepoint with `rewind migrate`)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use arrow_array::UInt64Array;

    use super::*;

    /// Primitive values read back directly equal what was written; a column with a null
    /// takes serde_arrow's path, which refuses it for a value that cannot be null.
    #[test]
    fn primitive_values_round_trip_and_nulls_are_refused() {
        fn round_trip<V: StateValue + PartialEq + std::fmt::Debug>(values: Vec<V>) {
            let refs: Vec<&V> = values.iter().collect();
            let array = values_to_array(&refs).unwrap();
            assert_eq!(values_from_array::<V>(&array).unwrap(), values);
        }
        round_trip(vec![1i64, -5, i64::MAX]);
        round_trip(vec![1u64, 0, u64::MAX]);
        round_trip(vec![7i32, i32::MIN]);
        round_trip(vec![1.5f64, -0.0]);
        round_trip(vec![Some(3u64), None]);
        let with_null: ArrayRef = Arc::new(UInt64Array::from(vec![Some(1), None]));
        assert!(values_from_array::<u64>(&with_null).is_err());
    }
}
