//! Incremental checkpoints (format 1.1): checkpoints that share files with earlier ones and
//! add delta layers of upserts and deletes read, validate, compact, rescale, edit, migrate
//! and dispose as the full state they stand for.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Int64Array, RecordBatch};
use arrow_schema::DataType;
use proptest::prelude::*;
use rewind_savepoint::format::{
    FormatVersion, HashRange, INCREMENTAL_CHECKPOINTS, Manifest, SavepointKind, hash_keys,
};
use rewind_savepoint::{
    DiffOptions, Edit, LayerRows, Location, MigrateOptions, ProblemKind, ReadOptions,
    RescaleOptions, SavepointInfo, SavepointReader, SavepointWriter, StateSpec, ValidateOptions,
    compact, diff, edit, migrate, remove, rescale, validate,
};

use crate::common::*;

type Model = BTreeMap<i64, i64>;

/// One change since the checkpoint before: a new value, or `None` for a delete.
type Changes = BTreeMap<i64, Option<i64>>;

const OP: &str = "counter";
const STATE: &str = "count";

fn checkpoint_name(id: u64) -> String {
    format!("chk-{id:010}")
}

/// The rows of `rows` whose key hash is in `range`, sorted by it, as `key`, `value` and
/// (for a delta) `deleted` columns.
fn sorted_batch(rows: &[(i64, Option<i64>)], range: HashRange, delta: bool) -> RecordBatch {
    let keys = Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>());
    let hashes = hash_keys(&keys).unwrap();
    let mut order: Vec<usize> = (0..rows.len())
        .filter(|&i| range.contains(hashes[i]))
        .collect();
    order.sort_by_key(|&i| hashes[i]);
    let mut columns = vec![
        (
            "key",
            Arc::new(Int64Array::from_iter_values(
                order.iter().map(|&i| rows[i].0),
            )) as ArrayRef,
        ),
        (
            "value",
            Arc::new(Int64Array::from(
                order.iter().map(|&i| rows[i].1).collect::<Vec<_>>(),
            )),
        ),
    ];
    if delta {
        columns.push((
            "deleted",
            Arc::new(BooleanArray::from(
                order
                    .iter()
                    .map(|&i| rows[i].1.is_none())
                    .collect::<Vec<_>>(),
            )),
        ));
    }
    batch(columns)
}

/// Writes checkpoint `id` into `dir`: a full one holding `model`, or (with `base`, the
/// previous checkpoint's id) one that lists the base's shards and adds `changes` as a new
/// delta layer. Parallelism 2; `lean` picks the keyed-shard layout.
async fn write_checkpoint(
    dir: &Location,
    id: u64,
    model: &Model,
    base: Option<(u64, &Changes)>,
    lean: bool,
) -> Manifest {
    let location = dir.join(&checkpoint_name(id)).unwrap();
    let mut info = SavepointInfo::new("incremental-test", "engine");
    info.kind = SavepointKind::Checkpoint;
    info.checkpoint_id = id;
    let options = rewind_savepoint::WriterOptions {
        lean_keyed_shards: lean,
        row_group_rows: 5,
        ..Default::default()
    };
    let writer = SavepointWriter::create_with_options(location, info, options)
        .await
        .unwrap();
    writer.add_operator(OP, "Counter", 2).unwrap();
    writer
        .add_state(
            OP,
            StateSpec::value(STATE, DataType::Int64, DataType::Int64),
        )
        .unwrap();
    let next_layer = match base {
        None => {
            let rows: Vec<(i64, Option<i64>)> = model.iter().map(|(k, v)| (*k, Some(*v))).collect();
            for subtask in 0..2 {
                let range = HashRange::for_subtask(subtask, 2).unwrap();
                let mut shard = writer.keyed_shard(OP, STATE, range).unwrap();
                shard
                    .write(&sorted_batch(&rows, range, false))
                    .await
                    .unwrap();
                shard.finish().await.unwrap();
            }
            None
        }
        Some((base_id, changes)) => {
            let base_location = dir.join(&checkpoint_name(base_id)).unwrap();
            let base = SavepointReader::open(base_location).await.unwrap();
            let shards = base.state(OP, STATE).unwrap().shards.clone();
            let base_lean = base
                .manifest()
                .reader_features
                .iter()
                .any(|f| f == rewind_savepoint::format::LEAN_KEYED_SHARDS);
            writer
                .reuse_shards(OP, STATE, &checkpoint_name(base_id), &shards, base_lean)
                .unwrap();
            Some((
                shards.iter().map(|s| s.layer).max().unwrap_or(0) + 1,
                changes,
            ))
        }
    };
    if let Some((layer, changes)) = next_layer {
        let rows: Vec<(i64, Option<i64>)> = changes.iter().map(|(k, v)| (*k, *v)).collect();
        for subtask in 0..2 {
            let range = HashRange::for_subtask(subtask, 2).unwrap();
            let batch = sorted_batch(&rows, range, true);
            // A subtask without changes writes no delta shard: layers may leave gaps.
            if batch.num_rows() == 0 {
                continue;
            }
            let mut shard = writer.keyed_delta_shard(OP, STATE, range, layer).unwrap();
            shard.write(&batch).await.unwrap();
            shard.finish().await.unwrap();
        }
    }
    writer.commit().await.unwrap()
}

fn apply(model: &mut Model, changes: &Changes) {
    for (k, v) in changes {
        match v {
            Some(v) => model.insert(*k, *v),
            None => model.remove(k),
        };
    }
}

/// The state's rows as a map, checking they come in key-hash order.
async fn read_model(location: &Location, options: ReadOptions) -> Model {
    let reader = SavepointReader::open(location.clone()).await.unwrap();
    let all = read_all(&reader, OP, STATE, options).await;
    if all.num_rows() == 0 {
        return Model::new();
    }
    let hashes = all
        .column_by_name("key_hash")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow_array::UInt64Array>()
        .unwrap()
        .values()
        .to_vec();
    assert!(hashes.windows(2).all(|w| w[0] <= w[1]), "not in hash order");
    let keys = int64_column(&all, "key");
    let values = int64_column(&all, "value");
    assert_eq!(
        keys.len(),
        keys.iter().collect::<std::collections::BTreeSet<_>>().len(),
        "a key read twice"
    );
    keys.into_iter().zip(values).collect()
}

/// The state built by applying its layers' rows in the order the reader streams them
/// unmerged (upserts insert or replace, deletes remove), and how many deletes came.
async fn apply_layers(location: &Location, options: ReadOptions) -> (Model, usize) {
    use futures::TryStreamExt;
    let reader = SavepointReader::open(location.clone()).await.unwrap();
    let rows: Vec<LayerRows> = reader
        .read_state_layers(OP, STATE, options)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let (mut model, mut deletes) = (Model::new(), 0);
    for r in rows {
        match r {
            LayerRows::Upserts(b) => {
                assert!(b.column_by_name("deleted").is_none());
                model.extend(
                    int64_column(&b, "key")
                        .into_iter()
                        .zip(int64_column(&b, "value")),
                );
            }
            LayerRows::Deletes(b) => {
                deletes += b.num_rows();
                for k in int64_column(&b, "key") {
                    model.remove(&k);
                }
            }
        }
    }
    (model, deletes)
}

async fn assert_valid(location: &Location) {
    let options = ValidateOptions {
        deep: true,
        ..Default::default()
    };
    let report = validate(location, options).await.unwrap();
    assert!(report.is_valid(), "{location}: {:?}", report.problems);
}

/// Three checkpoints: a full one, then two deltas (updates, inserts, deletes, a delete
/// undone and an insert deleted again), with the model after each.
async fn chain(dir: &Location, lean: bool) -> Vec<Model> {
    let mut model: Model = (0..40).map(|k| (k, k * 10)).collect();
    let mut models = vec![model.clone()];
    write_checkpoint(dir, 1, &model, None, lean).await;
    let first: Changes = [
        (1, Some(11)),
        (2, None),
        (3, None),
        (100, Some(1000)),
        (101, Some(1010)),
        (500, None), // a delete of a key that never was: allowed, changes nothing
    ]
    .into();
    apply(&mut model, &first);
    models.push(model.clone());
    write_checkpoint(dir, 2, &model, Some((1, &first)), lean).await;
    let second: Changes = [(2, Some(22)), (100, None), (1, Some(111)), (39, None)].into();
    apply(&mut model, &second);
    models.push(model);
    write_checkpoint(dir, 3, &models[2], Some((2, &second)), lean).await;
    models
}

#[tokio::test]
async fn deltas_apply_in_layer_order_with_deletes() {
    for lean in [false, true] {
        let (_tmp, dir) = temp_location();
        let models = chain(&dir, lean).await;
        for (i, model) in models.iter().enumerate() {
            let location = dir.join(&checkpoint_name(i as u64 + 1)).unwrap();
            assert_eq!(&read_model(&location, ReadOptions::default()).await, model);
            // Layer by layer, unmerged, the same state.
            let (applied, deletes) = apply_layers(&location, ReadOptions::default()).await;
            assert_eq!(&applied, model);
            assert_eq!(deletes > 0, i > 0, "checkpoint {i}: {deletes} deletes");
            assert_valid(&location).await;
        }
        let last = dir.join(&checkpoint_name(3)).unwrap();
        let m = SavepointReader::open(last.clone()).await.unwrap();
        assert!(
            m.manifest()
                .reader_features
                .contains(&INCREMENTAL_CHECKPOINTS.to_string())
        );
        assert_eq!(m.manifest().version, FormatVersion::V1_1);
        let layers: std::collections::BTreeSet<u32> =
            m.manifest().shards().map(|(_, _, s)| s.layer).collect();
        assert_eq!(layers, [0, 1, 2].into());
        // Pruned reads see the merged rows too: one hash range, some keys.
        let range = HashRange::for_subtask(1, 2).unwrap();
        let expected: Model = models[2]
            .iter()
            .filter(|(k, _)| range.contains(hash_keys(&Int64Array::from(vec![**k])).unwrap()[0]))
            .map(|(k, v)| (*k, *v))
            .collect();
        let options = ReadOptions {
            hash_range: Some(range),
            batch_size: Some(3),
            ..Default::default()
        };
        assert_eq!(read_model(&last, options.clone()).await, expected);
        assert_eq!(apply_layers(&last, options).await.0, expected);
        let keys: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3, 100, 101]));
        let options = ReadOptions {
            keys: Some(keys),
            ..Default::default()
        };
        let wanted: Model = [(1, 111), (2, 22), (101, 1010)].into();
        assert_eq!(read_model(&last, options).await, wanted);
    }
}

#[tokio::test]
async fn shard_files_record_the_version_their_layout_needs() {
    for lean in [false, true] {
        let (_tmp, dir) = temp_location();
        chain(&dir, lean).await;
        let last = dir.join(&checkpoint_name(3)).unwrap();
        let versions = shard_format_versions(&last);
        let layers: std::collections::BTreeSet<u32> =
            versions.iter().map(|(_, layer, _)| *layer).collect();
        assert_eq!(layers, [0, 1, 2].into(), "{versions:?}");
        for (_, layer, version) in versions {
            // Delta shards (a `deleted` column) and lean ones came with 1.1.
            let expected = if lean || layer > 0 { "1.1" } else { "1.0" };
            assert_eq!(version, expected, "lean {lean}, layer {layer}");
        }
    }
}

#[tokio::test]
async fn compact_rescale_edit_and_migrate_give_the_merged_state() {
    let (_tmp, dir) = temp_location();
    let models = chain(&dir, true).await;
    let model = &models[2];
    let last = dir.join(&checkpoint_name(3)).unwrap();
    let source = SavepointReader::open(last.clone()).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let at = |name: &str| Location::parse(tmp.path().join(name).to_str().unwrap()).unwrap();

    let (compacted, _) = compact(&source, at("compacted"), None).await.unwrap();
    assert_eq!(compacted.kind, SavepointKind::Savepoint);
    assert_eq!(compacted.lineage.operation, "compact");
    assert!(
        compacted
            .shards()
            .all(|(_, _, s)| s.sibling.is_none() && s.layer == 0)
    );
    assert!(!rewind_savepoint::is_incremental(&compacted));
    assert_eq!(
        &read_model(&at("compacted"), ReadOptions::default()).await,
        model
    );
    assert_valid(&at("compacted")).await;
    // Layered and compacted state are equal row for row.
    let compacted_reader = SavepointReader::open(at("compacted")).await.unwrap();
    let report = diff(&source, &compacted_reader, &DiffOptions::default())
        .await
        .unwrap();
    assert!(report.is_identical(), "{report:?}");

    for parallelism in [2, 3] {
        let name = format!("rescaled-{parallelism}");
        let options = RescaleOptions {
            parallelism: Some(parallelism),
            ..Default::default()
        };
        let (m, _) = rescale(&source, at(&name), &options, None).await.unwrap();
        assert!(!rewind_savepoint::is_incremental(&m));
        assert_eq!(
            m.operator(OP).unwrap().states[0].shards.len(),
            parallelism as usize
        );
        assert_eq!(&read_model(&at(&name), ReadOptions::default()).await, model);
        assert_valid(&at(&name)).await;
    }

    let edits = [
        Edit::Upsert {
            uid: OP.into(),
            state: STATE.into(),
            rows: vec![batch(vec![
                ("key", Arc::new(Int64Array::from(vec![5, 1000])) as ArrayRef),
                ("value", Arc::new(Int64Array::from(vec![-5, -1000]))),
            ])],
        },
        Edit::DeleteKeys {
            uid: OP.into(),
            state: STATE.into(),
            keys: vec![batch(vec![(
                "key",
                Arc::new(Int64Array::from(vec![2, 101])) as ArrayRef,
            )])],
        },
    ];
    edit(&source, at("edited"), &edits).await.unwrap();
    let mut expected = model.clone();
    expected.insert(5, -5);
    expected.insert(1000, -1000);
    expected.remove(&2);
    expected.remove(&101);
    assert_eq!(
        read_model(&at("edited"), ReadOptions::default()).await,
        expected
    );
    assert_valid(&at("edited")).await;

    // A migration keeps the layers but copies the shared files in: self-contained.
    let report = migrate(&source, at("migrated"), &[], &MigrateOptions::default())
        .await
        .unwrap();
    assert!(report.id.is_some());
    let migrated = SavepointReader::open(at("migrated")).await.unwrap();
    assert!(
        migrated
            .manifest()
            .shards()
            .all(|(_, _, s)| s.sibling.is_none())
    );
    assert_eq!(
        &read_model(&at("migrated"), ReadOptions::default()).await,
        model
    );
    assert_valid(&at("migrated")).await;
    // Format 1.0 cannot hold layers: going down says to compact first.
    let down = MigrateOptions {
        to_format_version: Some(FormatVersion::V1_0),
        ..Default::default()
    };
    let e = migrate(&source, at("down"), &[], &down).await.unwrap_err();
    assert!(e.to_string().contains("rewind compact"), "{e}");
}

#[tokio::test]
async fn a_missing_shared_file_is_named_by_validate_and_read() {
    let (_tmp, dir) = temp_location();
    chain(&dir, false).await;
    let last = dir.join(&checkpoint_name(3)).unwrap();
    let m = SavepointReader::open(last.clone()).await.unwrap();
    let shared = m
        .manifest()
        .shards()
        .find(|(_, _, s)| s.sibling.as_deref() == Some("chk-0000000001"))
        .map(|(_, _, s)| s.clone())
        .unwrap();
    let root = std::path::PathBuf::from(dir.to_string());
    std::fs::remove_file(root.join("chk-0000000001").join(&shared.path)).unwrap();
    let report = validate(&last, ValidateOptions::default()).await.unwrap();
    let missing: Vec<_> = report
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::Missing)
        .collect();
    assert_eq!(missing.len(), 1, "{:?}", report.problems);
    assert_eq!(
        missing[0].path.as_deref(),
        Some(format!("chk-0000000001/{}", shared.path).as_str())
    );
    let reader = SavepointReader::open(last).await.unwrap();
    let e = match reader.read_state(OP, STATE, ReadOptions::default()).await {
        Ok(stream) => futures::TryStreamExt::try_collect::<Vec<_>>(stream)
            .await
            .unwrap_err(),
        Err(e) => e,
    };
    assert!(
        e.to_string().contains("chk-0000000001/state/") && e.to_string().contains("missing"),
        "{e}"
    );
}

/// Every file of every folder under `dir`, relative to it.
fn files_under(dir: &Location) -> Vec<String> {
    let root = std::path::PathBuf::from(dir.to_string());
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(
                    e.path()
                        .strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn removing_checkpoints_keeps_the_files_others_list() {
    let (_tmp, dir) = temp_location();
    let models = chain(&dir, true).await;
    let chk = |id| dir.join(&checkpoint_name(id)).unwrap();
    // The oldest goes first, as retention does: the newest still reads whole.
    let removal = remove(&chk(1), false).await.unwrap();
    assert!(!removal.kept.is_empty());
    assert_eq!(removal.listed, ["_manifest.json"]);
    remove(&chk(2), false).await.unwrap();
    assert_eq!(read_model(&chk(3), ReadOptions::default()).await, models[2]);
    assert_valid(&chk(3)).await;
    // The last one takes the shared files of the gone checkpoints with it.
    let removal = remove(&chk(3), false).await.unwrap();
    assert!(!removal.shared.is_empty());
    assert_eq!(files_under(&dir), Vec::<String>::new());
}

/// What a random run of checkpoints and removals did: which checkpoints still exist.
#[derive(Debug, Clone)]
enum Step {
    /// A checkpoint: full, or a delta over the newest one, with this many changes.
    Checkpoint { full: bool, changes: u8 },
    /// Remove the existing checkpoint at this index (modulo their number).
    Remove(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (any::<bool>(), 0u8..12).prop_map(|(full, changes)| Step::Checkpoint { full, changes }),
        any::<u8>().prop_map(Step::Remove),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Removing any checkpoint, in any order, never deletes a file a remaining manifest
    /// lists: every remaining checkpoint reads its own state; and removing all of them
    /// leaves no file behind.
    #[test]
    fn removal_never_breaks_a_remaining_checkpoint(steps in prop::collection::vec(step(), 1..10), seed in any::<u64>()) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let (_tmp, dir) = temp_location();
            let mut model: Model = (0..20).map(|k| (k, k)).collect();
            let mut alive: Vec<(u64, Model)> = Vec::new();
            let mut newest: Option<u64> = None;
            let mut next = seed % 7;
            for (id, s) in (1u64..).zip(&steps) {
                match s {
                    Step::Checkpoint { full, changes } => {
                        let mut delta = Changes::new();
                        for _ in 0..*changes {
                            next = next.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                            let key = (next >> 33) as i64 % 30;
                            let value = ((next >> 20) % 3 != 0).then_some((next >> 40) as i64);
                            delta.insert(key, value);
                        }
                        apply(&mut model, &delta);
                        let base = newest.filter(|n| !full && alive.iter().any(|(a, _)| a == n));
                        write_checkpoint(&dir, id, &model, base.map(|b| (b, &delta)), id % 2 == 0).await;
                        newest = Some(id);
                        alive.push((id, model.clone()));
                    }
                    Step::Remove(i) if !alive.is_empty() => {
                        let (id, _) = alive.remove(*i as usize % alive.len());
                        remove(&dir.join(&checkpoint_name(id)).unwrap(), false).await.unwrap();
                    }
                    Step::Remove(_) => {}
                }
                for (id, expected) in &alive {
                    let location = dir.join(&checkpoint_name(*id)).unwrap();
                    assert_eq!(&read_model(&location, ReadOptions::default()).await, expected, "checkpoint {id} after {s:?}");
                }
            }
            for (id, _) in alive.drain(..) {
                remove(&dir.join(&checkpoint_name(id)).unwrap(), false).await.unwrap();
            }
            assert_eq!(files_under(&dir), Vec::<String>::new());
        });
    }
}

/// On every store (local, memory, and the S3 server of scripts/test.sh): siblings resolve
/// next to the root, and removing the chain oldest first leaves nothing behind.
#[tokio::test]
async fn chains_read_and_dispose_alike_on_every_store() {
    for (_guard, dir) in crate::storage::stores("incremental") {
        let models = chain(&dir, true).await;
        let chk = |id| dir.join(&checkpoint_name(id)).unwrap();
        // The folders right under the directory, in one listing (how the engine numbers
        // a run's checkpoints after those already there).
        let folders = rewind_savepoint::list_folders(&dir).await.unwrap();
        let names: Vec<String> = (1..=3).map(checkpoint_name).collect();
        assert_eq!(folders, names, "{dir}");
        assert_eq!(
            rewind_savepoint::list_folders(&chk(3)).await.unwrap(),
            ["state"],
            "{dir}"
        );
        assert_eq!(
            read_model(&chk(3), ReadOptions::default()).await,
            models[2],
            "{dir}"
        );
        assert_valid(&chk(3)).await;
        for id in [1, 2] {
            remove(&chk(id), false).await.unwrap();
        }
        assert_eq!(
            read_model(&chk(3), ReadOptions::default()).await,
            models[2],
            "{dir}"
        );
        remove(&chk(3), false).await.unwrap();
        let left = rewind_savepoint::list_files(&dir).await.unwrap();
        assert_eq!(left, Vec::<(String, u64)>::new(), "{dir}");
    }
}
