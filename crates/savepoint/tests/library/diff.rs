use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StructArray, UInt64Array};
use arrow_schema::{DataType, Field, Fields};
use proptest::prelude::*;
use rewind_savepoint::format::SplitEntry;
use rewind_savepoint::{
    DiffOptions, GenerateOptions, Location, RescaleOptions, RowChangeKind, SavepointInfo,
    SavepointReader, SavepointWriter, StateSpec, StructureChange, diff, generate, rescale,
};
use serde_json::json;

use crate::common::*;

fn values(keys: &[(i64, u64)]) -> RecordBatch {
    batch(vec![
        (
            "key",
            Arc::new(Int64Array::from_iter_values(keys.iter().map(|k| k.0))) as ArrayRef,
        ),
        (
            "value",
            Arc::new(UInt64Array::from_iter_values(keys.iter().map(|k| k.1))),
        ),
    ])
}

async fn write(location: &Location, rows: &[(i64, u64)], parallelism: u32, offset: i64) {
    let w = SavepointWriter::create(location.clone(), SavepointInfo::new("job", "bootstrap"))
        .await
        .unwrap();
    w.add_operator("src", "Source", 1).unwrap();
    w.set_source_splits(
        "src",
        vec![SplitEntry {
            id: "p0".into(),
            position: json!({ "offset": offset }),
            watermark: Some(1000),
        }],
    )
    .unwrap();
    w.add_operator("counter", "Counter", parallelism).unwrap();
    w.add_state(
        "counter",
        StateSpec::value("count", DataType::Int64, DataType::UInt64),
    )
    .unwrap();
    w.write_keyed("counter", "count", vec![values(rows)])
        .await
        .unwrap();
    w.commit().await.unwrap();
}

async fn open(l: &Location) -> SavepointReader {
    SavepointReader::open(l.clone()).await.unwrap()
}

#[tokio::test]
async fn a_savepoint_equals_itself_and_its_rescaled_copy() {
    let dir = tempfile::tempdir().unwrap();
    let at = |n: &str| Location::parse(dir.path().join(n).to_str().unwrap()).unwrap();
    generate(
        at("a"),
        GenerateOptions {
            keys: 20_000,
            parallelism: 3,
            operators: 2,
            value_bytes: 4,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let a = open(&at("a")).await;
    let same = diff(&a, &a, &DiffOptions::default()).await.unwrap();
    assert!(same.is_identical(), "{same:?}");
    assert!(
        same.states
            .iter()
            .all(|s| s.same == 0 && s.skipped_rows == 20_000),
        "identical shards are skipped unread"
    );

    rescale(
        &a,
        at("b"),
        &RescaleOptions {
            parallelism: Some(5),
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap();
    let b = open(&at("b")).await;
    let report = diff(&a, &b, &DiffOptions::default()).await.unwrap();
    assert!(report.is_identical(), "{report:?}");
    assert!(
        report
            .structure
            .iter()
            .all(|c| matches!(c, StructureChange::ParallelismChanged { .. }))
    );
    assert!(
        report
            .states
            .iter()
            .all(|s| s.same + s.skipped_rows == 20_000),
        "{:?}",
        report.states
    );
}

#[tokio::test]
async fn hand_made_differences_are_reported_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let at = |n: &str| Location::parse(dir.path().join(n).to_str().unwrap()).unwrap();
    let base: Vec<(i64, u64)> = (0..1000).map(|k| (k, k as u64 * 10)).collect();
    let mut edited: Vec<(i64, u64)> = base.iter().copied().filter(|&(k, _)| k != 13).collect();
    edited.push((5000, 1));
    edited.iter_mut().find(|r| r.0 == 42).unwrap().1 = 7;
    write(&at("a"), &base, 2, 100).await;
    write(&at("b"), &edited, 3, 250).await;
    let report = diff(
        &open(&at("a")).await,
        &open(&at("b")).await,
        &DiffOptions::default(),
    )
    .await
    .unwrap();
    assert!(!report.is_identical());
    assert_eq!(
        report.structure,
        vec![
            StructureChange::PositionMoved {
                uid: "src".into(),
                split: "p0".into(),
                a: json!({"offset": 100}),
                b: json!({"offset": 250}),
                delta: Some(150)
            },
            StructureChange::ParallelismChanged {
                uid: "counter".into(),
                a: 2,
                b: 3
            },
        ]
    );
    let s = &report.states[0];
    assert_eq!(
        (s.only_in_a, s.only_in_b, s.changed, s.same),
        (1, 1, 1, 998)
    );
    let find = |k: RowChangeKind| s.examples.iter().find(|e| e.kind == k).unwrap();
    assert_eq!(find(RowChangeKind::Removed).key, json!(13));
    assert_eq!(find(RowChangeKind::Removed).a, Some(json!(130)));
    assert_eq!(find(RowChangeKind::Added).key, json!(5000));
    assert_eq!(find(RowChangeKind::Added).b, Some(json!(1)));
    let changed = find(RowChangeKind::Changed);
    assert_eq!(
        (changed.key.clone(), changed.a.clone(), changed.b.clone()),
        (json!(42), Some(json!(420)), Some(json!(7)))
    );
}

#[tokio::test]
async fn an_added_struct_field_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let at = |n: &str| Location::parse(dir.path().join(n).to_str().unwrap()).unwrap();
    for (name, extra) in [("a", false), ("b", true)] {
        let mut fields = vec![Field::new("count", DataType::Int64, true)];
        let mut arrays: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![1, 2]))];
        if extra {
            fields.push(Field::new("last", DataType::Int64, true));
            arrays.push(Arc::new(Int64Array::from(vec![None, None])));
        }
        let value = StructArray::new(Fields::from(fields.clone()), arrays, None);
        let w = SavepointWriter::create(at(name), SavepointInfo::new("job", "bootstrap"))
            .await
            .unwrap();
        w.add_operator("op", "Op", 1).unwrap();
        w.add_state(
            "op",
            StateSpec::value("s", DataType::Int64, DataType::Struct(Fields::from(fields))),
        )
        .unwrap();
        w.write_keyed(
            "op",
            "s",
            vec![batch(vec![
                ("key", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
                ("value", Arc::new(value)),
            ])],
        )
        .await
        .unwrap();
        w.commit().await.unwrap();
    }
    let report = diff(
        &open(&at("a")).await,
        &open(&at("b")).await,
        &DiffOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        report.structure,
        vec![StructureChange::SchemaChanged {
            uid: "op".into(),
            state: "s".into(),
            column: "value.last".into(),
            a: None,
            b: Some("int64".into())
        }]
    );
    assert!(
        report.states.is_empty(),
        "rows of states whose schema changed are not compared"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn diff_reports_exactly_the_applied_edits(
        n in 1i64..2000,
        removed in proptest::collection::btree_set(0i64..2000, 0..20),
        changed in proptest::collection::btree_set(0i64..2000, 0..20),
        added in proptest::collection::btree_set(2000i64..4000, 0..20),
        pa in 1u32..6, pb in 1u32..6,
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let at = |x: &str| Location::parse(dir.path().join(x).to_str().unwrap()).unwrap();
            let base: Vec<(i64, u64)> = (0..n).map(|k| (k, k as u64)).collect();
            let removed: Vec<i64> = removed.into_iter().filter(|&k| k < n).collect();
            let changed: Vec<i64> = changed.into_iter().filter(|&k| k < n && !removed.contains(&k)).collect();
            let mut edited: Vec<(i64, u64)> = base.iter().copied()
                .filter(|(k, _)| !removed.contains(k))
                .map(|(k, v)| if changed.contains(&k) { (k, v + 1_000_000) } else { (k, v) })
                .collect();
            edited.extend(added.iter().map(|&k| (k, 0)));
            write(&at("a"), &base, pa, 0).await;
            write(&at("b"), &edited, pb, 0).await;
            let options = DiffOptions { examples: 100, ..Default::default() };
            let report = diff(&open(&at("a")).await, &open(&at("b")).await, &options).await.unwrap();
            let s = &report.states[0];
            assert_eq!((s.only_in_a, s.only_in_b, s.changed), (removed.len() as u64, added.len() as u64, changed.len() as u64));
            let keys = |k: RowChangeKind| {
                let mut v: Vec<i64> = s.examples.iter().filter(|e| e.kind == k).map(|e| e.key.as_i64().unwrap()).collect();
                v.sort();
                v
            };
            assert_eq!(keys(RowChangeKind::Removed), removed);
            assert_eq!(keys(RowChangeKind::Changed), changed);
            assert_eq!(keys(RowChangeKind::Added), added.into_iter().collect::<Vec<_>>());
        });
    }
}

#[tokio::test]
async fn map_state_compares_per_entry() {
    use arrow_array::{Float64Array, StringArray};
    let dir = tempfile::tempdir().unwrap();
    let at = |n: &str| Location::parse(dir.path().join(n).to_str().unwrap()).unwrap();
    for (name, entries) in [
        (
            "a",
            vec![
                ("ada", "chess", 1.0),
                ("ada", "go", 2.0),
                ("bob", "go", 3.0),
            ],
        ),
        (
            "b",
            vec![
                ("ada", "chess", 1.0),
                ("ada", "go", 2.5),
                ("ada", "poker", 9.0),
            ],
        ),
    ] {
        let w = SavepointWriter::create(at(name), SavepointInfo::new("job", "bootstrap"))
            .await
            .unwrap();
        w.add_operator("op", "Op", 2).unwrap();
        w.add_state(
            "op",
            StateSpec::map("scores", DataType::Utf8, DataType::Utf8, DataType::Float64),
        )
        .unwrap();
        w.write_keyed(
            "op",
            "scores",
            vec![batch(vec![
                (
                    "key",
                    Arc::new(StringArray::from_iter_values(entries.iter().map(|e| e.0)))
                        as ArrayRef,
                ),
                (
                    "user_key",
                    Arc::new(StringArray::from_iter_values(entries.iter().map(|e| e.1))),
                ),
                (
                    "value",
                    Arc::new(Float64Array::from_iter_values(entries.iter().map(|e| e.2))),
                ),
            ])],
        )
        .await
        .unwrap();
        w.commit().await.unwrap();
    }
    let report = diff(
        &open(&at("a")).await,
        &open(&at("b")).await,
        &DiffOptions::default(),
    )
    .await
    .unwrap();
    let s = &report.states[0];
    assert_eq!((s.only_in_a, s.only_in_b, s.changed, s.same), (1, 1, 1, 1));
    let changed = s
        .examples
        .iter()
        .find(|e| e.kind == RowChangeKind::Changed)
        .unwrap();
    assert_eq!(changed.key, json!({"key": "ada", "user_key": "go"}));
    assert_eq!(
        (changed.a.clone(), changed.b.clone()),
        (Some(json!(2.0)), Some(json!(2.5)))
    );
    let removed = s
        .examples
        .iter()
        .find(|e| e.kind == RowChangeKind::Removed)
        .unwrap();
    assert_eq!(removed.key, json!({"key": "bob", "user_key": "go"}));
}
