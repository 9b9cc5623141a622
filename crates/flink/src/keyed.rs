//! A subtask's keyed state in Flink's canonical format: the header (kvStateId -> state
//! name, kind and serializers) and the entries of each key group.

use crate::bytes::{Parse, Reader};
use crate::serializers::{Snapshot, Ty, Val, snapshot_proxy};

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
}

/// The keyed-state header (KeyedBackendSerializationProxy).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Header {
    pub compression: bool,
    pub key: Snapshot,
    pub states: Vec<StateMeta>,
}

pub(crate) fn header(r: &mut Reader<'_>) -> Parse<Header> {
    let version = r.i32()?;
    if version != 6 {
        return r.fail(format!(
            "keyed state header version {version} (only 6, Flink 1.17+, is read)"
        ));
    }
    let compression = r.bool()?;
    let key = snapshot_proxy(r)?;
    let n = r.i16()?;
    if n < 0 {
        return r.fail("negative state count");
    }
    let mut states = Vec::with_capacity(n as usize);
    for _ in 0..n {
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
            (3, _) => {
                flink_kind = "PRIORITY_QUEUE".into();
                Some(Kind::Timers)
            }
            (0 | 4, "VALUE" | "AGGREGATING" | "REDUCING" | "FOLDING") => Some(Kind::Value),
            (0 | 4, "LIST") => Some(Kind::List),
            (0 | 4, "MAP") => Some(Kind::Map),
            _ => None,
        };
        states.push(StateMeta {
            name,
            flink_kind,
            kind,
            namespace,
            value,
        });
    }
    Ok(Header {
        compression,
        key,
        states,
    })
}

/// One decoded entry: its state, key, namespace, user key (map state), and value; for
/// timers, the timestamp in `value`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub state: u16,
    pub key: Val,
    pub namespace: Val,
    pub user_key: Val,
    pub value: Val,
}

/// Reads every entry of the key groups at `offsets` (0 = empty). States whose values
/// cannot be decoded are skipped (`decodable[state]` false).
pub(crate) fn entries(
    stream: &[u8],
    header: &Header,
    offsets: &[i64],
    prefix_len: usize,
    decodable: &[bool],
    out: &mut Vec<Entry>,
) -> Parse<()> {
    for &offset in offsets.iter().filter(|o| **o > 0) {
        let mut r = Reader::at(stream, usize::try_from(offset).unwrap_or(usize::MAX))?;
        let mut state = r.u16()?;
        loop {
            let key_len = r.count(1, "key length")?;
            let key = r.bytes(key_len)?;
            let value_len = r.count(0, "value length")?;
            let value = r.bytes(value_len)?;
            // The flag lives in the key-group prefix, which is skipped below, so the key
            // bytes are decoded in place.
            let last = key.first().is_some_and(|b| b & 0x80 != 0);
            if key.len() < prefix_len {
                return r.fail("a key shorter than its key-group prefix");
            }
            if decodable.get(state as usize).copied().unwrap_or(false) {
                let meta =
                    header
                        .states
                        .get(state as usize)
                        .ok_or_else(|| crate::bytes::ParseError {
                            offset: r.pos(),
                            message: format!("state id {state} is not in the header"),
                        })?;
                out.push(entry(
                    header,
                    meta,
                    state,
                    &key[prefix_len.min(key.len())..],
                    value,
                )?);
            }
            if last {
                state = r.u16()?;
                if state == 0xFFFF {
                    break;
                }
            }
        }
    }
    Ok(())
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

fn entry(header: &Header, meta: &StateMeta, state: u16, key: &[u8], value: &[u8]) -> Parse<Entry> {
    let mut k = Reader::new(key);
    let key_ty = &header.key.ty;
    let mut e = Entry {
        state,
        key: Val::Null,
        namespace: Val::Null,
        user_key: Val::Null,
        value: Val::Null,
    };
    if meta.kind == Some(Kind::Timers) {
        let Some(Ty::Timer(tk, tn)) = meta.value.as_ref().map(|s| &s.ty) else {
            return k.fail(format!(
                "{}: a timer state without a timer serializer",
                meta.name
            ));
        };
        let ts = k.i64()? ^ i64::MIN;
        e.key = tk.read(&mut k)?;
        e.namespace = tn.read(&mut k)?;
        e.value = Val::Int(ts);
        return Ok(e);
    }
    let ns_ty = meta.namespace.as_ref().map_or(&Ty::Void, |s| &s.ty);
    let ambiguous = !key_ty.fixed_length() && !ns_ty.fixed_length();
    let start = k.pos();
    e.key = key_ty.read(&mut k)?;
    if ambiguous {
        let len = k.pos() - start;
        skip_ambiguous_length(&mut k, len)?;
    }
    let ns_start = k.pos();
    e.namespace = ns_ty.read(&mut k)?;
    if ambiguous {
        let len = k.pos() - ns_start;
        skip_ambiguous_length(&mut k, len)?;
    }
    let value_ty = meta.value.as_ref().map(|s| &s.ty);
    let mut v = Reader::new(value);
    match (meta.kind, value_ty) {
        (Some(Kind::Value), Some(t)) => e.value = t.read(&mut v)?,
        (Some(Kind::List), Some(Ty::List(item))) => {
            let mut items = Vec::new();
            while !v.is_empty() {
                items.push(item.read(&mut v)?);
                if !v.is_empty() {
                    v.u8()?; // the ',' between elements
                }
            }
            e.value = Val::List(items);
        }
        (Some(Kind::Map), Some(Ty::Map(uk, mv))) => {
            e.user_key = uk.read(&mut k)?;
            e.value = if v.bool()? {
                Val::Null
            } else {
                mv.read(&mut v)?
            };
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
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &[u8] = include_bytes!(
        "../../../fixtures/flink/rich-state-A/savepoint-46a48f-b5c105e0343a/b26b0884-af62-4124-8080-1e83e0b17498"
    );

    fn decode(stream: &[u8]) -> Parse<usize> {
        let mut r = Reader::new(stream);
        let h = header(&mut r)?;
        let all = vec![true; h.states.len()];
        let mut out = Vec::new();
        // Key groups are contiguous after the header when uncompressed.
        entries(stream, &h, &[r.pos() as i64], 1, &all, &mut out)?;
        Ok(out.len())
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
        for damaged in crate::bytes::flipped(head, 0x2545_F491_4F6C_DD1D, 2000) {
            let _ = decode(&damaged);
        }
    }
}
