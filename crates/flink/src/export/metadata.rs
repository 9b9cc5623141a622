//! Writing `_metadata` (version 6, as Flink 2.x writes it): operators, their subtasks'
//! state handles (files relative to the savepoint directory, or inline bytes), master
//! states and the checkpoint properties.

use super::out::Out;
use crate::metadata::MASTER_STATE_MAGIC;

/// The version written: Flink 2.3 writes and reads 6.
pub(crate) const VERSION: i32 = 6;

/// Stream handle types.
const BYTE_STREAM: u8 = 1;
const RELATIVE_STREAM: u8 = 6;
/// `KeyGroupsSavepointStateHandle`.
const SAVEPOINT_KEY_GROUPS: u8 = 7;
/// `OperatorStreamStateHandle`.
const OPERATOR_STREAM: u8 = 4;

/// A file of the savepoint, relative to `_metadata`'s directory.
#[derive(Debug, Clone)]
pub(crate) struct File {
    pub path: String,
    pub size: i64,
}

/// Operator state: (state name, mode 0 split / 1 union / 2 broadcast, element offsets).
pub(crate) type ListOffsets = Vec<(String, u8, Vec<i64>)>;

/// One subtask's state.
#[derive(Debug, Clone, Default)]
pub(crate) struct SubtaskState {
    pub index: i32,
    /// It had finished: no state, restored as finished.
    pub finished: bool,
    /// Operator state and its file.
    pub operator: Option<(ListOffsets, File)>,
    /// First key group, one offset per key group of the range (0: empty), and the file.
    pub keyed: Option<(i32, Vec<i64>, File)>,
}

/// One operator.
#[derive(Debug, Clone)]
pub(crate) struct OperatorState {
    pub name: String,
    pub uid: String,
    /// 16 bytes as 32 hex digits.
    pub id: String,
    pub parallelism: i32,
    pub max_parallelism: i32,
    pub coordinator: Option<Vec<u8>>,
    /// Every subtask had finished.
    pub finished: bool,
    pub subtasks: Vec<SubtaskState>,
}

/// The whole file.
pub(crate) fn write(
    checkpoint_id: i64,
    master_states: &[Vec<u8>],
    operators: &[OperatorState],
    properties: &[u8],
) -> Result<Vec<u8>, String> {
    let mut o = Out::default();
    o.i32(crate::MAGIC);
    o.i32(VERSION);
    o.i64(checkpoint_id);
    o.len_i32(master_states.len())?;
    for m in master_states {
        o.i32(MASTER_STATE_MAGIC);
        o.len_i32(m.len())?;
        o.bytes(m);
    }
    o.len_i32(operators.len())?;
    for op in operators {
        operator(op, &mut o)?;
    }
    o.bytes(properties);
    Ok(o.buf)
}

fn operator(op: &OperatorState, o: &mut Out) -> Result<(), String> {
    o.utf(&op.name)?;
    o.utf(&op.uid)?;
    let id = u128::from_str_radix(&op.id, 16)
        .ok()
        .filter(|_| op.id.len() == 32)
        .ok_or_else(|| format!("operator id {:?} is not 32 hex digits", op.id))?;
    o.i64((id >> 64) as i64);
    o.i64(id as i64);
    o.i32(op.parallelism);
    o.i32(op.max_parallelism);
    match &op.coordinator {
        None => o.u8(0),
        Some(bytes) => {
            o.u8(BYTE_STREAM);
            o.utf(&format!("coordinator-{}", op.id))?;
            o.len_i32(bytes.len())?;
            o.bytes(bytes);
        }
    }
    if op.finished {
        o.i32(-1);
        return Ok(());
    }
    o.len_i32(op.subtasks.len())?;
    for s in &op.subtasks {
        if s.finished {
            o.i32(-(s.index + 1));
            continue;
        }
        o.i32(s.index);
        match &s.operator {
            None => o.i32(0),
            Some((states, file)) => {
                o.i32(1);
                o.u8(OPERATOR_STREAM);
                o.len_i32(states.len())?;
                for (name, mode, offsets) in states {
                    o.utf(name)?;
                    o.u8(*mode);
                    o.len_i32(offsets.len())?;
                    for &off in offsets {
                        o.i64(off);
                    }
                }
                relative(file, o)?;
            }
        }
        o.i32(0); // raw operator state
        match &s.keyed {
            None => o.u8(0),
            Some((first, offsets, file)) => {
                o.u8(SAVEPOINT_KEY_GROUPS);
                o.i32(*first);
                o.len_i32(offsets.len())?;
                for &off in offsets {
                    o.i64(off);
                }
                relative(file, o)?;
            }
        }
        o.u8(0); // raw keyed state
        o.i32(0); // input channel state
        o.i32(0); // output channel state
    }
    Ok(())
}

fn relative(file: &File, o: &mut Out) -> Result<(), String> {
    o.u8(RELATIVE_STREAM);
    o.utf(&file.path)?;
    o.i64(file.size);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_metadata_parses_back() {
        let ops = vec![OperatorState {
            name: "counter".into(),
            uid: "counter".into(),
            id: "0da08f51eaa85fc298e176a139b3649a".into(),
            parallelism: 2,
            max_parallelism: 128,
            coordinator: Some(vec![1, 2, 3]),
            finished: false,
            subtasks: vec![SubtaskState {
                index: 1,
                finished: false,
                operator: Some((
                    vec![("SourceReaderState".into(), 0, vec![10, 20])],
                    File {
                        path: "op-1".into(),
                        size: 30,
                    },
                )),
                keyed: Some((
                    64,
                    vec![0; 64],
                    File {
                        path: "keyed-1".into(),
                        size: 99,
                    },
                )),
            }],
        }];
        let bytes = write(7, &[], &ops, b"props").unwrap();
        let m = crate::metadata::parse(&bytes).unwrap();
        assert_eq!((m.version, m.checkpoint_id), (6, 7));
        let op = &m.operators[0];
        assert_eq!(op.id, "0da08f51eaa85fc298e176a139b3649a");
        assert_eq!(op.uid.as_deref(), Some("counter"));
        assert_eq!(op.subtasks[0].index, 1);
        assert_eq!(
            op.subtasks[0].keyed_state.as_ref().unwrap().key_groups(),
            (64, 127)
        );
        assert_eq!(m.properties, b"props");
    }
}
