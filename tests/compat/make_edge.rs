//! Writes fixtures/v1-edge: format 1.0 savepoints for what fixtures/v1 never shows (empty
//! and multi-row-group shards, every key type, struct namespaces, namespaced maps, map
//! values, NaN and null lists, a checkpoint with lineage, a null position, shards that do
//! not follow subtask boundaries, keys of `timestamp[s]`, a unit Parquet lacks). Written once, like fixtures/v1, by
//! `cargo test -p rewind-tests --test compat -- --ignored make_fixtures`.

use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, Int64Builder, ListBuilder, MapBuilder, StringBuilder};
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Int32Array, Int64Array, LargeBinaryArray,
    LargeStringArray, StringArray, StructArray, TimestampMicrosecondArray, TimestampSecondArray,
    UInt8Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Fields};
use rewind_savepoint::format::{
    HashRange, JobInfo, ParentRef, SavepointKind, SplitEntry, hash_keys, map_of,
};
use rewind_savepoint::{Location, SavepointInfo, SavepointWriter, StateSpec, WriterOptions};

use crate::make::{batch, record_expected};

/// The cases of fixtures/v1-edge, in the order they are made.
pub const CASES: [&str; 4] = [
    "key-types",
    "namespaces-and-maps",
    "checkpoint-lineage",
    "timestamp-seconds",
];

pub async fn make(dir: &Path, name: &str) {
    match name {
        "key-types" => key_types(dir).await,
        "namespaces-and-maps" => namespaces_and_maps(dir).await,
        "checkpoint-lineage" => checkpoint_lineage(dir).await,
        "timestamp-seconds" => timestamp_seconds(dir).await,
        other => panic!("no recipe for fixture {other}"),
    }
    record_expected(dir);
}

async fn writer(dir: &Path, info: SavepointInfo, row_group_rows: usize) -> SavepointWriter {
    let location = Location::parse(dir.join("savepoint").to_str().unwrap()).unwrap();
    let options = WriterOptions {
        row_group_rows,
        ..WriterOptions::default()
    };
    SavepointWriter::create_with_options(location, info, options)
        .await
        .unwrap()
}

fn info(job: &str) -> SavepointInfo {
    let mut info = SavepointInfo::new(job, "bootstrap");
    info.job = JobInfo {
        name: job.into(),
        app_version: Some("1.0.0".into()),
        job_id: Some(format!("{job}-fixture")),
    };
    info.checkpoint_id = 7;
    info
}

/// One value state per key type the v1 fixtures lack, at parallelism 3 with row groups of
/// 4 rows: shards with several row groups, and empty shards (two bool keys, three
/// subtasks).
async fn key_types(dir: &Path) {
    let w = writer(dir, info("key-types"), 4).await;
    w.add_operator("keys", "One state per key type", 3).unwrap();
    let n = 20usize;
    let states: Vec<(&str, ArrayRef)> = vec![
        (
            "by_binary",
            Arc::new(BinaryArray::from_iter_values(
                (0..n).map(|i| vec![i as u8, 0xff, (i * 7) as u8]),
            )),
        ),
        ("by_bool", Arc::new(BooleanArray::from(vec![true, false]))),
        (
            "by_date",
            Arc::new(Date32Array::from_iter_values(
                (0..n as i32).map(|i| 20_000 + i * 31 - 300),
            )),
        ),
        (
            "by_timestamp",
            Arc::new(TimestampMicrosecondArray::from_iter_values(
                (0..n as i64).map(|i| 1_767_225_600_000_000 + i * 1_000_001),
            )),
        ),
        (
            "by_uint64",
            Arc::new(UInt64Array::from_iter_values(
                (0..n as u64).map(|i| u64::MAX - i * 3),
            )),
        ),
        (
            "by_uint8",
            Arc::new(UInt8Array::from_iter_values((0..n as u8).map(|i| i * 12))),
        ),
        (
            "by_large_utf8",
            Arc::new(LargeStringArray::from_iter_values(
                (0..n).map(|i| format!("large-{i:03}")),
            )),
        ),
        (
            "by_large_binary",
            Arc::new(LargeBinaryArray::from_iter_values(
                (0..n).map(|i| vec![(n - i) as u8; i % 4 + 1]),
            )),
        ),
    ];
    for (name, keys) in &states {
        w.add_state(
            "keys",
            StateSpec::value(name, keys.data_type().clone(), DataType::Int64),
        )
        .unwrap();
    }
    for (name, keys) in states {
        let values = Int64Array::from_iter_values(0..keys.len() as i64);
        w.write_keyed(
            "keys",
            name,
            vec![batch(vec![("key", keys), ("value", Arc::new(values))])],
        )
        .await
        .unwrap();
    }
    w.commit().await.unwrap();
}

/// A value state namespaced by a struct (a window with start and end), a map state
/// namespaced by an int64, a value state whose values are maps, and a list state with NaN
/// elements, null elements, an empty list and a null list.
async fn namespaces_and_maps(dir: &Path) {
    let w = writer(dir, info("windows-and-maps"), 128 * 1024).await;
    w.add_operator("windows", "Windowed counts", 2).unwrap();
    let window = Fields::from(vec![
        Field::new("start", DataType::Int64, false),
        Field::new("end", DataType::Int64, false),
    ]);
    w.add_state(
        "windows",
        StateSpec::value("counts", DataType::Utf8, DataType::Int64)
            .with_namespace(DataType::Struct(window.clone())),
    )
    .unwrap();
    w.add_state(
        "windows",
        StateSpec::map("tags", DataType::Int64, DataType::Utf8, DataType::Float64)
            .with_namespace(DataType::Int64),
    )
    .unwrap();
    w.add_state(
        "windows",
        StateSpec::value(
            "attributes",
            DataType::Utf8,
            map_of(DataType::Utf8, DataType::Int64),
        ),
    )
    .unwrap();
    w.add_state(
        "windows",
        StateSpec::list("readings", DataType::Int64, DataType::Float64),
    )
    .unwrap();

    let users = ["ada", "bob", "cy", "dee", "eve"];
    let (mut keys, mut starts, mut ends, mut counts) = (vec![], vec![], vec![], vec![]);
    for (i, u) in users.iter().enumerate() {
        for w in 0..(i % 3 + 1) as i64 {
            keys.push(*u);
            starts.push(w * 60_000);
            ends.push((w + 1) * 60_000);
            counts.push(i as i64 * 10 + w);
        }
    }
    let namespace = StructArray::new(
        window,
        vec![
            Arc::new(Int64Array::from(starts)) as ArrayRef,
            Arc::new(Int64Array::from(ends)),
        ],
        None,
    );
    w.write_keyed(
        "windows",
        "counts",
        vec![batch(vec![
            ("key", Arc::new(StringArray::from(keys)) as ArrayRef),
            ("namespace", Arc::new(namespace)),
            ("value", Arc::new(Int64Array::from(counts))),
        ])],
    )
    .await
    .unwrap();

    let (mut keys, mut namespaces, mut tags, mut weights) = (vec![], vec![], vec![], vec![]);
    for k in 0..6i64 {
        for ns in 0..(k % 2 + 1) {
            for tag in ["red", "green", "blue"].iter().take((k % 3 + 1) as usize) {
                keys.push(k * 1000 - 2500);
                namespaces.push(ns * 3_600_000);
                tags.push(*tag);
                weights.push(Some(k as f64 / 4.0).filter(|_| *tag != "green"));
            }
        }
    }
    w.write_keyed(
        "windows",
        "tags",
        vec![batch(vec![
            ("key", Arc::new(Int64Array::from(keys)) as ArrayRef),
            ("namespace", Arc::new(Int64Array::from(namespaces))),
            ("user_key", Arc::new(StringArray::from(tags))),
            ("value", Arc::new(arrow_array::Float64Array::from(weights))),
        ])],
    )
    .await
    .unwrap();

    let mut attributes = MapBuilder::new(None, StringBuilder::new(), Int64Builder::new());
    for (i, _) in users.iter().enumerate() {
        if i == 3 {
            attributes.append(false).unwrap(); // a null map value
            continue;
        }
        for a in 0..i {
            attributes.keys().append_value(format!("attr-{a}"));
            if a == 1 {
                attributes.values().append_null();
            } else {
                attributes.values().append_value((a * i) as i64);
            }
        }
        attributes.append(true).unwrap(); // user 0: an empty map
    }
    w.write_keyed(
        "windows",
        "attributes",
        vec![batch(vec![
            (
                "key",
                Arc::new(StringArray::from(users.to_vec())) as ArrayRef,
            ),
            ("value", Arc::new(attributes.finish())),
        ])],
    )
    .await
    .unwrap();

    let mut readings = ListBuilder::new(Float64Builder::new());
    readings.values().append_value(f64::NAN);
    readings.values().append_value(1.5);
    readings.append(true);
    readings.values().append_null();
    readings.values().append_value(-0.0);
    readings.values().append_value(f64::INFINITY);
    readings.append(true);
    readings.append(true); // []
    readings.append(false); // null
    w.write_keyed(
        "windows",
        "readings",
        vec![batch(vec![
            (
                "key",
                Arc::new(Int64Array::from(vec![1, 2, 3, 4])) as ArrayRef,
            ),
            ("value", Arc::new(readings.finish())),
        ])],
    )
    .await
    .unwrap();
    w.commit().await.unwrap();
}

/// A checkpoint (kind `checkpoint`) derived by a rescale: lineage with a parent and
/// parameters; a source whose splits have a null position, an object, a number and no
/// watermark; and a keyed state at parallelism 2 in three shards whose boundaries are not
/// the subtasks'.
async fn checkpoint_lineage(dir: &Path) {
    let mut info = info("orders");
    info.kind = SavepointKind::Checkpoint;
    info.checkpoint_id = 1234;
    info.lineage.operation = "rescale".into();
    info.lineage.parent = Some(ParentRef {
        id: "0b6c52e1-3c3f-4f0e-8d3a-6a1f9e2b7c40".into(),
        location: "s3://acme-savepoints/orders/chk-1233".into(),
    });
    info.lineage.parameters = Some(serde_json::json!({"parallelism": 2, "from": 3}));
    let w = writer(dir, info, 128 * 1024).await;
    w.add_operator("source", "Order log", 2).unwrap();
    w.set_source_splits(
        "source",
        vec![
            SplitEntry {
                id: "partition-0".into(),
                position: serde_json::Value::Null,
                watermark: None,
            },
            SplitEntry {
                id: "partition-1".into(),
                position: serde_json::json!({"offset": "9007199254740993"}),
                watermark: Some(-1000),
            },
            SplitEntry {
                id: "partition-2".into(),
                position: serde_json::json!(17),
                watermark: Some(1_767_225_600_000),
            },
        ],
    )
    .unwrap();
    w.add_operator("totals", "Totals per customer", 2).unwrap();
    w.add_state(
        "totals",
        StateSpec::value("total", DataType::Int64, DataType::Int64),
    )
    .unwrap();

    let keys: Vec<i64> = (0..24).collect();
    let hashes = hash_keys(&Int64Array::from(keys.clone())).unwrap();
    let mut rows: Vec<(u64, i64)> = hashes.into_iter().zip(keys).collect();
    rows.sort_unstable();
    // Cut at a quarter and at 0xc0..: neither is a boundary of parallelism 2 (0x80..).
    let cuts = [0x4000_0000_0000_0000u64, 0xc000_0000_0000_0000];
    let ranges = [
        HashRange::new(0, cuts[0] - 1).unwrap(),
        HashRange::new(cuts[0], cuts[1] - 1).unwrap(),
        HashRange::new(cuts[1], u64::MAX).unwrap(),
    ];
    for range in ranges {
        let mut shard = w.keyed_shard("totals", "total", range).unwrap();
        let part: Vec<i64> = rows
            .iter()
            .filter(|(h, _)| range.contains(*h))
            .map(|r| r.1)
            .collect();
        if !part.is_empty() {
            let values = Int64Array::from_iter_values(part.iter().map(|k| k * 100));
            shard
                .write(&batch(vec![
                    ("key", Arc::new(Int64Array::from(part)) as ArrayRef),
                    ("value", Arc::new(values)),
                ]))
                .await
                .unwrap();
        }
        shard.finish().await.unwrap();
    }
    w.commit().await.unwrap();
}

/// Keys of `timestamp[s]`, alone and in a struct, and a `timestamp[s]` namespace, at
/// parallelism 2 with row groups of 4 rows. Parquet has no seconds unit: arrow-rs stores
/// plain INT64 seconds without a logical type and only `ARROW:schema` says they are
/// timestamps; the key hash is of the seconds (spec: "Canonical key encoding").
async fn timestamp_seconds(dir: &Path) {
    let w = writer(dir, info("timestamp-seconds"), 4).await;
    w.add_operator("events", "Events by second", 2).unwrap();
    let seconds = DataType::Timestamp(arrow_schema::TimeUnit::Second, None);
    let event = Fields::from(vec![
        Field::new("at", seconds.clone(), false),
        Field::new("seq", DataType::Int32, false),
    ]);
    w.add_state(
        "events",
        StateSpec::value("by_second", seconds.clone(), DataType::Int64),
    )
    .unwrap();
    w.add_state(
        "events",
        StateSpec::value("by_event", DataType::Struct(event.clone()), DataType::Utf8)
            .with_namespace(seconds),
    )
    .unwrap();

    // Before and after the epoch, the epoch itself, and far from it.
    let instants: Vec<i64> = (0..12i64)
        .map(|i| 1_767_225_600 + i * 86_399 - 5 * 86_399)
        .chain([0, -1, -86_400 * 365, 4_102_444_800])
        .collect();
    let values = Int64Array::from_iter_values(0..instants.len() as i64);
    w.write_keyed(
        "events",
        "by_second",
        vec![batch(vec![
            (
                "key",
                Arc::new(TimestampSecondArray::from(instants.clone())) as ArrayRef,
            ),
            ("value", Arc::new(values)),
        ])],
    )
    .await
    .unwrap();

    let (mut ats, mut seqs, mut windows, mut labels) = (vec![], vec![], vec![], vec![]);
    for (i, at) in instants.iter().take(8).enumerate() {
        for seq in 0..(i % 2 + 1) as i32 {
            ats.push(*at);
            seqs.push(seq);
            windows.push(at - at.rem_euclid(3600));
            labels.push(format!("event-{i}-{seq}"));
        }
    }
    let key = StructArray::new(
        event,
        vec![
            Arc::new(TimestampSecondArray::from(ats)) as ArrayRef,
            Arc::new(Int32Array::from(seqs)),
        ],
        None,
    );
    w.write_keyed(
        "events",
        "by_event",
        vec![batch(vec![
            ("key", Arc::new(key) as ArrayRef),
            ("namespace", Arc::new(TimestampSecondArray::from(windows))),
            ("value", Arc::new(StringArray::from(labels))),
        ])],
    )
    .await
    .unwrap();
    w.commit().await.unwrap();
}
