//! Event time shared by the tests of windows and of timers: out-of-order timestamps, and a
//! run stopped with a savepoint and restored, against an uninterrupted one.

use std::time::Duration;

use rewind_engine::{CollectSink, GeneratorSource, Job, RunOptions, run};
use rewind_savepoint::Location;

use super::{loc, records_read, sorted};

/// Out-of-order event time: 10 ms per sequence number plus up to 200 ms of jitter, so a
/// 250 ms bound never makes a record late.
pub fn event_time(seq: u64) -> i64 {
    let jitter = (seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) % 200;
    seq as i64 * 10 + jitter as i64
}

pub const BOUND: Duration = Duration::from_millis(250);

/// What [`stop_and_restore`] observed.
pub struct Interrupted {
    /// Committed output of one uninterrupted run (source at full speed).
    pub whole: Vec<String>,
    /// Committed output of the run stopped with a savepoint plus the restored run.
    pub both: Vec<String>,
    /// The savepoint taken at the stop, and where it is.
    pub manifest: rewind_savepoint::format::Manifest,
    pub location: Location,
}

/// Runs `job` uninterrupted at parallelism `first_p`; then again with the throttled
/// `source`, stopped with a savepoint after `stop_after_ms`; then restored from that
/// savepoint at `second_p` and run to the end at full speed. Asserts the stop came
/// mid-stream.
pub fn stop_and_restore(
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
