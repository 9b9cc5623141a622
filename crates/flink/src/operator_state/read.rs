//! Reading an operator state stream: its header's serializers and each state's elements.

use std::collections::BTreeMap;

use crate::java::{Parse, Reader};
use crate::metadata::OperatorStateHandle;
use crate::snapshots::snapshot_proxy;

/// A stream's elements by state, and its header (the bytes before the first element).
pub(crate) struct Elements<'a> {
    /// The header: everything before the first element.
    pub header: &'a [u8],
    /// Per state of the handle, in its order: each element's bytes.
    pub states: Vec<Vec<&'a [u8]>>,
}

/// The elements of `handle`'s states in `bytes`: each runs from its offset to the next
/// larger offset of any state (or the end; Flink's elements are never empty). Offsets past the end are clamped to it, so damaged
/// offsets give short elements, never a panic.
pub(crate) fn elements<'a>(bytes: &'a [u8], handle: &OperatorStateHandle) -> Elements<'a> {
    let clamp = |o: i64| usize::try_from(o).unwrap_or(0).min(bytes.len());
    let mut all: Vec<i64> = handle
        .states
        .iter()
        .flat_map(|s| s.offsets.iter().copied())
        .collect();
    all.sort_unstable();
    let header_end = all.first().map_or(bytes.len(), |&o| clamp(o));
    let states = handle
        .states
        .iter()
        .map(|s| {
            s.offsets
                .iter()
                .map(|&o| {
                    let start = clamp(o);
                    let end = all
                        .iter()
                        .find(|&&x| x > o)
                        .map_or(bytes.len(), |&x| clamp(x));
                    &bytes[start..end.max(start)]
                })
                .collect()
        })
        .collect();
    Elements {
        header: &bytes[..header_end],
        states,
    }
}

/// The element serializer class of each state, from the stream's header; a header that
/// cannot be parsed gives the states it named before the damage.
pub(crate) fn serializers(bytes: &[u8]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let _ = parse_serializers(&mut Reader::new(bytes), &mut out);
    out
}

fn parse_serializers(r: &mut Reader<'_>, out: &mut BTreeMap<String, String>) -> Parse<()> {
    let version = r.i32()?;
    if version >= 6 {
        r.bool()?; // compression
    }
    // Operator states, then broadcast states.
    for _ in 0..2 {
        let n = r.i16()?;
        for _ in 0..n.max(0) {
            let name = r.utf()?;
            r.i32()?;
            let options = r.count(4, "options")?;
            for _ in 0..options {
                r.utf()?;
                r.utf()?;
            }
            let serializers = r.count(6, "serializers")?;
            for _ in 0..serializers {
                let key = r.utf()?;
                let s = snapshot_proxy(r)?;
                if key == "VALUE_SERIALIZER" {
                    out.insert(name.clone(), s.class);
                }
            }
        }
    }
    Ok(())
}
