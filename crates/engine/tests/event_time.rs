//! Event time: windows and timers that survive savepoints, reprocessing speed that does not
//! change results, late records, and list and map state across a restore.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use rewind_engine::{
    CollectSink, Context, CountAggregate, GeneratedEvent, GeneratorSource, Job, JobBuilder,
    KeyedProcessFunction, ListState, MapState, RunOptions, StateDecl, TimeDomain, Timer,
    ValueState, Windowed, Windows, run,
};
use rewind_savepoint::format::StateKind;
use rewind_savepoint::{Location, ValidateOptions, validate};

mod common;
use common::{block_on, generator, loc, records_read, sorted};

/// Out-of-order event time: 10 ms per sequence number plus up to 200 ms of jitter, so a
/// 250 ms bound never makes a record late.
fn event_time(seq: u64) -> i64 {
    let jitter = (seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) % 200;
    seq as i64 * 10 + jitter as i64
}

const BOUND: Duration = Duration::from_millis(250);

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

/// What [`stop_and_restore`] observed.
struct Interrupted {
    /// Committed output of one uninterrupted run (source at full speed).
    whole: Vec<String>,
    /// Committed output of the run stopped with a savepoint plus the restored run.
    both: Vec<String>,
    /// The savepoint taken at the stop, and where it is.
    manifest: rewind_savepoint::format::Manifest,
    location: Location,
}

/// Runs `job` uninterrupted at parallelism `first_p`; then again with the throttled
/// `source`, stopped with a savepoint after `stop_after_ms`; then restored from that
/// savepoint at `second_p` and run to the end at full speed. Asserts the stop came
/// mid-stream.
fn stop_and_restore(
    job: impl Fn(GeneratorSource, u32, CollectSink) -> Job,
    source: &GeneratorSource,
    first_p: u32,
    second_p: u32,
    stop_after_ms: u64,
    dir: &std::path::Path,
) -> Interrupted {
    let fast = GeneratorSource {
        rate_per_split: None,
        ..source.clone()
    };
    let whole = CollectSink::default();
    run(
        job(fast.clone(), first_p, whole.clone()),
        RunOptions::default(),
    )
    .unwrap()
    .wait()
    .unwrap();

    let first = CollectSink::default();
    let handle = run(
        job(source.clone(), first_p, first.clone()),
        RunOptions::default(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(stop_after_ms));
    let location = loc(dir, "mid");
    let manifest = handle.stop_with_savepoint(location.clone()).unwrap();
    let read = records_read(&manifest, "events");
    assert!(
        read < source.events,
        "the stop came after the end; make the source slower"
    );

    let second = CollectSink::default();
    let options = RunOptions {
        from_savepoint: Some(location.clone()),
        ..Default::default()
    };
    run(job(fast, second_p, second.clone()), options)
        .unwrap()
        .wait()
        .unwrap();
    let mut both = first.lines();
    both.extend(second.lines());
    Interrupted {
        whole: sorted(whole.lines()),
        both: sorted(both),
        manifest,
        location,
    }
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
        let source = GeneratorSource {
            keys: 25,
            events: 6000,
            seed: 5,
            splits: 3,
            rate_per_split: Some(10_000),
        };
        let mut lines = Vec::new();
        let mut from: Option<Location> = None;
        for (round, lateness) in latenesses.into_iter().enumerate() {
            let lateness = Duration::from_millis(lateness);
            let sink = CollectSink::default();
            let last = round == latenesses.len() - 1;
            let src = GeneratorSource {
                rate_per_split: (!last).then_some(10_000),
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

/// Sets one event-time timer per key when it first appears, due at a time that depends on
/// the key only (3 s + 50 ms per key), and emits when it fires.
struct Reminder {
    first: ValueState<i64>,
}

impl KeyedProcessFunction for Reminder {
    type Key = i64;
    type In = GeneratedEvent;
    type Out = (i64, i64);
    fn states(&self) -> Vec<StateDecl<i64>> {
        vec![self.first.decl()]
    }
    fn uses_timers(&self) -> bool {
        true
    }
    fn process(&self, _: GeneratedEvent, ctx: &mut Context<'_, i64, (i64, i64)>) {
        if self.first.get(ctx).is_none() {
            let ts = ctx.timestamp().unwrap();
            self.first.set(ctx, ts);
            let due = 3000 + *ctx.key() * 50;
            ctx.register_timer(TimeDomain::EventTime, due);
        }
    }
    fn on_timer(&self, timer: Timer, ctx: &mut Context<'_, i64, (i64, i64)>) {
        assert_eq!(timer.domain, TimeDomain::EventTime);
        assert!(ctx.watermark().unwrap() >= timer.timestamp);
        let key = *ctx.key();
        ctx.emit((key, timer.timestamp));
    }
}

fn reminders(source: GeneratorSource, p: u32, sink: CollectSink) -> Job {
    JobBuilder::new("reminders")
        .source("Generator", source)
        .assign_timestamps(|e: &GeneratedEvent| event_time(e.seq), BOUND)
        .uid("events")
        .parallelism(2)
        .key_by(|e: &GeneratedEvent| e.key)
        .process(
            "Reminder",
            Reminder {
                first: ValueState::new("first"),
            },
        )
        .uid("reminder")
        .parallelism(p)
        .sink("output", sink)
}

#[test]
fn timers_set_before_a_savepoint_fire_once_after_restore() {
    let dir = tempfile::tempdir().unwrap();
    // 1000 keys over 80 s of event time, timers due between 3 s and 53 s: at a stop after
    // about a quarter of the input, many are pending.
    let source = GeneratorSource {
        keys: 1000,
        events: 8000,
        seed: 3,
        splits: 2,
        rate_per_split: Some(20_000),
    };
    let run = stop_and_restore(reminders, &source, 2, 3, 60, dir.path());
    let keys: std::collections::BTreeSet<i64> = (0..8000).map(|s| source.key_of(s)).collect();
    assert_eq!(run.whole.len(), keys.len(), "one reminder per key");
    let timers = run
        .manifest
        .operator("reminder")
        .unwrap()
        .state("timers")
        .unwrap();
    assert!(timers.rows() > 0, "no timer was pending at the savepoint");
    assert_eq!(run.both, run.whole);
}

/// Processing-time timers fire on the wall clock.
#[test]
fn processing_time_timers_fire() {
    struct Ping {
        seen: ValueState<bool>,
    }
    impl KeyedProcessFunction for Ping {
        type Key = i64;
        type In = GeneratedEvent;
        type Out = i64;
        fn states(&self) -> Vec<StateDecl<i64>> {
            vec![self.seen.decl()]
        }
        fn uses_timers(&self) -> bool {
            true
        }
        fn process(&self, _: GeneratedEvent, ctx: &mut Context<'_, i64, i64>) {
            if self.seen.get(ctx).is_none() {
                self.seen.set(ctx, true);
                let now = ctx.processing_time();
                ctx.register_timer(TimeDomain::ProcessingTime, now);
            }
        }
        fn on_timer(&self, timer: Timer, ctx: &mut Context<'_, i64, i64>) {
            assert_eq!(timer.domain, TimeDomain::ProcessingTime);
            let key = *ctx.key();
            ctx.emit(key);
        }
    }
    let sink = CollectSink::default();
    let job = JobBuilder::new("ping")
        .source(
            "Generator",
            GeneratorSource {
                keys: 50,
                events: 2000,
                seed: 1,
                splits: 1,
                rate_per_split: Some(20_000),
            },
        )
        .uid("events")
        .key_by(|e: &GeneratedEvent| e.key)
        .process(
            "Ping",
            Ping {
                seen: ValueState::new("seen"),
            },
        )
        .uid("ping")
        .sink("output", sink.clone());
    run(job, RunOptions::default()).unwrap().wait().unwrap();
    assert_eq!(
        sorted(sink.lines()),
        sorted((0..50).map(|k| k.to_string()).collect())
    );
}

/// Keeps the last three sequence numbers per key (list state) and counts even and odd ones
/// (map state); emits both after every record.
struct Recent {
    recent: ListState<u64>,
    parity: MapState<String, u64>,
}

impl KeyedProcessFunction for Recent {
    type Key = i64;
    type In = GeneratedEvent;
    type Out = (i64, Vec<u64>, Vec<(String, u64)>);
    fn states(&self) -> Vec<StateDecl<i64>> {
        vec![self.recent.decl(), self.parity.decl()]
    }
    fn process(&self, e: GeneratedEvent, ctx: &mut Context<'_, i64, Self::Out>) {
        let mut recent = self.recent.get(ctx).to_vec();
        recent.push(e.seq);
        if recent.len() > 3 {
            recent.remove(0);
        }
        self.recent.update(ctx, recent.clone());
        let parity = if e.seq % 2 == 0 { "even" } else { "odd" }.to_string();
        let n = self.parity.get(ctx, &parity).copied().unwrap_or(0) + 1;
        self.parity.insert(ctx, parity, n);
        let entries = self
            .parity
            .entries(ctx)
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let key = *ctx.key();
        ctx.emit((key, recent, entries));
    }
}

fn recent(source: GeneratorSource, p: u32, sink: CollectSink) -> Job {
    JobBuilder::new("recent")
        .source("Generator", source)
        .uid("events")
        // One split: each key's records arrive in sequence order in every run.
        .key_by(|e: &GeneratedEvent| e.key)
        .process(
            "Recent",
            Recent {
                recent: ListState::new("recent"),
                parity: MapState::new("parity"),
            },
        )
        .uid("recent")
        .parallelism(p)
        .sink("output", sink)
}

#[test]
fn list_and_map_state_survive_a_savepoint() {
    let dir = tempfile::tempdir().unwrap();
    let source = GeneratorSource {
        keys: 40,
        events: 5000,
        seed: 8,
        splits: 1,
        rate_per_split: Some(40_000),
    };
    let run = stop_and_restore(recent, &source, 2, 5, 40, dir.path());
    let op = run.manifest.operator("recent").unwrap();
    assert_eq!(op.state("recent").unwrap().kind, StateKind::List);
    assert_eq!(op.state("parity").unwrap().kind, StateKind::Map);
    assert!(op.state("parity").unwrap().rows() > 0);
    let report = block_on(validate(&run.location, ValidateOptions::default())).unwrap();
    assert!(report.is_valid(), "{report:?}");
    assert_eq!(run.both, run.whole);
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
