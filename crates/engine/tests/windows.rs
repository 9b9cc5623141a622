//! Windows: exactly once across savepoints, checkpoints and parallelism changes, allowed
//! lateness, late records, idle splits, drains, and many windows firing at once.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use rewind_engine::{
    CollectSink, CountAggregate, GeneratedEvent, GeneratorSource, Job, JobBuilder, RunOptions,
    Windowed, Windows, run,
};
use rewind_savepoint::format::StateKind;
use rewind_savepoint::{Location, ValidateOptions, validate};

mod common;
use common::event_time::{BOUND, event_time, stop_and_restore};
use common::{block_on, generator, loc, records_read, sorted};

fn windowed_count(source: GeneratorSource, windows: Windows, p: u32, sink: CollectSink) -> Job {
    late_windowed_count(source, windows, Duration::ZERO, p, sink)
}

/// What a windowed count must emit, computed without the engine.
fn expected_windows(source: &GeneratorSource, windows: Windows) -> Vec<String> {
    let mut counts: BTreeMap<(i64, i64, i64), u64> = BTreeMap::new();
    match windows {
        Windows::Tumbling { size } | Windows::Sliding { size, .. } => {
            let size = size.as_millis() as i64;
            let slide = match windows {
                Windows::Sliding { slide, .. } => slide.as_millis() as i64,
                _ => size,
            };
            for seq in 0..source.events {
                let ts = event_time(seq);
                let mut start = ts - ts.rem_euclid(slide);
                while start > ts - size {
                    *counts
                        .entry((source.key_of(seq), start, start + size))
                        .or_default() += 1;
                    start -= slide;
                }
            }
        }
        Windows::Session { gap } => {
            let gap = gap.as_millis() as i64;
            let mut by_key: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
            for seq in 0..source.events {
                by_key
                    .entry(source.key_of(seq))
                    .or_default()
                    .push(event_time(seq));
            }
            for (key, mut times) in by_key {
                times.sort();
                let (mut start, mut end, mut n) = (times[0], times[0] + gap, 0);
                for t in times {
                    if t >= end {
                        counts.insert((key, start, end), n);
                        (start, n) = (t, 0);
                    }
                    end = end.max(t + gap);
                    n += 1;
                }
                counts.insert((key, start, end), n);
            }
        }
    }
    sorted(
        counts
            .into_iter()
            .map(|((key, start, end), value)| {
                format!(r#"{{"key":{key},"start":{start},"end":{end},"value":{value}}}"#)
            })
            .collect(),
    )
}

fn windows_strategy() -> impl Strategy<Value = Windows> {
    prop_oneof![
        (1u64..4).prop_map(|s| Windows::tumbling(Duration::from_millis(s * 500))),
        // Up to 6 windows a key: a firing takes from a sixth to half of the state (the
        // window operator fires a large share with one scan, a small one by lookups).
        (2u64..7).prop_map(|s| Windows::sliding(
            Duration::from_millis(s * 500),
            Duration::from_millis(500)
        )),
        (1u64..4).prop_map(|g| Windows::session(Duration::from_millis(g * 150))),
    ]
}

/// Run, stop with a savepoint mid-stream (windows open), restore at another parallelism and
/// run to the end: every window is emitted exactly once, as an uninterrupted run emits it.
fn windows_exactly_once(
    events: u64,
    keys: u64,
    windows: Windows,
    first_p: u32,
    second_p: u32,
    stop_after_ms: u64,
) {
    let dir = tempfile::tempdir().unwrap();
    let source = GeneratorSource {
        keys,
        events,
        seed: keys ^ events,
        splits: 3,
        rate_per_split: Some(10_000),
    };
    let job = |s, p, sink| windowed_count(s, windows, p, sink);
    let run = stop_and_restore(job, &source, first_p, second_p, stop_after_ms, dir.path());
    let expected = expected_windows(&source, windows);
    assert_eq!(run.whole, expected, "uninterrupted run");
    assert_eq!(run.both, expected, "restored at p{second_p}");
    // Each split that has read records records its watermark; open windows are state.
    for s in &run
        .manifest
        .operator("events")
        .unwrap()
        .source
        .as_ref()
        .unwrap()
        .splits
    {
        let offset = s.position["offset"].as_u64().unwrap();
        assert_eq!(s.watermark.is_some(), offset > 0, "split {}", s.id);
    }
    let op = run.manifest.operator("windows").unwrap();
    assert_eq!(op.state("windows").unwrap().kind, StateKind::Value);
    // Without allowed lateness every window in the state is yet to fire, so its timers
    // are derived on restore, not stored.
    assert!(op.state("timers").is_none());
    let report = block_on(validate(&run.location, ValidateOptions::default())).unwrap();
    assert!(report.is_valid(), "{report:?}");
}

#[test]
fn tumbling_windows_are_exactly_once_across_a_savepoint() {
    windows_exactly_once(
        4000,
        20,
        Windows::tumbling(Duration::from_secs(1)),
        2,
        3,
        40,
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn windows_are_exactly_once_for_random_points_and_parallelism(
        events in 2000u64..6000, keys in 1u64..40, windows in windows_strategy(),
        first_p in 1u32..4, second_p in 1u32..9, stop in 5u64..60,
    ) {
        windows_exactly_once(events, keys, windows, first_p, second_p, stop);
    }
}

/// A windowed count whose windows stay `lateness` after they fire.
fn late_windowed_count(
    source: GeneratorSource,
    windows: Windows,
    lateness: Duration,
    p: u32,
    sink: CollectSink,
) -> Job {
    JobBuilder::new("windowed-count")
        .source("Generator", source)
        .assign_timestamps(|e: &GeneratedEvent| event_time(e.seq), BOUND)
        .uid("events")
        .parallelism(2)
        .key_by(|e: &GeneratedEvent| e.key)
        .window(windows)
        .allowed_lateness(lateness)
        .aggregate("Windowed count", CountAggregate::new())
        .uid("windows")
        .parallelism(p)
        .sink("output", sink)
}

/// Three runs of one job, each stopped with a savepoint and restored by the next with
/// another allowed lateness: with lateness the timers are stored (fired windows are kept),
/// without they are derived from the windows, and a job that drops its lateness purges the
/// windows that already fired instead of firing them again. Every window is emitted once.
#[test]
fn windows_are_exactly_once_when_allowed_lateness_changes_across_savepoints() {
    let windows = Windows::tumbling(Duration::from_millis(500));
    // 500: a window's cleanup timer shares its timestamp with the next window's firing
    // timer (one timer group, two window starts).
    for latenesses in [[300, 0, 0], [0, 300, 0], [300, 300, 300], [500, 500, 500]] {
        let dir = tempfile::tempdir().unwrap();
        // Slow enough that a stop 60 ms in comes half a second before the end, even on a
        // loaded machine (a stop after the end fails: the input ended).
        let source = GeneratorSource {
            keys: 25,
            events: 6000,
            seed: 5,
            splits: 3,
            rate_per_split: Some(3_000),
        };
        let mut lines = Vec::new();
        let mut from: Option<Location> = None;
        for (round, lateness) in latenesses.into_iter().enumerate() {
            let lateness = Duration::from_millis(lateness);
            let sink = CollectSink::default();
            let last = round == latenesses.len() - 1;
            let src = GeneratorSource {
                rate_per_split: (!last).then_some(3_000),
                ..source.clone()
            };
            let options = RunOptions {
                from_savepoint: from.clone(),
                ..Default::default()
            };
            let job = late_windowed_count(src, windows, lateness, 2 + round as u32, sink.clone());
            let handle = run(job, options).unwrap();
            if last {
                handle.wait().unwrap();
            } else {
                std::thread::sleep(Duration::from_millis(60));
                let at = loc(dir.path(), &format!("round-{round}"));
                let manifest = handle.stop_with_savepoint(at.clone()).unwrap();
                assert!(records_read(&manifest, "events") < source.events);
                let op = manifest.operator("windows").unwrap();
                assert_eq!(
                    op.state("timers").is_some(),
                    !lateness.is_zero(),
                    "timers are stored only with allowed lateness"
                );
                // Only firing timers: at most one per window (cleanup timers are derived).
                if let Some(timers) = op.state("timers") {
                    assert!(timers.rows() <= op.state("windows").unwrap().rows());
                }
                from = Some(at);
            }
            lines.extend(sink.lines());
        }
        assert_eq!(
            sorted(lines),
            expected_windows(&source, windows),
            "latenesses {latenesses:?}"
        );
    }
}

/// The start of every window in the `windows` state of operator `windows`.
fn window_starts(location: &Location) -> Vec<i64> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use futures::TryStreamExt;
    let batches: Vec<arrow_array::RecordBatch> = block_on(async {
        let reader = rewind_savepoint::SavepointReader::open(location.clone())
            .await
            .unwrap();
        let options = rewind_savepoint::ReadOptions::default();
        let stream = reader
            .read_state("windows", "windows", options)
            .await
            .unwrap();
        stream.try_collect().await.unwrap()
    });
    batches
        .iter()
        .flat_map(|b| {
            let ns = b.column_by_name("namespace").unwrap();
            ns.as_primitive::<Int64Type>().values().to_vec()
        })
        .collect()
}

/// With allowed lateness only the firing timers are stored; a restored job derives each
/// window's cleanup timer, so the windows the first run kept after they fired are purged
/// once the restored job's watermark passes their cleanup time.
#[test]
fn restored_windows_with_allowed_lateness_are_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let (size, lateness) = (500, 300);
    let windows = Windows::tumbling(Duration::from_millis(size));
    let source = GeneratorSource {
        keys: 25,
        events: 8000,
        seed: 9,
        splits: 3,
        rate_per_split: Some(10_000),
    };
    let lateness = Duration::from_millis(lateness);
    let mut from = None;
    let mut watermarks = Vec::new();
    let mut starts = Vec::new();
    for round in 0..2 {
        let options = RunOptions {
            from_savepoint: from.clone(),
            ..Default::default()
        };
        let sink = CollectSink::default();
        let job = late_windowed_count(source.clone(), windows, lateness, 2, sink);
        let handle = run(job, options).unwrap();
        std::thread::sleep(Duration::from_millis(80));
        let at = loc(dir.path(), &format!("round-{round}"));
        let manifest = handle.stop_with_savepoint(at.clone()).unwrap();
        assert!(records_read(&manifest, "events") < source.events);
        watermarks.push(manifest.least_watermark().unwrap());
        starts.push(window_starts(&at));
        from = Some(at);
    }
    // Some window of the first savepoint had fired (it waited for cleanup), and the
    // second run's watermark passed its cleanup time: none of those is left.
    let cleanup = |start: i64| start + size as i64 - 1 + lateness.as_millis() as i64;
    let fired = starts[0].iter().filter(|s| cleanup(**s) <= watermarks[1]);
    assert!(
        fired.count() > 0,
        "the first savepoint held windows to clean up"
    );
    let left: Vec<i64> = starts[1]
        .iter()
        .copied()
        .filter(|s| cleanup(*s) < watermarks[0])
        .collect();
    assert_eq!(
        left,
        Vec::<i64>::new(),
        "windows restored past their cleanup"
    );
}

/// Windows of tens of thousands of keys fire at one watermark, many more than the operator
/// fires per call: tumbling ones (all the state fires: one scan takes them) and sliding
/// ones (twelve a key, so a firing mid-stream takes about a tenth of the state: looked
/// up by key; the last ones at the end of input, a growing share, by scans). Every window
/// comes out once, and each window's results in key-hash order, the order a restored job
/// fires in too. (`window/operator/tests.rs` forces each path.)
#[test]
fn many_windows_firing_at_once_come_out_once_in_key_hash_order() {
    use rewind_engine::Key;
    let source = generator(30_000, 60_000, 7, 2);
    for windows in [
        Windows::tumbling(Duration::from_secs(300)),
        Windows::sliding(Duration::from_secs(300), Duration::from_secs(25)),
    ] {
        let sink = CollectSink::default();
        run(
            windowed_count(source.clone(), windows, 1, sink.clone()),
            RunOptions::default(),
        )
        .unwrap()
        .wait()
        .unwrap();
        let lines = sink.lines();
        assert_eq!(sorted(lines.clone()), expected_windows(&source, windows));
        let mut hashes: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
        for line in &lines {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let key = v["key"].as_i64().unwrap();
            hashes
                .entry(v["start"].as_i64().unwrap())
                .or_default()
                .push(key.key_hash());
        }
        let largest = hashes.values().map(Vec::len).max().unwrap();
        assert!(largest > 15_000, "{windows:?}: {largest} windows at once");
        for (start, hashes) in hashes {
            assert!(
                hashes.is_sorted(),
                "{windows:?}: window {start} not in key-hash order"
            );
        }
    }
}

#[test]
fn reading_speed_does_not_change_window_results() {
    let source = generator(30, 6000, 4, 4);
    let windows = Windows::sliding(Duration::from_secs(2), Duration::from_secs(1));
    let fast = CollectSink::default();
    run(
        windowed_count(source.clone(), windows, 2, fast.clone()),
        RunOptions::default(),
    )
    .unwrap()
    .wait()
    .unwrap();
    // One split throttled hard, the others not: watermarks advance unevenly.
    let throttled = CollectSink::default();
    let slow = GeneratorSource {
        rate_per_split: Some(30_000),
        ..source.clone()
    };
    run(
        windowed_count(slow, windows, 3, throttled.clone()),
        RunOptions::default(),
    )
    .unwrap()
    .wait()
    .unwrap();
    assert_eq!(sorted(fast.lines()), sorted(throttled.lines()));
    assert_eq!(sorted(fast.lines()), expected_windows(&source, windows));
}

#[derive(serde::Deserialize, serde::Serialize, Clone, Debug, PartialEq)]
struct Click {
    key: i64,
    ts: i64,
}

/// One partition: 600 clicks 10 ms apart, then one for the first second, long closed.
fn late_log(dir: &std::path::Path) -> Location {
    let log = dir.join("log");
    std::fs::create_dir_all(&log).unwrap();
    let mut text = String::new();
    // Enough records that the source passes a watermark on before the late one (it looks
    // at its watermark every few thousand records while it reads without pause).
    for i in 0..2400 {
        text.push_str(&format!("{{\"key\": 1, \"ts\": {}}}\n", i / 4 * 10));
    }
    text.push_str("{\"key\": 1, \"ts\": 5}\n");
    std::fs::write(log.join("partition-0.jsonl"), text).unwrap();
    loc(dir, "log")
}

fn clicks(log: &Location, lateness: Duration) -> rewind_engine::WindowedStream<i64, Click> {
    JobBuilder::new("clicks")
        .source(
            "Log",
            rewind_engine::LogSource::<Click>::open(log.clone()).unwrap(),
        )
        .assign_timestamps(|c: &Click| c.ts, Duration::from_millis(100))
        .uid("log")
        .key_by(|c: &Click| c.key)
        .window(Windows::tumbling(Duration::from_secs(1)))
        .allowed_lateness(lateness)
}

#[test]
fn late_records_are_dropped_and_counted_or_passed_on() {
    let dir = tempfile::tempdir().unwrap();
    let log = late_log(dir.path());

    let dropped = CollectSink::default();
    let job = clicks(&log, Duration::ZERO)
        .aggregate("count", CountAggregate::new())
        .uid("count")
        .sink("output", dropped.clone());
    let (_, stats) = run(job, RunOptions::default())
        .unwrap()
        .wait_with_stats()
        .unwrap();
    assert_eq!(stats.late_records_dropped, 1);
    let first = r#"{"key":1,"start":0,"end":1000,"value":400}"#;
    assert!(dropped.lines().contains(&first.to_string()));
    assert_eq!(dropped.lines().len(), 6);

    let passed = CollectSink::default();
    let job = clicks(&log, Duration::ZERO)
        .aggregate_with_late("count", CountAggregate::new())
        .uid("count")
        .sink("output", passed.clone());
    let (_, stats) = run(job, RunOptions::default())
        .unwrap()
        .wait_with_stats()
        .unwrap();
    assert_eq!(stats.late_records_dropped, 0);
    let late: Vec<Windowed<rewind_engine::WindowResult<i64, u64>, Click>> = passed
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|w| matches!(w, Windowed::Late(_)))
        .collect();
    assert_eq!(late, vec![Windowed::Late(Click { key: 1, ts: 5 })]);

    // Within the allowed lateness the window fires again, updated.
    let updated = CollectSink::default();
    let job = clicks(&log, Duration::from_secs(10))
        .aggregate("count", CountAggregate::new())
        .uid("count")
        .sink("output", updated.clone());
    let (_, stats) = run(job, RunOptions::default())
        .unwrap()
        .wait_with_stats()
        .unwrap();
    assert_eq!(stats.late_records_dropped, 0);
    let lines = updated.lines();
    assert!(lines.contains(&first.to_string()));
    assert!(lines.contains(&r#"{"key":1,"start":0,"end":1000,"value":401}"#.to_string()));
}

#[test]
fn windows_need_event_time() {
    let job = JobBuilder::new("no-time")
        .source("Generator", generator(2, 10, 1, 1))
        .uid("events")
        .key_by(|e: &GeneratedEvent| e.key)
        .window(Windows::tumbling(Duration::from_secs(1)))
        .aggregate("count", CountAggregate::new())
        .uid("count")
        .sink("output", CollectSink::default());
    let err = run(job, RunOptions::default()).unwrap().wait().unwrap_err();
    assert!(err.to_string().contains("assign_timestamps"), "{err}");
}

#[test]
fn drain_fires_every_window_before_the_final_savepoint() {
    let dir = tempfile::tempdir().unwrap();
    let source = GeneratorSource {
        keys: 10,
        events: 100_000,
        seed: 2,
        splits: 2,
        rate_per_split: Some(10_000),
    };
    let windows = Windows::tumbling(Duration::from_secs(1));
    let sink = CollectSink::default();
    let handle = run(
        windowed_count(source.clone(), windows, 2, sink.clone()),
        RunOptions::default(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let target = loc(dir.path(), "drained");
    let manifest = handle.drain_with_savepoint(target).unwrap();
    let op = manifest.operator("windows").unwrap();
    assert_eq!(
        op.state("windows").unwrap().rows(),
        0,
        "no window left open"
    );
    // Without allowed lateness the window timers are not stored: they follow from the
    // windows.
    assert!(op.state("timers").is_none(), "no timers state");
    // Every window of the records read so far fired: the last window of each key is in
    // the output although its end was never reached by the input.
    let read = records_read(&manifest, "events");
    assert!(read < source.events);
    let counted: u64 = sink
        .lines()
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["value"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(
        counted, read,
        "every record read is in exactly one fired window"
    );
}

#[test]
fn an_idle_split_does_not_hold_windows_back() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    std::fs::create_dir_all(&log).unwrap();
    let mut text = String::new();
    for i in 0..600 {
        text.push_str(&format!("{{\"key\": 1, \"ts\": {}}}\n", i * 10));
    }
    std::fs::write(log.join("partition-0.jsonl"), text).unwrap();
    std::fs::write(log.join("partition-1.jsonl"), "").unwrap();
    let sink = CollectSink::default();
    let source = rewind_engine::LogSource::<Click>::open(loc(dir.path(), "log"))
        .unwrap()
        .follow(Duration::from_millis(5));
    let job = JobBuilder::new("idle")
        .source("Log", source)
        .assign_timestamps(|c: &Click| c.ts, Duration::from_millis(100))
        .idle_timeout(Duration::from_millis(50))
        .uid("log")
        .key_by(|c: &Click| c.key)
        .window(Windows::tumbling(Duration::from_secs(1)))
        .aggregate("count", CountAggregate::new())
        .uid("count")
        .sink("output", sink.clone());
    let options = RunOptions {
        checkpoint_dir: Some(loc(dir.path(), "checkpoints")),
        checkpoint_interval: Some(Duration::from_millis(20)),
        ..Default::default()
    };
    let handle = run(job, options).unwrap();
    let first = r#"{"key":1,"start":0,"end":1000,"value":100}"#.to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sink.lines().len() < 5 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    handle.stop_with_savepoint(loc(dir.path(), "sp")).unwrap();
    // Windows up to the watermark of the active partition (5990 - 100 - 1) fired.
    assert_eq!(sink.lines().len(), 5, "{:?}", sink.lines());
    assert!(sink.lines().contains(&first));
}

/// Windows under incremental checkpoints: fired windows are removed from the state, so the
/// delta layers carry deletes; cancelled mid-stream and restored from the newest
/// checkpoint at another parallelism, every window is emitted exactly once (a lost delete
/// would fire a window twice).
#[test]
fn windows_are_exactly_once_from_an_incremental_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let windows = Windows::tumbling(Duration::from_millis(200));
    let source = GeneratorSource {
        keys: 30,
        events: 8000,
        seed: 17,
        splits: 3,
        rate_per_split: Some(4_000),
    };
    let first = CollectSink::default();
    let options = RunOptions {
        checkpoint_dir: Some(loc(dir.path(), "checkpoints")),
        checkpoint_interval: Some(Duration::from_millis(25)),
        max_delta_layers: Some(3),
        ..Default::default()
    };
    let handle = run(
        windowed_count(source.clone(), windows, 2, first.clone()),
        options,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    handle.cancel().unwrap();
    let layered = std::fs::read_dir(dir.path().join("checkpoints"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("_manifest.json").exists())
        .any(|e| {
            let text = std::fs::read_to_string(e.path().join("_manifest.json")).unwrap();
            text.contains("\"layer\"")
        });
    assert!(layered, "no checkpoint was written as changes");

    let second = CollectSink::default();
    let fast = GeneratorSource {
        rate_per_split: None,
        ..source.clone()
    };
    let options = RunOptions {
        from_savepoint: Some(loc(dir.path(), "checkpoints")),
        ..Default::default()
    };
    run(windowed_count(fast, windows, 3, second.clone()), options)
        .unwrap()
        .wait()
        .unwrap();
    let mut both = first.lines();
    both.extend(second.lines());
    assert_eq!(sorted(both), expected_windows(&source, windows));
}
