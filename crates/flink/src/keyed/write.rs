//! Writing keyed state in Flink's canonical layout: the header, and entries bucketed by key group and state id,
//! then one stream per subtask (the keyed header, then each non-empty key group at its
//! offset: `u16 state id`, entries `i32 len, key, i32 len, value`, the first key byte of
//! a state's last entry flagged `0x80`, then the next state id or `0xFFFF`).

use arrow_array::cast::AsArray;
use std::collections::HashMap;

use arrow_array::types::{Int32Type, Int64Type, UInt64Type};
use arrow_array::{Array, RecordBatch};

use super::*;
use crate::java::Out;
use crate::placement::{java_hash, key_group, key_group_range, subtask_of};
use crate::snapshots::{Ty, proxy};
use crate::values::{list_items, write};
use rewind_savepoint::columns;

/// How keys land in key groups and subtasks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub max_parallelism: i32,
    pub parallelism: i32,
}

impl Layout {
    fn prefix_len(self) -> usize {
        crate::placement::prefix_len(self.max_parallelism)
    }
}

#[derive(Default)]
struct Bucket {
    buf: Vec<u8>,
    /// Where the last entry's key starts in `buf`.
    last_key: usize,
}

struct SubtaskBuckets {
    first: i32,
    groups: usize,
    buckets: Vec<Bucket>,
}

/// The keyed-state header (`KeyedBackendSerializationProxy`): the key serializer's
/// snapshot and one `StateMetaInfoSnapshot` per state, in state-id order, as written.
pub(crate) fn header_bytes(
    key: &[u8],
    states: &[Vec<u8>],
    compressed: bool,
) -> Result<Vec<u8>, String> {
    let mut o = Out::default();
    o.i32(HEADER_VERSION);
    o.bool(compressed);
    o.bytes(key);
    let n = i16::try_from(states.len()).map_err(|_| "more than 32767 states")?;
    o.i16(n);
    for meta in states {
        o.bytes(meta);
    }
    Ok(o.buf)
}

/// A keyed header entry: `kind` is `VALUE`, `LIST` or `MAP` (key-value state) or `None`
/// for a timer queue, whose value serializer is the timer's.
pub(crate) fn state_meta_bytes(
    name: &str,
    kind: Option<&str>,
    namespace: &Ty,
    value: &Ty,
    pojo: Option<&str>,
) -> Result<Vec<u8>, String> {
    let mut out = Out::default();
    out.utf(name)?;
    match kind {
        Some(kind) => {
            out.i32(KEY_VALUE);
            out.i32(1);
            out.utf("KEYED_STATE_TYPE")?;
            out.utf(kind)?;
            out.i32(2);
            out.utf("VALUE_SERIALIZER")?;
            proxy(value, pojo, &mut out)?;
            out.utf("NAMESPACE_SERIALIZER")?;
            proxy(namespace, None, &mut out)?;
        }
        None => {
            out.i32(PRIORITY_QUEUE);
            out.i32(0);
            out.i32(1);
            out.utf("VALUE_SERIALIZER")?;
            proxy(value, None, &mut out)?;
        }
    }
    Ok(out.buf)
}

/// The entries of one operator's keyed state, by subtask, key group and state id.
pub(crate) struct Buckets {
    layout: Layout,
    states: usize,
    subtasks: Vec<SubtaskBuckets>,
    pub entries: u64,
}

impl Buckets {
    pub fn new(layout: Layout, states: usize) -> Self {
        let subtasks = (0..layout.parallelism)
            .map(|i| {
                let (first, last) = key_group_range(layout.max_parallelism, layout.parallelism, i);
                let groups = usize::try_from(last - first + 1).unwrap_or(0);
                SubtaskBuckets {
                    first,
                    groups,
                    buckets: (0..groups * states).map(|_| Bucket::default()).collect(),
                }
            })
            .collect();
        Buckets {
            layout,
            states,
            subtasks,
            entries: 0,
        }
    }

    /// Adds one entry; `key` is everything after the key-group prefix.
    fn push(&mut self, group: i32, state: u16, key: &[u8], value: &[u8]) -> Result<(), String> {
        let sub = subtask_of(self.layout.max_parallelism, self.layout.parallelism, group);
        let sb = self
            .subtasks
            .get_mut(usize::try_from(sub).unwrap_or(usize::MAX))
            .ok_or("internal: a key group outside every subtask")?;
        let index = usize::try_from(group - sb.first).unwrap_or(usize::MAX) * self.states
            + usize::from(state);
        let bucket = sb
            .buckets
            .get_mut(index)
            .ok_or("internal: a key group outside its subtask")?;
        let prefix = self.layout.prefix_len();
        let mut o = Out {
            buf: std::mem::take(&mut bucket.buf),
        };
        o.len_i32(prefix + key.len())?;
        bucket.last_key = o.buf.len();
        if prefix == 2 {
            o.u16(group as u16);
        } else {
            o.u8(group as u8);
        }
        o.bytes(key);
        o.len_i32(value.len())?;
        o.bytes(value);
        bucket.buf = o.buf;
        self.entries += 1;
        Ok(())
    }

    /// Subtask `index`'s stream (`header`, then its key groups) and the offset of each
    /// key group of its range (0 for an empty one). `compress`: each key group its own Snappy framed stream,
    /// as Flink's `SnappyStreamCompressionDecorator` writes it.
    pub fn stream(
        &self,
        index: usize,
        header: &[u8],
        compress: bool,
    ) -> Result<SubtaskStream, String> {
        let Some(sb) = self.subtasks.get(index) else {
            return Ok(SubtaskStream {
                first_key_group: 0,
                bytes: header.to_vec(),
                offsets: Vec::new(),
            });
        };
        let mut out = Out {
            buf: header.to_vec(),
        };
        let mut offsets = vec![0i64; sb.groups];
        let mut group = Out::default();
        for (g, offset) in offsets.iter_mut().enumerate() {
            let buckets = &sb.buckets[g * self.states..(g + 1) * self.states];
            let mut states = buckets
                .iter()
                .enumerate()
                .filter(|(_, b)| !b.buf.is_empty())
                .peekable();
            if states.peek().is_none() {
                continue;
            }
            *offset = out.buf.len() as i64;
            // Uncompressed, the key group goes straight into the stream; compressed, it is
            // framed on its own first.
            let dst = if compress {
                group.buf.clear();
                &mut group
            } else {
                &mut out
            };
            if let Some((id, _)) = states.peek() {
                dst.u16(*id as u16);
            }
            while let Some((_, bucket)) = states.next() {
                let start = dst.buf.len();
                dst.bytes(&bucket.buf);
                dst.buf[start + bucket.last_key] |= LAST_ENTRY_FLAG;
                match states.peek() {
                    Some((next, _)) => dst.u16(*next as u16),
                    None => dst.u16(END_OF_KEY_GROUP),
                }
            }
            if compress {
                let mut encoder = snap::write::FrameEncoder::new(Vec::new());
                std::io::Write::write_all(&mut encoder, &group.buf)
                    .map_err(|e| format!("Snappy: {e}"))?;
                let framed = encoder.into_inner().map_err(|e| format!("Snappy: {e}"))?;
                out.bytes(&framed);
            }
        }
        Ok(SubtaskStream {
            first_key_group: sb.first,
            bytes: out.buf,
            offsets,
        })
    }
}

/// One subtask's keyed state file, and where each of its key groups starts.
pub(crate) struct SubtaskStream {
    /// The first key group of the subtask's range.
    pub first_key_group: i32,
    /// The header, then the key groups.
    pub bytes: Vec<u8>,
    /// One offset per key group of the range (0: empty).
    pub offsets: Vec<i64>,
}

/// How one Rewind keyed state's rows become entries.
#[derive(Debug, Clone)]
pub(crate) struct StateEncoding {
    pub kind: EntryKind,
    pub key: Ty,
    /// `Ty::Void` when not namespaced.
    pub namespace: Ty,
    /// The header id of the state (timers: of the event-time queue).
    pub id: u16,
}

#[derive(Debug, Clone)]
pub(crate) enum EntryKind {
    Value(Ty),
    /// The element type.
    List(Ty),
    /// User key and value types.
    Map(Ty, Ty),
    /// Timers: the processing-time queue's id.
    Timers {
        processing: u16,
    },
}

/// Adds every row of `batch` (a shard batch of the state: `key_hash`, `key`, ...). A key's
/// group comes from `kept` (by key hash) when given, else from its Java `hashCode`.
pub(crate) fn add_batch(
    enc: &StateEncoding,
    batch: &RecordBatch,
    kept: Option<&HashMap<u64, i32>>,
    buckets: &mut Buckets,
) -> Result<(), String> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| format!("the shard has no {name:?} column"))
    };
    let keys = column(columns::KEY)?;
    let namespaces = match enc.namespace {
        Ty::Void => None,
        _ => Some(column(columns::NAMESPACE)?),
    };
    // Looked up once per batch, not per row.
    let values = match enc.kind {
        EntryKind::Timers { .. } => None,
        _ => Some(column(columns::VALUE)?),
    };
    let user_keys = match enc.kind {
        EntryKind::Map(..) => Some(column(columns::USER_KEY)?),
        _ => None,
    };
    let timers = match enc.kind {
        EntryKind::Timers { .. } => {
            let ts = column(columns::TIMER_TIMESTAMP)?;
            let ts = ts
                .as_primitive_opt::<Int64Type>()
                .ok_or("a timer timestamp column that is not int64")?
                .clone();
            let domain = column(columns::TIMER_DOMAIN)?;
            let domain = domain
                .as_string_opt::<i32>()
                .ok_or("a timer domain column that is not utf8")?
                .clone();
            Some((domain, ts))
        }
        _ => None,
    };
    let hashes = match kept {
        Some(_) => Some(
            column(columns::KEY_HASH)?
                .as_primitive_opt::<UInt64Type>()
                .ok_or("a key_hash column that is not uint64")?
                .clone(),
        ),
        None => None,
    };
    let ambiguous = !enc.key.fixed_length() && !enc.namespace.fixed_length();
    let max = buckets.layout.max_parallelism;
    let mut key = Out::default();
    let mut value = Out::default();
    for row in 0..batch.num_rows() {
        let group = match (kept, &hashes) {
            (Some(kept), Some(hashes)) => *kept.get(&hashes.value(row)).ok_or_else(|| {
                let key = arrow_cast::display::array_value_to_string(keys.as_ref(), row)
                    .unwrap_or_default();
                format!("key {key} has no Flink key group kept by the import (added in Rewind?): its key type's hashCode is the job's own code")
            })?,
            _ => key_group(java_hash(&enc.key, keys.as_ref(), row)?, max),
        };
        key.buf.clear();
        value.buf.clear();
        let (state, is_timer) = match (&enc.kind, &timers) {
            (EntryKind::Timers { processing }, Some((domain, ts))) => {
                key.i64(ts.value(row) ^ i64::MIN);
                let state = match domain.value(row) {
                    "processing_time" => *processing,
                    _ => enc.id,
                };
                (state, true)
            }
            _ => (enc.id, false),
        };
        let start = key.buf.len();
        write(&enc.key, keys.as_ref(), row, &mut key)?;
        if ambiguous && !is_timer {
            let len = key.buf.len() - start;
            variable_int(&mut key, len);
        }
        let ns_start = key.buf.len();
        match &namespaces {
            Some(ns) => write(&enc.namespace, ns.as_ref(), row, &mut key)?,
            None => key.u8(0),
        }
        if ambiguous && !is_timer {
            let len = key.buf.len() - ns_start;
            variable_int(&mut key, len);
        }
        match (&enc.kind, &values) {
            (EntryKind::Timers { .. }, _) | (_, None) => {}
            (EntryKind::Value(t), Some(v)) => {
                if v.is_null(row) {
                    continue; // Flink holds no entry for a null value.
                }
                write(t, v.as_ref(), row, &mut value)?;
            }
            (EntryKind::List(item), Some(v)) => {
                if v.is_null(row) {
                    continue;
                }
                let items = list_items(v.as_ref(), row)?;
                if items.is_empty() {
                    continue; // Flink drops an empty list.
                }
                for i in 0..items.len() {
                    if i > 0 {
                        value.u8(b',');
                    }
                    write(item, items.as_ref(), i, &mut value)?;
                }
            }
            (EntryKind::Map(uk, t), Some(v)) => {
                let user_keys = user_keys.as_ref().ok_or("a map state without user keys")?;
                write(uk, user_keys.as_ref(), row, &mut key)?;
                value.bool(v.is_null(row));
                if !v.is_null(row) {
                    write(t, v.as_ref(), row, &mut value)?;
                }
            }
        }
        buckets.push(group, state, &key.buf, &value.buf)?;
    }
    Ok(())
}

/// Each key's group from the state the import kept them in (`key_hash` -> `value`).
pub(crate) fn kept_groups(batch: &RecordBatch, into: &mut HashMap<u64, i32>) -> Result<(), String> {
    let hashes = batch
        .column_by_name(columns::KEY_HASH)
        .and_then(|c| c.as_primitive_opt::<UInt64Type>())
        .ok_or("the key groups state has no uint64 key_hash")?;
    let groups = batch
        .column_by_name(columns::VALUE)
        .and_then(|c| c.as_primitive_opt::<Int32Type>())
        .ok_or("the key groups state has no int32 value")?;
    for row in 0..batch.num_rows() {
        into.insert(hashes.value(row), groups.value(row));
    }
    Ok(())
}

/// Flink's length after a variable-length key or namespace: little-endian bytes until
/// the rest is zero (at least one).
fn variable_int(out: &mut Out, mut n: usize) {
    loop {
        out.u8(n as u8);
        n >>= 8;
        if n == 0 {
            return;
        }
    }
}
