//! What a writer declares about a state, and the Arrow schema of its shards.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use rewind_format::{
    Extensions, Redistribution, StateEntry, StateKind, is_key_type, list_of, same_type, type_name,
};

use crate::{Error, Result};

/// Column names of state shards (spec: "Shard schemas").
pub mod columns {
    /// The 64-bit key hash, first column of every keyed shard.
    pub const KEY_HASH: &str = "key_hash";
    /// The key.
    pub const KEY: &str = "key";
    /// The namespace (e.g. a window), for namespaced state.
    pub const NAMESPACE: &str = "namespace";
    /// The map key of map state.
    pub const USER_KEY: &str = "user_key";
    /// The value (a list for list state, an element for operator list state).
    pub const VALUE: &str = "value";
    /// Timer domain: `event_time` or `processing_time`.
    pub const TIMER_DOMAIN: &str = "domain";
    /// Timer timestamp, milliseconds since the Unix epoch.
    pub const TIMER_TIMESTAMP: &str = "timestamp";
}

/// A state's declaration: its name, kind and column types.
///
/// ```
/// use arrow_schema::DataType;
/// use rewind_savepoint::StateSpec;
/// let count = StateSpec::value("count", DataType::Int64, DataType::UInt64);
/// assert_eq!(count.name(), "count");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StateSpec {
    name: String,
    kind: StateKind,
    key_type: Option<DataType>,
    namespace_type: Option<DataType>,
    user_key_type: Option<DataType>,
    value_type: Option<DataType>,
    redistribution: Option<Redistribution>,
    extensions: Extensions,
}

impl StateSpec {
    fn keyed(name: &str, kind: StateKind, key: DataType) -> Self {
        StateSpec {
            name: name.to_string(),
            kind,
            key_type: Some(key),
            namespace_type: None,
            user_key_type: None,
            value_type: None,
            redistribution: None,
            extensions: Extensions::new(),
        }
    }

    /// Keyed value state: one `value` per key.
    pub fn value(name: &str, key: DataType, value: DataType) -> Self {
        StateSpec {
            value_type: Some(value),
            ..Self::keyed(name, StateKind::Value, key)
        }
    }

    /// Keyed list state: one `value: list<item>` per key.
    pub fn list(name: &str, key: DataType, item: DataType) -> Self {
        StateSpec {
            value_type: Some(list_of(item)),
            ..Self::keyed(name, StateKind::List, key)
        }
    }

    /// Keyed map state: one row per (key, `user_key`) with its `value`.
    pub fn map(name: &str, key: DataType, user_key: DataType, value: DataType) -> Self {
        StateSpec {
            user_key_type: Some(user_key),
            value_type: Some(value),
            ..Self::keyed(name, StateKind::Map, key)
        }
    }

    /// Timers of a keyed operator: one row per timer (`domain`, `timestamp`).
    pub fn timers(name: &str, key: DataType) -> Self {
        Self::keyed(name, StateKind::Timers, key)
    }

    /// Operator (non-keyed) list state with its redistribution mode.
    pub fn operator_list(name: &str, element: DataType, mode: Redistribution) -> Self {
        StateSpec {
            name: name.to_string(),
            kind: StateKind::OperatorList,
            key_type: None,
            namespace_type: None,
            user_key_type: None,
            value_type: Some(element),
            redistribution: Some(mode),
            extensions: Extensions::new(),
        }
    }

    /// The same keyed state, namespaced (e.g. per window) by a `namespace` column.
    pub fn with_namespace(mut self, namespace: DataType) -> Self {
        self.namespace_type = Some(namespace);
        self
    }

    /// The same state carrying what another system needs to know about it (format 1.1's
    /// `extensions`, e.g. Flink's serializers), by system name.
    pub fn with_extension(mut self, system: &str, value: serde_json::Value) -> Self {
        self.extensions.insert(system.to_string(), value);
        self
    }

    /// What other systems recorded about this state.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// The same state without what other systems recorded (format 1.0 has no extensions).
    pub(crate) fn without_extensions(mut self) -> Self {
        self.extensions.clear();
        self
    }

    /// The same state with another value type (a migration).
    pub(crate) fn with_value_type(mut self, value: DataType) -> Self {
        self.value_type = Some(value);
        self
    }

    /// State name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// State kind.
    pub fn kind(&self) -> StateKind {
        self.kind
    }

    /// The key type of keyed state.
    pub(crate) fn key_type(&self) -> Option<&DataType> {
        self.key_type.as_ref()
    }

    /// The manifest entry for this state, without shards. Checks names and types.
    pub fn to_entry(&self) -> Result<StateEntry> {
        let name = |t: &Option<DataType>| -> Result<Option<String>> {
            t.as_ref()
                .map(|t| {
                    type_name(t)
                        .map_err(|e| Error::InvalidInput(format!("state {:?}: {e}", self.name)))
                })
                .transpose()
        };
        if let Some(n) = &self.namespace_type {
            if !is_key_type(n) {
                return Err(Error::InvalidInput(format!(
                    "state {:?}: namespace type {n} cannot be hashed (use integers, strings, binary, dates, timestamps or structs of those)",
                    self.name
                )));
            }
        }
        if let Some(k) = &self.key_type {
            if !is_key_type(k) {
                return Err(Error::InvalidInput(format!(
                    "state {:?}: key type {k} cannot be hashed (use integers, strings, binary, dates, timestamps or structs of those)",
                    self.name
                )));
            }
        }
        Ok(StateEntry {
            name: self.name.clone(),
            kind: self.kind,
            key_type: name(&self.key_type)?,
            namespace_type: name(&self.namespace_type)?,
            user_key_type: name(&self.user_key_type)?,
            value_type: name(&self.value_type)?,
            redistribution: self.redistribution,
            shards: Vec::new(),
            extensions: self.extensions.clone(),
        })
    }

    /// The columns a writer is given (everything but `key_hash`), in file order.
    pub(crate) fn input_fields(&self) -> Vec<Field> {
        let mut fields = Vec::new();
        if let Some(k) = &self.key_type {
            fields.push(Field::new(columns::KEY, k.clone(), false));
        }
        if let Some(n) = &self.namespace_type {
            fields.push(Field::new(columns::NAMESPACE, n.clone(), false));
        }
        if let Some(u) = &self.user_key_type {
            fields.push(Field::new(columns::USER_KEY, u.clone(), false));
        }
        if self.kind == StateKind::Timers {
            fields.push(Field::new(columns::TIMER_DOMAIN, DataType::Utf8, false));
            fields.push(Field::new(columns::TIMER_TIMESTAMP, DataType::Int64, false));
        }
        if let Some(v) = &self.value_type {
            fields.push(Field::new(columns::VALUE, v.clone(), true));
        }
        fields
    }

    /// The columns writers and edits take for this state (everything but `key_hash`).
    pub fn input_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(self.input_fields()))
    }

    /// The canonical schema of a shard of this state.
    pub(crate) fn shard_schema(&self) -> SchemaRef {
        let mut fields = Vec::new();
        if self.kind.is_keyed() {
            fields.push(Field::new(columns::KEY_HASH, DataType::UInt64, false));
        }
        fields.extend(self.input_fields());
        Arc::new(Schema::new(fields))
    }

    /// The spec of a state as the manifest records it.
    pub fn from_entry(entry: &StateEntry) -> Result<StateSpec> {
        let parse = |t: &Option<String>| -> Result<Option<DataType>> {
            t.as_deref()
                .map(|t| rewind_format::parse_type(t).map_err(|e| Error::Internal(e.to_string())))
                .transpose()
        };
        Ok(StateSpec {
            name: entry.name.clone(),
            kind: entry.kind,
            key_type: parse(&entry.key_type)?,
            namespace_type: parse(&entry.namespace_type)?,
            user_key_type: parse(&entry.user_key_type)?,
            value_type: parse(&entry.value_type)?,
            redistribution: entry.redistribution,
            extensions: entry.extensions.clone(),
        })
    }

    /// The batch's columns in file order (without `key_hash`), after checking names, types
    /// and nulls against the declaration.
    pub(crate) fn check_input(&self, uid: &str, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
        let fail = |m: String| Error::InvalidInput(format!("{uid}/{}: {m}", self.name));
        let expected = self.input_fields();
        if batch.num_columns() != expected.len() {
            let names: Vec<_> = expected.iter().map(|f| f.name().as_str()).collect();
            return Err(fail(format!(
                "expected columns {names:?}, got {} columns",
                batch.num_columns()
            )));
        }
        let mut out = Vec::with_capacity(expected.len());
        for field in &expected {
            let column = batch
                .column_by_name(field.name())
                .ok_or_else(|| fail(format!("missing column {:?}", field.name())))?;
            if !same_type(column.data_type(), field.data_type()) {
                return Err(fail(format!(
                    "column {:?} has type {}, the state declares {}",
                    field.name(),
                    column.data_type(),
                    field.data_type()
                )));
            }
            if !field.is_nullable() && column.null_count() > 0 {
                return Err(fail(format!("column {:?} has nulls", field.name())));
            }
            out.push(column.clone());
        }
        Ok(out)
    }
}
