//! What an import keeps of a Flink savepoint so that it can be written back for the same
//! job: the `flink` member of the Rewind manifest's `extensions` (format 1.1), at the top,
//! on each operator and on each state. spec/FORMAT.md, "The `flink` extension", is the
//! contract; this is its one implementation.
//!
//! Every record names what it describes (the Rewind uid, state name and column types at
//! import). A tool that renames an operator, or migrates a state's type, carries the record
//! over unchanged; export then uses only the parts that still describe the savepoint and
//! generates the rest (an operator id from the new uid, serializers from the new types).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// The extension's name in the manifest.
pub(crate) const SYSTEM: &str = "flink";

/// The version of the records below.
pub(crate) const RECORD_VERSION: u32 = 1;

/// Bytes as standard base64 (RFC 4648, with padding) in JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Blob(pub Vec<u8>);

impl Serialize for Blob {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD
            .decode(s.as_bytes())
            .map(Blob)
            .map_err(serde::de::Error::custom)
    }
}

/// The whole savepoint: `_metadata`'s checkpoint id, master states and properties.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SavepointRecord {
    pub version: u32,
    pub metadata_version: i32,
    pub checkpoint_id: i64,
    /// The Java-serialized checkpoint properties that end `_metadata`.
    pub properties: Blob,
    /// Each master state as `_metadata` holds it (version, name, data).
    #[serde(default)]
    pub master_states: Vec<Blob>,
}

/// One operator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OperatorRecord {
    pub version: u32,
    /// The Rewind uid this record describes.
    pub rewind_uid: String,
    /// Flink's 16-byte operator id in hex.
    pub operator_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub max_parallelism: i32,
    /// The operator coordinator's state (e.g. a source's split enumerator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinator_state: Option<Blob>,
    /// The header of its operator-state stream: every list and broadcast state's
    /// serializers (`OperatorBackendSerializationProxy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_state_header: Option<Blob>,
    /// The key serializer snapshot of its keyed state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_serializer: Option<Blob>,
    /// Every subtask had finished (a bounded source that ended): restored as finished.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub finished: bool,
    /// The subtasks that had finished while others ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finished_subtasks: Vec<i32>,
}

/// One state: the Flink states it was imported from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StateRecord {
    pub version: u32,
    /// The Rewind state name and column types this record describes.
    pub rewind_name: String,
    pub types: Vec<Option<String>>,
    /// Flink's states: one, or a timer service's event- and processing-time queues.
    pub states: Vec<FlinkState>,
    /// `key_groups`: not a Flink state but each key's Flink key group, kept for keys whose
    /// Java `hashCode` Rewind cannot compute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl StateRecord {
    /// The types a record describes: key, namespace, user key and value type of `entry`.
    pub fn types_of(entry: &rewind_savepoint::format::StateEntry) -> Vec<Option<String>> {
        vec![
            entry.key_type.clone(),
            entry.namespace_type.clone(),
            entry.user_key_type.clone(),
            entry.value_type.clone(),
        ]
    }
}

/// One Flink state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FlinkState {
    pub name: String,
    /// Its `StateMetaInfoSnapshot` (keyed state: kind, serializers) as Flink wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Blob>,
    /// For a timer queue: `event_time` or `processing_time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Its position in the keyed header (state ids follow it).
    pub order: u32,
}

/// The record of `system` in `extensions`, when present and readable.
pub(crate) fn read<T: for<'de> Deserialize<'de>>(
    extensions: &rewind_savepoint::format::Extensions,
) -> Result<Option<T>, String> {
    match extensions.get(SYSTEM) {
        None => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| format!("its `flink` extension is unreadable: {e}")),
    }
}

/// A record as the JSON value stored in `extensions`.
pub(crate) fn value<T: Serialize>(record: &T) -> serde_json::Value {
    serde_json::to_value(record).unwrap_or(serde_json::Value::Null)
}
