//! Writes the fixtures, once. Run by hand when adding a case:
//!
//! ```sh
//! cargo test -p rewind-tests --test compat -- --ignored make_fixtures
//! ```
//!
//! Existing fixture folders are never touched: a golden fixture is never regenerated.
//! A new format version adds a new folder (fixtures/v2/...).

use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{
    ArrayRef, Float64Array, Int64Array, StringArray, StructArray, TimestampMillisecondArray,
    UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Fields, TimeUnit};
use rewind_savepoint::format::{JobInfo, Redistribution, SplitEntry};
use rewind_savepoint::{Location, SavepointInfo, SavepointWriter, StateSpec};
use rewind_tests::{fixtures_dir, rewind};

pub use rewind_test_support::batch;

fn info(job: &str) -> SavepointInfo {
    let mut info = SavepointInfo::new(job, "bootstrap");
    info.job = JobInfo {
        name: job.into(),
        app_version: Some("1.0.0".into()),
        job_id: Some(format!("{job}-fixture")),
    };
    info.checkpoint_id = 42;
    info
}

async fn writer(dir: &Path, job: &str) -> SavepointWriter {
    let location = Location::parse(dir.join("savepoint").to_str().unwrap()).unwrap();
    SavepointWriter::create(location, info(job)).await.unwrap()
}

/// Keyed value state with primitive keys: int64 -> uint64 and utf8 -> utf8.
async fn keyed_primitive(dir: &Path) {
    let w = writer(dir, "word-count").await;
    w.add_operator("counter", "Count per key", 2).unwrap();
    w.add_state(
        "counter",
        StateSpec::value("count", DataType::Int64, DataType::UInt64),
    )
    .unwrap();
    w.add_state(
        "counter",
        StateSpec::value("label", DataType::Utf8, DataType::Utf8),
    )
    .unwrap();
    let keys: Vec<i64> = (-10..40).collect();
    w.write_keyed(
        "counter",
        "count",
        vec![batch(vec![
            ("key", Arc::new(Int64Array::from(keys.clone())) as ArrayRef),
            (
                "value",
                Arc::new(UInt64Array::from_iter_values(
                    keys.iter().map(|k| (k * k) as u64),
                )),
            ),
        ])],
    )
    .await
    .unwrap();
    let words = [
        "apple",
        "banana",
        "cherry",
        "date",
        "elderberry",
        "fig",
        "grape",
        "",
        "ünïcødé",
    ];
    w.write_keyed(
        "counter",
        "label",
        vec![batch(vec![
            (
                "key",
                Arc::new(StringArray::from(words.to_vec())) as ArrayRef,
            ),
            (
                "value",
                Arc::new(StringArray::from_iter(
                    words
                        .iter()
                        .map(|s| (s.len() % 3 != 0).then(|| s.to_uppercase())),
                )),
            ),
        ])],
    )
    .await
    .unwrap();
    w.commit().await.unwrap();
}

/// Struct values, list state, map state, a namespaced value state and timers.
async fn struct_list_map(dir: &Path) {
    let w = writer(dir, "user-profiles").await;
    w.add_operator("profiles", "Profile builder", 2).unwrap();
    let profile_fields = Fields::from(vec![
        Field::new("name", DataType::Utf8, true),
        Field::new("visits", DataType::Int64, true),
        Field::new(
            "last_seen",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        ),
    ]);
    w.add_state(
        "profiles",
        StateSpec::value(
            "profile",
            DataType::Utf8,
            DataType::Struct(profile_fields.clone()),
        ),
    )
    .unwrap();
    w.add_state(
        "profiles",
        StateSpec::list("recent_pages", DataType::Utf8, DataType::Utf8),
    )
    .unwrap();
    w.add_state(
        "profiles",
        StateSpec::map("scores", DataType::Utf8, DataType::Utf8, DataType::Float64),
    )
    .unwrap();
    w.add_state(
        "profiles",
        StateSpec::value("window_visits", DataType::Utf8, DataType::Int64)
            .with_namespace(DataType::Int64),
    )
    .unwrap();
    w.add_state(
        "profiles",
        StateSpec::timers("timers", DataType::Utf8).with_namespace(DataType::Int64),
    )
    .unwrap();

    let users = ["ada", "bob", "cy", "dee", "eve", "fay"];
    let n = users.len();
    let profiles = StructArray::new(
        profile_fields,
        vec![
            Arc::new(StringArray::from_iter_values(
                users.iter().map(|u| format!("User {u}")),
            )) as ArrayRef,
            Arc::new(Int64Array::from_iter_values(
                (0..n as i64).map(|i| i * 3 + 1),
            )),
            Arc::new(TimestampMillisecondArray::from_iter_values(
                (0..n as i64).map(|i| 1_767_225_600_000 + i * 60_000),
            )),
        ],
        None,
    );
    w.write_keyed(
        "profiles",
        "profile",
        vec![batch(vec![
            (
                "key",
                Arc::new(StringArray::from(users.to_vec())) as ArrayRef,
            ),
            ("value", Arc::new(profiles)),
        ])],
    )
    .await
    .unwrap();

    let mut pages = ListBuilder::new(StringBuilder::new());
    for (i, _) in users.iter().enumerate() {
        for p in 0..i {
            pages.values().append_value(format!("/page/{p}"));
        }
        pages.append(true);
    }
    w.write_keyed(
        "profiles",
        "recent_pages",
        vec![batch(vec![
            (
                "key",
                Arc::new(StringArray::from(users.to_vec())) as ArrayRef,
            ),
            ("value", Arc::new(pages.finish())),
        ])],
    )
    .await
    .unwrap();

    let (mut k, mut uk, mut v) = (vec![], vec![], vec![]);
    for (i, u) in users.iter().enumerate() {
        for game in ["chess", "go"].iter().take(i % 3) {
            k.push(*u);
            uk.push(*game);
            v.push(i as f64 * 1.5);
        }
    }
    w.write_keyed(
        "profiles",
        "scores",
        vec![batch(vec![
            ("key", Arc::new(StringArray::from(k)) as ArrayRef),
            ("user_key", Arc::new(StringArray::from(uk))),
            ("value", Arc::new(Float64Array::from(v))),
        ])],
    )
    .await
    .unwrap();

    let windows: Vec<i64> = (0..n as i64)
        .map(|i| 1_767_225_600_000 + (i % 2) * 60_000)
        .collect();
    w.write_keyed(
        "profiles",
        "window_visits",
        vec![batch(vec![
            (
                "key",
                Arc::new(StringArray::from(users.to_vec())) as ArrayRef,
            ),
            ("namespace", Arc::new(Int64Array::from(windows.clone()))),
            ("value", Arc::new(Int64Array::from_iter_values(0..n as i64))),
        ])],
    )
    .await
    .unwrap();
    w.write_keyed(
        "profiles",
        "timers",
        vec![batch(vec![
            (
                "key",
                Arc::new(StringArray::from(users.to_vec())) as ArrayRef,
            ),
            ("namespace", Arc::new(Int64Array::from(windows.clone()))),
            (
                "domain",
                Arc::new(StringArray::from_iter_values((0..n).map(|i| {
                    if i % 3 == 0 {
                        "processing_time"
                    } else {
                        "event_time"
                    }
                }))),
            ),
            (
                "timestamp",
                Arc::new(Int64Array::from_iter_values(
                    windows.iter().map(|w| w + 59_999),
                )),
            ),
        ])],
    )
    .await
    .unwrap();
    w.commit().await.unwrap();
}

/// Operator state in all three redistribution modes, and source splits.
async fn operator_state_sources(dir: &Path) {
    let w = writer(dir, "log-reader").await;
    w.add_operator("source", "Partitioned log source", 3)
        .unwrap();
    w.set_source_splits(
        "source",
        (0..5)
            .map(|p| SplitEntry {
                id: format!("partition-{p}"),
                position: serde_json::json!({ "offset": 1000 * p + 17 }),
                watermark: (p != 4).then_some(1_767_225_600_000 + p * 1000),
            })
            .collect(),
    )
    .unwrap();
    w.add_state(
        "source",
        StateSpec::operator_list("pending_files", DataType::Utf8, Redistribution::Split),
    )
    .unwrap();
    w.add_state(
        "source",
        StateSpec::operator_list("seen_schemas", DataType::UInt32, Redistribution::Union),
    )
    .unwrap();
    w.add_state(
        "source",
        StateSpec::operator_list("config", DataType::Utf8, Redistribution::Broadcast),
    )
    .unwrap();
    let strings = |v: &[&str]| {
        batch(vec![(
            "value",
            Arc::new(StringArray::from(v.to_vec())) as ArrayRef,
        )])
    };
    let ints = |v: &[u32]| {
        batch(vec![(
            "value",
            Arc::new(UInt32Array::from(v.to_vec())) as ArrayRef,
        )])
    };
    w.write_operator_list(
        "source",
        "pending_files",
        vec![
            strings(&["a.log", "b.log"]),
            strings(&[]),
            strings(&["c.log"]),
        ],
    )
    .await
    .unwrap();
    w.write_operator_list(
        "source",
        "seen_schemas",
        vec![ints(&[1, 2]), ints(&[2, 3]), ints(&[7])],
    )
    .await
    .unwrap();
    w.write_operator_list(
        "source",
        "config",
        vec![
            strings(&["max_lag=5s"]),
            strings(&["max_lag=5s"]),
            strings(&["max_lag=5s"]),
        ],
    )
    .await
    .unwrap();
    w.commit().await.unwrap();
}

/// Two operators at different parallelism, one keyed by a struct key.
async fn two_operators(dir: &Path) {
    let w = writer(dir, "regional-totals").await;
    w.add_operator("parser", "Parse events", 1).unwrap();
    w.add_state(
        "parser",
        StateSpec::value("errors", DataType::Int32, DataType::Int64),
    )
    .unwrap();
    w.write_keyed(
        "parser",
        "errors",
        vec![batch(vec![
            (
                "key",
                Arc::new(arrow_array::Int32Array::from(vec![400, 404, 500])) as ArrayRef,
            ),
            ("value", Arc::new(Int64Array::from(vec![3, 17, 1]))),
        ])],
    )
    .await
    .unwrap();
    w.add_operator("totals", "Totals per region and customer", 4)
        .unwrap();
    let key_fields = Fields::from(vec![
        Field::new("region", DataType::Utf8, false),
        Field::new("customer", DataType::Int64, false),
    ]);
    w.add_state(
        "totals",
        StateSpec::value(
            "total",
            DataType::Struct(key_fields.clone()),
            DataType::UInt64,
        ),
    )
    .unwrap();
    let regions = ["eu", "us", "ap"];
    let keys = StructArray::new(
        key_fields,
        vec![
            Arc::new(StringArray::from_iter_values(
                (0..30).map(|i| regions[i % 3]),
            )) as ArrayRef,
            Arc::new(Int64Array::from_iter_values(0..30)),
        ],
        None,
    );
    w.write_keyed(
        "totals",
        "total",
        vec![batch(vec![
            ("key", Arc::new(keys) as ArrayRef),
            (
                "value",
                Arc::new(UInt64Array::from_iter_values((0..30).map(|i| i * 100))),
            ),
        ])],
    )
    .await
    .unwrap();
    w.commit().await.unwrap();
}

/// Writes the expected outputs beside a golden savepoint, from the CLI of this build.
pub fn record_expected(case_dir: &Path) {
    let sp = case_dir.join("savepoint");
    let sp = sp.to_str().unwrap();
    let inspect = rewind(&["inspect", sp, "--json"]);
    assert_eq!(inspect.code, 0, "{}", inspect.stderr);
    std::fs::write(case_dir.join("inspect.json"), &inspect.stdout).unwrap();
    let view: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    for op in view["operators"].as_array().unwrap() {
        for st in op["states"].as_array().unwrap() {
            let (uid, name) = (op["uid"].as_str().unwrap(), st["name"].as_str().unwrap());
            let rows = rewind(&["state", sp, uid, name, "--format", "json", "--with-hash"]);
            assert_eq!(rows.code, 0, "{}", rows.stderr);
            std::fs::write(
                case_dir.join(format!("state-{uid}-{name}.jsonl")),
                &rows.stdout,
            )
            .unwrap();
        }
    }
}

#[tokio::test]
#[ignore = "writes fixtures/v1 and v1-edge cases that do not exist yet; run by hand"]
async fn make_fixtures() {
    let v1 = fixtures_dir().join("v1");
    for name in [
        "keyed-primitive",
        "struct-list-map",
        "operator-state-sources",
        "two-operators",
    ] {
        let dir = v1.join(name);
        if dir.exists() {
            continue;
        }
        std::fs::create_dir_all(&dir).unwrap();
        match name {
            "keyed-primitive" => keyed_primitive(&dir).await,
            "struct-list-map" => struct_list_map(&dir).await,
            "operator-state-sources" => operator_state_sources(&dir).await,
            _ => two_operators(&dir).await,
        }
        record_expected(&dir);
    }
    crate::corrupt::make_corrupt_fixtures(&v1.join("keyed-primitive/savepoint")).await;
    let edge = fixtures_dir().join("v1-edge");
    for name in crate::make_edge::CASES {
        let dir = edge.join(name);
        if !dir.exists() {
            std::fs::create_dir_all(&dir).unwrap();
            crate::make_edge::make(&dir, name).await;
        }
    }
    let v1_1 = fixtures_dir().join("v1.1");
    for name in crate::make_v1_1::CASES {
        let dir = v1_1.join(name);
        if !dir.exists() {
            std::fs::create_dir_all(&dir).unwrap();
            crate::make_v1_1::make(&dir, name).await;
        }
    }
}
