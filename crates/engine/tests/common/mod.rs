//! What the engine's test binaries share: a keyed count, locations, a runtime, sorting.
#![allow(dead_code)] // each test binary uses part of it

use rewind_engine::{
    CollectSink, Context, GeneratedEvent, GeneratorSource, Job, JobBuilder, KeyedProcessFunction,
    StateDecl, ValueState,
};
use rewind_savepoint::Location;
use rewind_savepoint::format::Manifest;

/// Counts events per key in value state `count`, emitting `(key, count)` each time.
pub struct Count {
    count: ValueState<u64>,
}

impl Count {
    pub fn new() -> Self {
        Count {
            count: ValueState::new("count"),
        }
    }
}

impl KeyedProcessFunction for Count {
    type Key = i64;
    type In = GeneratedEvent;
    type Out = (i64, u64);

    fn states(&self) -> Vec<StateDecl<i64>> {
        vec![self.count.decl()]
    }

    fn process(&self, _input: GeneratedEvent, ctx: &mut Context<'_, i64, (i64, u64)>) {
        let count = self.count.get(ctx).copied().unwrap_or(0) + 1;
        self.count.set(ctx, count);
        let key = *ctx.key();
        ctx.emit((key, count));
    }
}

/// Generator (uid `events`, parallelism 2) -> [`Count`] (uid `counter`) -> `sink`.
pub fn keyed_count(source: GeneratorSource, parallelism: u32, sink: CollectSink) -> Job {
    JobBuilder::new("keyed-count")
        .source("Generator", source)
        .uid("events")
        .parallelism(2)
        .key_by(|e: &GeneratedEvent| e.key)
        .process("Counter", Count::new())
        .uid("counter")
        .parallelism(parallelism)
        .sink("output", sink)
}

pub fn loc(dir: &std::path::Path, name: &str) -> Location {
    Location::parse(dir.join(name).to_str().unwrap()).unwrap()
}

pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

pub fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

/// How far the source `uid` had read at a savepoint: the sum of its splits' offsets.
pub fn records_read(manifest: &Manifest, uid: &str) -> u64 {
    source_splits(manifest, uid)
        .iter()
        .map(|s| s.position["offset"].as_u64().unwrap())
        .sum()
}

/// The splits a savepoint records for source `uid`.
pub fn source_splits<'a>(
    manifest: &'a Manifest,
    uid: &str,
) -> &'a [rewind_savepoint::format::SplitEntry] {
    &manifest
        .operator(uid)
        .unwrap()
        .source
        .as_ref()
        .unwrap()
        .splits
}
