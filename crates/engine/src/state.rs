//! Keyed value state: an in-memory map with copy-on-write snapshots, written to and read
//! from savepoints with real Arrow types (a struct value is a struct column).

use std::marker::PhantomData;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{Field, FieldRef, Schema};
use rewind_savepoint::StateSpec;
use rewind_savepoint::format::HashRange;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_arrow::schema::{SchemaLike, TracingOptions};

use crate::key::Key;
use crate::{EngineError, Result};

/// A state value type: anything serde can write to Arrow.
pub trait StateValue: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> StateValue for T {}

#[derive(Serialize, Deserialize)]
struct ValueRow<V> {
    value: V,
}

/// The Arrow field of a value type, traced from the type itself.
pub(crate) fn value_field<V: StateValue>() -> Result<FieldRef> {
    let options = TracingOptions::default()
        .strings_as_large_utf8(false)
        .allow_null_fields(true);
    let fields = Vec::<FieldRef>::from_type::<ValueRow<V>>(options)
        .map_err(|e| EngineError::InvalidJob(format!("state value type: {e}")))?;
    fields
        .into_iter()
        .next()
        .ok_or_else(|| EngineError::Internal("no value field".into()))
}

/// The value state of one keyed operator subtask.
pub(crate) struct ValueTable<K: Key, V: StateValue> {
    pub(crate) map: imbl::HashMap<K, V>,
}

impl<K: Key, V: StateValue> ValueTable<K, V> {
    pub(crate) fn new() -> Self {
        ValueTable {
            map: imbl::HashMap::new(),
        }
    }

    /// A snapshot: O(1) now (the map is persistent), converted to Arrow later, off the
    /// processing thread.
    pub(crate) fn snapshot(&self, state: &str) -> Box<dyn StateSnapshot> {
        Box::new(ValueSnapshot::<K, V> {
            state: state.to_string(),
            map: self.map.clone(),
            _v: PhantomData,
        })
    }

    /// Loads the rows of a savepoint state (columns `key` and `value`).
    pub(crate) fn restore(&mut self, batch: &RecordBatch) -> Result<()> {
        let key = batch
            .column_by_name("key")
            .ok_or_else(|| EngineError::Restore("state without key column".into()))?;
        let keys = K::from_array(key.as_ref()).ok_or_else(|| {
            EngineError::Restore(format!(
                "state keys are {}, the job's keys are {}",
                key.data_type(),
                K::data_type()
            ))
        })?;
        let value = batch
            .column_by_name("value")
            .ok_or_else(|| EngineError::Restore("state without value column".into()))?;
        let expected = value_field::<V>()?;
        if !rewind_savepoint::format::same_type(value.data_type(), expected.data_type()) {
            return Err(EngineError::Restore(format!(
                "state value type changed: the savepoint has {}, the job has {} (schema evolution is not supported yet)",
                rewind_savepoint::format::type_name(value.data_type())
                    .unwrap_or_else(|_| value.data_type().to_string()),
                rewind_savepoint::format::type_name(expected.data_type()).unwrap_or_default()
            )));
        }
        let only_value = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(
                "value",
                value.data_type().clone(),
                true,
            )])),
            vec![value.clone()],
        )
        .map_err(|e| EngineError::Restore(e.to_string()))?;
        let rows: Vec<ValueRow<V>> = serde_arrow::from_record_batch(&only_value)
            .map_err(|e| EngineError::Restore(e.to_string()))?;
        for (k, row) in keys.into_iter().zip(rows) {
            self.map.insert(k, row.value);
        }
        Ok(())
    }
}

/// State captured at a barrier, converted to Arrow when the checkpoint is written.
pub(crate) trait StateSnapshot: Send {
    fn state(&self) -> &str;
    fn spec(&self) -> Result<StateSpec>;
    /// `(key, value)` rows sorted by key hash, all inside `range`.
    fn to_batch(&self, range: HashRange) -> Result<RecordBatch>;
}

struct ValueSnapshot<K: Key, V: StateValue> {
    state: String,
    map: imbl::HashMap<K, V>,
    _v: PhantomData<V>,
}

impl<K: Key, V: StateValue> StateSnapshot for ValueSnapshot<K, V> {
    fn state(&self) -> &str {
        &self.state
    }

    fn spec(&self) -> Result<StateSpec> {
        Ok(StateSpec::value(
            &self.state,
            K::data_type(),
            value_field::<V>()?.data_type().clone(),
        ))
    }

    fn to_batch(&self, range: HashRange) -> Result<RecordBatch> {
        let mut rows: Vec<(u64, &K, &V)> =
            self.map.iter().map(|(k, v)| (k.key_hash(), k, v)).collect();
        if let Some((h, k, _)) = rows.iter().find(|(h, _, _)| !range.contains(*h)) {
            return Err(EngineError::Internal(format!(
                "key {k:?} (hash {h:016x}) in the wrong subtask"
            )));
        }
        rows.sort_by_key(|(h, _, _)| *h);
        let keys: Vec<K> = rows.iter().map(|(_, k, _)| (*k).clone()).collect();
        let values: Vec<ValueRow<&V>> = rows
            .iter()
            .map(|(_, _, v)| ValueRow { value: *v })
            .collect();
        let field = value_field::<V>()?;
        let value_batch = serde_arrow::to_record_batch(std::slice::from_ref(&field), &values)
            .map_err(|e| EngineError::Internal(format!("state {}: {e}", self.state)))?;
        let schema = Schema::new(vec![
            Field::new("key", K::data_type(), false),
            field.as_ref().clone(),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![K::to_array(&keys), value_batch.column(0).clone()],
        )
        .map_err(|e| EngineError::Internal(e.to_string()))
    }
}
