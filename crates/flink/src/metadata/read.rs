//! Parsing `_metadata` from bytes.

use super::handle_type::*;
use super::*;
use crate::java::{Parse, Reader};

/// Parses `_metadata`; `Err` says where and why.
pub(crate) fn parse(bytes: &[u8]) -> Parse<Metadata> {
    let mut r = Reader::new(bytes);
    let magic = r.i32()?;
    if magic != MAGIC {
        return r.fail(format!("not a Flink _metadata file (magic {magic:#010x})"));
    }
    let version = r.i32()?;
    if !VERSIONS.contains(&version) {
        return r.fail(format!("unsupported Flink metadata version {version}"));
    }
    let checkpoint_id = r.i64()?;
    if checkpoint_id < 0 {
        return r.fail(format!("negative checkpoint id {checkpoint_id}"));
    }
    let masters = r.count(8, "master states")?;
    let mut master_states = Vec::new();
    for _ in 0..masters {
        if r.i32()? != MASTER_STATE_MAGIC {
            return r.fail("bad master state magic");
        }
        let n = r.count(1, "master state length")?;
        master_states.push(MasterState::from_bytes(r.bytes(n)?.to_vec())?);
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
            op.subtasks.push(Subtask::without_state(-(index + 1), true));
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
    let input_channel_states = channel_handles(r, version)?;
    let output_channel_states = channel_handles(r, version)?;
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
        input_channel_states,
        output_channel_states,
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
        NULL => return Ok(None),
        BYTE_STREAM => {
            let name = r.utf()?;
            let n = r.count(1, "inline state length")?;
            StreamHandle::Inline {
                name,
                data: r.bytes(n)?.to_vec(),
            }
        }
        FILE_STREAM => {
            let size = r.i64()?;
            StreamHandle::File {
                path: r.utf()?,
                size,
            }
        }
        RELATIVE_STREAM => {
            let path = r.utf()?;
            StreamHandle::Relative {
                path,
                size: r.i64()?,
            }
        }
        KEY_GROUPS | SAVEPOINT_KEY_GROUPS | KEY_GROUPS_WITH_ID => {
            StreamHandle::KeyGroups(Box::new(key_groups(r, t == KEY_GROUPS_WITH_ID)?))
        }
        SEGMENT => {
            let start = r.i64()?;
            let size = r.i64()?;
            r.i32()?; // scope
            let path = r.utf()?;
            r.utf()?; // logical file id
            StreamHandle::Segment { path, start, size }
        }
        EMPTY_SEGMENT => StreamHandle::EmptySegment,
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
        NULL => return Ok(None),
        SAVEPOINT_KEY_GROUPS => KeyedHandle::Savepoint(key_groups(r, false)?),
        KEY_GROUPS => KeyedHandle::Checkpoint(key_groups(r, false)?),
        KEY_GROUPS_WITH_ID => KeyedHandle::Checkpoint(key_groups(r, true)?),
        INCREMENTAL_KEY_GROUPS | INCREMENTAL_KEY_GROUPS_V2 => {
            let v2 = t == INCREMENTAL_KEY_GROUPS_V2;
            r.i64()?; // checkpoint id
            r.utf()?; // backend id
            let key_groups = range(r)?;
            if v2 {
                r.i64()?; // checkpointed size
            }
            let meta = required_stream(r)?;
            let mut files = file_list(r)?;
            files.extend(file_list(r)?);
            if v2 {
                r.utf()?;
            }
            KeyedHandle::Incremental {
                key_groups,
                meta,
                files,
            }
        }
        CHANGELOG | CHANGELOG_V2 => {
            let key_groups = range(r)?;
            r.i64()?;
            for _ in 0..2 {
                let n = r.count(1, "changelog handles")?;
                for _ in 0..n {
                    keyed_handle(r)?;
                }
            }
            r.i64()?;
            if t == CHANGELOG_V2 {
                r.i64()?;
            }
            r.utf()?;
            KeyedHandle::Changelog { key_groups }
        }
        CHANGELOG_BYTES => {
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
        CHANGELOG_FILES | CHANGELOG_FILES_V2 => {
            let key_groups = range(r)?;
            let n = r.count(9, "changelog files")?;
            for _ in 0..n {
                r.i64()?;
                required_stream(r)?;
            }
            r.i64()?;
            r.i64()?;
            r.utf()?;
            if t == CHANGELOG_FILES_V2 {
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
    if t == NULL {
        return Ok(None);
    }
    if t != OPERATOR_STREAM && t != MERGING_OPERATOR_STREAM {
        return r.fail(format!("unknown operator state handle type {t}"));
    }
    let n = r.count(7, "operator states")?;
    let mut states = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.utf()?;
        let code = r.u8()?;
        let Some(distribution) = Distribution::from_code(code) else {
            return r.fail(format!("unknown distribution mode {code}"));
        };
        let k = r.count(8, "element offsets")?;
        let mut offsets = Vec::with_capacity(k);
        for _ in 0..k {
            offsets.push(r.i64()?);
        }
        states.push(OperatorStateOffsets {
            name,
            distribution,
            offsets,
        });
    }
    if t == MERGING_OPERATOR_STREAM {
        r.utf()?;
        r.utf()?;
        r.bool()?;
    }
    Ok(Some(OperatorStateHandle {
        states,
        delegate: required_stream(r)?,
    }))
}

impl MasterState {
    /// A master state from its bytes as Flink wrote them: a version, the name, the data.
    pub(crate) fn from_bytes(bytes: Vec<u8>) -> Parse<MasterState> {
        let mut r = Reader::new(&bytes);
        let _version = r.i32()?;
        let name = r.utf()?;
        Ok(MasterState { name, bytes })
    }
}
