//! Lean keyed shards (format 1.1, reader feature `lean_keyed_shards`): keyed shards
//! without the stored `key_hash` column. Readers compute each row's hash from its key; the
//! hash range of every row group, which the column's statistics gave, is in the footer's
//! key-value metadata under [`HASH_RANGES_KEY`] (spec: "Lean keyed shards").

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::{ArrayRef, RecordBatch, UInt64Array};
use arrow_schema::{Field, Schema};
use parquet::file::metadata::ParquetMetaData;
use rewind_format::{LEAN_KEYED_SHARDS, Manifest, hash_keys};

use crate::spec::columns;

/// The footer key of a lean shard's row-group hash ranges.
pub(crate) const HASH_RANGES_KEY: &str = "rewind.key_hash_ranges";

/// How a row group with no rows is written in [`HASH_RANGES_KEY`].
const EMPTY_GROUP: &str = "empty";

/// Whether `manifest` allows lean keyed shards.
pub(crate) fn allowed(manifest: &Manifest) -> bool {
    manifest
        .reader_features
        .iter()
        .any(|f| f == LEAN_KEYED_SHARDS)
}

/// Whether a keyed shard's schema is the lean layout (no `key_hash` first).
pub(crate) fn is_lean(schema: &Schema) -> bool {
    schema
        .fields()
        .first()
        .is_none_or(|f| f.name() != columns::KEY_HASH)
}

/// Each row's key hash: the stored column, or computed from `key` in a lean batch.
pub(crate) fn key_hashes(batch: &RecordBatch) -> Result<UInt64Array, String> {
    if let Some(stored) = batch
        .column_by_name(columns::KEY_HASH)
        .and_then(|c| c.as_primitive_opt::<UInt64Type>())
    {
        return Ok(stored.clone());
    }
    let key = batch.column_by_name(columns::KEY).ok_or("no key column")?;
    Ok(UInt64Array::from(
        hash_keys(key.as_ref()).map_err(|e| e.to_string())?,
    ))
}

/// A lean batch with `key_hash` computed and put first, as a full shard stores it: what
/// every reader of this library sees, whatever the layout on disk.
pub(crate) fn with_key_hash(batch: RecordBatch) -> Result<RecordBatch, String> {
    if batch
        .schema()
        .fields()
        .first()
        .is_some_and(|f| f.name() == columns::KEY_HASH)
    {
        return Ok(batch);
    }
    let hashes = key_hashes(&batch)?;
    let schema = batch.schema();
    let mut fields = vec![Arc::new(Field::new(
        columns::KEY_HASH,
        arrow_schema::DataType::UInt64,
        false,
    ))];
    fields.extend(schema.fields().iter().cloned());
    let mut columns: Vec<ArrayRef> = vec![Arc::new(hashes)];
    columns.extend(batch.columns().iter().cloned());
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| e.to_string())
}

/// The batch without its first column (`key_hash`): what a lean shard stores.
pub(crate) fn without_key_hash(batch: &RecordBatch) -> RecordBatch {
    batch
        .project(&(1..batch.num_columns()).collect::<Vec<_>>())
        .unwrap_or_else(|_| batch.clone())
}

/// The value of [`HASH_RANGES_KEY`] for row groups with these `(min, max)` hashes (`None`
/// for a row group with no rows): `%016x-%016x` per row group, comma-separated.
pub(crate) fn format_ranges(groups: &[Option<(u64, u64)>]) -> String {
    groups
        .iter()
        .map(|g| match g {
            Some((lo, hi)) => format!("{lo:016x}-{hi:016x}"),
            None => EMPTY_GROUP.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The recorded hash range of every row group of a lean shard, or what is wrong with it.
pub(crate) fn row_group_ranges(
    metadata: &ParquetMetaData,
) -> Result<Vec<Option<(u64, u64)>>, String> {
    let value = metadata
        .file_metadata()
        .key_value_metadata()
        .and_then(|kvs| kvs.iter().find(|kv| kv.key == HASH_RANGES_KEY))
        .and_then(|kv| kv.value.as_deref())
        .ok_or_else(|| {
            format!("a keyed shard without key_hash needs {HASH_RANGES_KEY} in its footer")
        })?;
    let groups = metadata.row_groups();
    let entries: Vec<&str> = if value.is_empty() {
        Vec::new()
    } else {
        value.split(',').collect()
    };
    if entries.len() != groups.len() {
        return Err(format!(
            "{HASH_RANGES_KEY} lists {} row groups, the file has {}",
            entries.len(),
            groups.len()
        ));
    }
    entries
        .iter()
        .zip(groups)
        .enumerate()
        .map(|(i, (entry, group))| {
            let parsed = parse_entry(entry);
            match (parsed, group.num_rows()) {
                (Some(None), 0) => Ok(None),
                (Some(Some((lo, hi))), n) if n > 0 && lo <= hi => Ok(Some((lo, hi))),
                _ => Err(format!(
                    "{HASH_RANGES_KEY}: entry {i} {entry:?} does not describe row group {i} of {} rows",
                    group.num_rows()
                )),
            }
        })
        .collect()
}

/// `Some(None)` for an empty row group, `Some(Some(range))`, or `None` when malformed.
fn parse_entry(entry: &str) -> Option<Option<(u64, u64)>> {
    if entry == EMPTY_GROUP {
        return Some(None);
    }
    let (lo, hi) = entry.split_once('-')?;
    let hex = |s: &str| {
        (s.len() == 16
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| u64::from_str_radix(s, 16).ok())
        .flatten()
    };
    Some(Some((hex(lo)?, hex(hi)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_round_trip_and_malformed_entries_are_refused() {
        let groups = [Some((0, 5)), None, Some((u64::MAX - 1, u64::MAX))];
        let text = format_ranges(&groups);
        assert_eq!(
            text,
            "0000000000000000-0000000000000005,empty,fffffffffffffffe-ffffffffffffffff"
        );
        for entry in text.split(',') {
            assert!(parse_entry(entry).is_some());
        }
        for bad in [
            "",
            "5-6",
            "0000000000000000",
            "000000000000000G-0000000000000000",
            "EMPTY",
        ] {
            assert_eq!(parse_entry(bad), None, "{bad}");
        }
        assert_eq!(format_ranges(&[]), "");
    }
}
