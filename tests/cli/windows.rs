//! A savepoint with open windows, as a user reads it offline: the window contents are
//! ordinary state with a namespace, and the splits carry watermarks.

use std::time::Duration;

use rewind_engine::{
    CollectSink, CountAggregate, GeneratedEvent, GeneratorSource, JobBuilder, RunOptions, Windows,
    run,
};
use rewind_savepoint::Location;
use rewind_tests::rewind;

#[test]
fn open_windows_and_timers_read_offline() {
    let dir = tempfile::tempdir().unwrap();
    let job = JobBuilder::new("windows")
        .source(
            "Generator",
            GeneratorSource {
                keys: 5,
                events: 100_000,
                seed: 1,
                splits: 2,
                rate_per_split: Some(5_000),
            },
        )
        .assign_timestamps(
            |e: &GeneratedEvent| e.seq as i64 * 10,
            Duration::from_millis(100),
        )
        .uid("events")
        .key_by(|e: &GeneratedEvent| e.key)
        .window(Windows::tumbling(Duration::from_secs(60)))
        .aggregate("Count", CountAggregate::new())
        .uid("per-minute")
        .sink("output", CollectSink::default());
    let handle = run(job, RunOptions::default()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let sp = dir.path().join("sp");
    handle
        .stop_with_savepoint(Location::parse(sp.to_str().unwrap()).unwrap())
        .unwrap();
    let sp = sp.to_str().unwrap();

    let run = rewind(&["state", sp, "per-minute", "windows", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 5, "one open window per key: {}", run.stdout);
    for row in &rows {
        // A tumbling window stores its accumulator alone: its end is start + size.
        assert_eq!(row["namespace"], 0, "{row}");
        assert!(row["value"].as_u64().unwrap() > 0, "{row}");
    }

    let run = rewind(&["inspect", sp, "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let inspect: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    // Without allowed lateness the windows' timers follow from the windows (each fires
    // at its end - 1): the operator stores its windows alone.
    let op = inspect["operators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["uid"] == "per-minute")
        .unwrap();
    let states: Vec<&str> = op["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["windows"]);
    let text = inspect.to_string();
    assert!(text.contains("\"watermark\":"), "{text}");
    let run = rewind(&["validate", sp]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}
