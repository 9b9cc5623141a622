//! What a reader checks before it trusts a manifest's bytes, and the limits that bound the
//! work a hostile manifest can cause (spec: "The manifest", "Limits").

use std::collections::HashSet;

use serde::Deserialize;

use super::{ManifestRaw, json_error};
use crate::FormatError;

/// Largest manifest a reader parses: far above any real savepoint's (a million shards take
/// about 250 MB), and a bound on the memory a hostile manifest can make a reader use.
pub const MAX_MANIFEST_BYTES: usize = 256 << 20;

/// Most operators a manifest may list.
pub const MAX_OPERATORS: usize = 10_000;

/// Most states one operator may have.
pub const MAX_STATES: usize = 1_000;

/// Most shards one state may have.
pub const MAX_SHARDS: usize = 1_000_000;

/// Most distinct layers (the base and its deltas) one keyed state may have: each is a
/// stream a reader merges at once.
pub const MAX_LAYERS: usize = 256;

/// Most splits one source may list.
pub const MAX_SPLITS: usize = 1_000_000;

/// Longest savepoint id, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// Step 1 of the parsing order beyond what the JSON parser checks: the size limit, no
/// byte-order mark, and no object with two members of one name (a reader keeping the first
/// and one keeping the last would disagree on what the manifest says).
pub(super) fn check_json(bytes: &[u8]) -> Result<(), FormatError> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(FormatError::Json {
            line: 1,
            column: 1,
            message: format!(
                "the manifest is {} bytes, more than the {MAX_MANIFEST_BYTES} a reader parses",
                bytes.len()
            ),
        });
    }
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return Err(FormatError::Json {
            line: 1,
            column: 1,
            message: "the manifest starts with a byte-order mark (UTF-8 without one is required)"
                .into(),
        });
    }
    serde_json::from_slice::<UniqueMembers>(bytes)
        .map(|_| ())
        .map_err(json_error)
}

/// A JSON value walked only to refuse objects with duplicate member names.
struct UniqueMembers;

impl<'de> Deserialize<'de> for UniqueMembers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueMembers)
    }
}

impl<'de> serde::de::Visitor<'de> for UniqueMembers {
    type Value = UniqueMembers;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<UniqueMembers>()?.is_some() {}
        Ok(self)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut seen = HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            if !seen.insert(name.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "duplicate member {name:?}"
                )));
            }
            map.next_value::<UniqueMembers>()?;
        }
        Ok(self)
    }
}

/// Savepoint ids: 1 to 128 of `A-Z a-z 0-9 _ -`, so that a writer can put (part of) one in
/// a file name and every store keeps it as it is.
pub(super) fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("empty savepoint id".into());
    }
    if id.len() > MAX_ID_LEN {
        return Err(format!("savepoint id is longer than {MAX_ID_LEN} bytes"));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-')))
    {
        return Err(format!(
            "savepoint id {id:?} contains {c:?}; allowed are A-Z a-z 0-9 _ -"
        ));
    }
    Ok(())
}

/// The limits that bound a reader's work on a hostile manifest.
pub(super) fn check_counts(raw: &ManifestRaw) -> Result<(), FormatError> {
    let over = |at: String, what: &str, n: usize, max: usize| {
        Err(FormatError::invalid(
            at,
            format!("{n} {what}, more than the {max} a reader accepts"),
        ))
    };
    if raw.operators.len() > MAX_OPERATORS {
        return over(
            "operators".into(),
            "operators",
            raw.operators.len(),
            MAX_OPERATORS,
        );
    }
    for (i, op) in raw.operators.iter().enumerate() {
        if op.states.len() > MAX_STATES {
            return over(
                format!("operators[{i}]"),
                "states",
                op.states.len(),
                MAX_STATES,
            );
        }
        for (j, st) in op.states.iter().enumerate() {
            if st.shards.len() > MAX_SHARDS {
                let at = format!("operators[{i}].states[{j}]");
                return over(at, "shards", st.shards.len(), MAX_SHARDS);
            }
            let layers: HashSet<u32> = st.shards.iter().map(|s| s.layer).collect();
            if layers.len() > MAX_LAYERS {
                let at = format!("operators[{i}].states[{j}]");
                return over(at, "layers", layers.len(), MAX_LAYERS);
            }
        }
        if let Some(source) = &op.source {
            if source.splits.len() > MAX_SPLITS {
                let at = format!("operators[{i}].source");
                return over(at, "splits", source.splits.len(), MAX_SPLITS);
            }
        }
    }
    Ok(())
}
