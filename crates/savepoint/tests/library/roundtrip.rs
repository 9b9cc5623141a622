use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch};
use arrow_schema::DataType;
use futures::TryStreamExt;
use rewind_savepoint::format::{HashRange, Redistribution, StateKind, hash_keys};
use rewind_savepoint::{
    Error, GenerateOptions, Location, ReadOptions, SavepointInfo, SavepointReader, SavepointWriter,
    StateSpec, ValidateOptions, generate, validate,
};

use crate::common::*;

async fn write_counts(
    location: Location,
    keys: &[i64],
    parallelism: u32,
) -> rewind_savepoint::format::Manifest {
    let writer = SavepointWriter::create(location, SavepointInfo::new("test-job", "bootstrap"))
        .await
        .unwrap();
    writer
        .add_operator("counter", "Counter", parallelism)
        .unwrap();
    writer
        .add_state(
            "counter",
            StateSpec::value("count", DataType::Int64, DataType::UInt64),
        )
        .unwrap();
    writer
        .write_keyed("counter", "count", vec![counts(keys)])
        .await
        .unwrap();
    writer.commit().await.unwrap()
}

#[tokio::test]
async fn keyed_value_state_round_trips_on_memory_and_local() {
    let keys: Vec<i64> = (0..5000).collect();
    let (_dir, local) = temp_location();
    let memory = Location::parse("memory://roundtrip/sp1").unwrap();
    for location in [local, memory] {
        let manifest = write_counts(location.clone(), &keys, 3).await;
        let state = manifest
            .operator("counter")
            .unwrap()
            .state("count")
            .unwrap();
        assert_eq!(state.shards.len(), 3);
        assert_eq!(state.rows(), 5000);
        let reader = SavepointReader::open(location.clone()).await.unwrap();
        assert_eq!(reader.manifest(), &manifest);
        let all = read_all(&reader, "counter", "count", ReadOptions::default()).await;
        let mut got = int64_column(&all, "key");
        got.sort();
        assert_eq!(got, keys);
        // key_hash is the hash of the key and sorted within each shard.
        let report = validate(
            &location,
            ValidateOptions {
                deep: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert!(report.is_valid(), "{:?}", report.problems);
        assert_eq!(report.shards_checked, 3);
    }
}

#[tokio::test]
async fn reads_one_hash_range_or_some_keys() {
    let keys: Vec<i64> = (0..20_000).collect();
    let (_dir, location) = temp_location();
    write_counts(location.clone(), &keys, 2).await;
    let reader = SavepointReader::open(location).await.unwrap();

    let range = HashRange::for_subtask(1, 4).unwrap();
    let part = read_all(
        &reader,
        "counter",
        "count",
        ReadOptions {
            hash_range: Some(range),
            ..Default::default()
        },
    )
    .await;
    let expected: Vec<i64> = {
        let hashes = hash_keys(&Int64Array::from(keys.clone())).unwrap();
        let mut v: Vec<i64> = keys
            .iter()
            .zip(hashes)
            .filter(|(_, h)| range.contains(*h))
            .map(|(k, _)| *k)
            .collect();
        v.sort();
        v
    };
    let mut got = int64_column(&part, "key");
    got.sort();
    assert_eq!(got, expected);

    let wanted: ArrayRef = Arc::new(Int64Array::from(vec![7, 19_999, 123_456]));
    let some = read_all(
        &reader,
        "counter",
        "count",
        ReadOptions {
            keys: Some(wanted),
            ..Default::default()
        },
    )
    .await;
    let mut got = int64_column(&some, "key");
    got.sort();
    assert_eq!(got, vec![7, 19_999]);
}

#[tokio::test]
async fn all_state_kinds_round_trip() {
    use arrow_array::builder::{ListBuilder, StringBuilder};
    use arrow_array::{StringArray, UInt32Array};
    let (_dir, location) = temp_location();
    let writer =
        SavepointWriter::create(location.clone(), SavepointInfo::new("kinds", "bootstrap"))
            .await
            .unwrap();
    writer.add_operator("op", "Op", 2).unwrap();
    writer
        .add_state(
            "op",
            StateSpec::list("tags", DataType::Utf8, DataType::Utf8),
        )
        .unwrap();
    writer
        .add_state(
            "op",
            StateSpec::map("attrs", DataType::Int64, DataType::Utf8, DataType::Int64),
        )
        .unwrap();
    writer
        .add_state(
            "op",
            StateSpec::timers("timers", DataType::Int64).with_namespace(DataType::Int64),
        )
        .unwrap();
    writer
        .add_state(
            "op",
            StateSpec::operator_list("offsets", DataType::UInt32, Redistribution::Split),
        )
        .unwrap();

    let mut tags = ListBuilder::new(StringBuilder::new());
    for k in 0..3 {
        for t in 0..k {
            tags.values().append_value(format!("t{t}"));
        }
        tags.append(true);
    }
    let tags = batch(vec![
        (
            "key",
            Arc::new(StringArray::from(vec!["a", "b", "c"])) as ArrayRef,
        ),
        ("value", Arc::new(tags.finish()) as ArrayRef),
    ]);
    writer.write_keyed("op", "tags", vec![tags]).await.unwrap();
    let attrs = batch(vec![
        ("key", Arc::new(Int64Array::from(vec![1, 1, 2])) as ArrayRef),
        (
            "user_key",
            Arc::new(StringArray::from(vec!["x", "y", "x"])) as ArrayRef,
        ),
        (
            "value",
            Arc::new(Int64Array::from(vec![10, 11, 20])) as ArrayRef,
        ),
    ]);
    writer
        .write_keyed("op", "attrs", vec![attrs])
        .await
        .unwrap();
    let timers = batch(vec![
        ("key", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
        (
            "namespace",
            Arc::new(Int64Array::from(vec![60_000, 120_000])) as ArrayRef,
        ),
        (
            "domain",
            Arc::new(StringArray::from(vec!["event_time", "processing_time"])) as ArrayRef,
        ),
        (
            "timestamp",
            Arc::new(Int64Array::from(vec![59_999, 119_999])) as ArrayRef,
        ),
    ]);
    writer
        .write_keyed("op", "timers", vec![timers])
        .await
        .unwrap();
    let offsets = |v: Vec<u32>| batch(vec![("value", Arc::new(UInt32Array::from(v)) as ArrayRef)]);
    writer
        .write_operator_list("op", "offsets", vec![offsets(vec![1, 2]), offsets(vec![3])])
        .await
        .unwrap();
    let manifest = writer.commit().await.unwrap();

    let op = manifest.operator("op").unwrap();
    assert_eq!(
        op.state("tags").unwrap().value_type.as_deref(),
        Some("list<utf8>")
    );
    assert_eq!(op.state("attrs").unwrap().kind, StateKind::Map);
    assert_eq!(op.state("offsets").unwrap().rows(), 3);
    let reader = SavepointReader::open(location.clone()).await.unwrap();
    let attrs = read_all(&reader, "op", "attrs", ReadOptions::default()).await;
    assert_eq!(attrs.num_rows(), 3);
    let names: Vec<_> = attrs
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["key_hash", "key", "user_key", "value"]);
    let timers = read_all(&reader, "op", "timers", ReadOptions::default()).await;
    let names: Vec<_> = timers
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names,
        ["key_hash", "key", "namespace", "domain", "timestamp"]
    );
    let offsets = read_all(&reader, "op", "offsets", ReadOptions::default()).await;
    assert_eq!(offsets.num_rows(), 3);
    let report = validate(
        &location,
        ValidateOptions {
            deep: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(report.is_valid(), "{:?}", report.problems);
}

#[tokio::test]
async fn writing_over_a_savepoint_fails_and_leaves_it_intact() {
    let (_dir, location) = temp_location();
    let first = write_counts(location.clone(), &[1, 2, 3], 1).await;
    let err = SavepointWriter::create(location.clone(), SavepointInfo::new("x", "bootstrap"))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    let reader = SavepointReader::open(location).await.unwrap();
    assert_eq!(reader.manifest().id, first.id);
}

#[tokio::test]
async fn racing_writers_one_wins() {
    let location = Location::parse("memory://race/sp").unwrap();
    let a = SavepointWriter::create(location.clone(), SavepointInfo::new("a", "bootstrap"))
        .await
        .unwrap();
    let b = SavepointWriter::create(location.clone(), SavepointInfo::new("b", "bootstrap"))
        .await
        .unwrap();
    for w in [&a, &b] {
        w.add_operator("counter", "Counter", 1).unwrap();
        w.add_state(
            "counter",
            StateSpec::value("count", DataType::Int64, DataType::UInt64),
        )
        .unwrap();
        w.write_keyed("counter", "count", vec![counts(&[1, 2])])
            .await
            .unwrap();
    }
    let a_id = a.id().unwrap();
    a.commit().await.unwrap();
    let err = b.commit().await.unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    let reader = SavepointReader::open(location.clone()).await.unwrap();
    assert_eq!(reader.manifest().id, a_id);
    // The loser's shard files are unlisted leftovers, never mixed into the winner.
    let report = validate(&location, ValidateOptions::default())
        .await
        .unwrap();
    assert!(
        report
            .problems
            .iter()
            .all(|p| p.kind == rewind_savepoint::ProblemKind::Unlisted)
    );
    assert_eq!(report.problems.len(), 1);
}

/// A writer that gives up deletes the files it wrote and nothing else: racing another
/// writer for one root, the loser's abort leaves the winner's savepoint whole and no
/// leftovers; a writer that aborts alone leaves the location empty.
#[tokio::test]
async fn an_aborted_writer_deletes_its_files_and_no_one_elses() {
    let (_dir, location) = temp_location();
    let create = |location: Location, job: &'static str| async move {
        let w = SavepointWriter::create(location, SavepointInfo::new(job, "bootstrap"))
            .await
            .unwrap();
        w.add_operator("counter", "Counter", 2).unwrap();
        w.add_state(
            "counter",
            StateSpec::value("count", DataType::Int64, DataType::UInt64),
        )
        .unwrap();
        w.write_keyed("counter", "count", vec![counts(&[1, 2, 3, 4])])
            .await
            .unwrap();
        w
    };
    let (a, b) = (
        create(location.clone(), "a").await,
        create(location.clone(), "b").await,
    );
    let files = |l: Location| async move { rewind_savepoint::list_files(&l).await.unwrap() };
    assert_eq!(files(location.clone()).await.len(), 4);
    a.commit().await.unwrap();
    assert_eq!(b.abort().await.unwrap(), 2);
    let report = validate(&location, ValidateOptions::default())
        .await
        .unwrap();
    assert!(
        report.is_valid() && report.problems.is_empty(),
        "{:?}",
        report.problems
    );
    assert_eq!(files(location.clone()).await.len(), 3);

    let (_dir, alone) = temp_location();
    let c = create(alone.clone(), "c").await;
    assert_eq!(c.abort().await.unwrap(), 2);
    assert!(files(alone).await.is_empty());
}

#[tokio::test]
async fn a_writer_dropped_before_commit_leaves_no_savepoint() {
    let (_dir, location) = temp_location();
    let writer = SavepointWriter::create(location.clone(), SavepointInfo::new("x", "bootstrap"))
        .await
        .unwrap();
    writer.add_operator("counter", "Counter", 1).unwrap();
    writer
        .add_state(
            "counter",
            StateSpec::value("count", DataType::Int64, DataType::UInt64),
        )
        .unwrap();
    writer
        .write_keyed("counter", "count", vec![counts(&[1])])
        .await
        .unwrap();
    drop(writer);
    let err = SavepointReader::open(location).await.unwrap_err();
    assert!(matches!(err, Error::Incomplete { files: 1, .. }), "{err}");
    assert!(
        err.to_string()
            .contains("incomplete savepoint: 1 files, no _manifest.json"),
        "{err}"
    );
}

#[tokio::test]
async fn unsorted_or_misplaced_rows_are_refused() {
    let (_dir, location) = temp_location();
    let writer = SavepointWriter::create(location, SavepointInfo::new("x", "bootstrap"))
        .await
        .unwrap();
    writer.add_operator("counter", "Counter", 2).unwrap();
    writer
        .add_state(
            "counter",
            StateSpec::value("count", DataType::Int64, DataType::UInt64),
        )
        .unwrap();
    let mut shard = writer
        .keyed_shard("counter", "count", HashRange::for_subtask(0, 2).unwrap())
        .unwrap();
    // Keys 0..50 hash all over the space: some fall outside subtask 0's half.
    let err = shard
        .write(&counts(&(0..50).collect::<Vec<_>>()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert!(
        err.to_string().contains("outside the shard's range")
            || err.to_string().contains("not sorted"),
        "{err}"
    );
    // A shard set that leaves a gap cannot be committed.
    let err = writer.commit().await.unwrap_err();
    assert!(err.to_string().contains("no shard covers"), "{err}");
}

#[tokio::test]
async fn wrong_column_types_are_named() {
    let (_dir, location) = temp_location();
    let writer = SavepointWriter::create(location, SavepointInfo::new("x", "bootstrap"))
        .await
        .unwrap();
    writer.add_operator("counter", "Counter", 1).unwrap();
    writer
        .add_state(
            "counter",
            StateSpec::value("count", DataType::Int64, DataType::Utf8),
        )
        .unwrap();
    let err = writer
        .write_keyed("counter", "count", vec![counts(&[1])])
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "counter/count: column \"value\" has type UInt64, the state declares Utf8"
    );
    let err = writer
        .add_state(
            "counter",
            StateSpec::value("f", DataType::Float64, DataType::Utf8),
        )
        .unwrap_err();
    assert!(err.to_string().contains("cannot be hashed"), "{err}");
}

#[tokio::test]
async fn generate_is_deterministic_and_valid() {
    let options = GenerateOptions {
        keys: 10_000,
        parallelism: 3,
        operators: 2,
        value_bytes: 16,
        seed: 7,
        sort_budget: 1000,
        ..Default::default()
    };
    let (_d1, a) = temp_location();
    let (_d2, b) = temp_location();
    let ma = generate(a.clone(), options.clone()).await.unwrap();
    let mb = generate(b.clone(), options).await.unwrap();
    assert_eq!(ma.operators.len(), 3);
    for (op, _, shard) in ma.shards() {
        let other = mb.operator(&op.uid).unwrap().states[0]
            .shards
            .iter()
            .find(|s| s.hash_range == shard.hash_range)
            .unwrap();
        assert_eq!(shard.rows, other.rows);
    }
    // Same seed, same logical content (the files differ only in the savepoint id they record).
    let ra = SavepointReader::open(a.clone()).await.unwrap();
    let rb = SavepointReader::open(b.clone()).await.unwrap();
    let (xa, xb) = (
        read_all(&ra, "op-0", "state", ReadOptions::default()).await,
        read_all(&rb, "op-0", "state", ReadOptions::default()).await,
    );
    assert_eq!(xa, xb);
    let report = validate(
        &a,
        ValidateOptions {
            deep: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(report.is_valid(), "{:?}", report.problems);
    let reader = SavepointReader::open(a).await.unwrap();
    let batches: Vec<RecordBatch> = reader
        .read_state("op-1", "state", ReadOptions::default())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 10_000);
    assert!(
        batches[0]
            .column(2)
            .as_any()
            .is::<arrow_array::StructArray>()
    );
    assert_eq!(batches[0].column(2).null_count(), 0);
}

/// Reading an operator list state's content gives every subtask's stored list, broadcast
/// copies included, in ascending subtask order even where the manifest lists the shards
/// in another order (spec: "Operator list state").
#[tokio::test]
async fn operator_lists_read_every_subtask_in_subtask_order() {
    let (_dir, location) = temp_location();
    let writer = SavepointWriter::create(location.clone(), SavepointInfo::new("job", "bootstrap"))
        .await
        .unwrap();
    writer.add_operator("source", "Source", 3).unwrap();
    writer
        .add_state(
            "source",
            StateSpec::operator_list("config", DataType::Int64, Redistribution::Broadcast),
        )
        .unwrap();
    let list = |v: Vec<i64>| batch(vec![("value", Arc::new(Int64Array::from(v)) as ArrayRef)]);
    writer
        .write_operator_list(
            "source",
            "config",
            vec![list(vec![10, 11]), list(vec![20]), list(vec![30, 31])],
        )
        .await
        .unwrap();
    writer.commit().await.unwrap();
    let manifest_file = std::path::PathBuf::from(location.to_string()).join("_manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_file).unwrap()).unwrap();
    let shards = &mut manifest["operators"][0]["states"][0]["shards"];
    shards.as_array_mut().unwrap().reverse();
    assert_eq!(shards[0]["subtask"], 2);
    std::fs::write(&manifest_file, manifest.to_string()).unwrap();

    let reader = SavepointReader::open(location).await.unwrap();
    let rows = read_all(&reader, "source", "config", ReadOptions::default()).await;
    assert_eq!(int64_column(&rows, "value"), [10, 11, 20, 30, 31]);
    // Restoring is another matter: every subtask of a broadcast state gets subtask 0's.
    let restored = reader
        .read_operator_list("source", "config", 1, 3)
        .await
        .unwrap();
    assert_eq!(int64_column(&restored, "value"), [10, 11]);
}

/// Every operation that derives a savepoint from another must record its parent, compact
/// included; validation reports one without it (spec: "lineage").
#[tokio::test]
async fn derived_savepoints_without_a_parent_are_reported() {
    for (operation, reported) in [
        ("rescale", true),
        ("edit", true),
        ("migrate", true),
        ("compact", true),
        ("bootstrap", false),
        ("engine", false),
    ] {
        let (_dir, location) = temp_location();
        let writer =
            SavepointWriter::create(location.clone(), SavepointInfo::new("job", operation))
                .await
                .unwrap();
        writer.add_operator("counter", "Counter", 1).unwrap();
        writer.commit().await.unwrap();
        let report = validate(&location, ValidateOptions::default())
            .await
            .unwrap();
        let kinds: Vec<_> = report.problems.iter().map(|p| p.kind).collect();
        let expected = if reported {
            vec![rewind_savepoint::ProblemKind::Lineage]
        } else {
            Vec::new()
        };
        assert_eq!(kinds, expected, "{operation}");
    }
}
