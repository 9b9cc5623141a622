//! `fixtures/v1.1/engine-windows`: a savepoint the engine wrote while windows were open,
//! kept so that every later release proves it still restores what an earlier one wrote
//! (the window operator's state layout may change; its old savepoints must not break).
//!
//! The job: events keyed by key into tumbling 1 s count windows with 500 ms of allowed
//! lateness (window contents, firing and cleanup timers), whose results, keyed again, go
//! into session windows with a 5 s gap (windows that grow and merge) reduced to one sum.
//! The fixture was taken mid-stream with `stop_with_savepoint` at parallelism 2; the
//! output committed before the stop is recorded next to it in `output-before-savepoint.jsonl`.

use std::path::Path;
use std::time::Duration;

use rewind_engine::{
    CollectSink, CountAggregate, GeneratedEvent, GeneratorSource, Job, JobBuilder, RunOptions,
    WindowResult, Windows, run,
};
use rewind_savepoint::Location;
use rewind_tests::{fixture_copy, fixtures_dir};

/// Where the fixture lives, under fixtures/.
pub const CASE: &str = "v1.1/engine-windows";
const OUTPUT_BEFORE: &str = "output-before-savepoint.jsonl";

fn source(rate_per_split: Option<u64>) -> GeneratorSource {
    GeneratorSource {
        keys: 400,
        events: 6_000,
        seed: 11,
        splits: 2,
        rate_per_split,
    }
}

/// 10 ms of event time per event plus up to 200 ms of jitter: never late under the 250 ms
/// bound, so every run emits the same windows.
fn event_time(e: &GeneratedEvent) -> i64 {
    let jitter = (e.seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) % 200;
    e.seq as i64 * 10 + jitter as i64
}

type Minute = WindowResult<i64, u64>;

fn job(source: GeneratorSource, parallelism: u32, sink: CollectSink) -> Job {
    JobBuilder::new("engine-windows")
        .source("Generator", source)
        .assign_timestamps(event_time, Duration::from_millis(250))
        .uid("events")
        .parallelism(2)
        .key_by(|e: &GeneratedEvent| e.key)
        .window(Windows::tumbling(Duration::from_secs(1)))
        .allowed_lateness(Duration::from_millis(500))
        .aggregate("Per second", CountAggregate::new())
        .uid("per-second")
        .parallelism(parallelism)
        .key_by(|r: &Minute| r.key)
        .window(Windows::session(Duration::from_secs(5)))
        .reduce("Sessions", |a: Minute, b: Minute| WindowResult {
            key: a.key,
            start: a.start.min(b.start),
            end: a.end.max(b.end),
            value: a.value + b.value,
        })
        .uid("sessions")
        .parallelism(parallelism)
        .sink("output", sink)
}

fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

/// Writes the fixture: a throttled run stopped mid-stream with a savepoint.
pub fn make(dir: &Path) {
    let sink = CollectSink::default();
    let handle = run(
        job(source(Some(1_500)), 2, sink.clone()),
        RunOptions::default(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1_000));
    let at = Location::parse(dir.join("savepoint").to_str().unwrap()).unwrap();
    handle.stop_with_savepoint(at).unwrap();
    let mut lines = sorted(sink.lines()).join("\n");
    lines.push('\n');
    std::fs::write(dir.join(OUTPUT_BEFORE), lines).unwrap();
}

/// Restoring the kept savepoint at another parallelism and running to the end completes
/// the output exactly once: what was committed before the savepoint plus what the restored
/// run commits equals one uninterrupted run, line for line.
#[test]
fn an_engine_savepoint_with_open_windows_restores_in_this_release() {
    let (_guard, copy) = fixture_copy(CASE);
    let before: Vec<String> =
        std::fs::read_to_string(fixtures_dir().join(CASE).join(OUTPUT_BEFORE))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();

    let whole = CollectSink::default();
    run(job(source(None), 2, whole.clone()), RunOptions::default())
        .unwrap()
        .wait()
        .unwrap();
    let whole = sorted(whole.lines());
    assert!(
        !before.is_empty() && before.len() < whole.len(),
        "the fixture was taken mid-stream"
    );

    let after = CollectSink::default();
    let options = RunOptions {
        from_savepoint: Some(Location::parse(copy.join("savepoint").to_str().unwrap()).unwrap()),
        ..Default::default()
    };
    run(job(source(None), 3, after.clone()), options)
        .unwrap()
        .wait()
        .unwrap();
    let mut both = before;
    both.extend(after.lines());
    assert_eq!(sorted(both), whole);
}
