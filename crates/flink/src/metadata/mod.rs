//! Flink's `_metadata` file, versions 3 to 7: operators, subtasks and their state handles.
//! One vocabulary for both directions: [`read`] parses bytes into these types and
//! [`write`] writes them back (no I/O in either, so both can be tested and fuzzed alone).
//! `crates/flink/LAYOUT.md`, section 2, describes the bytes.

mod read;
mod write;

use rewind_savepoint::format::Redistribution;

pub(crate) use read::parse;
pub(crate) use write::write;

#[cfg(test)]
mod tests;

/// The first four bytes of every Flink `_metadata` file.
pub const MAGIC: i32 = 0x4960_672D;

/// What precedes each master state in `_metadata`.
pub(crate) const MASTER_STATE_MAGIC: i32 = 0xC96B_1696_u32 as i32;

/// The type byte before each state handle (Flink's `MetadataV2V3SerializerBase` and its
/// successors), named once for the reader and the writer.
pub(crate) mod handle_type {
    /// No handle.
    pub const NULL: u8 = 0;
    /// `ByteStreamStateHandle`: inline bytes.
    pub const BYTE_STREAM: u8 = 1;
    /// `FileStateHandle`: a file by absolute path.
    pub const FILE_STREAM: u8 = 2;
    /// `KeyGroupsStateHandle` (full checkpoint).
    pub const KEY_GROUPS: u8 = 3;
    /// `OperatorStreamStateHandle`.
    pub const OPERATOR_STREAM: u8 = 4;
    /// `IncrementalRemoteKeyedStateHandle` (RocksDB files), before checkpointed sizes.
    pub const INCREMENTAL_KEY_GROUPS: u8 = 5;
    /// `RelativeFileStateHandle`: a file relative to `_metadata`'s directory.
    pub const RELATIVE_STREAM: u8 = 6;
    /// `KeyGroupsSavepointStateHandle` (canonical savepoint).
    pub const SAVEPOINT_KEY_GROUPS: u8 = 7;
    /// `ChangelogStateBackendHandle`.
    pub const CHANGELOG: u8 = 8;
    /// `InMemoryChangelogStateHandle`.
    pub const CHANGELOG_BYTES: u8 = 9;
    /// `ChangelogStateHandleStreamImpl`.
    pub const CHANGELOG_FILES: u8 = 10;
    /// `IncrementalRemoteKeyedStateHandle` with its checkpointed size.
    pub const INCREMENTAL_KEY_GROUPS_V2: u8 = 11;
    /// `KeyGroupsStateHandle` with a handle id.
    pub const KEY_GROUPS_WITH_ID: u8 = 12;
    /// `ChangelogStateHandleStreamImpl` with a storage id.
    pub const CHANGELOG_FILES_V2: u8 = 13;
    /// `ChangelogStateBackendHandle` with a materialization size.
    pub const CHANGELOG_V2: u8 = 14;
    /// `SegmentFileStateHandle` (file merging).
    pub const SEGMENT: u8 = 15;
    /// `EmptySegmentFileStateHandle`.
    pub const EMPTY_SEGMENT: u8 = 16;
    /// `FileMergingOperatorStreamStateHandle`.
    pub const MERGING_OPERATOR_STREAM: u8 = 17;
}

/// The lowest and highest `_metadata` versions read and written.
pub(crate) const VERSIONS: std::ops::RangeInclusive<i32> = 3..=7;
/// The version Flink 2.x writes (and 2.3 reads).
pub(crate) const FLINK_2_VERSION: i32 = 6;

/// A parsed `_metadata`.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    /// Metadata format version (3 to 7).
    pub version: i32,
    /// The checkpoint id.
    pub checkpoint_id: i64,
    /// Master (coordinator-wide) states.
    pub master_states: Vec<MasterState>,
    /// Every operator of the job, stateful or not.
    pub operators: Vec<Operator>,
    /// `CANONICAL` or `NATIVE` from the savepoint properties (version 4 and later).
    pub format_type: Option<String>,
    /// The checkpoint properties (Java-serialized) that end the file, as Flink wrote them.
    pub properties: Vec<u8>,
}

/// A master (coordinator-wide) state.
#[derive(Debug, Clone, PartialEq)]
pub struct MasterState {
    /// Its name.
    pub name: String,
    /// Its bytes (version, name and data) as Flink wrote them.
    pub bytes: Vec<u8>,
}

/// One operator.
#[derive(Debug, Clone, PartialEq)]
pub struct Operator {
    /// Its name (version 5 and later).
    pub name: Option<String>,
    /// Its uid (version 5 and later).
    pub uid: Option<String>,
    /// Its 16-byte id in hex (for a user uid: murmur3-128 of the uid).
    pub id: String,
    /// Parallelism.
    pub parallelism: i32,
    /// Max parallelism (the number of key groups).
    pub max_parallelism: i32,
    /// The operator coordinator's state (inline bytes).
    pub coordinator_state: Option<StreamHandle>,
    /// Every subtask had finished; no state.
    pub fully_finished: bool,
    /// Subtask states, in file order.
    pub subtasks: Vec<Subtask>,
}

/// One subtask's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Subtask {
    /// Subtask index.
    pub index: i32,
    /// The subtask had finished (no state).
    pub finished: bool,
    /// Managed operator (non-keyed) state.
    pub operator_state: Option<OperatorStateHandle>,
    /// Raw operator state.
    pub raw_operator_state: Option<OperatorStateHandle>,
    /// Managed keyed state.
    pub keyed_state: Option<KeyedHandle>,
    /// Raw keyed state.
    pub raw_keyed_state: Option<KeyedHandle>,
    /// Unaligned-checkpoint input channel state handles.
    pub input_channel_states: usize,
    /// Unaligned-checkpoint output channel state handles.
    pub output_channel_states: usize,
}

impl Operator {
    /// Whether user uid `uid` names this operator: the uid it records, or, when it records
    /// none (Flink 1.x writes ids only), Flink's hash of `uid` is its id.
    pub(crate) fn is_named_by(&self, uid: &str) -> bool {
        match &self.uid {
            Some(recorded) => recorded == uid,
            None => crate::placement::operator_id(uid) == self.id,
        }
    }
}

impl Subtask {
    /// A subtask with no state: `finished`, or one whose state is filled in later.
    pub(crate) fn without_state(index: i32, finished: bool) -> Subtask {
        Subtask {
            index,
            finished,
            operator_state: None,
            raw_operator_state: None,
            keyed_state: None,
            raw_keyed_state: None,
            input_channel_states: 0,
            output_channel_states: 0,
        }
    }
}

/// Where a stream of bytes is.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamHandle {
    /// Inline in `_metadata`; `name` is a label (often the absolute path the file would
    /// have had), never a file to open.
    Inline {
        /// The label.
        name: String,
        /// The bytes.
        data: Vec<u8>,
    },
    /// A file by absolute path or URI.
    File {
        /// The path as recorded.
        path: String,
        /// Its size.
        size: i64,
    },
    /// A file relative to the directory of `_metadata`.
    Relative {
        /// The relative path.
        path: String,
        /// Its size.
        size: i64,
    },
    /// A byte range of a shared physical file (file merging).
    Segment {
        /// The physical file.
        path: String,
        /// First byte.
        start: i64,
        /// Length.
        size: i64,
    },
    /// An empty segment.
    EmptySegment,
    /// A key-grouped stream used as a plain stream.
    KeyGroups(Box<KeyGroups>),
}

impl StreamHandle {
    /// Bytes it holds or points to.
    pub fn size(&self) -> i64 {
        match self {
            StreamHandle::Inline { data, .. } => data.len() as i64,
            StreamHandle::File { size, .. }
            | StreamHandle::Relative { size, .. }
            | StreamHandle::Segment { size, .. } => *size,
            StreamHandle::EmptySegment => 0,
            StreamHandle::KeyGroups(k) => k.delegate.size(),
        }
    }

    /// How `inspect` describes it.
    pub fn describe(&self) -> String {
        match self {
            StreamHandle::Inline { data, .. } => format!("inline ({} bytes)", data.len()),
            StreamHandle::File { path, .. } => format!("{path} (absolute)"),
            StreamHandle::Relative { path, .. } => path.clone(),
            StreamHandle::Segment { path, start, size } => {
                format!("{path} [{start}, +{size}] (absolute)")
            }
            StreamHandle::EmptySegment => "empty segment".into(),
            StreamHandle::KeyGroups(k) => k.delegate.describe(),
        }
    }
}

/// A stream of key groups: the offset of each key group of a range in `delegate`.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyGroups {
    /// The first key group.
    pub first: i32,
    /// One offset per key group of the range (0: no data).
    pub offsets: Vec<i64>,
    /// The stream.
    pub delegate: StreamHandle,
}

impl KeyGroups {
    /// The last key group of the range (`first - 1` when empty).
    pub fn last(&self) -> i32 {
        let n = i32::try_from(self.offsets.len()).unwrap_or(i32::MAX);
        self.first.saturating_add(n).saturating_sub(1)
    }
}

/// A subtask's keyed state.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyedHandle {
    /// A canonical savepoint's key groups (type 7).
    Savepoint(KeyGroups),
    /// A full checkpoint's (or heap native savepoint's) key groups (types 3, 12).
    Checkpoint(KeyGroups),
    /// RocksDB files: an incremental checkpoint or a native savepoint (types 5, 11).
    Incremental {
        /// Key-group range.
        key_groups: (i32, i32),
        /// The header stream.
        meta: StreamHandle,
        /// (RocksDB file name, where it is), shared then private.
        files: Vec<(String, StreamHandle)>,
    },
    /// The changelog state backend (types 8, 9, 10, 13, 14).
    Changelog {
        /// Key-group range.
        key_groups: (i32, i32),
    },
}

impl KeyedHandle {
    /// Its key-group range (first, last).
    pub fn key_groups(&self) -> (i32, i32) {
        match self {
            KeyedHandle::Savepoint(k) | KeyedHandle::Checkpoint(k) => (k.first, k.last()),
            KeyedHandle::Incremental { key_groups, .. } | KeyedHandle::Changelog { key_groups } => {
                *key_groups
            }
        }
    }
}

/// How operator list state is redistributed on restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    /// Elements dealt out (`SPLIT_DISTRIBUTE`).
    Split,
    /// Every subtask gets all.
    Union,
    /// Broadcast state (a map, the same on every subtask).
    Broadcast,
}

impl Distribution {
    /// Its byte in `_metadata` (`OperatorStateHandle.Mode`'s ordinal).
    pub(crate) fn code(self) -> u8 {
        match self {
            Distribution::Split => 0,
            Distribution::Union => 1,
            Distribution::Broadcast => 2,
        }
    }

    /// The mode of a byte in `_metadata`.
    pub(crate) fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Distribution::Split),
            1 => Some(Distribution::Union),
            2 => Some(Distribution::Broadcast),
            _ => None,
        }
    }

    /// Its name in Rewind's terms.
    pub fn as_str(self) -> &'static str {
        match self {
            Distribution::Split => "split",
            Distribution::Union => "union",
            Distribution::Broadcast => "broadcast",
        }
    }
}

impl From<Redistribution> for Distribution {
    fn from(mode: Redistribution) -> Self {
        match mode {
            Redistribution::Split => Distribution::Split,
            Redistribution::Union => Distribution::Union,
            Redistribution::Broadcast => Distribution::Broadcast,
        }
    }
}

impl From<Distribution> for Redistribution {
    fn from(mode: Distribution) -> Self {
        match mode {
            Distribution::Split => Redistribution::Split,
            Distribution::Union => Redistribution::Union,
            Distribution::Broadcast => Redistribution::Broadcast,
        }
    }
}

/// A subtask's operator state: named lists with the offset of each element.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorStateHandle {
    /// Every state of the stream.
    pub states: Vec<OperatorStateOffsets>,
    /// The stream.
    pub delegate: StreamHandle,
}

/// One operator state of a subtask's stream: where each of its elements starts.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorStateOffsets {
    /// The state's name.
    pub name: String,
    /// How its elements are redistributed on restore.
    pub distribution: Distribution,
    /// The offset of each element in the stream.
    pub offsets: Vec<i64>,
}
