//! The walkthrough in one process: v1 reads a log, a savepoint is taken, v1 is cancelled,
//! more events arrive, v2 starts from the savepoint (at another parallelism) and catches
//! up. Every window's counts must equal a direct computation over the events, each window
//! exactly once across both versions' committed output.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rewind_engine::{JobHandle, RunOptions, run};
use rewind_post_analytics::{Action, AppArgs, EventSpec, WINDOW, v1, v2, write_events};
use rewind_savepoint::Location;

const PHASE_1: u64 = 30_000;
const PHASE_2: u64 = 25_000;

fn write(dir: &Path, spec: &EventSpec, first: u64, count: u64) {
    let out = Location::parse(dir.to_str().unwrap()).unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(write_events(&out, spec, first, count))
        .unwrap();
}

fn args(input: &Path, output: &Path, bounded: bool) -> AppArgs {
    AppArgs {
        input: input.to_str().unwrap().into(),
        output: output.to_str().unwrap().into(),
        bounded,
        engine: Default::default(),
    }
}

fn options(parallelism: u32, from: Option<&Path>) -> RunOptions {
    RunOptions {
        parallelism: Some(parallelism),
        from_savepoint: from.map(|p| Location::parse(p.to_str().unwrap()).unwrap()),
        ..RunOptions::default()
    }
}

fn wait_for_records(handle: &JobHandle, n: u64) {
    let started = Instant::now();
    while handle.stats().records_read < n {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "read {} of {n} records",
            handle.stats().records_read
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(handle.stats().records_read, n);
}

/// Committed output lines (pending files excluded), parsed.
fn committed(dir: &Path) -> Vec<serde_json::Value> {
    let location = rewind_savepoint::Location::parse(dir.to_str().unwrap()).unwrap();
    rewind_engine::read_committed(&location)
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Expected {
    views: u64,
    clicks: u64,
    paid_views: u64,
    paid_clicks: u64,
}

/// Counts per (post, window start) of events `range`.
fn expected(spec: &EventSpec, range: std::ops::Range<u64>) -> BTreeMap<(i64, i64), Expected> {
    let size = WINDOW.as_millis() as i64;
    let mut all: BTreeMap<(i64, i64), Expected> = BTreeMap::new();
    for i in range {
        let (_, e) = spec.event(i);
        let c = all
            .entry((e.post, e.ts - e.ts.rem_euclid(size)))
            .or_default();
        match (e.action, e.paid) {
            (Action::View, paid) => {
                c.views += 1;
                c.paid_views += u64::from(paid);
            }
            (Action::Click, paid) => {
                c.clicks += 1;
                c.paid_clicks += u64::from(paid);
            }
        }
    }
    all
}

fn window_of(line: &serde_json::Value) -> (i64, i64) {
    (
        line["post"].as_i64().unwrap(),
        line["start"].as_i64().unwrap(),
    )
}

#[test]
fn v2_restored_from_v1_counts_every_window_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (events, out1, out2) = (
        dir.path().join("events"),
        dir.path().join("out-v1"),
        dir.path().join("out-v2"),
    );
    let (sp1, sp2) = (dir.path().join("sp-v1"), dir.path().join("sp-v2"));
    let spec = EventSpec::default();
    write(&events, &spec, 0, PHASE_1);

    // v1 follows the log; once it has read everything, a savepoint, then cancel.
    let handle = run(
        v1::job(&args(&events, &out1, false)).unwrap(),
        options(2, None),
    )
    .unwrap();
    wait_for_records(&handle, PHASE_1);
    handle
        .savepoint(Location::parse(sp1.to_str().unwrap()).unwrap())
        .unwrap();
    handle.cancel().unwrap();

    // New events arrive while v1 is down; v2 starts from v1's savepoint at parallelism 3.
    write(&events, &spec, PHASE_1, PHASE_2);
    let handle = run(
        v2::job(&args(&events, &out2, false)).unwrap(),
        options(3, Some(&sp1)),
    )
    .unwrap();
    wait_for_records(&handle, PHASE_2);
    handle
        .drain_with_savepoint(Location::parse(sp2.to_str().unwrap()).unwrap())
        .unwrap();

    let all = expected(&spec, 0..PHASE_1 + PHASE_2);
    let after_upgrade = expected(&spec, PHASE_1..PHASE_1 + PHASE_2);
    let (lines1, lines2) = (committed(&out1), committed(&out2));
    assert!(!lines1.is_empty() && !lines2.is_empty());
    let mut seen = BTreeMap::new();
    for line in lines1.iter().chain(&lines2) {
        let window = window_of(line);
        assert!(
            seen.insert(window, ()).is_none(),
            "{window:?} emitted twice"
        );
        let want = all[&window];
        assert_eq!(line["views"].as_u64(), Some(want.views), "{line}");
        assert_eq!(line["clicks"].as_u64(), Some(want.clicks), "{line}");
    }
    assert_eq!(seen.len(), all.len(), "every window is emitted");

    let mut restored_windows = 0;
    for line in &lines2 {
        let window = window_of(line);
        // v2 saw exactly the events after the cut: a window restored from v1 has the paid
        // part of those, a window v2 created has all of it.
        let (paid_views, paid_clicks) = if line["split_complete"] == true {
            (all[&window].paid_views, all[&window].paid_clicks)
        } else {
            restored_windows += 1;
            let after = after_upgrade.get(&window).copied().unwrap_or_default();
            (after.paid_views, after.paid_clicks)
        };
        assert_eq!(line["paid"]["views"].as_u64(), Some(paid_views), "{line}");
        assert_eq!(line["paid"]["clicks"].as_u64(), Some(paid_clicks), "{line}");
        assert_eq!(
            line["organic"]["views"].as_u64().unwrap() + paid_views,
            line["views"].as_u64().unwrap()
        );
    }
    assert!(
        restored_windows > 0,
        "some windows were open at the upgrade"
    );
}

#[test]
fn uninterrupted_v1_over_a_bounded_log_matches_the_events() {
    let dir = tempfile::tempdir().unwrap();
    let (events, out) = (dir.path().join("events"), dir.path().join("out"));
    let spec = EventSpec {
        partitions: 3,
        ..EventSpec::default()
    };
    write(&events, &spec, 0, 12_000);
    write(&events, &spec, 12_000, 8_000);
    run(
        v1::job(&args(&events, &out, true)).unwrap(),
        options(2, None),
    )
    .unwrap()
    .wait()
    .unwrap();
    let all = expected(&spec, 0..20_000);
    let lines = committed(&out);
    assert_eq!(lines.len(), all.len());
    for line in &lines {
        let want = all[&window_of(line)];
        assert_eq!(line["views"].as_u64(), Some(want.views), "{line}");
        assert_eq!(line["clicks"].as_u64(), Some(want.clicks), "{line}");
    }
}
