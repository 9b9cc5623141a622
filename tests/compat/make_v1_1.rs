//! Golden savepoints of format 1.1 (fixtures/v1.1), written once by
//! `cargo test -p rewind-tests --test compat -- --ignored make_fixtures`: what 1.1 added,
//! the `extensions` member as `rewind import-flink` writes it, and lean keyed shards
//! (reader feature `lean_keyed_shards`).

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, StringArray, StructArray};
use arrow_schema::{DataType, Field, Fields};
use rewind_savepoint::{Location, SavepointInfo, SavepointWriter, StateSpec, WriterOptions};
use rewind_tests::{fixture_copy, rewind};

use crate::make::{batch, record_expected};

/// The cases, each a folder of fixtures/v1.1.
pub const CASES: [&str; 5] = [
    "flink-import",
    "lean-upgrade",
    "lean-row-groups",
    "incremental-chain",
    "engine-windows",
];

pub async fn make(dir: &Path, name: &str) {
    match name {
        "flink-import" => flink_import(dir),
        "lean-upgrade" => lean_upgrade(dir),
        "lean-row-groups" => lean_row_groups(dir).await,
        "incremental-chain" => incremental_chain(dir).await,
        // The engine runs its own threads and runtime: off this test's runtime.
        "engine-windows" => {
            let dir = dir.to_path_buf();
            std::thread::spawn(move || crate::engine_windows::make(&dir))
                .join()
                .unwrap()
        }
        other => panic!("no recipe for fixture {other}"),
    }
    record_expected(dir);
}

/// `lean-upgrade`: fixtures/v1/struct-list-map (value, list, map, namespaced and timers
/// state) migrated to 1.1, the upgrade path: every keyed shard re-encoded lean.
fn lean_upgrade(dir: &Path) {
    let (_guard, copy) = fixture_copy("v1/struct-list-map");
    let src = copy.join("savepoint");
    let dest = dir.join("savepoint");
    let run = rewind(&[
        "migrate",
        src.to_str().unwrap(),
        dest.to_str().unwrap(),
        "--to-format-version",
        "1.1",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// `lean-row-groups`: lean shards of several row groups of 4 rows at parallelism 3: int64
/// keys, struct keys with a map state, and a state with one key (so two empty shards).
async fn lean_row_groups(dir: &Path) {
    let location = Location::parse(dir.join("savepoint").to_str().unwrap()).unwrap();
    let options = WriterOptions {
        row_group_rows: 4,
        lean_keyed_shards: true,
        ..WriterOptions::default()
    };
    let writer = SavepointWriter::create_with_options(
        location,
        SavepointInfo::new("lean-fixture", "bootstrap"),
        options,
    )
    .await
    .unwrap();
    writer.add_operator("counts", "Counts", 3).unwrap();
    let customer = DataType::Struct(Fields::from(vec![
        Field::new("region", DataType::Utf8, false),
        Field::new("id", DataType::Int64, false),
    ]));
    for spec in [
        StateSpec::value("count", DataType::Int64, DataType::Int64),
        StateSpec::map("orders", customer.clone(), DataType::Utf8, DataType::Int64),
        StateSpec::value("single", DataType::Utf8, DataType::Utf8),
    ] {
        writer.add_state("counts", spec).unwrap();
    }
    let keys: Vec<i64> = (-20..20).collect();
    let count = batch(vec![
        ("key", Arc::new(Int64Array::from(keys.clone())) as ArrayRef),
        (
            "value",
            Arc::new(Int64Array::from_iter_values(keys.iter().map(|k| k * k))),
        ),
    ]);
    writer
        .write_keyed("counts", "count", vec![count])
        .await
        .unwrap();
    let regions: Vec<&str> = (0..30).map(|i| ["eu", "us", "apac"][i % 3]).collect();
    let ids: Vec<i64> = (0..30).map(|i| (i / 3) as i64).collect();
    let struct_keys = StructArray::from(vec![
        (
            Arc::new(Field::new("region", DataType::Utf8, false)),
            Arc::new(StringArray::from(regions)) as ArrayRef,
        ),
        (
            Arc::new(Field::new("id", DataType::Int64, false)),
            Arc::new(Int64Array::from(ids)) as ArrayRef,
        ),
    ]);
    let items: Vec<String> = (0..30).map(|i| format!("item-{}", i % 2)).collect();
    let orders = batch(vec![
        ("key", Arc::new(struct_keys) as ArrayRef),
        ("user_key", Arc::new(StringArray::from(items))),
        ("value", Arc::new(Int64Array::from_iter_values(0..30))),
    ]);
    writer
        .write_keyed("counts", "orders", vec![orders])
        .await
        .unwrap();
    let single = batch(vec![
        ("key", Arc::new(StringArray::from(vec!["only"])) as ArrayRef),
        (
            "value",
            Arc::new(StringArray::from(vec!["one key, two empty shards"])),
        ),
    ]);
    writer
        .write_keyed("counts", "single", vec![single])
        .await
        .unwrap();
    writer.commit().await.unwrap();
}

/// `flink-import`: the real rich-state Flink sample (fixtures/flink/rich-state-A) imported:
/// keyed value, map, list, POJO and window state, timers and operator list state, with the
/// `flink` extension at every level.
fn flink_import(dir: &Path) {
    let (_guard, copy) = fixture_copy("flink/rich-state-A");
    let src = copy.join("savepoint-46a48f-b5c105e0343a");
    let dest = dir.join("savepoint");
    let run = rewind(&[
        "import-flink",
        src.to_str().unwrap(),
        dest.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// `incremental-chain`: three checkpoints of one job at parallelism 2 in one folder,
/// `chk-0000000001` (full), `chk-0000000002` (a delta over it) and `savepoint` (checkpoint
/// 3, a delta over checkpoint 2): a value state and a map state with updates, inserts,
/// deletes, a deleted key inserted again and a map entry deleted while its key keeps
/// others. The golden savepoint is the last; it lists the other two's files.
async fn incremental_chain(dir: &Path) {
    // (key, user key, value); `None` value in a delta: deleted.
    type Rows = Vec<(i64, Option<&'static str>, Option<i64>)>;
    let count_1: Rows = (0..12).map(|k| (k, None, Some(k * 100))).collect();
    let tags_1: Rows = (0..6)
        .flat_map(|k| [(k, Some("a"), Some(k)), (k, Some("b"), Some(-k))])
        .collect();
    let count_2: Rows = vec![
        (1, None, Some(111)),
        (2, None, None),
        (20, None, Some(2000)),
    ];
    let tags_2: Rows = vec![(0, Some("a"), None), (7, Some("z"), Some(77))];
    let count_3: Rows = vec![(2, None, Some(222)), (20, None, None), (3, None, None)];
    let tags_3: Rows = vec![(0, Some("b"), Some(1000)), (7, Some("z"), None)];
    let steps = [
        ("chk-0000000001", 1, None, count_1, tags_1),
        ("chk-0000000002", 2, Some("chk-0000000001"), count_2, tags_2),
        ("savepoint", 3, Some("chk-0000000002"), count_3, tags_3),
    ];
    for (folder, id, base, count, tags) in steps {
        let location = Location::parse(dir.join(folder).to_str().unwrap()).unwrap();
        let mut info = SavepointInfo::new("incremental-fixture", "engine");
        info.kind = rewind_savepoint::format::SavepointKind::Checkpoint;
        info.checkpoint_id = id;
        let options = WriterOptions {
            lean_keyed_shards: true,
            ..WriterOptions::default()
        };
        let writer = SavepointWriter::create_with_options(location, info, options)
            .await
            .unwrap();
        writer.add_operator("counts", "Counts", 2).unwrap();
        writer
            .add_state(
                "counts",
                StateSpec::value("count", DataType::Int64, DataType::Int64),
            )
            .unwrap();
        writer
            .add_state(
                "counts",
                StateSpec::map("tags", DataType::Int64, DataType::Utf8, DataType::Int64),
            )
            .unwrap();
        let mut layer = 0;
        if let Some(base) = base {
            let at = Location::parse(dir.join(base).to_str().unwrap()).unwrap();
            let reader = rewind_savepoint::SavepointReader::open(at).await.unwrap();
            for state in ["count", "tags"] {
                let shards = reader.state("counts", state).unwrap().shards.clone();
                layer = shards.iter().map(|s| s.layer).max().unwrap() + 1;
                writer
                    .reuse_shards("counts", state, base, &shards, true)
                    .unwrap();
            }
        }
        for (state, rows) in [("count", &count), ("tags", &tags)] {
            for subtask in 0..2 {
                let range = rewind_savepoint::format::HashRange::for_subtask(subtask, 2).unwrap();
                let keys = Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>());
                let hashes = rewind_savepoint::format::hash_keys(&keys).unwrap();
                let mut order: Vec<usize> = (0..rows.len())
                    .filter(|&i| range.contains(hashes[i]))
                    .collect();
                order.sort_by_key(|&i| hashes[i]);
                if layer > 0 && order.is_empty() {
                    continue;
                }
                let mut columns = vec![(
                    "key",
                    Arc::new(Int64Array::from_iter_values(
                        order.iter().map(|&i| rows[i].0),
                    )) as ArrayRef,
                )];
                if state == "tags" {
                    columns.push((
                        "user_key",
                        Arc::new(StringArray::from_iter_values(
                            order.iter().map(|&i| rows[i].1.unwrap()),
                        )),
                    ));
                }
                columns.push((
                    "value",
                    Arc::new(Int64Array::from(
                        order.iter().map(|&i| rows[i].2).collect::<Vec<_>>(),
                    )),
                ));
                let mut shard = if layer == 0 {
                    writer.keyed_shard("counts", state, range).unwrap()
                } else {
                    columns.push((
                        "deleted",
                        Arc::new(arrow_array::BooleanArray::from(
                            order
                                .iter()
                                .map(|&i| rows[i].2.is_none())
                                .collect::<Vec<_>>(),
                        )),
                    ));
                    writer
                        .keyed_delta_shard("counts", state, range, layer)
                        .unwrap()
                };
                shard.write(&batch(columns)).await.unwrap();
                shard.finish().await.unwrap();
            }
        }
        writer.commit().await.unwrap();
    }
}
