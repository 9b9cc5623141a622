//! Operator list state: each subtask's list is saved and dealt out again on restore at
//! another parallelism, by its redistribution mode.

use std::collections::BTreeMap;

use rewind_engine::{
    CollectSink, GeneratedEvent, GeneratorSource, Job, JobBuilder, OperatorFunction,
    Redistribution, RunOptions, run,
};
use rewind_savepoint::{Location, SavepointReader, ValidateOptions, validate};

/// Remembers every sequence number it has seen; emits how many it holds after each record.
struct Seen {
    mode: Redistribution,
    seqs: Vec<u64>,
    restored: usize,
}

impl OperatorFunction for Seen {
    type In = GeneratedEvent;
    type Out = (usize, usize);
    type Element = u64;
    fn state_name(&self) -> &str {
        "seen"
    }
    fn redistribution(&self) -> Redistribution {
        self.mode
    }
    fn restore(&mut self, elements: Vec<u64>) {
        self.restored = elements.len();
        self.seqs = elements;
    }
    fn process(&mut self, e: GeneratedEvent, out: &mut Vec<(usize, usize)>) {
        self.seqs.push(e.seq);
        out.push((self.restored, self.seqs.len()));
    }
    fn snapshot(&self) -> Vec<u64> {
        self.seqs.clone()
    }
}

fn job(events: u64, mode: Redistribution, p: u32, sink: CollectSink) -> Job {
    JobBuilder::new("seen")
        .source(
            "Generator",
            GeneratorSource {
                keys: 10,
                events,
                seed: 1,
                splits: 4,
                rate_per_split: None,
            },
        )
        .uid("events")
        .process_with_state("Seen", move || Seen {
            mode,
            seqs: Vec::new(),
            restored: 0,
        })
        .uid("seen")
        .parallelism(p)
        .sink("output", sink)
}

mod common;
use common::loc;

/// What each subtask gets when the savepoint restores at its own parallelism, by subtask
/// (split: contiguous runs of all elements; broadcast: old subtask 0's list).
fn dealt(location: &Location) -> BTreeMap<u32, Vec<u64>> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let reader = SavepointReader::open(location.clone()).await.unwrap();
            let p = reader.manifest().operator("seen").unwrap().parallelism;
            let mut out = BTreeMap::new();
            for subtask in 0..p {
                let batch = reader
                    .read_operator_list("seen", "seen", subtask, p)
                    .await
                    .unwrap();
                let values = batch
                    .column_by_name("value")
                    .unwrap()
                    .as_any()
                    .downcast_ref::<arrow_array::UInt64Array>()
                    .unwrap()
                    .values()
                    .to_vec();
                out.insert(subtask, values);
            }
            out
        })
}

#[test]
fn split_lists_are_dealt_out_once_each_at_a_new_parallelism() {
    let dir = tempfile::tempdir().unwrap();
    let first = loc(dir.path(), "first");
    let options = RunOptions {
        savepoint_on_finish: Some(first.clone()),
        ..Default::default()
    };
    run(
        job(1000, Redistribution::Split, 2, CollectSink::default()),
        options,
    )
    .unwrap()
    .wait()
    .unwrap();
    let before = dealt(&first);
    assert_eq!(before.len(), 2);
    assert_eq!(before.values().map(Vec::len).sum::<usize>(), 1000);

    // Restore at 3 with 500 more events: each subtask starts with its share, and the
    // final lists hold every sequence number exactly once.
    let end = loc(dir.path(), "end");
    let sink = CollectSink::default();
    let options = RunOptions {
        from_savepoint: Some(first),
        savepoint_on_finish: Some(end.clone()),
        ..Default::default()
    };
    run(job(1500, Redistribution::Split, 3, sink.clone()), options)
        .unwrap()
        .wait()
        .unwrap();
    let restored: Vec<usize> = sink
        .lines()
        .iter()
        .map(|l| serde_json::from_str::<(usize, usize)>(l).unwrap().0)
        .collect();
    assert!(
        restored.iter().all(|r| (333..=334).contains(r)),
        "{restored:?}"
    );
    let after = dealt(&end);
    assert_eq!(after.len(), 3);
    let mut all: Vec<u64> = after.values().flatten().copied().collect();
    all.sort();
    assert_eq!(all, (0..1500).collect::<Vec<u64>>());
    let report = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(validate(&end, ValidateOptions::default()))
        .unwrap();
    assert!(report.is_valid(), "{report:?}");
}

#[test]
fn union_and_broadcast_lists_on_restore() {
    for (mode, expect) in [
        (Redistribution::Union, 1000usize),
        (Redistribution::Broadcast, 0),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let first = loc(dir.path(), "first");
        let options = RunOptions {
            savepoint_on_finish: Some(first.clone()),
            ..Default::default()
        };
        run(job(1000, mode, 2, CollectSink::default()), options)
            .unwrap()
            .wait()
            .unwrap();
        let before = dealt(&first);
        let expect = if mode == Redistribution::Broadcast {
            before[&0].len()
        } else {
            expect
        };
        let sink = CollectSink::default();
        let options = RunOptions {
            from_savepoint: Some(first),
            ..Default::default()
        };
        run(job(1200, mode, 3, sink.clone()), options)
            .unwrap()
            .wait()
            .unwrap();
        for line in sink.lines() {
            let (restored, _) = serde_json::from_str::<(usize, usize)>(&line).unwrap();
            assert_eq!(restored, expect, "{mode:?}");
        }
    }
}
