//! Flink's `_metadata` file, versions 3 to 7: operators, subtasks and their state handles.
//! Parsed from bytes (no I/O), so it can be tested and fuzzed alone.

use crate::bytes::{Parse, Reader};

/// The first four bytes of every Flink `_metadata` file.
pub const MAGIC: i32 = 0x4960_672D;

/// What precedes each master state in `_metadata`.
pub(crate) const MASTER_STATE_MAGIC: i32 = 0xC96B_1696_u32 as i32;

/// A parsed `_metadata`.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    /// Metadata format version (3 to 7).
    pub version: i32,
    /// The checkpoint id.
    pub checkpoint_id: i64,
    /// Master (coordinator-wide) states, by name and size.
    pub master_states: Vec<(String, usize)>,
    /// Every operator of the job, stateful or not.
    pub operators: Vec<Operator>,
    /// `CANONICAL` or `NATIVE` from the savepoint properties (version 4 and later).
    pub format_type: Option<String>,
    /// Each master state's bytes (version, name and data) as Flink wrote them.
    pub master_state_bytes: Vec<Vec<u8>>,
    /// The checkpoint properties (Java-serialized) that end the file, as Flink wrote them.
    pub properties: Vec<u8>,
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
    /// Unaligned-checkpoint channel state handles (input, output).
    pub channel_states: (usize, usize),
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
    /// Its name in Rewind's terms.
    pub fn as_str(self) -> &'static str {
        match self {
            Distribution::Split => "split",
            Distribution::Union => "union",
            Distribution::Broadcast => "broadcast",
        }
    }
}

/// A subtask's operator state: named lists with the offset of each element.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorStateHandle {
    /// (name, mode, element offsets).
    pub states: Vec<(String, Distribution, Vec<i64>)>,
    /// The stream.
    pub delegate: StreamHandle,
}

/// Parses `_metadata`; `Err` says where and why.
pub(crate) fn parse(bytes: &[u8]) -> Parse<Metadata> {
    let mut r = Reader::new(bytes);
    let magic = r.i32()?;
    if magic != MAGIC {
        return r.fail(format!("not a Flink _metadata file (magic {magic:#010x})"));
    }
    let version = r.i32()?;
    if !(3..=7).contains(&version) {
        return r.fail(format!("unsupported Flink metadata version {version}"));
    }
    let checkpoint_id = r.i64()?;
    if checkpoint_id < 0 {
        return r.fail(format!("negative checkpoint id {checkpoint_id}"));
    }
    let masters = r.count(8, "master states")?;
    let mut master_states = Vec::new();
    let mut master_state_bytes = Vec::new();
    for _ in 0..masters {
        if r.i32()? != MASTER_STATE_MAGIC {
            return r.fail("bad master state magic");
        }
        let n = r.count(1, "master state length")?;
        let raw = r.bytes(n)?;
        master_state_bytes.push(raw.to_vec());
        let mut inner = Reader::new(raw);
        let _version = inner.i32()?;
        let name = inner.utf()?;
        master_states.push((name, n));
    }
    let n_ops = r.count(1, "operators")?;
    let mut operators = Vec::new();
    for _ in 0..n_ops {
        operators.push(operator(&mut r, version)?);
    }
    let format_type = if version >= 4 {
        // r stays at the start of the properties.
        properties_format(&bytes[r.pos()..])
    } else {
        None
    };
    Ok(Metadata {
        version,
        checkpoint_id,
        master_states,
        operators,
        format_type,
        master_state_bytes,
        properties: bytes[r.pos()..].to_vec(),
    })
}

/// The savepoint format from the Java-serialized properties that end the file: the enum
/// constant's name is stored as a plain string.
fn properties_format(tail: &[u8]) -> Option<String> {
    let has = |needle: &[u8]| tail.windows(needle.len()).any(|w| w == needle);
    if has(b"CANONICAL") {
        Some("CANONICAL".into())
    } else if has(b"NATIVE") {
        Some("NATIVE".into())
    } else {
        None
    }
}

fn optional_utf(r: &mut Reader<'_>) -> Parse<Option<String>> {
    let s = r.utf()?;
    Ok((!s.is_empty()).then_some(s))
}

fn operator(r: &mut Reader<'_>, version: i32) -> Parse<Operator> {
    let (name, uid) = if version >= 5 {
        (optional_utf(r)?, optional_utf(r)?)
    } else {
        (None, None)
    };
    let lower = r.i64()?;
    let upper = r.i64()?;
    let id = format!("{:016x}{:016x}", lower as u64, upper as u64);
    let parallelism = r.i32()?;
    let max_parallelism = r.i32()?;
    if parallelism < 0 || max_parallelism < 0 {
        return r.fail(format!("operator {id}: negative parallelism"));
    }
    let coordinator_state = stream_handle(r)?;
    let n = r.i32()?;
    let mut op = Operator {
        name,
        uid,
        id,
        parallelism,
        max_parallelism,
        coordinator_state,
        fully_finished: n == -1,
        subtasks: Vec::new(),
    };
    if n == -1 {
        return Ok(op);
    }
    if n < 0 || n as usize > r.remaining() {
        return r.fail(format!("bad subtask count {n}"));
    }
    for _ in 0..n {
        let index = r.i32()?;
        if index < 0 {
            op.subtasks.push(Subtask {
                index: -(index + 1),
                finished: true,
                operator_state: None,
                raw_operator_state: None,
                keyed_state: None,
                raw_keyed_state: None,
                channel_states: (0, 0),
            });
            continue;
        }
        op.subtasks.push(subtask(r, index, version)?);
    }
    Ok(op)
}

fn subtask(r: &mut Reader<'_>, index: i32, version: i32) -> Parse<Subtask> {
    let operator_state = match r.i32()? {
        0 => None,
        _ => operator_handle(r)?,
    };
    let raw_operator_state = match r.i32()? {
        0 => None,
        _ => operator_handle(r)?,
    };
    let keyed_state = keyed_handle(r)?;
    let raw_keyed_state = keyed_handle(r)?;
    let inputs = channel_handles(r, version)?;
    let outputs = channel_handles(r, version)?;
    if version >= 7 && r.bool()? {
        r.i64()?;
    }
    Ok(Subtask {
        index,
        finished: false,
        operator_state,
        raw_operator_state,
        keyed_state,
        raw_keyed_state,
        channel_states: (inputs, outputs),
    })
}

fn channel_handles(r: &mut Reader<'_>, version: i32) -> Parse<usize> {
    let n = r.count(1, "channel state handles")?;
    for _ in 0..n {
        let merged = if version >= 6 {
            match r.u8()? {
                1 | 2 => false,
                3 | 4 => true,
                t => return r.fail(format!("unknown channel state handle type {t}")),
            }
        } else {
            false
        };
        r.i32()?; // subtask
        if merged {
            r.i64()?;
            stream_handle(r)?;
            let n = r.count(1, "channel offsets")?;
            r.bytes(n)?;
        } else {
            r.i32()?;
            r.i32()?;
            let offsets = r.count(8, "channel offsets")?;
            r.bytes(offsets * 8)?;
            r.i64()?;
            stream_handle(r)?;
        }
    }
    Ok(n)
}

fn stream_handle(r: &mut Reader<'_>) -> Parse<Option<StreamHandle>> {
    let t = r.u8()?;
    Ok(Some(match t {
        0 => return Ok(None),
        1 => {
            let name = r.utf()?;
            let n = r.count(1, "inline state length")?;
            StreamHandle::Inline {
                name,
                data: r.bytes(n)?.to_vec(),
            }
        }
        2 => {
            let size = r.i64()?;
            StreamHandle::File {
                path: r.utf()?,
                size,
            }
        }
        6 => {
            let path = r.utf()?;
            StreamHandle::Relative {
                path,
                size: r.i64()?,
            }
        }
        3 | 7 | 12 => StreamHandle::KeyGroups(Box::new(key_groups(r, t == 12)?)),
        15 => {
            let start = r.i64()?;
            let size = r.i64()?;
            r.i32()?; // scope
            let path = r.utf()?;
            r.utf()?; // logical file id
            StreamHandle::Segment { path, start, size }
        }
        16 => StreamHandle::EmptySegment,
        t => return r.fail(format!("unknown stream state handle type {t}")),
    }))
}

fn required_stream(r: &mut Reader<'_>) -> Parse<StreamHandle> {
    match stream_handle(r)? {
        Some(h) => Ok(h),
        None => r.fail("missing stream handle"),
    }
}

fn key_groups(r: &mut Reader<'_>, with_id: bool) -> Parse<KeyGroups> {
    let first = r.i32()?;
    let n = r.count(8, "key-group offsets")?;
    checked_range(r, first, i32::try_from(n).unwrap_or(i32::MAX))?;
    let mut offsets = Vec::with_capacity(n);
    for _ in 0..n {
        offsets.push(r.i64()?);
    }
    let delegate = required_stream(r)?;
    if with_id {
        r.utf()?;
    }
    Ok(KeyGroups {
        first,
        offsets,
        delegate,
    })
}

/// Key groups `start .. start + n`, checked: indices are never negative and the range
/// ends within `i32` (Flink's key groups stay below 32768).
fn checked_range(r: &Reader<'_>, start: i32, n: i32) -> Parse<(i32, i32)> {
    match start.checked_add(n) {
        Some(end) if start >= 0 && n >= 0 => Ok((start, end - 1)),
        _ => r.fail(format!(
            "key-group range of {n} from {start} is out of bounds"
        )),
    }
}

fn range(r: &mut Reader<'_>) -> Parse<(i32, i32)> {
    let start = r.i32()?;
    let n = r.i32()?;
    checked_range(r, start, n)
}

fn keyed_handle(r: &mut Reader<'_>) -> Parse<Option<KeyedHandle>> {
    let t = r.u8()?;
    Ok(Some(match t {
        0 => return Ok(None),
        7 => KeyedHandle::Savepoint(key_groups(r, false)?),
        3 => KeyedHandle::Checkpoint(key_groups(r, false)?),
        12 => KeyedHandle::Checkpoint(key_groups(r, true)?),
        5 | 11 => {
            r.i64()?; // checkpoint id
            r.utf()?; // backend id
            let key_groups = range(r)?;
            if t == 11 {
                r.i64()?; // checkpointed size
            }
            let meta = required_stream(r)?;
            let mut files = file_list(r)?;
            files.extend(file_list(r)?);
            if t == 11 {
                r.utf()?;
            }
            KeyedHandle::Incremental {
                key_groups,
                meta,
                files,
            }
        }
        8 | 14 => {
            let key_groups = range(r)?;
            r.i64()?;
            for _ in 0..2 {
                let n = r.count(1, "changelog handles")?;
                for _ in 0..n {
                    keyed_handle(r)?;
                }
            }
            r.i64()?;
            if t == 14 {
                r.i64()?;
            }
            r.utf()?;
            KeyedHandle::Changelog { key_groups }
        }
        9 => {
            let key_groups = range(r)?;
            r.i64()?;
            r.i64()?;
            let n = r.count(8, "changelog changes")?;
            for _ in 0..n {
                r.i32()?;
                let len = r.count(1, "change length")?;
                r.bytes(len)?;
            }
            r.utf()?;
            KeyedHandle::Changelog { key_groups }
        }
        10 | 13 => {
            let key_groups = range(r)?;
            let n = r.count(9, "changelog files")?;
            for _ in 0..n {
                r.i64()?;
                required_stream(r)?;
            }
            r.i64()?;
            r.i64()?;
            r.utf()?;
            if t == 13 {
                r.utf()?;
            }
            KeyedHandle::Changelog { key_groups }
        }
        t => return r.fail(format!("unknown keyed state handle type {t}")),
    }))
}

fn file_list(r: &mut Reader<'_>) -> Parse<Vec<(String, StreamHandle)>> {
    let n = r.count(3, "state files")?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.utf()?;
        out.push((name, required_stream(r)?));
    }
    Ok(out)
}

fn operator_handle(r: &mut Reader<'_>) -> Parse<Option<OperatorStateHandle>> {
    let t = r.u8()?;
    if t == 0 {
        return Ok(None);
    }
    if t != 4 && t != 17 {
        return r.fail(format!("unknown operator state handle type {t}"));
    }
    let n = r.count(7, "operator states")?;
    let mut states = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.utf()?;
        let mode = match r.u8()? {
            0 => Distribution::Split,
            1 => Distribution::Union,
            2 => Distribution::Broadcast,
            m => return r.fail(format!("unknown distribution mode {m}")),
        };
        let k = r.count(8, "element offsets")?;
        let mut offsets = Vec::with_capacity(k);
        for _ in 0..k {
            offsets.push(r.i64()?);
        }
        states.push((name, mode, offsets));
    }
    if t == 17 {
        r.utf()?;
        r.utf()?;
        r.bool()?;
    }
    Ok(Some(OperatorStateHandle {
        states,
        delegate: required_stream(r)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLES: [&[u8]; 3] = [
        include_bytes!(
            "../../../fixtures/flink/java-hashmap-canonical-n100000/savepoint-d4c30c-92ca55030761/_metadata"
        ),
        include_bytes!(
            "../../../fixtures/flink/java-rocksdb-native-n100000/savepoint-a4bacb-73dc64045ddf/_metadata"
        ),
        include_bytes!(
            "../../../fixtures/flink/rich-state-A/savepoint-46a48f-b5c105e0343a/_metadata"
        ),
    ];

    #[test]
    fn samples_parse_completely() {
        for bytes in SAMPLES {
            let m = parse(bytes).unwrap();
            assert_eq!((m.version, m.checkpoint_id), (6, 1));
            assert!(m.operators.iter().all(|o| o.max_parallelism == 128));
        }
    }

    /// Every truncation and thousands of byte flips of real files: an error or a parse,
    /// never a panic, and never an allocation sized by a damaged length.
    #[test]
    fn damaged_metadata_never_panics() {
        for bytes in SAMPLES {
            for len in 0..bytes.len() {
                let _ = parse(&bytes[..len]);
            }
            for damaged in crate::bytes::flipped(bytes, 0x9E37_79B9_7F4A_7C15, 3000) {
                let _ = parse(&damaged);
            }
        }
    }
}
