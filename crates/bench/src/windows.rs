//! Windows: the tumbling-window count's throughput against the keyed count's, and
//! savepoints of 1M open windows against a 1M-key count savepoint taken the same way.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use rewind_engine::{
    AggregateFunction, CountAggregate, GeneratedEvent, GeneratorSource, Job, JobBuilder,
    RunOptions, Windows, run,
};
use serde::{Deserialize, Serialize};

use crate::engine::{Discard, at, job};
use crate::report::Report;

/// A struct accumulator, as most real aggregates have.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Stats {
    count: u64,
    sum: i64,
    min: i64,
    max: i64,
}

/// Count, sum, min and max of the events' sequence numbers.
struct StatsAggregate;

impl AggregateFunction for StatsAggregate {
    type In = GeneratedEvent;
    type Acc = Stats;
    type Out = Stats;
    fn create(&self) -> Stats {
        Stats {
            min: i64::MAX,
            max: i64::MIN,
            ..Stats::default()
        }
    }
    fn add(&self, acc: &mut Stats, e: &GeneratedEvent) {
        let v = e.seq as i64;
        acc.count += 1;
        acc.sum += v;
        acc.min = acc.min.min(v);
        acc.max = acc.max.max(v);
    }
    fn merge(&self, a: Stats, b: Stats) -> Stats {
        Stats {
            count: a.count + b.count,
            sum: a.sum + b.sum,
            min: a.min.min(b.min),
            max: a.max.max(b.max),
        }
    }
    fn result(&self, acc: &Stats) -> Stats {
        acc.clone()
    }
}

/// A tumbling 1-minute window aggregate (a count, or [`Stats`] with `stats`); event time
/// runs 1 ms per `per_ms` events, so a window holds `60_000 * per_ms` events (at 100 a
/// window holds 6M and, at 1M keys, every key has an open window most of the time).
fn windowed_job(keys: u64, events: u64, per_ms: u64, lateness: Duration, stats: bool) -> Job {
    let source = GeneratorSource {
        keys,
        events,
        seed: 7,
        splits: 2,
        rate_per_split: None,
    };
    let windows = JobBuilder::new("windowed-count")
        .source("Generator", source)
        .assign_timestamps(
            move |e: &GeneratedEvent| (e.seq / per_ms) as i64,
            Duration::from_secs(1),
        )
        .uid("events")
        .parallelism(2)
        .key_by(|e: &GeneratedEvent| e.key)
        .window(Windows::tumbling(Duration::from_secs(60)))
        .allowed_lateness(lateness);
    if stats {
        let stream = windows.aggregate("Windowed stats", StatsAggregate);
        stream.uid("windows").parallelism(2).sink("output", Discard)
    } else {
        let stream = windows.aggregate("Windowed count", CountAggregate::new());
        stream.uid("windows").parallelism(2).sink("output", Discard)
    }
}

pub fn windows(report: &mut Report, work: &Path, quick: bool) -> Result<()> {
    let events = if quick { 2_000_000 } else { 10_000_000 };
    let keys = 1_000_000;
    eprintln!("windows: tumbling 1-minute count, {keys} keys, {events} events, parallelism 2");
    // Rounds of (keyed count, window count, window count in one window) back to back:
    // this machine's speed drifts. The last keeps every record in the first window (event
    // time runs 1000 times slower), so no window closes before the end: the per-record
    // cost alone, against the first's windows closing, firing and opening again.
    const ROUNDS: usize = 3;
    let (mut plain, mut windowed, mut one_window) = (Vec::new(), Vec::new(), Vec::new());
    let rate = |started: Instant| events as f64 / started.elapsed().as_secs_f64() / 1e6;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        run(job(keys, events, 2), RunOptions::default())?.wait()?;
        plain.push(rate(started));
        for (per_ms, rates) in [(100, &mut windowed), (100_000, &mut one_window)] {
            let started = Instant::now();
            run(
                windowed_job(keys, events, per_ms, Duration::ZERO, false),
                RunOptions::default(),
            )?
            .wait()?;
            rates.push(rate(started));
        }
    }
    report.add_rounds(
        "engine tumbling-window count",
        &windowed,
        "keyed count without windows",
        &plain,
        "M events/s",
        "1-minute windows, 1M keys, parallelism 2; ~1.7 windows a key, 2M results".into(),
    );
    report.add_rounds(
        "engine tumbling-window count, one window",
        &one_window,
        "keyed count without windows",
        &plain,
        "M events/s",
        "every record in the first window: no window closes before the end (1M results)".into(),
    );

    // A savepoint while windows are open, against a savepoint of the keyed count taken the
    // same way (mid-run, both sharing the cores with their running job, or as a stop).
    // Event time runs slowly enough that the first window is still open when the savepoint
    // is taken, after some `events` events: every key has one open window, none fired, so
    // no timer is stored (with or without lateness, they follow from the windows).
    // As long as `events` events of the window count took.
    let wait = Duration::from_secs_f64(events as f64 / 1e6 / crate::report::median(windowed));
    // (stop, allowed lateness, struct accumulator):
    let modes = [
        (false, Duration::ZERO, false),
        (true, Duration::ZERO, false),
        (true, Duration::ZERO, true),
        (true, Duration::from_secs(10), false),
    ];
    for (stop, lateness, struct_acc) in modes {
        let (manifest, stats) = savepoint_after(
            windowed_job(keys, events * 4, 1_000, lateness, struct_acc),
            wait,
            stop,
            work,
            "windows-sp",
        )?;
        let bytes = crate::savepoint_io::dir_size(&work.join("windows-sp"));
        if stop && lateness.is_zero() && !struct_acc {
            print_bytes_by_state(work, "windows-sp");
        }
        let op = manifest
            .operator("windows")
            .ok_or_else(|| anyhow::anyhow!("no window operator in the savepoint"))?;
        let open = op.state("windows").map(|s| s.rows()).unwrap_or_default();
        let timers = op.state("timers").map(|s| s.rows()).unwrap_or_default();

        let base = "windows-base-sp";
        let (base_manifest, base_stats) =
            savepoint_after(job(keys, events * 4, 2), wait, stop, work, base)?;
        let base_keys: u64 = base_manifest
            .operators
            .iter()
            .flat_map(|o| o.state("count"))
            .map(|s| s.rows())
            .sum();
        let base_bytes = crate::savepoint_io::dir_size(&work.join(base));
        let how = if stop { "stop" } else { "mid-run" };
        let mut late = if lateness.is_zero() {
            String::new()
        } else {
            format!(", {}s allowed lateness", lateness.as_secs())
        };
        if struct_acc {
            late.push_str(", struct accumulator of 4 fields");
        }
        report.add(
            &format!("engine savepoint with open windows ({how}{late})"),
            stats.last_write.as_secs_f64(),
            "keyed-count savepoint of 1M keys",
            base_stats.last_write.as_secs_f64(),
            "s",
            format!(
                "both {how}; {open} open windows + {timers} timers vs {base_keys} keys: {:.1} MB vs {:.1} MB; synchronous pause {:.3} ms",
                bytes as f64 / 1e6,
                base_bytes as f64 / 1e6,
                stats.max_sync_pause.as_secs_f64() * 1e3
            ),
        );
    }
    Ok(())
}

/// Where a savepoint's bytes go: compressed bytes per column of every state folder.
fn print_bytes_by_state(work: &Path, name: &str) {
    for dir in walk_dirs(&work.join(name)) {
        let leaf = std::fs::read_dir(&dir)
            .is_ok_and(|mut e| e.all(|e| e.is_ok_and(|e| !e.path().is_dir())));
        let columns = crate::savepoint_io::column_bytes(&dir);
        if leaf && !columns.is_empty() {
            let dir = dir.strip_prefix(work).unwrap_or(&dir);
            eprintln!("  {}: {columns:?}", dir.display());
        }
    }
}

/// Every folder under `dir`, `dir` first.
fn walk_dirs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if let Ok(entries) = std::fs::read_dir(&out[i]) {
            out.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
        }
        i += 1;
    }
    out
}

/// Runs `job` and takes a savepoint into `work/name` after `wait`, mid-run (the job goes
/// on meanwhile, then is cancelled) or as a stop (the sources pause until it is written):
/// the savepoint's manifest and the job's statistics (`last_write` is the savepoint's).
fn savepoint_after(
    job: Job,
    wait: Duration,
    stop: bool,
    work: &Path,
    name: &str,
) -> Result<(rewind_savepoint::format::Manifest, rewind_engine::JobStats)> {
    std::fs::remove_dir_all(work.join(name)).ok();
    let handle = run(job, RunOptions::default())?;
    std::thread::sleep(wait);
    let control = handle.control();
    let manifest = if stop {
        control.stop(at(work, name)?, false)?
    } else {
        control.savepoint(at(work, name)?)?
    };
    let stats = control.stats();
    if stop {
        handle.wait()?;
    } else {
        handle.cancel()?;
    }
    Ok((manifest, stats))
}
