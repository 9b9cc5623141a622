//! A subtask's keyed state in Flink's canonical savepoint format
//! (`KeyedBackendSerializationProxy` header, then the entries of each key group), read
//! into Arrow columns ([`read`]) and written from them ([`write`]). `LAYOUT.md`, sections
//! 3 and 5, describes the bytes.

mod read;
mod write;

pub(crate) use read::{StateColumns, Target, decompress_key_groups, entries, header, state_meta};
pub(crate) use write::{
    Buckets, EntryKind, Layout, StateEncoding, add_batch, header_bytes, kept_groups,
    state_meta_bytes,
};

use crate::snapshots::Snapshot;

/// The header version read and written (Flink 1.17 and later write 6).
pub(crate) const HEADER_VERSION: i32 = 6;

/// Backend state types of a `StateMetaInfoSnapshot`: key-value state, and the priority
/// queue of timers.
pub(crate) const KEY_VALUE: i32 = 0;
pub(crate) const PRIORITY_QUEUE: i32 = 3;

/// Set in the first byte of a key group's last entry of a state: the next state id (or
/// [`END_OF_KEY_GROUP`]) follows.
pub(crate) const LAST_ENTRY_FLAG: u8 = 0x80;
/// Where a state id would be: the key group has no more states.
pub(crate) const END_OF_KEY_GROUP: u16 = 0xFFFF;

/// What kind of state a header entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Value,
    List,
    Map,
    Timers,
}

/// One state of the header.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StateMeta {
    pub name: String,
    /// `KEYED_STATE_TYPE` (VALUE, LIST, MAP, AGGREGATING, ...) or PRIORITY_QUEUE.
    pub flink_kind: String,
    pub kind: Option<Kind>,
    pub namespace: Option<Snapshot>,
    pub value: Option<Snapshot>,
    /// The entry's bytes as Flink wrote them (a `StateMetaInfoSnapshot`), for export.
    pub raw: Vec<u8>,
}

/// The keyed-state header (KeyedBackendSerializationProxy).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Header {
    pub compression: bool,
    pub key: Snapshot,
    /// The key serializer's snapshot as Flink wrote it, for export.
    pub key_raw: Vec<u8>,
    pub states: Vec<StateMeta>,
}
