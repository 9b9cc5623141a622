//! Writing `_metadata` from the same types [`super::read`] returns, for the versions
//! Flink restores (4 for 1.15-1.20, 6 for 2.x): the handles of a canonical savepoint
//! (inline bytes and files, savepoint key groups, operator streams). Handles that only
//! checkpoints hold (RocksDB files, changelogs, file merging, channel state) are refused,
//! never written half.

use super::handle_type::*;
use super::*;
use crate::java::Out;

/// `m` as Flink's `MetadataV<m.version>Serializer` writes it.
pub(crate) fn write(m: &Metadata) -> Result<Vec<u8>, String> {
    if !VERSIONS.contains(&m.version) {
        return Err(format!("cannot write Flink metadata version {}", m.version));
    }
    let mut o = Out::default();
    o.i32(MAGIC);
    o.i32(m.version);
    o.i64(m.checkpoint_id);
    o.len_i32(m.master_states.len())?;
    for state in &m.master_states {
        o.i32(MASTER_STATE_MAGIC);
        o.len_i32(state.bytes.len())?;
        o.bytes(&state.bytes);
    }
    o.len_i32(m.operators.len())?;
    for op in &m.operators {
        operator(op, m.version, &mut o)?;
    }
    o.bytes(&m.properties);
    Ok(o.buf)
}

fn operator(op: &Operator, version: i32, o: &mut Out) -> Result<(), String> {
    if version >= 5 {
        o.utf(op.name.as_deref().unwrap_or(""))?;
        o.utf(op.uid.as_deref().unwrap_or(""))?;
    }
    let id = u128::from_str_radix(&op.id, 16)
        .ok()
        .filter(|_| op.id.len() == 32)
        .ok_or_else(|| format!("operator id {:?} is not 32 hex digits", op.id))?;
    o.i64((id >> 64) as i64);
    o.i64(id as i64);
    o.i32(op.parallelism);
    o.i32(op.max_parallelism);
    stream_handle(op.coordinator_state.as_ref(), o)?;
    if op.fully_finished {
        o.i32(-1);
        return Ok(());
    }
    o.len_i32(op.subtasks.len())?;
    for s in &op.subtasks {
        if s.finished {
            o.i32(-(s.index + 1));
            continue;
        }
        subtask(s, version, o)
            .map_err(|e| format!("operator {} subtask {}: {e}", op.id, s.index))?;
    }
    Ok(())
}

fn subtask(s: &Subtask, version: i32, o: &mut Out) -> Result<(), String> {
    o.i32(s.index);
    for handle in [&s.operator_state, &s.raw_operator_state] {
        match handle {
            None => o.i32(0),
            Some(h) => {
                o.i32(1);
                operator_handle(h, o)?;
            }
        }
    }
    keyed_handle(s.keyed_state.as_ref(), o)?;
    keyed_handle(s.raw_keyed_state.as_ref(), o)?;
    if s.input_channel_states + s.output_channel_states > 0 {
        return Err("unaligned-checkpoint channel state cannot be written".into());
    }
    o.i32(0);
    o.i32(0);
    if version >= 7 {
        o.bool(false); // no reference checkpoint id
    }
    Ok(())
}

fn stream_handle(handle: Option<&StreamHandle>, o: &mut Out) -> Result<(), String> {
    match handle {
        None => o.u8(NULL),
        Some(StreamHandle::Inline { name, data }) => {
            o.u8(BYTE_STREAM);
            o.utf(name)?;
            o.len_i32(data.len())?;
            o.bytes(data);
        }
        Some(StreamHandle::File { path, size }) => {
            o.u8(FILE_STREAM);
            o.i64(*size);
            o.utf(path)?;
        }
        Some(StreamHandle::Relative { path, size }) => {
            o.u8(RELATIVE_STREAM);
            o.utf(path)?;
            o.i64(*size);
        }
        Some(StreamHandle::EmptySegment) => o.u8(EMPTY_SEGMENT),
        Some(StreamHandle::Segment { .. } | StreamHandle::KeyGroups(_)) => {
            return Err(format!(
                "a {} handle cannot be written (file merging or nested key groups)",
                handle.map_or_else(String::new, StreamHandle::describe)
            ));
        }
    }
    Ok(())
}

fn key_groups(k: &KeyGroups, o: &mut Out) -> Result<(), String> {
    o.i32(k.first);
    o.len_i32(k.offsets.len())?;
    for &offset in &k.offsets {
        o.i64(offset);
    }
    stream_handle(Some(&k.delegate), o)
}

fn keyed_handle(handle: Option<&KeyedHandle>, o: &mut Out) -> Result<(), String> {
    match handle {
        None => o.u8(NULL),
        Some(KeyedHandle::Savepoint(k)) => {
            o.u8(SAVEPOINT_KEY_GROUPS);
            key_groups(k, o)?;
        }
        Some(KeyedHandle::Checkpoint(k)) => {
            o.u8(KEY_GROUPS);
            key_groups(k, o)?;
        }
        Some(KeyedHandle::Incremental { .. } | KeyedHandle::Changelog { .. }) => {
            return Err(
                "RocksDB and changelog keyed state handles cannot be written: export writes canonical savepoints"
                    .into(),
            );
        }
    }
    Ok(())
}

fn operator_handle(h: &OperatorStateHandle, o: &mut Out) -> Result<(), String> {
    o.u8(OPERATOR_STREAM);
    o.len_i32(h.states.len())?;
    for state in &h.states {
        o.utf(&state.name)?;
        o.u8(state.distribution.code());
        o.len_i32(state.offsets.len())?;
        for &offset in &state.offsets {
            o.i64(offset);
        }
    }
    stream_handle(Some(&h.delegate), o)
}
