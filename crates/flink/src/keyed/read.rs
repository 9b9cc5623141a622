//! Reading the canonical keyed stream: the header (kvStateId -> state name, kind and
//! serializers) and the entries of each key group, decoded into Arrow columns.

use super::*;
use crate::java::{Parse, Reader};
use arrow_array::builder::StringBuilder;

use crate::snapshots::{Ty, snapshot_proxy};
use crate::values::{self as columns, Column};

pub(crate) fn header(r: &mut Reader<'_>) -> Parse<Header> {
    let version = r.i32()?;
    if version != HEADER_VERSION {
        return r.fail(format!(
            "keyed state header version {version} (only 6, Flink 1.17+, is read)"
        ));
    }
    let compression = r.bool()?;
    let key_start = r.pos();
    let key = snapshot_proxy(r)?;
    let key_raw = r.consumed_since(key_start).to_vec();
    let n = r.i16()?;
    if n < 0 {
        return r.fail("negative state count");
    }
    let mut states = Vec::with_capacity(n as usize);
    for _ in 0..n {
        states.push(state_meta(r)?);
    }
    Ok(Header {
        compression,
        key,
        key_raw,
        states,
    })
}

/// One entry of the header: a state's name, kind and serializers.
pub(crate) fn state_meta(r: &mut Reader<'_>) -> Parse<StateMeta> {
    let start = r.pos();
    let name = r.utf()?;
    let backend_type = r.i32()?;
    let options = r.count(4, "state options")?;
    let mut flink_kind = String::new();
    for _ in 0..options {
        let (k, v) = (r.utf()?, r.utf()?);
        if k == "KEYED_STATE_TYPE" {
            flink_kind = v;
        }
    }
    let serializers = r.count(6, "state serializers")?;
    let (mut namespace, mut value) = (None, None);
    for _ in 0..serializers {
        let k = r.utf()?;
        let s = snapshot_proxy(r)?;
        match k.as_str() {
            "NAMESPACE_SERIALIZER" => namespace = Some(s),
            "VALUE_SERIALIZER" => value = Some(s),
            _ => {}
        }
    }
    let kind = match (backend_type, flink_kind.as_str()) {
        (PRIORITY_QUEUE, _) => {
            flink_kind = "PRIORITY_QUEUE".into();
            Some(Kind::Timers)
        }
        (0 | 4, "VALUE" | "AGGREGATING" | "REDUCING" | "FOLDING") => Some(Kind::Value),
        (0 | 4, "LIST") => Some(Kind::List),
        (0 | 4, "MAP") => Some(Kind::Map),
        _ => None,
    };
    Ok(StateMeta {
        name,
        flink_kind,
        kind,
        namespace,
        value,
        raw: r.consumed_since(start).to_vec(),
    })
}

/// The columns one Rewind state's rows are decoded into. Timers of one service (event
/// and processing time) share one.
pub(crate) struct StateColumns {
    pub key: Column,
    pub namespace: Option<Column>,
    /// Map state's user key.
    pub user_key: Option<Column>,
    /// The value; a timer's timestamp.
    pub value: Column,
    /// A timer's time domain.
    pub domain: Option<StringBuilder>,
    /// Each row's key group, when kept (keys whose Java `hashCode` Rewind cannot compute).
    pub groups: Option<Vec<i32>>,
}

impl StateColumns {
    /// Empty columns for the rows of `meta` under keys of type `key`, or why its values
    /// cannot be decoded.
    pub fn new(key: &Ty, meta: &StateMeta) -> Result<StateColumns, String> {
        let column = |t: &Ty| Column::new(&t.data_type()?);
        // Checked first, and for timers too, whose key column comes from their own
        // serializer: a state is imported only if the operator's keys decode.
        let key = column(key)?;
        let value_ty = meta
            .value
            .as_ref()
            .map(|s| &s.ty)
            .ok_or("no value serializer")?;
        if meta.kind == Some(Kind::Timers) {
            let Ty::Timer(tk, tn) = value_ty else {
                return Err("a timer state without a timer serializer".into());
            };
            return Ok(StateColumns {
                key: column(tk)?,
                namespace: match &**tn {
                    Ty::Void => None,
                    t => Some(column(t)?),
                },
                user_key: None,
                value: Column::I64(Default::default()),
                domain: Some(StringBuilder::new()),
                groups: None,
            });
        }
        let namespace = match meta.namespace.as_ref().map(|s| &s.ty) {
            None | Some(Ty::Void) => None,
            Some(t) => Some(column(t)?),
        };
        let (user_key, value) = match (meta.kind, value_ty) {
            (None, _) => return Err(format!("{} state is not imported", meta.flink_kind)),
            (Some(Kind::Map), Ty::Map(uk, v)) => (Some(column(uk)?), column(v)?),
            (Some(Kind::List), Ty::List(_)) | (Some(Kind::Value), _) => (None, column(value_ty)?),
            _ => {
                return Err(format!(
                    "unexpected serializer for {} state",
                    meta.flink_kind
                ));
            }
        };
        Ok(StateColumns {
            key,
            namespace,
            user_key,
            value,
            domain: None,
            groups: None,
        })
    }
}

/// Where the entries of one header state go: a slot of [`StateColumns`] and, for timers,
/// their domain. `None` skips the state (it cannot be decoded).
pub(crate) type Target = Option<(usize, &'static str)>;

/// Decodes every entry of the key groups at `offsets` (0 = empty) into `slots`, by the
/// header's state ids mapped through `targets`.
pub(crate) fn entries(
    stream: &[u8],
    header: &Header,
    (first_group, offsets): (i32, &[i64]),
    prefix_len: usize,
    targets: &[Target],
    slots: &mut [StateColumns],
) -> Parse<()> {
    for (index, &offset) in offsets.iter().enumerate().filter(|(_, o)| **o > 0) {
        let group = first_group.saturating_add(i32::try_from(index).unwrap_or(i32::MAX));
        let mut r = Reader::at(stream, usize::try_from(offset).unwrap_or(usize::MAX))?;
        let mut state = r.u16()?;
        loop {
            let key_len = r.count(1, "key length")?;
            let key = r.bytes(key_len)?;
            let value_len = r.count(0, "value length")?;
            let value = r.bytes(value_len)?;
            // The flag lives in the key-group prefix, which is skipped below, so the key
            // bytes are decoded in place.
            let last = key.first().is_some_and(|b| b & LAST_ENTRY_FLAG != 0);
            if key.len() < prefix_len {
                return r.fail("a key shorter than its key-group prefix");
            }
            if let Some(&Some((slot, domain))) = targets.get(state as usize) {
                let (Some(meta), Some(columns)) =
                    (header.states.get(state as usize), slots.get_mut(slot))
                else {
                    return r.fail(format!("state id {state} is not in the header"));
                };
                entry(header, meta, &key[prefix_len..], value, columns, domain).map_err(|e| {
                    crate::java::ParseError {
                        offset: r.pos(),
                        message: e.message,
                    }
                })?;
                if let Some(groups) = columns.groups.as_mut() {
                    groups.push(group);
                }
            }
            if last {
                state = r.u16()?;
                if state == END_OF_KEY_GROUP {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// The key groups of a compressed stream (each its own Snappy framed stream, as Flink's
/// `SnappyStreamCompressionDecorator` writes it, from its offset up to the next) decoded
/// into one plain stream, with each key group's offset in it (0 stays 0).
pub(crate) fn decompress_key_groups(stream: &[u8], offsets: &[i64]) -> Parse<(Vec<u8>, Vec<i64>)> {
    use std::io::Read;
    let mut starts: Vec<usize> = offsets
        .iter()
        .filter(|o| **o > 0)
        .map(|&o| usize::try_from(o).unwrap_or(usize::MAX))
        .collect();
    starts.sort_unstable();
    // Nothing before the first key group is part of the data.
    let mut plain = vec![0u8];
    let mut new_offsets = Vec::with_capacity(offsets.len());
    for &o in offsets {
        if o <= 0 {
            new_offsets.push(0);
            continue;
        }
        let start = usize::try_from(o).unwrap_or(usize::MAX);
        let end = starts
            .iter()
            .copied()
            .find(|&s| s > start)
            .unwrap_or(stream.len());
        let Some(segment) = stream.get(start..end) else {
            return Err(crate::java::ParseError {
                offset: start,
                message: format!("key group at offset {start} is past the end"),
            });
        };
        new_offsets.push(plain.len() as i64);
        snap::read::FrameDecoder::new(segment)
            .read_to_end(&mut plain)
            .map_err(|e| crate::java::ParseError {
                offset: start,
                message: format!("a Snappy-compressed key group does not decompress: {e}"),
            })?;
    }
    Ok((plain, new_offsets))
}

/// Flink writes a length after a variable-length key when the namespace is variable too.
fn skip_ambiguous_length(r: &mut Reader<'_>, len: usize) -> Parse<()> {
    let mut rest = len;
    loop {
        r.u8()?;
        rest >>= 8;
        if rest == 0 {
            return Ok(());
        }
    }
}

/// Reads a namespace into its column; the void namespace has none and is one byte.
fn namespace(ty: &Ty, r: &mut Reader<'_>, col: Option<&mut Column>) -> Parse<()> {
    match (ty, col) {
        (Ty::Void, _) => r.u8().map(drop),
        (ty, Some(col)) => columns::read(ty, r, col),
        (_, None) => r.fail("internal: a namespace without a column"),
    }
}

fn entry(
    header: &Header,
    meta: &StateMeta,
    key: &[u8],
    value: &[u8],
    out: &mut StateColumns,
    domain: &str,
) -> Parse<()> {
    let mut k = Reader::new(key);
    if meta.kind == Some(Kind::Timers) {
        let (Some(Ty::Timer(tk, tn)), Column::I64(timestamps), Some(domains)) = (
            meta.value.as_ref().map(|s| &s.ty),
            &mut out.value,
            out.domain.as_mut(),
        ) else {
            return k.fail(format!(
                "{}: a timer state without a timer serializer",
                meta.name
            ));
        };
        timestamps.append_value(k.i64()? ^ i64::MIN);
        columns::read(tk, &mut k, &mut out.key)?;
        namespace(tn, &mut k, out.namespace.as_mut())?;
        domains.append_value(domain);
        return k.is_empty().then_some(()).map_or_else(
            || k.fail(format!("{}: timer bytes left over", meta.name)),
            Ok,
        );
    }
    let key_ty = &header.key.ty;
    let ns_ty = meta.namespace.as_ref().map_or(&Ty::Void, |s| &s.ty);
    let ambiguous = !key_ty.fixed_length() && !ns_ty.fixed_length();
    let start = k.pos();
    columns::read(key_ty, &mut k, &mut out.key)?;
    if ambiguous {
        let len = k.pos() - start;
        skip_ambiguous_length(&mut k, len)?;
    }
    let ns_start = k.pos();
    namespace(ns_ty, &mut k, out.namespace.as_mut())?;
    if ambiguous {
        let len = k.pos() - ns_start;
        skip_ambiguous_length(&mut k, len)?;
    }
    let value_ty = meta.value.as_ref().map(|s| &s.ty);
    let mut v = Reader::new(value);
    match (meta.kind, value_ty, out.user_key.as_mut()) {
        (Some(Kind::Value), Some(t), None) => columns::read(t, &mut v, &mut out.value)?,
        // List state: the elements one after another, a ',' byte between two.
        (Some(Kind::List), Some(Ty::List(item)), None) => {
            columns::read_list_items(&mut v, &mut out.value, |v, items| {
                if v.is_empty() {
                    return Ok(false);
                }
                columns::read(item, v, items)?;
                if !v.is_empty() {
                    v.u8()?;
                }
                Ok(true)
            })?;
        }
        (Some(Kind::Map), Some(Ty::Map(uk, mv)), Some(user_key)) => {
            columns::read(uk, &mut k, user_key)?;
            if v.bool()? {
                out.value.append_null();
            } else {
                columns::read(mv, &mut v, &mut out.value)?;
            }
        }
        _ => {
            return v.fail(format!(
                "{}: unexpected serializer for {} state",
                meta.name, meta.flink_kind
            ));
        }
    }
    if !k.is_empty() || !v.is_empty() {
        return v.fail(format!(
            "{}: {} key and {} value bytes left over (a serializer was misread)",
            meta.name,
            k.remaining(),
            v.remaining()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &[u8] = include_bytes!(
        "../../../../fixtures/flink/rich-state-A/savepoint-46a48f-b5c105e0343a/b26b0884-af62-4124-8080-1e83e0b17498"
    );

    /// Rows decoded from the first key group of `stream`, over every decodable state.
    fn decode(stream: &[u8]) -> Parse<usize> {
        let mut r = Reader::new(stream);
        let h = header(&mut r)?;
        let mut slots = Vec::new();
        let targets: Vec<Target> = h
            .states
            .iter()
            .map(|meta| {
                let columns = StateColumns::new(&h.key.ty, meta).ok()?;
                slots.push(columns);
                Some((slots.len() - 1, "event_time"))
            })
            .collect();
        // Key groups are contiguous after the header when uncompressed.
        entries(stream, &h, (0, &[r.pos() as i64]), 1, &targets, &mut slots)?;
        Ok(slots.iter().map(|s| s.key.len()).sum())
    }

    #[test]
    fn the_first_key_group_decodes() {
        assert!(decode(STREAM).unwrap() > 0);
    }

    /// Damaged keyed streams (truncated, bytes flipped): an error or entries, never a panic.
    #[test]
    fn damaged_streams_never_panic() {
        let head = &STREAM[..STREAM.len().min(6000)];
        for len in (0..head.len()).step_by(7) {
            let _ = decode(&head[..len]);
        }
        for damaged in crate::java::flipped(head, 0x2545_F491_4F6C_DD1D, 2000) {
            let _ = decode(&damaged);
        }
    }
}
