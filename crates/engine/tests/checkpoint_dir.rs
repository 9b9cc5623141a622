//! A checkpoint directory over several runs: a run restored from an older checkpoint, or a
//! new run, in a directory that holds checkpoints already numbers its own after all of
//! them; a checkpoint that fails leaves no files behind.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rewind_engine::{
    CollectSink, Context, GeneratedEvent, GeneratorSource, JobBuilder, JobHandle,
    KeyedProcessFunction, RunOptions, StateDecl, ValueState, run,
};
use rewind_savepoint::{LineageEntry, find_savepoints, latest_completed};

mod common;
use common::{block_on, keyed_count, loc};

fn source(rate: Option<u64>) -> GeneratorSource {
    GeneratorSource {
        keys: 50,
        events: 400_000,
        seed: 5,
        splits: 2,
        rate_per_split: rate,
    }
}

fn found(dir: &Path) -> Vec<LineageEntry> {
    let (found, broken) = block_on(find_savepoints(&loc(dir, ""))).unwrap();
    assert!(broken.is_empty(), "{broken:?}");
    found
}

/// Waits (up to 3 s) for the job's first completed checkpoint and returns its id.
fn first_checkpoint(handle: &JobHandle) -> u64 {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        if let Some(c) = handle.stats().last_checkpoint {
            return c.id;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no checkpoint completed within 3 s");
}

fn expected_counts(source: &GeneratorSource) -> BTreeMap<i64, u64> {
    let mut out = BTreeMap::new();
    for seq in 0..source.events {
        *out.entry(source.key_of(seq)).or_insert(0) += 1;
    }
    out
}

/// Rolling back: a run restored from an older checkpoint into the same directory. Its
/// checkpoints must not collide with the newer ones of the abandoned run (each would fail
/// until the ids passed them) nor be shadowed by them (restoring "the newest" would pick
/// the abandoned line); a new run in the used directory likewise.
#[test]
fn runs_in_a_used_directory_number_their_checkpoints_after_every_one_there() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = dir.path().join("checkpoints");
    let options = |interval_ms: u64| RunOptions {
        checkpoint_dir: Some(loc(dir.path(), "checkpoints")),
        checkpoint_interval: Some(Duration::from_millis(interval_ms)),
        ..Default::default()
    };
    // The first run keeps all of its many checkpoints.
    let first = run(
        keyed_count(source(Some(20_000)), 2, CollectSink::default()),
        options(15),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    first.cancel().unwrap();
    let before = found(&checkpoints);
    assert!(before.len() >= 8, "{} checkpoints", before.len());
    let oldest = before
        .iter()
        .min_by_key(|e| e.checkpoint_id)
        .unwrap()
        .clone();
    let newest = latest_completed(&before).unwrap().checkpoint_id;

    // Back to the oldest, checkpointing far less often: the first checkpoint completes at
    // once, numbered after the abandoned run's, and is the newest in the directory.
    let rollback = run(
        keyed_count(source(Some(20_000)), 2, CollectSink::default()),
        RunOptions {
            from_savepoint: Some(loc(&checkpoints, &oldest.path)),
            ..options(500)
        },
    )
    .unwrap();
    let id = first_checkpoint(&rollback);
    assert_eq!(rollback.stats().checkpoints_failed, 0);
    rollback.cancel().unwrap();
    assert!(
        id > newest,
        "checkpoint {id}, the abandoned run's newest {newest}"
    );
    let after = found(&checkpoints);
    let latest = latest_completed(&after).unwrap();
    assert_eq!(latest.checkpoint_id, id);
    assert_eq!(latest.parent_id.as_ref(), Some(&oldest.id));
    // The abandoned run's checkpoints are all still there, untouched.
    for e in &before {
        assert!(after.iter().any(|a| a.id == e.id), "{} is gone", e.path);
    }

    // A new job in the same directory numbers on after all of them too.
    let fresh = run(
        keyed_count(source(Some(20_000)), 2, CollectSink::default()),
        options(500),
    )
    .unwrap();
    let fresh_id = first_checkpoint(&fresh);
    assert_eq!(fresh.stats().checkpoints_failed, 0);
    fresh.cancel().unwrap();
    assert!(fresh_id > id, "checkpoint {fresh_id} after {id}");

    // Restoring "the newest under the directory" takes the new job's and runs to the end.
    let end = loc(dir.path(), "end");
    let fast = source(None);
    run(
        keyed_count(fast.clone(), 2, CollectSink::default()),
        RunOptions {
            from_savepoint: Some(loc(dir.path(), "checkpoints")),
            savepoint_on_finish: Some(end.clone()),
            ..Default::default()
        },
    )
    .unwrap()
    .wait()
    .unwrap();
    assert_eq!(
        rewind_test_support::state_counts(&end, "counter", "count"),
        expected_counts(&fast)
    );
}

/// A count whose value cannot be stored while it lies in `POISONED`: checkpoints taken
/// then fail while converting the state, after other subtasks' shards were written.
#[derive(Clone)]
struct Touchy(u64);

const POISONED: std::ops::Range<u64> = 1500..4500;

impl serde::Serialize for Touchy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if POISONED.contains(&self.0) {
            return Err(serde::ser::Error::custom("a poisoned count"));
        }
        serializer.serialize_u64(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Touchy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u64::deserialize(d).map(Touchy)
    }
}

struct TouchyCount {
    count: ValueState<Touchy>,
}

impl KeyedProcessFunction for TouchyCount {
    type Key = i64;
    type In = GeneratedEvent;
    type Out = (i64, u64);
    fn states(&self) -> Vec<StateDecl<i64>> {
        vec![self.count.decl()]
    }
    fn process(&self, _: GeneratedEvent, ctx: &mut Context<'_, i64, (i64, u64)>) {
        let n = self.count.get(ctx).map_or(0, |c| c.0) + 1;
        self.count.set(ctx, Touchy(n));
        let key = *ctx.key();
        ctx.emit((key, n));
    }
}

/// Checkpoints that fail after writing some shards (one key's count cannot be stored for
/// a while; the other keys' shards are written by then) leave no file behind: the job goes
/// on, later checkpoints complete, and the output is whole.
#[test]
fn a_failed_checkpoint_leaves_no_files_behind() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = dir.path().join("checkpoints");
    // Each of the two keys takes about every other event: each count is poisoned for
    // about 0.3 s, with clean checkpoints before and after.
    let source = GeneratorSource {
        keys: 2,
        events: 12_000,
        seed: 3,
        splits: 2,
        rate_per_split: Some(10_000),
    };
    let sink = CollectSink::default();
    let job = JobBuilder::new("touchy")
        .source("Generator", source)
        .uid("events")
        .key_by(|e: &GeneratedEvent| e.key)
        .process(
            "Counter",
            TouchyCount {
                count: ValueState::new("count"),
            },
        )
        .uid("counter")
        .parallelism(2)
        .sink("output", sink.clone());
    let options = RunOptions {
        checkpoint_dir: Some(loc(dir.path(), "checkpoints")),
        checkpoint_interval: Some(Duration::from_millis(20)),
        ..Default::default()
    };
    let (_, stats) = run(job, options).unwrap().wait_with_stats().unwrap();
    assert!(stats.checkpoints_failed > 0, "no checkpoint failed");
    assert!(stats.checkpoints_written > 0, "no checkpoint completed");
    let mut failed = 0;
    for e in std::fs::read_dir(&checkpoints).unwrap().flatten() {
        let folder = e.path();
        if !folder.join("_manifest.json").exists() {
            failed += 1;
            assert_eq!(
                rewind_test_support::files_under(&folder),
                Vec::<String>::new(),
                "{folder:?}"
            );
        }
    }
    assert!(failed > 0, "no folder of a failed checkpoint");
    // The failed checkpoints' output went with later ones: all of it, once.
    assert_eq!(sink.lines().len(), 12_000);
}
