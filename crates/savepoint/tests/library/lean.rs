//! Lean keyed shards (format 1.1): the same state written with and without the stored
//! `key_hash` column reads, diffs, rescales, edits and migrates identically.

use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rewind_savepoint::format::{FormatVersion, LEAN_KEYED_SHARDS, Manifest};
use rewind_savepoint::{
    DiffOptions, Edit, GenerateOptions, Location, MigrateOptions, ReadOptions, RescaleOptions,
    SavepointInfo, SavepointReader, SavepointWriter, StateSpec, ValidateOptions, WriterOptions,
    diff, edit, generate, migrate, rescale, validate,
};

use crate::common::*;

/// A generated savepoint of `keys` keys at parallelism 3, row groups of 7 rows, lean or
/// full; the same seed gives the same content either way.
async fn generated(keys: u64, lean: bool) -> (tempfile::TempDir, Location) {
    let (dir, location) = temp_location();
    let options = GenerateOptions {
        keys,
        parallelism: 3,
        operators: 2,
        seed: 7,
        writer: WriterOptions {
            row_group_rows: 7,
            lean_keyed_shards: lean,
            ..Default::default()
        },
        ..Default::default()
    };
    generate(location.clone(), options).await.unwrap();
    (dir, location)
}

/// Every batch of every state, in order: `key_hash` included (computed for lean shards).
async fn everything(location: &Location, options: ReadOptions) -> Vec<RecordBatch> {
    let reader = SavepointReader::open(location.clone()).await.unwrap();
    let mut out = Vec::new();
    for op in &reader.manifest().operators {
        for st in &op.states {
            out.push(read_all(&reader, &op.uid, &st.name, options.clone()).await);
        }
    }
    out
}

async fn manifest(location: &Location) -> Manifest {
    SavepointReader::open(location.clone())
        .await
        .unwrap()
        .manifest()
        .clone()
}

async fn assert_valid(location: &Location) {
    let options = ValidateOptions {
        deep: true,
        ..Default::default()
    };
    let report = validate(location, options).await.unwrap();
    assert!(report.is_valid(), "{location}: {:?}", report.problems);
}

fn is_lean(m: &Manifest) -> bool {
    m.reader_features == [LEAN_KEYED_SHARDS.to_string()] && m.version == FormatVersion::V1_1
}

fn is_full(m: &Manifest) -> bool {
    m.reader_features.is_empty() && m.version == FormatVersion::V1_0
}

/// Every keyed shard records `keyed` as its `rewind.format_version`, every other `1.0`: a
/// lean shard needs a 1.1 reader, a full one does not.
fn assert_shard_versions(location: &Location, keyed: &str) {
    let versions = shard_format_versions(location);
    assert!(versions.iter().any(|(k, _, _)| *k), "{versions:?}");
    for (is_keyed, _, version) in versions {
        assert_eq!(version, if is_keyed { keyed } else { "1.0" });
    }
}

/// The Parquet column names and footer entries of every keyed shard.
fn shard_files(location: &Location, m: &Manifest) -> Vec<(Vec<String>, Option<String>, usize)> {
    let root = std::path::PathBuf::from(location.to_string());
    m.shards()
        .filter(|(_, st, _)| st.kind.is_keyed())
        .map(|(_, _, sh)| {
            let file = std::fs::File::open(root.join(&sh.path)).unwrap();
            let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
            let names = builder
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            let ranges = builder
                .metadata()
                .file_metadata()
                .key_value_metadata()
                .and_then(|kv| kv.iter().find(|e| e.key == "rewind.key_hash_ranges"))
                .and_then(|e| e.value.clone());
            (names, ranges, builder.metadata().num_row_groups())
        })
        .collect()
}

#[tokio::test]
async fn lean_shards_store_no_hash_and_read_as_full_ones() {
    let (_a, lean) = generated(200, true).await;
    let (_b, full) = generated(200, false).await;
    let (ml, mf) = (manifest(&lean).await, manifest(&full).await);
    assert!(is_lean(&ml), "{:?} {:?}", ml.version, ml.reader_features);
    assert!(is_full(&mf), "{:?} {:?}", mf.version, mf.reader_features);
    for (names, ranges, groups) in shard_files(&lean, &ml) {
        assert_eq!(names, ["key", "value"]);
        let ranges = ranges.expect("a lean shard records its row groups' ranges");
        assert_eq!(ranges.split(',').count(), groups, "{ranges}");
        assert!(groups > 1, "row groups of 7 rows");
    }
    for (names, ranges, _) in shard_files(&full, &mf) {
        assert_eq!(names, ["key_hash", "key", "value"]);
        assert_eq!(ranges, None);
    }
    assert_shard_versions(&lean, "1.1");
    assert_shard_versions(&full, "1.0");
    let bytes = |m: &Manifest| m.shards().map(|(_, _, s)| s.bytes).sum::<u64>();
    assert!(bytes(&ml) < bytes(&mf), "{} vs {}", bytes(&ml), bytes(&mf));
    assert_valid(&lean).await;
    assert_valid(&full).await;

    // Whole states, hash ranges (row groups pruned by the footer's ranges) and keys.
    assert_eq!(
        everything(&lean, ReadOptions::default()).await,
        everything(&full, ReadOptions::default()).await
    );
    let some_range =
        rewind_savepoint::format::HashRange::new(0x3000_0000_0000_0000, 0x9fff_ffff_ffff_ffff);
    let ranged = ReadOptions {
        hash_range: some_range,
        ..Default::default()
    };
    let got = everything(&lean, ranged.clone()).await;
    assert_eq!(got, everything(&full, ranged).await);
    assert!(got.iter().all(|b| b.num_rows() > 0 && b.num_rows() < 200));
    let keys: ArrayRef = Arc::new(Int64Array::from(vec![3, 77, 150, 100_000]));
    let by_key = ReadOptions {
        keys: Some(keys),
        ..Default::default()
    };
    let got = everything(&lean, by_key.clone()).await;
    assert_eq!(got, everything(&full, by_key).await);
    assert!(got.iter().all(|b| b.num_rows() == 3), "{got:?}");

    // Diff sees no difference between the two layouts.
    let report = diff(
        &SavepointReader::open(lean.clone()).await.unwrap(),
        &SavepointReader::open(full.clone()).await.unwrap(),
        &DiffOptions::default(),
    )
    .await
    .unwrap();
    assert!(report.is_identical(), "{report:?}");
}

#[tokio::test]
async fn rescale_keeps_the_layout_and_gives_the_same_rows() {
    let (_a, lean) = generated(300, true).await;
    let (_b, full) = generated(300, false).await;
    for to in [2, 5] {
        let (_c, lean_to) = temp_location();
        let (_d, full_to) = temp_location();
        let options = RescaleOptions {
            parallelism: Some(to),
            ..Default::default()
        };
        let source = SavepointReader::open(lean.clone()).await.unwrap();
        rescale(&source, lean_to.clone(), &options, None)
            .await
            .unwrap();
        let source = SavepointReader::open(full.clone()).await.unwrap();
        rescale(&source, full_to.clone(), &options, None)
            .await
            .unwrap();
        let (ml, mf) = (manifest(&lean_to).await, manifest(&full_to).await);
        assert!(is_lean(&ml) && is_full(&mf));
        for (names, ranges, groups) in shard_files(&lean_to, &ml) {
            assert_eq!(names, ["key", "value"]);
            assert_eq!(ranges.unwrap().split(',').count(), groups);
        }
        assert_shard_versions(&lean_to, "1.1");
        assert_shard_versions(&full_to, "1.0");
        assert_valid(&lean_to).await;
        // Row for row, in the same order.
        assert_eq!(
            everything(&lean_to, ReadOptions::default()).await,
            everything(&full_to, ReadOptions::default()).await
        );
        // Rescaling moves no row out of hash order: the same rows as the source.
        assert_eq!(
            everything(&lean_to, ReadOptions::default()).await,
            everything(&lean, ReadOptions::default()).await
        );
    }
}

#[tokio::test]
async fn migrate_goes_up_to_lean_and_down_to_full() {
    let (_a, full) = generated(120, false).await;
    let (_b, up) = temp_location();
    let (_c, down) = temp_location();
    let to = |v: FormatVersion| MigrateOptions {
        to_format_version: Some(v),
        ..Default::default()
    };
    let source = SavepointReader::open(full.clone()).await.unwrap();
    let report = migrate(&source, up.clone(), &[], &to(FormatVersion::V1_1))
        .await
        .unwrap();
    assert_eq!(report.shards_relayout, 6, "{report:?}");
    let source = SavepointReader::open(up.clone()).await.unwrap();
    let report = migrate(&source, down.clone(), &[], &to(FormatVersion::V1_0))
        .await
        .unwrap();
    assert_eq!(report.shards_relayout, 6, "{report:?}");
    assert!(!report.extensions_dropped);
    assert!(is_lean(&manifest(&up).await));
    assert!(is_full(&manifest(&down).await));
    assert_shard_versions(&up, "1.1");
    assert_shard_versions(&down, "1.0");
    assert_valid(&up).await;
    assert_valid(&down).await;
    let rows = everything(&full, ReadOptions::default()).await;
    assert_eq!(everything(&up, ReadOptions::default()).await, rows);
    assert_eq!(everything(&down, ReadOptions::default()).await, rows);
    // The way down is byte for byte the layout 1.0 readers know: key_hash first.
    for (names, ranges, _) in shard_files(&down, &manifest(&down).await) {
        assert_eq!(names, ["key_hash", "key", "value"]);
        assert_eq!(ranges, None);
    }
}

#[tokio::test]
async fn edits_of_a_lean_savepoint_stay_lean() {
    let (_dir, location) = temp_location();
    let options = WriterOptions {
        lean_keyed_shards: true,
        ..Default::default()
    };
    let w = SavepointWriter::create_with_options(
        location.clone(),
        SavepointInfo::new("job", "bootstrap"),
        options,
    )
    .await
    .unwrap();
    w.add_operator("words", "Words", 2).unwrap();
    w.add_state(
        "words",
        StateSpec::value("count", DataType::Utf8, DataType::Int64),
    )
    .unwrap();
    w.add_state(
        "words",
        StateSpec::value("empty", DataType::Utf8, DataType::Int64),
    )
    .unwrap();
    w.write_keyed("words", "count", vec![words(&["a", "b", "c", "d"])])
        .await
        .unwrap();
    w.write_keyed("words", "empty", vec![]).await.unwrap();
    let m = w.commit().await.unwrap();
    assert!(is_lean(&m));
    // Empty lean shards are valid files with no row groups and an empty range list.
    for (names, ranges, groups) in shard_files(&location, &m).into_iter().skip(2) {
        assert_eq!((names.len(), ranges.as_deref(), groups), (2, Some(""), 0));
    }
    assert_valid(&location).await;

    let (_e, edited) = temp_location();
    let source = SavepointReader::open(location.clone()).await.unwrap();
    let delete: ArrayRef = Arc::new(StringArray::from(vec!["a"]));
    let upsert = batch(vec![
        (
            "key",
            Arc::new(StringArray::from(vec!["b", "z"])) as ArrayRef,
        ),
        ("value", Arc::new(Int64Array::from(vec![20, 26]))),
    ]);
    let m = edit(
        &source,
        edited.clone(),
        &[
            Edit::DeleteKeys {
                uid: "words".into(),
                state: "count".into(),
                keys: vec![batch(vec![("key", delete)])],
            },
            Edit::Upsert {
                uid: "words".into(),
                state: "count".into(),
                rows: vec![upsert],
            },
        ],
    )
    .await
    .unwrap();
    assert!(is_lean(&m), "{:?}", m.reader_features);
    assert_valid(&edited).await;
    let reader = SavepointReader::open(edited.clone()).await.unwrap();
    let all = read_all(&reader, "words", "count", ReadOptions::default()).await;
    let keys = all.column_by_name("key").unwrap();
    let keys = keys.as_any().downcast_ref::<StringArray>().unwrap();
    let mut pairs: Vec<(String, i64)> = keys
        .iter()
        .map(|k| k.unwrap().to_string())
        .zip(int64_column(&all, "value"))
        .collect();
    pairs.sort();
    let want: Vec<(String, i64)> = [("b", 20), ("c", 1), ("d", 1), ("z", 26)]
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    assert_eq!(pairs, want);
}
