use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, StringArray, UInt64Array};
use arrow_schema::DataType;
use rewind_savepoint::format::SplitEntry;
use rewind_savepoint::{
    DiffOptions, Edit, Error, Location, RowChangeKind, SavepointInfo, SavepointReader,
    SavepointWriter, StateSpec, StructureChange, ValidateOptions, diff, edit, validate,
};
use serde_json::json;

use crate::common::*;

async fn source(dir: &std::path::Path) -> Location {
    let at = Location::parse(dir.join("src").to_str().unwrap()).unwrap();
    let w = SavepointWriter::create(at.clone(), SavepointInfo::new("job", "bootstrap"))
        .await
        .unwrap();
    w.add_operator("reader", "Reader", 1).unwrap();
    w.set_source_splits(
        "reader",
        vec![
            SplitEntry {
                id: "p0".into(),
                position: json!({"offset": 10}),
                watermark: Some(5),
            },
            SplitEntry {
                id: "p1".into(),
                position: json!({"offset": 20}),
                watermark: Some(6),
            },
        ],
    )
    .unwrap();
    w.add_operator("counter", "Counter", 3).unwrap();
    w.add_state(
        "counter",
        StateSpec::value("count", DataType::Int64, DataType::UInt64),
    )
    .unwrap();
    w.add_state(
        "counter",
        StateSpec::value("extra", DataType::Int64, DataType::UInt64),
    )
    .unwrap();
    let rows = batch(vec![
        (
            "key",
            Arc::new(Int64Array::from_iter_values(0..500)) as ArrayRef,
        ),
        ("value", Arc::new(UInt64Array::from_iter_values(0..500))),
    ]);
    w.write_keyed("counter", "count", vec![rows.clone()])
        .await
        .unwrap();
    w.write_keyed("counter", "extra", vec![rows]).await.unwrap();
    w.add_operator("enricher", "Enricher", 1).unwrap();
    w.commit().await.unwrap();
    at
}

async fn apply(
    dir: &std::path::Path,
    name: &str,
    edits: Vec<Edit>,
) -> (SavepointReader, SavepointReader) {
    let src = SavepointReader::open(Location::parse(dir.join("src").to_str().unwrap()).unwrap())
        .await
        .unwrap();
    let dest = Location::parse(dir.join(name).to_str().unwrap()).unwrap();
    let manifest = edit(&src, dest.clone(), &edits).await.unwrap();
    assert_eq!(manifest.lineage.operation, "edit");
    assert_eq!(
        manifest.lineage.parent.as_ref().unwrap().id,
        src.manifest().id
    );
    let report = validate(
        &dest,
        ValidateOptions {
            deep: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(report.is_valid(), "{name}: {:?}", report.problems);
    (src, SavepointReader::open(dest).await.unwrap())
}

#[tokio::test]
async fn each_structural_edit_is_exactly_what_diff_reports() {
    let dir = tempfile::tempdir().unwrap();
    source(dir.path()).await;
    let cases: Vec<(Edit, Vec<StructureChange>)> = vec![
        (
            Edit::RemoveOperator {
                uid: "enricher".into(),
            },
            vec![StructureChange::OperatorRemoved {
                uid: "enricher".into(),
            }],
        ),
        (
            Edit::RenameOperator {
                from: "enricher".into(),
                to: "enricher-v2".into(),
            },
            vec![
                StructureChange::OperatorRemoved {
                    uid: "enricher".into(),
                },
                StructureChange::OperatorAdded {
                    uid: "enricher-v2".into(),
                },
            ],
        ),
        (
            Edit::SetPosition {
                uid: "reader".into(),
                split: "p1".into(),
                position: json!({"offset": 0}),
            },
            vec![StructureChange::PositionMoved {
                uid: "reader".into(),
                split: "p1".into(),
                a: json!({"offset": 20}),
                b: json!({"offset": 0}),
                delta: Some(-20),
            }],
        ),
        (
            Edit::SetWatermark {
                uid: "reader".into(),
                split: "p0".into(),
                watermark: 1005,
            },
            vec![StructureChange::WatermarkMoved {
                uid: "reader".into(),
                split: "p0".into(),
                a: Some(5),
                b: Some(1005),
                delta_ms: Some(1000),
            }],
        ),
        (
            Edit::RemoveSplit {
                uid: "reader".into(),
                split: "p0".into(),
            },
            vec![StructureChange::SplitRemoved {
                uid: "reader".into(),
                split: "p0".into(),
            }],
        ),
        (
            Edit::AddSplit {
                uid: "reader".into(),
                split: SplitEntry {
                    id: "p2".into(),
                    position: json!({"offset": 0}),
                    watermark: None,
                },
            },
            vec![StructureChange::SplitAdded {
                uid: "reader".into(),
                split: "p2".into(),
            }],
        ),
        (
            Edit::DropState {
                uid: "counter".into(),
                state: "extra".into(),
            },
            vec![StructureChange::StateRemoved {
                uid: "counter".into(),
                state: "extra".into(),
            }],
        ),
    ];
    for (i, (e, expected)) in cases.into_iter().enumerate() {
        let (src, dest) = apply(dir.path(), &format!("e{i}"), vec![e.clone()]).await;
        let report = diff(&src, &dest, &DiffOptions::default()).await.unwrap();
        assert_eq!(report.structure, expected, "{e:?}");
        assert!(
            report
                .states
                .iter()
                .all(|s| s.is_identical() && s.same == 0),
            "untouched shards are copied whole: {e:?}"
        );
    }
}

#[tokio::test]
async fn key_edits_rewrite_only_the_shards_they_touch() {
    let dir = tempfile::tempdir().unwrap();
    source(dir.path()).await;
    // Keys of subtask 0 only, so the shards of subtasks 1 and 2 stay untouched.
    let first: Vec<i64> = (0..2000)
        .filter(|&k| {
            let h = rewind_savepoint::format::hash_keys(&Int64Array::from(vec![k])).unwrap()[0];
            rewind_savepoint::format::subtask_for_hash(h, 3) == 0
        })
        .collect();
    let (del1, del2, changed) = (first[0], first[1], first[2]);
    let missing = *first.iter().find(|&&k| k >= 1000).unwrap();
    let added = *first.iter().find(|&&k| (500..1000).contains(&k)).unwrap();
    let keys = batch(vec![(
        "key",
        Arc::new(Int64Array::from(vec![del1, del2, missing])) as ArrayRef,
    )]);
    let upserts = batch(vec![
        (
            "key",
            Arc::new(Int64Array::from(vec![changed, added])) as ArrayRef,
        ),
        ("value", Arc::new(UInt64Array::from(vec![1000, 6000]))),
    ]);
    let (src, dest) = apply(
        dir.path(),
        "keys",
        vec![
            Edit::DeleteKeys {
                uid: "counter".into(),
                state: "count".into(),
                keys: vec![keys],
            },
            Edit::Upsert {
                uid: "counter".into(),
                state: "count".into(),
                rows: vec![upserts],
            },
            Edit::RenameOperator {
                from: "counter".into(),
                to: "counter-v2".into(),
            },
        ],
    )
    .await;
    let report = diff(&src, &dest, &DiffOptions::default()).await.unwrap();
    assert!(
        report.states.is_empty(),
        "renamed: compared as removed + added"
    );
    let renamed_back = Location::parse(dir.path().join("back").to_str().unwrap()).unwrap();
    edit(
        &dest,
        renamed_back.clone(),
        &[Edit::RenameOperator {
            from: "counter-v2".into(),
            to: "counter".into(),
        }],
    )
    .await
    .unwrap();
    let back = SavepointReader::open(renamed_back).await.unwrap();
    let options = DiffOptions {
        examples: 10,
        state: Some("count".into()),
        ..Default::default()
    };
    let report = diff(&src, &back, &options).await.unwrap();
    let s = &report.states[0];
    assert_eq!((s.only_in_a, s.only_in_b, s.changed), (2, 1, 1), "{s:?}");
    let keys = |k: RowChangeKind| {
        let mut v: Vec<_> = s
            .examples
            .iter()
            .filter(|e| e.kind == k)
            .map(|e| e.key.clone())
            .collect();
        v.sort_by_key(|x| x.as_i64());
        v
    };
    assert_eq!(keys(RowChangeKind::Removed), vec![json!(del1), json!(del2)]);
    assert_eq!(keys(RowChangeKind::Added), vec![json!(added)]);
    assert_eq!(keys(RowChangeKind::Changed), vec![json!(changed)]);
    assert!(
        s.skipped_rows > 250,
        "shards without edited keys were copied and skipped by diff: {s:?}"
    );
    let extra = diff(
        &src,
        &back,
        &DiffOptions {
            state: Some("extra".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(extra.is_identical());
}

#[tokio::test]
async fn bad_edits_fail_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    source(dir.path()).await;
    let src =
        SavepointReader::open(Location::parse(dir.path().join("src").to_str().unwrap()).unwrap())
            .await
            .unwrap();
    let dest = Location::parse(dir.path().join("bad").to_str().unwrap()).unwrap();
    let wrong = batch(vec![
        ("key", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
        ("value", Arc::new(StringArray::from(vec!["x"]))),
    ]);
    let cases: Vec<(Vec<Edit>, &str)> = vec![
        (
            vec![Edit::RemoveOperator { uid: "nope".into() }],
            "unknown operator \"nope\"",
        ),
        (
            vec![Edit::RenameOperator {
                from: "counter".into(),
                to: "reader".into(),
            }],
            "that uid exists already",
        ),
        (
            vec![Edit::Upsert {
                uid: "counter".into(),
                state: "count".into(),
                rows: vec![wrong],
            }],
            "column \"value\" has type Utf8, the state declares UInt64",
        ),
        (
            vec![Edit::DropState {
                uid: "counter".into(),
                state: "nope".into(),
            }],
            "has no state \"nope\"",
        ),
        (
            vec![
                Edit::RemoveOperator {
                    uid: "enricher".into(),
                },
                Edit::SetPosition {
                    uid: "enricher".into(),
                    split: "x".into(),
                    position: json!(1),
                },
            ],
            "unknown operator \"enricher\"",
        ),
    ];
    for (edits, message) in cases {
        let err = edit(&src, dest.clone(), &edits).await.unwrap_err();
        assert!(err.to_string().contains(message), "{err}");
        assert!(
            matches!(
                err,
                Error::InvalidInput(_) | Error::UnknownOperator { .. } | Error::UnknownState { .. }
            ),
            "{err:?}"
        );
        assert!(!dir.path().join("bad").exists());
    }
}
