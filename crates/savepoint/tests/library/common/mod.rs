//! Helpers shared by the library tests.
#![allow(dead_code, unused_imports)]

use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use futures::TryStreamExt;
use rewind_savepoint::{Location, ReadOptions, SavepointReader};

pub use rewind_test_support::batch;

pub fn counts(keys: &[i64]) -> RecordBatch {
    batch(vec![
        ("key", Arc::new(Int64Array::from(keys.to_vec())) as ArrayRef),
        (
            "value",
            Arc::new(UInt64Array::from_iter_values(
                keys.iter().map(|k| (*k as u64) * 10),
            )),
        ),
    ])
}

pub fn words(keys: &[&str]) -> RecordBatch {
    batch(vec![
        (
            "key",
            Arc::new(StringArray::from(keys.to_vec())) as ArrayRef,
        ),
        (
            "value",
            Arc::new(Int64Array::from_iter_values(
                keys.iter().map(|k| k.len() as i64),
            )),
        ),
    ])
}

/// A fresh local directory location (kept alive by the returned TempDir).
pub fn temp_location() -> (tempfile::TempDir, Location) {
    let dir = tempfile::tempdir().unwrap();
    let loc = Location::parse(dir.path().join("sp").to_str().unwrap()).unwrap();
    (dir, loc)
}

/// All rows of a state, concatenated.
pub async fn read_all(
    reader: &SavepointReader,
    uid: &str,
    state: &str,
    options: ReadOptions,
) -> RecordBatch {
    let batches: Vec<RecordBatch> = reader
        .read_state(uid, state, options)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let schema = batches
        .first()
        .map(|b| b.schema())
        .unwrap_or_else(|| Arc::new(Schema::empty()));
    arrow_select::concat::concat_batches(&schema, &batches).unwrap()
}

/// The values of an int64 column; none for a state with no rows (whose batch, from
/// [`read_all`], has no columns).
pub fn int64_column(batch: &RecordBatch, name: &str) -> Vec<i64> {
    if batch.num_rows() == 0 && batch.num_columns() == 0 {
        return Vec::new();
    }
    batch
        .column_by_name(name)
        .unwrap()
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .values()
        .to_vec()
}

pub fn key_type() -> DataType {
    DataType::Int64
}

/// The `rewind.format_version` footer entry of every shard of a local savepoint (spec:
/// "Shard files" 4), with whether its state is keyed and its layer.
pub fn shard_format_versions(location: &Location) -> Vec<(bool, u32, String)> {
    let root = std::path::PathBuf::from(location.to_string());
    let manifest = std::fs::read_to_string(root.join("_manifest.json")).unwrap();
    let manifest = rewind_savepoint::format::Manifest::from_json(manifest.as_bytes()).unwrap();
    manifest
        .shards()
        .map(|(_, st, sh)| {
            let file = match &sh.sibling {
                Some(sibling) => root.parent().unwrap().join(sibling).join(&sh.path),
                None => root.join(&sh.path),
            };
            let reader = parquet::file::serialized_reader::SerializedFileReader::new(
                std::fs::File::open(&file).unwrap(),
            )
            .unwrap();
            let version = parquet::file::reader::FileReader::metadata(&reader)
                .file_metadata()
                .key_value_metadata()
                .and_then(|kv| kv.iter().find(|e| e.key == "rewind.format_version"))
                .and_then(|e| e.value.clone())
                .unwrap();
            (st.kind.is_keyed(), sh.layer, version)
        })
        .collect()
}
