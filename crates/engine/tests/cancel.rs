//! Cancel: the job stops at once without a savepoint; nothing after the last completed
//! checkpoint is committed, and restoring from that checkpoint finishes exactly once.

use std::time::Duration;

use rewind_engine::{CollectSink, GeneratorSource, Job, RunOptions, run};
use rewind_savepoint::Location;

mod common;
use common::keyed_count;

fn job(source: GeneratorSource, sink: CollectSink) -> Job {
    keyed_count(source, 2, sink)
}

#[test]
fn cancel_then_restore_from_the_last_checkpoint_is_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = dir.path().join("checkpoints");
    let source = GeneratorSource {
        keys: 30,
        events: 6000,
        seed: 4,
        splits: 2,
        rate_per_split: Some(5_000),
    };
    let whole = CollectSink::default();
    let fast = GeneratorSource {
        rate_per_split: None,
        ..source.clone()
    };
    run(job(fast.clone(), whole.clone()), RunOptions::default())
        .unwrap()
        .wait()
        .unwrap();

    let first = CollectSink::default();
    let options = RunOptions {
        checkpoint_dir: Some(Location::parse(checkpoints.to_str().unwrap()).unwrap()),
        checkpoint_interval: Some(Duration::from_millis(30)),
        ..Default::default()
    };
    let handle = run(job(source, first.clone()), options).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    handle.cancel().unwrap();
    let committed = first.lines().len();
    assert!(
        committed > 0 && committed < 6000,
        "{committed} lines committed"
    );

    // The checkpoint directory itself: the restore takes its newest completed checkpoint
    // (by checkpoint id).
    let latest = checkpoints.clone();
    let second = CollectSink::default();
    let options = RunOptions {
        from_savepoint: Some(Location::parse(latest.to_str().unwrap()).unwrap()),
        ..Default::default()
    };
    run(job(fast, second.clone()), options)
        .unwrap()
        .wait()
        .unwrap();
    let mut both = first.lines();
    both.extend(second.lines());
    both.sort();
    let mut expected = whole.lines();
    expected.sort();
    assert_eq!(both, expected);
}
