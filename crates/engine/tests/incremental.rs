//! Incremental checkpoints (format 1.1): after the first, each checkpoint lists the files of
//! the one before and adds a delta layer of the keys changed since; after a few layers a
//! checkpoint is whole again. A restore from the newest, at another parallelism, continues
//! exactly once, and retention never breaks a retained checkpoint.

use std::time::Duration;

use rewind_engine::{
    CollectSink, Context, GeneratedEvent, GeneratorSource, Job, JobBuilder, KeyedProcessFunction,
    MapState, RunOptions, StateDecl, ValueState, run,
};
use rewind_savepoint::format::{INCREMENTAL_CHECKPOINTS, Manifest};
use rewind_savepoint::{SavepointReader, ValidateOptions, validate};
use rewind_test_support::state_counts;

mod common;
use common::{block_on, keyed_count, loc, sorted};

/// The manifests of the checkpoints in `dir`, oldest first.
fn checkpoints(dir: &std::path::Path) -> Vec<(String, Manifest)> {
    let mut out: Vec<(String, Manifest)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("_manifest.json").exists())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let location = loc(dir, &name);
            let m = block_on(SavepointReader::open(location)).unwrap();
            (name, m.manifest().clone())
        })
        .collect();
    out.sort_by_key(|(_, m)| m.checkpoint_id);
    out
}

#[test]
fn checkpoints_are_deltas_and_restore_at_another_parallelism_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints_dir = dir.path().join("checkpoints");
    let source = GeneratorSource {
        keys: 3000,
        events: 40_000,
        seed: 9,
        splits: 2,
        rate_per_split: Some(20_000),
    };
    let fast = GeneratorSource {
        rate_per_split: None,
        ..source.clone()
    };
    let whole = CollectSink::default();
    let expected_final = dir.path().join("uninterrupted");
    run(
        keyed_count(fast.clone(), 2, whole.clone()),
        RunOptions {
            savepoint_on_finish: Some(loc(dir.path(), "uninterrupted")),
            ..Default::default()
        },
    )
    .unwrap()
    .wait()
    .unwrap();

    let first = CollectSink::default();
    let options = RunOptions {
        checkpoint_dir: Some(loc(dir.path(), "checkpoints")),
        checkpoint_interval: Some(Duration::from_millis(40)),
        retain_checkpoints: 4,
        max_delta_layers: Some(2),
        ..Default::default()
    };
    let handle = run(keyed_count(source, 2, first.clone()), options).unwrap();
    std::thread::sleep(Duration::from_millis(700));
    handle.cancel().unwrap();

    let retained = checkpoints(&checkpoints_dir);
    assert!(retained.len() >= 2, "{} checkpoints", retained.len());
    let mut layered = 0;
    for (name, m) in &retained {
        let report = block_on(validate(
            &loc(&checkpoints_dir, name),
            ValidateOptions {
                deep: true,
                ..Default::default()
            },
        ))
        .unwrap();
        assert!(report.is_valid(), "{name}: {:?}", report.problems);
        let count = m.operator("counter").unwrap().state("count").unwrap();
        let layers: std::collections::BTreeSet<u32> =
            count.shards.iter().map(|s| s.layer).collect();
        // Two delta layers at most: the third change is written whole.
        assert!(layers.len() <= 3, "{name}: layers {layers:?}");
        if layers.len() > 1 {
            layered += 1;
            assert!(
                m.reader_features
                    .contains(&INCREMENTAL_CHECKPOINTS.to_string())
            );
            assert!(count.shards.iter().any(|s| s.sibling.is_some()), "{name}");
        }
    }
    assert!(layered > 0, "no checkpoint was written as changes");

    // Restore the newest at parallelism 3 and run to the end: output exactly once, and the
    // same final state as the uninterrupted run.
    let second = CollectSink::default();
    let options = RunOptions {
        from_savepoint: Some(loc(dir.path(), "checkpoints")),
        parallelism: Some(3),
        savepoint_on_finish: Some(loc(dir.path(), "restored")),
        ..Default::default()
    };
    run(keyed_count(fast, 3, second.clone()), options)
        .unwrap()
        .wait()
        .unwrap();
    let mut both = first.lines();
    both.extend(second.lines());
    assert_eq!(sorted(both), sorted(whole.lines()));
    assert_eq!(
        state_counts(&loc(dir.path(), "restored"), "counter", "count"),
        state_counts(
            &loc(expected_final.parent().unwrap(), "uninterrupted"),
            "counter",
            "count"
        )
    );
    // The final savepoint is whole: it lists no other folder's files and no layers.
    let restored = block_on(SavepointReader::open(loc(dir.path(), "restored"))).unwrap();
    assert!(!rewind_savepoint::is_incremental(restored.manifest()));
}

#[test]
fn zero_delta_layers_writes_every_checkpoint_whole() {
    let dir = tempfile::tempdir().unwrap();
    let source = GeneratorSource {
        keys: 500,
        events: 10_000,
        seed: 3,
        splits: 2,
        rate_per_split: Some(20_000),
    };
    let options = RunOptions {
        checkpoint_dir: Some(loc(dir.path(), "checkpoints")),
        checkpoint_interval: Some(Duration::from_millis(30)),
        retain_checkpoints: 0,
        max_delta_layers: Some(0),
        ..Default::default()
    };
    run(keyed_count(source, 2, CollectSink::default()), options)
        .unwrap()
        .wait()
        .unwrap();
    let all = checkpoints(&dir.path().join("checkpoints"));
    assert!(all.len() >= 2, "{} checkpoints", all.len());
    for (name, m) in &all {
        assert!(!rewind_savepoint::is_incremental(m), "{name}");
    }
}

/// Per key, a map of counts by `seq % 4`: a count that reaches 3 is removed, and every
/// tenth event of a key clears its map. Emits the key's map after each event, so a map
/// restored wrong shows in the output.
struct Tally {
    counts: MapState<i64, u64>,
    seen: ValueState<u64>,
}

impl KeyedProcessFunction for Tally {
    type Key = i64;
    type In = GeneratedEvent;
    type Out = (i64, u64, Vec<(i64, u64)>);
    fn states(&self) -> Vec<StateDecl<i64>> {
        vec![self.counts.decl(), self.seen.decl()]
    }
    fn process(&self, e: GeneratedEvent, ctx: &mut Context<'_, i64, Self::Out>) {
        let seen = self.seen.get(ctx).copied().unwrap_or(0) + 1;
        self.seen.set(ctx, seen);
        if seen % 10 == 0 {
            self.counts.clear(ctx);
        } else {
            let bucket = (e.seq % 4) as i64;
            let n = self.counts.get(ctx, &bucket).copied().unwrap_or(0) + 1;
            if n >= 3 {
                self.counts.remove(ctx, &bucket);
            } else {
                self.counts.insert(ctx, bucket, n);
            }
        }
        let entries = self.counts.entries(ctx).map(|(k, v)| (*k, *v)).collect();
        let key = *ctx.key();
        ctx.emit((key, seen, entries));
    }
}

fn tally(source: GeneratorSource, p: u32, sink: CollectSink) -> Job {
    JobBuilder::new("tally")
        .source("Generator", source)
        .uid("events")
        .key_by(|e: &GeneratedEvent| e.key)
        .process(
            "Tally",
            Tally {
                counts: MapState::new("counts"),
                seen: ValueState::new("seen"),
            },
        )
        .uid("tally")
        .parallelism(p)
        .sink("output", sink)
}

/// Map state in incremental checkpoints: its delta layers carry the entries written and
/// deletes of the user keys lost (removed one by one or cleared whole) since the last
/// checkpoint.
/// A job restored from a savepoint of 5000 keys (its first checkpoint is that whole
/// state), then reading slowly, writes every later checkpoint as a small delta; cancelled
/// and restored from the newest at another parallelism, it emits exactly what an
/// uninterrupted run does (a lost delete would resurrect a count and show in the maps).
#[test]
fn map_state_checkpoints_are_deltas_with_deletes_and_restore_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    // One split: each key's events arrive in sequence order in every run.
    let source = |events, rate| GeneratorSource {
        keys: 5000,
        events,
        seed: 4,
        splits: 1,
        rate_per_split: rate,
    };
    let whole = CollectSink::default();
    run(
        tally(source(60_000, None), 2, whole.clone()),
        RunOptions::default(),
    )
    .unwrap()
    .wait()
    .unwrap();

    // The first 50k events, then a savepoint.
    let start = CollectSink::default();
    let options = RunOptions {
        savepoint_on_finish: Some(loc(dir.path(), "start")),
        ..Default::default()
    };
    run(tally(source(50_000, None), 2, start.clone()), options)
        .unwrap()
        .wait()
        .unwrap();

    // From there, slowly, with a checkpoint every 30 ms, until cancelled.
    let slow = CollectSink::default();
    let options = RunOptions {
        from_savepoint: Some(loc(dir.path(), "start")),
        checkpoint_dir: Some(loc(dir.path(), "checkpoints")),
        checkpoint_interval: Some(Duration::from_millis(30)),
        retain_checkpoints: 3,
        max_delta_layers: Some(100),
        ..Default::default()
    };
    let handle = run(tally(source(60_000, Some(2_000)), 2, slow.clone()), options).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    handle.cancel().unwrap();

    let checkpoints_dir = dir.path().join("checkpoints");
    let retained = checkpoints(&checkpoints_dir);
    let (name, newest) = retained.last().expect("no checkpoint written");
    let location = loc(&checkpoints_dir, name);
    let report = block_on(validate(&location, ValidateOptions::default())).unwrap();
    assert!(report.is_valid(), "{name}: {:?}", report.problems);
    let counts = newest.operator("tally").unwrap().state("counts").unwrap();
    assert!(
        counts.shards.iter().any(|s| s.layer > 0),
        "{name}: the newest checkpoint has no map delta layer"
    );
    let deletes: usize = retained
        .iter()
        .flat_map(|(name, m)| {
            let counts = m.operator("tally").unwrap().state("counts").unwrap();
            counts
                .shards
                .iter()
                .filter(|s| s.layer > 0 && s.sibling.is_none())
                .map(|s| checkpoints_dir.join(name).join(&s.path))
                .collect::<Vec<_>>()
        })
        .map(|file| deleted_rows(&file))
        .sum();
    assert!(deletes > 0, "no map delta layer with deletes was written");

    let rest = CollectSink::default();
    let options = RunOptions {
        from_savepoint: Some(loc(dir.path(), "checkpoints")),
        parallelism: Some(3),
        ..Default::default()
    };
    run(tally(source(60_000, None), 3, rest.clone()), options)
        .unwrap()
        .wait()
        .unwrap();
    let mut all = start.lines();
    all.extend(slow.lines());
    all.extend(rest.lines());
    assert_eq!(sorted(all), sorted(whole.lines()));
}

/// Rows of a delta shard whose `deleted` is true (read with the parquet crate).
fn deleted_rows(file: &std::path::Path) -> usize {
    use arrow_array::cast::AsArray;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(file).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap();
    reader
        .map(|b| {
            let b = b.unwrap();
            let deleted = b.column_by_name("deleted").unwrap().as_boolean();
            deleted.true_count()
        })
        .sum()
}
