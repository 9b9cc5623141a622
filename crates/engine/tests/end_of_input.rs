//! The end of part of a bounded input while checkpoints are taken: a source subtask whose
//! input ends sends the final barrier while its peers read on. Checkpoints and savepoints
//! keep completing (the ended subtask's final state stands in for it, as in Flink's
//! FLIP-147), a restore from them at another parallelism is exactly once, and the job
//! ends normally with its final savepoint and every output line exactly once.

use std::time::Duration;

use rewind_engine::{
    CollectSink, GeneratedEvent, Job, JobBuilder, JobHandle, RunOptions, Sink, Source, SplitReader,
    run,
};
use rewind_savepoint::format::SplitEntry;

mod common;
use common::{Count, loc, sorted, source_splits};

/// Every `(key, count)` line the keyed count emits for `events` events keyed by `key`.
fn expected(events: impl Iterator<Item = i64>) -> Vec<String> {
    let mut counts = std::collections::BTreeMap::new();
    let mut lines = Vec::new();
    for key in events {
        let n = counts.entry(key).or_insert(0u64);
        *n += 1;
        lines.push(format!("[{key},{n}]"));
    }
    sorted(lines)
}

/// Two splits of one event per millisecond: `short` events (keys from seq 0), then
/// `long` events (from seq 1000).
#[derive(Clone)]
struct Uneven {
    short: u64,
    long: u64,
}

struct UnevenReader {
    first: u64,
    end: u64,
    next: u64,
}

impl Source for Uneven {
    type Out = GeneratedEvent;
    fn splits(&self) -> Vec<SplitEntry> {
        ["short", "long"]
            .iter()
            .map(|id| SplitEntry {
                id: id.to_string(),
                position: serde_json::json!({ "next": 0 }),
                watermark: None,
            })
            .collect()
    }
    fn reader(
        &self,
        split: &SplitEntry,
    ) -> rewind_engine::Result<Box<dyn SplitReader<GeneratedEvent>>> {
        let next = split.position["next"].as_u64().unwrap_or(0);
        let (first, len) = if split.id == "short" {
            (0, self.short)
        } else {
            (1_000, self.long)
        };
        Ok(Box::new(UnevenReader {
            first,
            end: first + len,
            next,
        }))
    }
}

impl SplitReader<GeneratedEvent> for UnevenReader {
    fn next(&mut self) -> Option<GeneratedEvent> {
        let seq = self.first + self.next;
        if seq >= self.end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
        self.next += 1;
        Some(GeneratedEvent {
            seq,
            key: (seq % 7) as i64,
        })
    }
    fn position(&self) -> serde_json::Value {
        serde_json::json!({ "next": self.next })
    }
}

/// The keyed count over `source`, each split on its own source subtask.
fn uneven_count(source: Uneven, sink: impl Sink) -> Job {
    uneven_count_at(source, sink, 2)
}

/// The same at `parallelism` (beyond 2, source subtasks without a split end at once).
fn uneven_count_at(source: Uneven, sink: impl Sink, parallelism: u32) -> Job {
    JobBuilder::new("uneven")
        .source("Uneven", source)
        .uid("events")
        .parallelism(parallelism)
        .key_by(|e: &GeneratedEvent| e.key)
        .process("Counter", Count::new())
        .uid("counter")
        .parallelism(parallelism)
        .sink("output", sink)
}

/// Starts the keyed count over a short split (one event) and a long one (400 ms), and
/// returns once the short one has ended, with the job's sink.
fn one_split_ended(options: RunOptions) -> (JobHandle, CollectSink) {
    let sink = CollectSink::default();
    let source = Uneven {
        short: 1,
        long: 400,
    };
    let handle = run(uneven_count(source, sink.clone()), options).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    (handle, sink)
}

/// One source subtask ends at once; a savepoint asked for afterwards completes with the
/// ended split at its end and the other mid-way. Cancelled then, and restored from that
/// savepoint at parallelism 3 (a source subtask without a split, ended from the start),
/// the two runs' output is every line exactly once.
#[test]
fn a_savepoint_after_part_of_the_input_ended_completes_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, first) = one_split_ended(RunOptions::default());
    let manifest = handle.savepoint(loc(dir.path(), "mid")).unwrap();
    handle.cancel().unwrap();
    let splits = source_splits(&manifest, "events");
    let next = |id: &str| {
        splits.iter().find(|s| s.id == id).unwrap().position["next"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(next("short"), 1, "the ended split, at its end");
    let long = next("long");
    assert!(long < 400, "the savepoint is mid-input: {long}");

    let second = CollectSink::default();
    let source = Uneven {
        short: 1,
        long: 400,
    };
    let options = RunOptions {
        from_savepoint: Some(loc(dir.path(), "mid")),
        checkpoint_dir: Some(loc(dir.path(), "checkpoints")),
        checkpoint_interval: Some(Duration::from_millis(20)),
        ..Default::default()
    };
    let (_, stats) = run(uneven_count_at(source, second.clone(), 3), options)
        .unwrap()
        .wait_with_stats()
        .unwrap();
    // Source subtask 2 has no split and ended at once: checkpoints still completed.
    assert!(stats.checkpoints_written > 0, "{stats:?}");
    let mut both = first.lines();
    both.extend(second.lines());
    let want = expected(std::iter::once(0).chain((1_000..1_400).map(|s| s % 7)));
    assert_eq!(sorted(both), want);
}

/// A stop asked for after one source subtask's input ended stops the others: it answers
/// with a manifest at the requested target whose positions match the output committed,
/// exactly once.
#[test]
fn a_stop_after_part_of_the_input_ended_stops_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, sink) = one_split_ended(RunOptions::default());
    let manifest = handle.stop_with_savepoint(loc(dir.path(), "stop")).unwrap();
    let splits = source_splits(&manifest, "events");
    let next = |id: &str| {
        splits.iter().find(|s| s.id == id).unwrap().position["next"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(next("short"), 1);
    let long = next("long");
    assert!(long > 0 && long < 400, "stopped mid-input: {long}");
    let want = expected(std::iter::once(0).chain((1_000..1_000 + long).map(|s| (s % 7) as i64)));
    assert_eq!(sorted(sink.lines()), want);
}

/// Commits slowly (on the coordinator's thread), so triggers queue up behind each
/// checkpoint and one can reach the sources after part of the input ended.
struct SlowCommit(CollectSink);

impl Sink for SlowCommit {
    fn stage(&self, subtask: u32, seq: u64, chunk: &[u8]) -> rewind_engine::Result<String> {
        self.0.stage(subtask, seq, chunk)
    }
    fn commit(&self, checkpoint: u64, token: &str) -> rewind_engine::Result<()> {
        std::thread::sleep(Duration::from_millis(20));
        self.0.commit(checkpoint, token)
    }
}

/// Checkpoints every few milliseconds behind a slow coordinator while one source subtask
/// ends 100 ms before the other: checkpoints are triggered after the first final barrier
/// (and their barriers meet the final one downstream) and complete. Every run ends
/// normally, with its final savepoint and exact output.
#[test]
fn checkpoints_racing_the_end_of_input_never_fail_the_job() {
    let source = Uneven {
        short: 100,
        long: 200,
    };
    let want = expected((0..100).chain(1_000..1_200).map(|s| s % 7));
    let mut after_the_first_end = 0;
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let sink = CollectSink::default();
        let job = uneven_count(source.clone(), SlowCommit(sink.clone()));
        let options = RunOptions {
            checkpoint_dir: Some(loc(dir.path(), "checkpoints")),
            checkpoint_interval: Some(Duration::from_millis(5)),
            savepoint_on_finish: Some(loc(dir.path(), "end")),
            ..Default::default()
        };
        let (written, _) = run(job, options)
            .unwrap()
            .wait_with_stats()
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(written.len(), 1, "round {round}: the final savepoint");
        assert_eq!(sorted(sink.lines()), want, "round {round}");
        after_the_first_end +=
            checkpoints_after_the_short_split_ended(&dir.path().join("checkpoints"));
    }
    assert!(
        after_the_first_end > 0,
        "no checkpoint completed in the tail"
    );
}

/// Checkpoints under `dir` taken after the short split had ended and before the long one.
fn checkpoints_after_the_short_split_ended(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("_manifest.json")).ok())
        .map(|bytes| rewind_savepoint::format::Manifest::from_json(&bytes).unwrap())
        .filter(|m| {
            let splits = source_splits(m, "events");
            let next = |id: &str| {
                splits.iter().find(|s| s.id == id).unwrap().position["next"]
                    .as_u64()
                    .unwrap()
            };
            next("short") == 100 && next("long") < 200
        })
        .count()
}

/// A stop (or savepoint) asked for after the whole input ended and the final checkpoint
/// was written, before the handle is joined: it fails at once saying the input ended (it
/// waited for barriers forever).
#[test]
fn a_stop_after_the_final_checkpoint_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let sink = CollectSink::default();
    let job = common::keyed_count(common::generator(10, 1000, 3, 2), 2, sink.clone());
    let handle = run(job, RunOptions::default()).unwrap();
    // The final checkpoint commits the output: once all of it is there, it was written.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while sink.lines().len() < 1000 {
        assert!(std::time::Instant::now() < deadline, "the job did not end");
        std::thread::sleep(Duration::from_millis(5));
    }
    let savepoint = handle.savepoint(loc(dir.path(), "sp"));
    let (tx, rx) = std::sync::mpsc::channel();
    let target = loc(dir.path(), "stop");
    std::thread::spawn(move || {
        let _ = tx.send(handle.stop_with_savepoint(target));
    });
    let stopped = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the stop never answered");
    for result in [savepoint.map(|_| ()), stopped.map(|_| ())] {
        let err = result.unwrap_err().to_string();
        assert!(err.contains("input ended"), "{err}");
    }
}
