use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::DataType;
use proptest::prelude::*;
use rewind_savepoint::format::Redistribution;
use rewind_savepoint::{
    Error, GenerateOptions, Location, ReadOptions, RescaleOptions, SavepointInfo, SavepointReader,
    SavepointWriter, ShardAction, StateSpec, ValidateOptions, WriterOptions, generate, rescale,
    validate,
};

use crate::common::*;

/// All (key, value) pairs of a generated state, sorted: the logical content.
async fn content(location: &Location, uid: &str) -> Vec<(i64, i64)> {
    let reader = SavepointReader::open(location.clone()).await.unwrap();
    let all = read_all(&reader, uid, "state", ReadOptions::default()).await;
    let mut rows: Vec<(i64, i64)> = int64_column(&all, "key")
        .into_iter()
        .zip(int64_column(&all, "value"))
        .collect();
    rows.sort();
    rows
}

async fn rescale_to(
    from: &Location,
    to: &Location,
    parallelism: u32,
) -> rewind_savepoint::RescaleStats {
    let reader = SavepointReader::open(from.clone()).await.unwrap();
    let options = RescaleOptions {
        parallelism: Some(parallelism),
        ..Default::default()
    };
    let (manifest, stats) = rescale(&reader, to.clone(), &options, None).await.unwrap();
    assert_eq!(manifest.lineage.operation, "rescale");
    assert_eq!(
        manifest.lineage.parent.as_ref().unwrap().id,
        reader.manifest().id
    );
    assert!(
        manifest
            .operators
            .iter()
            .all(|o| o.parallelism == parallelism)
    );
    let report = validate(
        to,
        ValidateOptions {
            deep: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(report.is_valid(), "{to}: {:?}", report.problems);
    stats
}

#[tokio::test]
async fn round_trip_2_5_3_2_keeps_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| Location::parse(dir.path().join(name).to_str().unwrap()).unwrap();
    let options = GenerateOptions {
        keys: 50_000,
        parallelism: 2,
        operators: 2,
        writer: WriterOptions {
            row_group_rows: 1000,
            ..Default::default()
        },
        ..Default::default()
    };
    generate(at("p2"), options).await.unwrap();
    let original = content(&at("p2"), "op-1").await;
    assert_eq!(original.len(), 50_000);
    let s5 = rescale_to(&at("p2"), &at("p5"), 5).await;
    // Most row groups fall wholly on one side of a new boundary and are copied encoded.
    assert!(s5.bytes_spliced > 10 * s5.bytes_reencoded, "{s5:?}");
    rescale_to(&at("p5"), &at("p3"), 3).await;
    rescale_to(&at("p3"), &at("p2b"), 2).await;
    for uid in ["op-0", "op-1"] {
        let expected = content(&at("p2"), uid).await;
        for name in ["p5", "p3", "p2b"] {
            assert_eq!(content(&at(name), uid).await, expected, "{name} {uid}");
        }
    }
    // Source splits and their positions are unchanged.
    let a = SavepointReader::open(at("p2")).await.unwrap();
    let b = SavepointReader::open(at("p2b")).await.unwrap();
    assert_eq!(
        a.manifest().operator("source").unwrap().source,
        b.manifest().operator("source").unwrap().source
    );
}

/// Shards per keyed state of `location`, by state name.
async fn shards_per_state(location: &Location) -> Vec<(String, usize)> {
    let reader = SavepointReader::open(location.clone()).await.unwrap();
    reader
        .manifest()
        .operators
        .iter()
        .flat_map(|o| o.states.iter())
        .filter(|s| s.kind.is_keyed())
        .map(|s| (s.name.clone(), s.shards.len()))
        .collect()
}

#[tokio::test]
async fn halving_parallelism_concatenates_row_groups_without_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| Location::parse(dir.path().join(name).to_str().unwrap()).unwrap();
    generate(
        at("p4"),
        GenerateOptions {
            keys: 10_000,
            parallelism: 4,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let stats = rescale_to(&at("p4"), &at("p2"), 2).await;
    assert_eq!(stats.bytes_reencoded, 0, "{stats:?}");
    assert!(stats.bytes_spliced > 0, "{stats:?}");
    assert!(
        shards_per_state(&at("p2"))
            .await
            .iter()
            .all(|(_, n)| *n == 2)
    );
    assert_eq!(
        content(&at("p2"), "op-0").await,
        content(&at("p4"), "op-0").await
    );
}

/// Every rescale writes exactly one shard per new subtask, whatever the source's layout.
#[tokio::test]
async fn one_shard_per_new_subtask() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| Location::parse(dir.path().join(name).to_str().unwrap()).unwrap();
    generate(
        at("p4"),
        GenerateOptions {
            keys: 20_000,
            parallelism: 4,
            writer: WriterOptions {
                row_group_rows: 500,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let expected = content(&at("p4"), "op-0").await;
    for (from, to, p) in [
        ("p4", "p3", 3u32),
        ("p4", "p8", 8),
        ("p3", "p2", 2),
        ("p8", "p5", 5),
    ] {
        let stats = rescale_to(&at(from), &at(to), p).await;
        let shards = shards_per_state(&at(to)).await;
        assert!(
            shards.iter().all(|(_, n)| *n == p as usize),
            "{from} -> {to}: {shards:?}"
        );
        assert!(
            stats.bytes_spliced > 5 * stats.bytes_reencoded,
            "{from} -> {to}: {stats:?}"
        );
        assert_eq!(content(&at(to), "op-0").await, expected, "{from} -> {to}");
    }
}

/// Shards whose Parquet layouts differ (here a struct value whose field one writer
/// declared non-nullable) cannot be concatenated: each keeps a file of its own, and every
/// row is still there.
#[tokio::test]
async fn shards_of_different_layouts_are_not_concatenated() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| Location::parse(dir.path().join(name).to_str().unwrap()).unwrap();
    let w = SavepointWriter::create(at("p2"), SavepointInfo::new("mixed", "bootstrap"))
        .await
        .unwrap();
    w.add_operator("op", "op", 2).unwrap();
    let value = |nullable| {
        DataType::Struct(arrow_schema::Fields::from(vec![arrow_schema::Field::new(
            "a",
            DataType::Utf8,
            nullable,
        )]))
    };
    w.add_state("op", StateSpec::value("state", DataType::Utf8, value(true)))
        .unwrap();
    let keys: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
    let hashes = rewind_savepoint::format::hash_keys(&StringArray::from(keys.clone())).unwrap();
    let mut rows: Vec<(u64, String)> = hashes.into_iter().zip(keys).collect();
    rows.sort();
    for (subtask, nullable) in [(0u32, false), (1, true)] {
        let range = rewind_savepoint::format::HashRange::for_subtask(subtask, 2).unwrap();
        let part: Vec<&str> = rows
            .iter()
            .filter(|(h, _)| range.contains(*h))
            .map(|(_, k)| k.as_str())
            .collect();
        let DataType::Struct(fields) = value(nullable) else {
            unreachable!()
        };
        let values = arrow_array::StructArray::new(
            fields,
            vec![Arc::new(StringArray::from(part.clone())) as ArrayRef],
            None,
        );
        let batch = RecordBatch::try_from_iter(vec![
            ("key", Arc::new(StringArray::from(part)) as ArrayRef),
            ("value", Arc::new(values) as ArrayRef),
        ])
        .unwrap();
        let mut shard = w.keyed_shard("op", "state", range).unwrap();
        shard.write(&batch).await.unwrap();
        shard.finish().await.unwrap();
    }
    w.commit().await.unwrap();
    rescale_to(&at("p2"), &at("p1"), 1).await;
    assert_eq!(
        shards_per_state(&at("p1")).await,
        [("state".to_string(), 2)]
    );
    let reader = SavepointReader::open(at("p1")).await.unwrap();
    let mut stream = reader
        .read_state("op", "state", ReadOptions::default())
        .await
        .unwrap();
    let mut read = 0;
    while let Some(batch) = futures::StreamExt::next(&mut stream).await {
        read += batch.unwrap().num_rows();
    }
    assert_eq!(read, 200);
}

#[tokio::test]
async fn operator_state_is_redealt_by_mode() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| Location::parse(dir.path().join(name).to_str().unwrap()).unwrap();
    let w = SavepointWriter::create(at("p3"), SavepointInfo::new("ops", "bootstrap"))
        .await
        .unwrap();
    w.add_operator("src", "Source", 3).unwrap();
    for (name, mode) in [
        ("s", Redistribution::Split),
        ("u", Redistribution::Union),
        ("b", Redistribution::Broadcast),
    ] {
        w.add_state("src", StateSpec::operator_list(name, DataType::Utf8, mode))
            .unwrap();
    }
    let strings = |v: &[&str]| {
        batch(vec![(
            "value",
            Arc::new(StringArray::from(v.to_vec())) as ArrayRef,
        )])
    };
    w.write_operator_list(
        "src",
        "s",
        vec![
            strings(&["a", "b", "c"]),
            strings(&["d"]),
            strings(&["e", "f", "g"]),
        ],
    )
    .await
    .unwrap();
    w.write_operator_list(
        "src",
        "u",
        vec![strings(&["x"]), strings(&["y"]), strings(&[])],
    )
    .await
    .unwrap();
    w.write_operator_list(
        "src",
        "b",
        vec![strings(&["cfg"]), strings(&["cfg"]), strings(&["cfg"])],
    )
    .await
    .unwrap();
    w.commit().await.unwrap();

    for p in [2u32, 5] {
        let name = format!("p{p}");
        rescale_to(&at("p3"), &at(&name), p).await;
        let reader = SavepointReader::open(at(&name)).await.unwrap();
        let per_subtask = |state: &str| {
            let entry = reader.state("src", state).unwrap().clone();
            let location = at(&name);
            async move {
                let mut out = vec![Vec::new(); p as usize];
                for shard in &entry.shards {
                    let bytes = std::fs::read(
                        std::path::Path::new(&location.to_string()).join(&shard.path),
                    )
                    .unwrap();
                    let reader =
                        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                            bytes::Bytes::from(bytes),
                        )
                        .unwrap()
                        .build()
                        .unwrap();
                    for b in reader {
                        let b: RecordBatch = b.unwrap();
                        let v = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
                        out[shard.subtask.unwrap() as usize]
                            .extend(v.iter().map(|s| s.unwrap().to_string()));
                    }
                }
                out
            }
        };
        let split = per_subtask("s").await;
        let flat: Vec<String> = split.concat();
        assert_eq!(flat, ["a", "b", "c", "d", "e", "f", "g"], "p={p}");
        let sizes: Vec<usize> = split.iter().map(Vec::len).collect();
        assert!(
            sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
            "{sizes:?}"
        );
        // Union: the new lists concatenate to the old ones, so every subtask restores
        // each element exactly once.
        assert_eq!(per_subtask("u").await.concat(), ["x", "y"], "p={p}");
        for t in 0..p {
            let restored = reader.read_operator_list("src", "u", t, p).await.unwrap();
            let v = restored
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            let v: Vec<&str> = v.iter().map(|s| s.unwrap()).collect();
            assert_eq!(v, ["x", "y"], "p={p} subtask {t}");
        }
        assert!(
            per_subtask("b").await.iter().all(|v| v == &["cfg"]),
            "p={p}"
        );
    }
}

/// Keys sorted by key hash, as a keyed shard takes them.
fn by_hash(keys: &[i64]) -> Vec<i64> {
    let hashes =
        rewind_savepoint::format::hash_keys(&arrow_array::Int64Array::from(keys.to_vec())).unwrap();
    let mut pairs: Vec<(u64, i64)> = hashes.into_iter().zip(keys.iter().copied()).collect();
    pairs.sort();
    pairs.into_iter().map(|(_, k)| k).collect()
}

/// A savepoint whose rescale to `every_path_options` takes every path: `kept` is copied
/// (parallelism unchanged), `cut` re-cut (2 -> 3), `layered` merged (a delta layer) and
/// `src`'s split list re-dealt (3 -> 2).
async fn every_path_savepoint(at: &Location) {
    let w = SavepointWriter::create(at.clone(), SavepointInfo::new("paths", "bootstrap"))
        .await
        .unwrap();
    let value = || StateSpec::value("state", key_type(), DataType::UInt64);
    for (uid, parallelism) in [("kept", 2), ("cut", 2), ("layered", 1)] {
        w.add_operator(uid, uid, parallelism).unwrap();
        w.add_state(uid, value()).unwrap();
    }
    let keys: Vec<i64> = (0..2000).collect();
    w.write_keyed("kept", "state", vec![counts(&keys)])
        .await
        .unwrap();
    w.write_keyed("cut", "state", vec![counts(&keys)])
        .await
        .unwrap();
    let full = rewind_savepoint::format::HashRange::FULL;
    let mut base = w.keyed_shard("layered", "state", full).unwrap();
    base.write(&counts(&by_hash(&[1, 2, 3]))).await.unwrap();
    base.finish().await.unwrap();
    let changed = by_hash(&[2, 4]);
    let delta = batch(vec![
        (
            "key",
            Arc::new(arrow_array::Int64Array::from(changed.clone())) as ArrayRef,
        ),
        (
            "value",
            Arc::new(arrow_array::UInt64Array::from(vec![7u64; changed.len()])),
        ),
        (
            "deleted",
            Arc::new(arrow_array::BooleanArray::from(vec![false; changed.len()])),
        ),
    ]);
    let mut layer = w.keyed_delta_shard("layered", "state", full, 1).unwrap();
    layer.write(&delta).await.unwrap();
    layer.finish().await.unwrap();
    w.add_operator("src", "Source", 3).unwrap();
    w.add_state(
        "src",
        StateSpec::operator_list("splits", DataType::Utf8, Redistribution::Split),
    )
    .unwrap();
    let strings = |v: &[&str]| {
        batch(vec![(
            "value",
            Arc::new(StringArray::from(v.to_vec())) as ArrayRef,
        )])
    };
    w.write_operator_list(
        "src",
        "splits",
        vec![strings(&["a", "b"]), strings(&["c"]), strings(&["d"])],
    )
    .await
    .unwrap();
    w.commit().await.unwrap();
}

fn every_path_options() -> RescaleOptions {
    RescaleOptions {
        operators: [("cut".to_string(), 3), ("src".to_string(), 2)].into(),
        ..Default::default()
    }
}

/// Progress sees every shard written, whichever path wrote it: its figures add up to the
/// new manifest's shard bytes, one call per shard, and the shard count agrees.
#[tokio::test]
async fn progress_counts_every_shard_of_every_path() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| Location::parse(dir.path().join(name).to_str().unwrap()).unwrap();
    every_path_savepoint(&at("src")).await;
    let reader = SavepointReader::open(at("src")).await.unwrap();
    let plan = rewind_savepoint::plan_rescale(reader.manifest(), &every_path_options()).unwrap();
    let paths: std::collections::BTreeSet<&str> = plan
        .operators
        .iter()
        .flat_map(|o| o.states.iter().flat_map(|s| s.actions.iter()))
        .map(|a| match a {
            ShardAction::Copy { .. } => "copy",
            ShardAction::Recut { .. } => "recut",
            ShardAction::Merge { .. } => "merge",
            ShardAction::Redeal { .. } => "redeal",
        })
        .collect();
    assert_eq!(
        paths.into_iter().collect::<Vec<_>>(),
        ["copy", "merge", "recut", "redeal"]
    );
    let reported = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = reported.clone();
    let progress: Arc<dyn Fn(u64) + Send + Sync> = Arc::new(move |n| sink.lock().unwrap().push(n));
    let (manifest, stats) = rescale(&reader, at("dest"), &every_path_options(), Some(progress))
        .await
        .unwrap();
    let written: Vec<u64> = manifest.shards().map(|(_, _, s)| s.bytes).collect();
    // kept 2 + cut 3 + layered 1 + src 2.
    assert_eq!(written.len(), 8);
    let reported = reported.lock().unwrap().clone();
    assert_eq!(reported.len(), written.len());
    assert_eq!(reported.iter().sum::<u64>(), written.iter().sum::<u64>());
    assert_eq!(stats.shards_written, 8);
    let report = validate(&at("dest"), ValidateOptions::default())
        .await
        .unwrap();
    assert!(report.is_valid(), "{:?}", report.problems);
}

/// The error `read_state` gives on `uid/state` of the savepoint at `at`.
async fn read_error(at: &Location, uid: &str) -> Error {
    let reader = SavepointReader::open(at.clone()).await.unwrap();
    let read: Result<Vec<RecordBatch>, Error> = match reader
        .read_state(uid, "state", ReadOptions::default())
        .await
    {
        Ok(stream) => futures::TryStreamExt::try_collect(stream).await,
        Err(e) => Err(e),
    };
    read.unwrap_err()
}

/// A rescale over a savepoint with a bad source shard fails as the reader does on it:
/// a corrupt-shard error naming that file, with the reader's message.
async fn rescale_fails_as_the_reader(at: &Location, shard_path: &str) {
    let expected = read_error(at, "op-0").await;
    let Error::Corrupt { path, .. } = &expected else {
        panic!("the reader gave {expected:?}")
    };
    assert_eq!(path, &format!("{at}/{shard_path}"));
    let reader = SavepointReader::open(at.clone()).await.unwrap();
    let options = RescaleOptions {
        parallelism: Some(3),
        ..Default::default()
    };
    let dest = Location::parse(&format!("{at}-rescaled")).unwrap();
    let got = rescale(&reader, dest, &options, None).await.unwrap_err();
    assert!(matches!(got, Error::Corrupt { .. }), "{got:?}");
    assert_eq!(got.to_string(), expected.to_string());
}

/// Generates a savepoint at parallelism 1 (its one shard per state is re-cut at 3, so
/// every action on `op-0/state` reads the same file) and returns its manifest as JSON and
/// the path of that shard.
async fn bad_shard_source(at: &Location) -> (serde_json::Value, String) {
    generate(
        at.clone(),
        GenerateOptions {
            keys: 2000,
            parallelism: 1,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{at}/_manifest.json")).unwrap()).unwrap();
    let op = manifest["operators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["uid"] == "op-0")
        .unwrap();
    assert_eq!(op["states"][0]["name"], "state");
    let shard = op["states"][0]["shards"][0]["path"]
        .as_str()
        .unwrap()
        .to_string();
    (manifest, shard)
}

#[tokio::test]
async fn a_truncated_source_shard_fails_as_the_reader_says() {
    let dir = tempfile::tempdir().unwrap();
    let at = Location::parse(dir.path().join("p1").to_str().unwrap()).unwrap();
    let (_, shard) = bad_shard_source(&at).await;
    let file = dir.path().join("p1").join(&shard);
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..300]).unwrap();
    let Error::Corrupt { message, .. } = read_error(&at, "op-0").await else {
        panic!("not a corrupt shard")
    };
    assert!(message.starts_with("truncated: 300 bytes"), "{message}");
    rescale_fails_as_the_reader(&at, &shard).await;
}

#[tokio::test]
async fn a_source_shard_of_other_types_fails_as_the_reader_says() {
    let dir = tempfile::tempdir().unwrap();
    let at = Location::parse(dir.path().join("p1").to_str().unwrap()).unwrap();
    let (mut manifest, shard) = bad_shard_source(&at).await;
    for op in manifest["operators"].as_array_mut().unwrap() {
        if op["uid"] == "op-0" {
            op["states"][0]["value_type"] = "utf8".into();
        }
    }
    std::fs::write(
        dir.path().join("p1/_manifest.json"),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    let Error::Corrupt { message, .. } = read_error(&at, "op-0").await else {
        panic!("not a corrupt shard")
    };
    assert_eq!(
        message,
        "column \"value\" has type int64, the manifest says utf8"
    );
    rescale_fails_as_the_reader(&at, &shard).await;
}

#[tokio::test]
async fn impossible_requests_fail_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| Location::parse(dir.path().join(name).to_str().unwrap()).unwrap();
    generate(
        at("src"),
        GenerateOptions {
            keys: 100,
            parallelism: 2,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let reader = SavepointReader::open(at("src")).await.unwrap();
    let zero = RescaleOptions {
        parallelism: Some(0),
        ..Default::default()
    };
    assert!(matches!(
        rescale(&reader, at("a"), &zero, None).await,
        Err(Error::InvalidInput(_))
    ));
    let unknown = RescaleOptions {
        operators: [("nope".to_string(), 2)].into(),
        ..Default::default()
    };
    assert!(matches!(
        rescale(&reader, at("a"), &unknown, None).await,
        Err(Error::UnknownOperator { .. })
    ));
    let ok = RescaleOptions {
        parallelism: Some(3),
        ..Default::default()
    };
    assert!(matches!(
        rescale(&reader, at("src"), &ok, None).await,
        Err(Error::AlreadyExists { .. })
    ));
    assert!(
        !dir.path().join("a").exists(),
        "nothing written for a refused request"
    );
}

#[tokio::test]
async fn rescale_across_stores() {
    let dir = tempfile::tempdir().unwrap();
    let local = Location::parse(dir.path().join("local").to_str().unwrap()).unwrap();
    let memory = Location::parse("memory://rescale-cross/sp").unwrap();
    generate(
        memory.clone(),
        GenerateOptions {
            keys: 5000,
            parallelism: 3,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    rescale_to(&memory, &local, 4).await;
    assert_eq!(
        content(&memory, "op-0").await,
        content(&local, "op-0").await
    );
    let back = Location::parse("memory://rescale-cross/back").unwrap();
    rescale_to(&local, &back, 3).await;
    assert_eq!(content(&memory, "op-0").await, content(&back, "op-0").await);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn any_rescale_keeps_the_content(keys in 0u64..3000, from in 1u32..7, to in 1u32..9, rows in 1usize..700, lean in any::<bool>()) {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let at = |name: &str| Location::parse(dir.path().join(name).to_str().unwrap()).unwrap();
            // Full and lean keyed shards (format 1.1: no stored key hash) alike.
            let writer = WriterOptions { row_group_rows: rows, lean_keyed_shards: lean, ..Default::default() };
            let options = GenerateOptions { keys, parallelism: from, writer, ..Default::default() };
            generate(at("a"), options).await.unwrap();
            rescale_to(&at("a"), &at("b"), to).await;
            assert_eq!(content(&at("a"), "op-0").await, content(&at("b"), "op-0").await);
        });
    }
}
