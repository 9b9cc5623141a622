//! Incremental checkpoints (format 1.1): after the first, each checkpoint lists the files of
//! the one before and adds a delta layer of the keys changed since; after a few layers a
//! checkpoint is whole again. A restore from the newest, at another parallelism, continues
//! exactly once, and retention never breaks a retained checkpoint.

use std::time::Duration;

use rewind_engine::{CollectSink, GeneratorSource, RunOptions, run};
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
