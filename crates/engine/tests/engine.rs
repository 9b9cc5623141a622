//! Engine tests: keyed counting, savepoints, restore at another parallelism, and the
//! exactly-once property of stop-with-savepoint and restore.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use rewind_engine::{
    CollectSink, Context, EngineError, GeneratedEvent, GeneratorSource, JobBuilder,
    KeyedProcessFunction, RunOptions, StateDecl, ValueState, run,
};
use rewind_savepoint::{Location, SavepointReader, ValidateOptions, validate};

mod common;
use common::{Count, block_on, generator, keyed_count, loc, records_read, run_to_end, sorted};

/// The counts in a savepoint, by key.
fn counts(location: &Location) -> BTreeMap<i64, u64> {
    rewind_test_support::state_counts(location, "counter", "count")
}

fn expected_counts(source: &GeneratorSource) -> BTreeMap<i64, u64> {
    let mut out = BTreeMap::new();
    for seq in 0..source.events {
        *out.entry(source.key_of(seq)).or_insert(0) += 1;
    }
    out
}

#[test]
fn keyed_count_is_exact_and_its_savepoint_valid() {
    let dir = tempfile::tempdir().unwrap();
    for p in [1u32, 4] {
        let source = generator(500, 20_000, 3, 4);
        let sink = CollectSink::default();
        let target = loc(dir.path(), &format!("final-{p}"));
        let options = RunOptions {
            savepoint_on_finish: Some(target.clone()),
            ..Default::default()
        };
        let written = run(keyed_count(source.clone(), p, sink.clone()), options)
            .unwrap()
            .wait()
            .unwrap();
        assert_eq!(written.len(), 1);
        assert_eq!(counts(&target), expected_counts(&source), "p={p}");
        assert_eq!(sink.lines().len(), 20_000);
        let report = block_on(validate(
            &target,
            ValidateOptions {
                deep: true,
                ..Default::default()
            },
        ))
        .unwrap();
        assert!(report.is_valid(), "{:?}", report.problems);
        let manifest = &written[0];
        let splits = &manifest
            .operator("events")
            .unwrap()
            .source
            .as_ref()
            .unwrap()
            .splits;
        assert_eq!(
            splits
                .iter()
                .map(|s| s.position["offset"].as_u64().unwrap())
                .sum::<u64>(),
            20_000
        );
    }
}

#[test]
fn stateful_operators_need_a_uid() {
    let job = JobBuilder::new("x")
        .source("Generator", generator(1, 1, 0, 1))
        .uid("events")
        .key_by(|e: &GeneratedEvent| e.key)
        .process("Counter", Count::new())
        .sink("output", CollectSink::default());
    let err = run(job, RunOptions::default()).err().unwrap();
    assert!(matches!(err, EngineError::InvalidJob(_)), "{err}");
    assert!(
        err.to_string()
            .contains("operator \"Counter\" has state but no uid"),
        "{err}"
    );
}

#[test]
fn missing_operators_state_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let source = generator(10, 100, 1, 2);
    let sp = loc(dir.path(), "sp");
    let options = RunOptions {
        savepoint_on_finish: Some(sp.clone()),
        ..Default::default()
    };
    run_to_end(
        keyed_count(source.clone(), 2, CollectSink::default()),
        options,
    );
    // A new version of the job without the counter.
    let without = || {
        JobBuilder::new("keyed-count")
            .source("Generator", source.clone())
            .uid("events")
            .map(|e: GeneratedEvent| e.seq)
            .sink("output", CollectSink::default())
    };
    let err = run(
        without(),
        RunOptions {
            from_savepoint: Some(sp.clone()),
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert!(
        err.to_string()
            .contains("state for operators this job lacks: counter"),
        "{err}"
    );
    let options = RunOptions {
        from_savepoint: Some(sp),
        allow_non_restored_state: true,
        ..Default::default()
    };
    run(without(), options).unwrap().wait().unwrap();
}

/// Run, savepoint mid-stream and stop, restore at another parallelism and run to the end:
/// the final state and the committed output equal one uninterrupted run's.
/// `chunk`: the sinks' staging chunk size (`None`: the default).
fn exactly_once(
    events: u64,
    keys: u64,
    first_p: u32,
    second_p: u32,
    stop_after_ms: u64,
    chunk: Option<usize>,
) {
    let dir = tempfile::tempdir().unwrap();
    // 3 splits x 10k events/s at most: the smallest input takes 100 ms or more, so a stop
    // within 40 ms comes mid-stream even on a slow machine.
    let source = GeneratorSource {
        keys,
        events,
        seed: keys ^ events,
        splits: 3,
        rate_per_split: Some(10_000),
    };
    let fast = GeneratorSource {
        rate_per_split: None,
        ..source.clone()
    };

    let whole = CollectSink::default();
    let full = loc(dir.path(), "uninterrupted");
    let options = RunOptions {
        savepoint_on_finish: Some(full.clone()),
        ..Default::default()
    };
    run(keyed_count(fast.clone(), first_p, whole.clone()), options)
        .unwrap()
        .wait()
        .unwrap();

    let first = CollectSink::default();
    let handle = run(
        keyed_count(source, first_p, first.clone()),
        RunOptions {
            sink_chunk_bytes: chunk,
            ..Default::default()
        },
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(stop_after_ms));
    let mid = loc(dir.path(), "mid");
    let manifest = handle.stop_with_savepoint(mid.clone()).unwrap();
    let offsets = records_read(&manifest, "events");
    assert!(
        offsets < events,
        "the stop came after the end ({offsets} of {events}); make the source slower"
    );

    let second = CollectSink::default();
    let end = loc(dir.path(), "end");
    let options = RunOptions {
        from_savepoint: Some(mid),
        savepoint_on_finish: Some(end.clone()),
        sink_chunk_bytes: chunk,
        ..Default::default()
    };
    let written = run(keyed_count(fast, second_p, second.clone()), options)
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(written[0].lineage.parent.as_ref().unwrap().id, manifest.id);
    assert!(
        written[0].checkpoint_id > manifest.checkpoint_id,
        "checkpoint ids go on after a restore"
    );

    assert_eq!(counts(&end), counts(&full));
    let mut both = first.lines();
    both.extend(second.lines());
    assert_eq!(sorted(both), sorted(whole.lines()));
}

#[test]
fn exactly_once_at_a_fixed_point() {
    exactly_once(6000, 50, 2, 3, 30, None);
}

/// Output staged in many small chunks as it is produced (a chunk every few lines) is
/// committed exactly once, across a stop and a restore at another parallelism.
#[test]
fn exactly_once_with_output_staged_as_produced() {
    exactly_once(6000, 50, 2, 3, 30, Some(64));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn exactly_once_for_random_inputs_points_and_parallelism(
        events in 3000u64..8000, keys in 1u64..300, first_p in 1u32..5, second_p in 1u32..9, stop in 5u64..40,
        chunk in prop_oneof![Just(None), (1usize..2000).prop_map(Some)],
    ) {
        exactly_once(events, keys, first_p, second_p, stop, chunk);
    }
}

/// Periodic checkpoints are written while the job runs, the last N are kept, and the job
/// restored from the latest one reaches the uninterrupted result.
#[test]
fn periodic_checkpoints_are_retained_and_restorable() {
    let dir = tempfile::tempdir().unwrap();
    let source = GeneratorSource {
        keys: 40,
        events: 6000,
        seed: 9,
        splits: 2,
        rate_per_split: Some(10_000),
    };
    let checkpoints = loc(dir.path(), "checkpoints");
    let sink = CollectSink::default();
    let options = RunOptions {
        checkpoint_dir: Some(checkpoints.clone()),
        checkpoint_interval: Some(Duration::from_millis(40)),
        retain_checkpoints: 2,
        ..Default::default()
    };
    run(keyed_count(source.clone(), 2, sink.clone()), options)
        .unwrap()
        .wait()
        .unwrap();
    let (found, broken) = block_on(rewind_savepoint::find_savepoints(&checkpoints)).unwrap();
    assert!(broken.is_empty());
    assert!(
        !found.is_empty() && found.len() <= 2,
        "kept {} checkpoints",
        found.len()
    );
    assert!(found.iter().all(|e| e.kind == "checkpoint"));
    // Without a final savepoint the output is still complete: the end of input commits it.
    assert_eq!(sink.lines().len(), 6000);

    let latest = found.last().unwrap();
    let latest = loc(&dir.path().join("checkpoints"), &latest.path);
    let end = loc(dir.path(), "end");
    let fast = GeneratorSource {
        rate_per_split: None,
        ..source.clone()
    };
    let options = RunOptions {
        from_savepoint: Some(latest),
        savepoint_on_finish: Some(end.clone()),
        parallelism: Some(3),
        ..Default::default()
    };
    run(keyed_count(fast, 3, CollectSink::default()), options)
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(counts(&end), expected_counts(&source));
}

/// A new version of the job: a changed stateless step and a new keyed operator. The
/// counter restores its state by uid; the new operator starts empty; the plan says so.
#[test]
fn topology_changes_restore_by_uid() {
    struct Parity {
        seen: ValueState<u64>,
    }
    impl KeyedProcessFunction for Parity {
        type Key = i64;
        type In = (i64, u64);
        type Out = (i64, u64);
        fn states(&self) -> Vec<StateDecl<i64>> {
            vec![self.seen.decl()]
        }
        fn process(&self, input: (i64, u64), ctx: &mut Context<'_, i64, (i64, u64)>) {
            let seen = self.seen.get(ctx).copied().unwrap_or(0) + 1;
            self.seen.set(ctx, seen);
            let key = *ctx.key();
            ctx.emit((key, input.1));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let source = generator(30, 3000, 5, 2);
    let v1_end = loc(dir.path(), "v1");
    let options = RunOptions {
        savepoint_on_finish: Some(v1_end.clone()),
        ..Default::default()
    };
    run_to_end(
        keyed_count(source.clone(), 2, CollectSink::default()),
        options,
    );

    let more = GeneratorSource {
        events: 6000,
        ..source.clone()
    };
    let v2 = || {
        JobBuilder::new("keyed-count")
            .source("Generator", more.clone())
            .uid("events")
            // Changed stateless logic: drop nothing, but through a different path.
            .filter(|e: &GeneratedEvent| e.seq < u64::MAX)
            .key_by(|e: &GeneratedEvent| e.key)
            .process("Counter", Count::new())
            .uid("counter")
            .parallelism(3)
            .key_by(|x: &(i64, u64)| x.0)
            .process(
                "Parity",
                Parity {
                    seen: ValueState::new("seen"),
                },
            )
            .uid("parity")
            .sink("output", CollectSink::default())
    };
    let options = RunOptions {
        from_savepoint: Some(v1_end.clone()),
        savepoint_on_finish: Some(loc(dir.path(), "v2")),
        ..Default::default()
    };
    let plan = rewind_engine::restore_plan(&v2(), &options).unwrap();
    assert!(
        plan.contains(
            "counter                  restores state \"count\" (30 rows), parallelism 2 -> 3"
        ),
        "{plan}"
    );
    assert!(
        plan.contains("parity                   new: starts empty"),
        "{plan}"
    );
    run(v2(), options).unwrap().wait().unwrap();
    // The counter went on from v1's counts: 6000 events in all, each counted once.
    let total: u64 = counts(&loc(dir.path(), "v2")).values().sum();
    assert_eq!(total, 6000);
    assert_eq!(counts(&loc(dir.path(), "v2")), expected_counts(&more));
}

/// Offline rescale agrees with the engine: a job restored from the offline-rescaled
/// savepoint and one restored from the original at the same new parallelism reach the
/// same state and output.
#[test]
fn offline_rescale_agrees_with_restore_at_new_parallelism() {
    let dir = tempfile::tempdir().unwrap();
    let source = GeneratorSource {
        keys: 300,
        events: 9000,
        seed: 2,
        splits: 3,
        rate_per_split: Some(10_000),
    };
    let handle = run(
        keyed_count(source.clone(), 2, CollectSink::default()),
        RunOptions::default(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(60));
    let original = loc(dir.path(), "original");
    handle.stop_with_savepoint(original.clone()).unwrap();

    let rescaled = loc(dir.path(), "rescaled");
    block_on(async {
        let reader = SavepointReader::open(original.clone()).await.unwrap();
        let options = rewind_savepoint::RescaleOptions {
            parallelism: Some(5),
            ..Default::default()
        };
        rewind_savepoint::rescale(&reader, rescaled.clone(), &options, None)
            .await
            .unwrap();
    });
    let fast = GeneratorSource {
        rate_per_split: None,
        ..source.clone()
    };
    let finish = |from: &Location, name: &str| {
        let sink = CollectSink::default();
        let end = loc(dir.path(), name);
        let options = RunOptions {
            from_savepoint: Some(from.clone()),
            savepoint_on_finish: Some(end.clone()),
            ..Default::default()
        };
        run(keyed_count(fast.clone(), 5, sink.clone()), options)
            .unwrap()
            .wait()
            .unwrap();
        (counts(&end), sorted(sink.lines()))
    };
    let (state_a, out_a) = finish(&original, "from-original");
    let (state_b, out_b) = finish(&rescaled, "from-rescaled");
    assert_eq!(state_a, state_b);
    assert_eq!(out_a, out_b);
    assert_eq!(state_a, expected_counts(&source));
}

/// Edited savepoints restore: a renamed uid restores into the operator with the new uid,
/// and a source position reset to the beginning makes the source read everything again.
#[test]
fn edited_savepoints_restore_into_the_engine() {
    use rewind_savepoint::Edit;
    let dir = tempfile::tempdir().unwrap();
    let source = generator(20, 2000, 8, 2);
    let first = loc(dir.path(), "first");
    let options = RunOptions {
        savepoint_on_finish: Some(first.clone()),
        ..Default::default()
    };
    run_to_end(
        keyed_count(source.clone(), 2, CollectSink::default()),
        options,
    );

    let edited = loc(dir.path(), "edited");
    block_on(async {
        let reader = SavepointReader::open(first.clone()).await.unwrap();
        let edits = vec![
            Edit::RenameOperator {
                from: "counter".into(),
                to: "counter-v2".into(),
            },
            Edit::SetPosition {
                uid: "events".into(),
                split: "split-0".into(),
                position: serde_json::json!({ "offset": 0 }),
            },
            Edit::SetPosition {
                uid: "events".into(),
                split: "split-1".into(),
                position: serde_json::json!({ "offset": 0 }),
            },
        ];
        rewind_savepoint::edit(&reader, edited.clone(), &edits)
            .await
            .unwrap();
    });
    let job = JobBuilder::new("keyed-count")
        .source("Generator", source.clone())
        .uid("events")
        .key_by(|e: &GeneratedEvent| e.key)
        .process("Counter", Count::new())
        .uid("counter-v2")
        .sink("output", CollectSink::default());
    let end = loc(dir.path(), "end");
    let options = RunOptions {
        from_savepoint: Some(edited),
        savepoint_on_finish: Some(end.clone()),
        ..Default::default()
    };
    run(job, options).unwrap().wait().unwrap();
    // The renamed operator kept its counts, and the reset source counted every event again.
    let doubled = rewind_test_support::state_counts(&end, "counter-v2", "count");
    let expected: BTreeMap<i64, u64> = expected_counts(&source)
        .into_iter()
        .map(|(k, v)| (k, 2 * v))
        .collect();
    assert_eq!(doubled, expected);
}

/// A savepoint bootstrapped from data restores into a job, which continues from it.
#[test]
fn bootstrapped_state_restores_and_continues() {
    let dir = tempfile::tempdir().unwrap();
    let boot = loc(dir.path(), "boot");
    block_on(async {
        let w = rewind_savepoint::SavepointWriter::create(
            boot.clone(),
            rewind_savepoint::SavepointInfo::new("keyed-count", "bootstrap"),
        )
        .await
        .unwrap();
        w.add_operator("counter", "Counter", 1).unwrap();
        w.add_state(
            "counter",
            rewind_savepoint::StateSpec::value(
                "count",
                arrow_schema::DataType::Int64,
                arrow_schema::DataType::UInt64,
            ),
        )
        .unwrap();
        let keys: Vec<i64> = (0..10).collect();
        let batch = arrow_array::RecordBatch::try_new(
            std::sync::Arc::new(arrow_schema::Schema::new(vec![
                arrow_schema::Field::new("key", arrow_schema::DataType::Int64, false),
                arrow_schema::Field::new("value", arrow_schema::DataType::UInt64, true),
            ])),
            vec![
                std::sync::Arc::new(arrow_array::Int64Array::from(keys)),
                std::sync::Arc::new(arrow_array::UInt64Array::from(vec![1000u64; 10])),
            ],
        )
        .unwrap();
        w.write_keyed("counter", "count", vec![batch])
            .await
            .unwrap();
        w.commit().await.unwrap();
    });
    let source = generator(10, 500, 1, 2);
    let end = loc(dir.path(), "end");
    let options = RunOptions {
        from_savepoint: Some(boot),
        savepoint_on_finish: Some(end.clone()),
        ..Default::default()
    };
    run_to_end(
        keyed_count(source.clone(), 2, CollectSink::default()),
        options,
    );
    let expected: BTreeMap<i64, u64> = expected_counts(&source)
        .into_iter()
        .map(|(k, v)| (k, v + 1000))
        .collect();
    assert_eq!(counts(&end), expected);
}

/// The partitioned log source records byte offsets: a job restored from its savepoint reads
/// only what was appended since (a half-written last line waits until it is complete).
#[test]
fn log_source_resumes_at_byte_offsets() {
    #[derive(serde::Deserialize, Clone)]
    struct Event {
        key: i64,
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    std::fs::create_dir_all(&log).unwrap();
    let line = |k: i64| format!("{{\"key\": {k}}}\n");
    let mut expected: BTreeMap<i64, u64> = BTreeMap::new();
    for p in 0..3 {
        let mut text = String::new();
        for i in 0..100 {
            text.push_str(&line(i % 7));
            *expected.entry(i % 7).or_insert(0) += 1;
        }
        text.push_str("{\"key\": 6"); // half-written: not read yet
        std::fs::write(log.join(format!("partition-{p}.jsonl")), text).unwrap();
    }
    let job = |sink: CollectSink| {
        let source = rewind_engine::LogSource::<Event>::open(loc(dir.path(), "log")).unwrap();
        JobBuilder::new("log-count")
            .source("Log", source)
            .uid("log")
            .parallelism(2)
            .key_by(|e: &Event| e.key)
            .process("Counter", Count::<u64, Event>::emitting())
            .uid("counter")
            .sink("output", sink)
    };
    let first = loc(dir.path(), "first");
    let sink = CollectSink::default();
    let options = RunOptions {
        savepoint_on_finish: Some(first.clone()),
        ..Default::default()
    };
    run(job(sink.clone()), options).unwrap().wait().unwrap();
    assert_eq!(sink.lines().len(), 300);
    assert_eq!(counts(&first), expected);

    // Complete the half-written lines and append more.
    for p in 0..3 {
        let path = log.join(format!("partition-{p}.jsonl"));
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("}\n");
        *expected.entry(6).or_insert(0) += 1;
        for i in 0..10 {
            text.push_str(&line(i));
            *expected.entry(i).or_insert(0) += 1;
        }
        std::fs::write(&path, text).unwrap();
    }
    let second = loc(dir.path(), "second");
    let sink = CollectSink::default();
    let options = RunOptions {
        from_savepoint: Some(first),
        savepoint_on_finish: Some(second.clone()),
        parallelism: Some(3),
        ..Default::default()
    };
    run(job(sink.clone()), options).unwrap().wait().unwrap();
    assert_eq!(sink.lines().len(), 33, "only the new lines are read");
    assert_eq!(counts(&second), expected);
}

/// With `follow`, the log source tails its partitions: lines appended while the job runs
/// are read, and stop-with-savepoint ends the otherwise endless job.
#[test]
fn log_source_follows_appended_lines() {
    #[derive(serde::Deserialize, Clone)]
    struct Event {
        key: i64,
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    std::fs::create_dir_all(&log).unwrap();
    let path = log.join("partition-0.jsonl");
    std::fs::write(&path, "{\"key\": 1}\n").unwrap();
    let source = rewind_engine::LogSource::<Event>::open(loc(dir.path(), "log"))
        .unwrap()
        .follow(Duration::from_millis(5));
    let job = JobBuilder::new("tail")
        .source("Log", source)
        .uid("log")
        .key_by(|e: &Event| e.key)
        .process("Counter", Count::<u64, Event>::silent())
        .uid("counter")
        .sink("output", CollectSink::default());
    let handle = run(job, RunOptions::default()).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    std::fs::write(&path, "{\"key\": 1}\n{\"key\": 2}\n{\"key\": 2}\n").unwrap();
    // Wait until the appended lines are in the state, then stop.
    let target = loc(dir.path(), "sp");
    std::thread::sleep(Duration::from_millis(200));
    let manifest = handle.stop_with_savepoint(target.clone()).unwrap();
    let position = &manifest
        .operator("log")
        .unwrap()
        .source
        .as_ref()
        .unwrap()
        .splits[0]
        .position;
    assert_eq!(position["offset"], 33);
    assert_eq!(counts(&target), BTreeMap::from([(1, 1), (2, 2)]));
}

/// A followed log picks up partition files created after the start, records them in
/// savepoints, and a restored job resumes them at their offsets.
#[test]
fn followed_log_discovers_new_partitions() {
    #[derive(serde::Deserialize, Clone)]
    struct Event {
        key: i64,
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    std::fs::create_dir_all(&log).unwrap();
    let lines = |key: i64, n: usize| format!("{{\"key\": {key}}}\n").repeat(n);
    std::fs::write(log.join("partition-0.jsonl"), lines(1, 10)).unwrap();
    let job = |sink: CollectSink| {
        let source = rewind_engine::LogSource::<Event>::open(loc(dir.path(), "log"))
            .unwrap()
            .follow(Duration::from_millis(5));
        JobBuilder::new("discover")
            .source("Log", source)
            .uid("log")
            .parallelism(2)
            .key_by(|e: &Event| e.key)
            .process("Counter", Count::<u64, Event>::emitting())
            .uid("counter")
            .sink("output", sink)
    };
    let options = || RunOptions {
        checkpoint_dir: Some(loc(dir.path(), "checkpoints")),
        checkpoint_interval: Some(Duration::from_millis(20)),
        ..Default::default()
    };
    let wait_for = |sink: &CollectSink, line: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !sink.lines().iter().any(|l| l == line) {
            assert!(
                std::time::Instant::now() < deadline,
                "never saw {line}: {:?}",
                sink.lines()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };

    let first = CollectSink::default();
    let handle = run(job(first.clone()), options()).unwrap();
    wait_for(&first, "[1,10]");
    std::fs::write(log.join("partition-1.jsonl"), lines(2, 5)).unwrap();
    wait_for(&first, "[2,5]");
    let mid = loc(dir.path(), "mid");
    let manifest = handle.stop_with_savepoint(mid.clone()).unwrap();
    let splits = &manifest
        .operator("log")
        .unwrap()
        .source
        .as_ref()
        .unwrap()
        .splits;
    let found = splits
        .iter()
        .find(|s| s.id == "partition-1.jsonl")
        .expect("the new partition is a split");
    assert_eq!(found.position["offset"], 5 * 11);

    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(log.join("partition-1.jsonl"))
        .unwrap();
    std::io::Write::write_all(&mut file, lines(2, 3).as_bytes()).unwrap();
    let second = CollectSink::default();
    let options = RunOptions {
        from_savepoint: Some(mid),
        ..options()
    };
    let handle = run(job(second.clone()), options).unwrap();
    wait_for(&second, "[2,8]");
    handle.stop_with_savepoint(loc(dir.path(), "end")).unwrap();
    let mut all = first.lines();
    all.extend(second.lines());
    assert_eq!(
        all.iter().filter(|l| l.starts_with("[2,")).count(),
        8,
        "{all:?}"
    );
    assert_eq!(
        all.iter().filter(|l| l.starts_with("[1,")).count(),
        10,
        "{all:?}"
    );
}
