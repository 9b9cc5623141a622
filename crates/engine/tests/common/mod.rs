//! What the engine's test binaries share beyond rewind-test-support (the keyed count job,
//! locations): a runtime, sorting, source positions.
#![allow(dead_code, unused_imports)] // each test binary uses part of it

use rewind_savepoint::format::Manifest;

pub mod event_time;

pub use rewind_test_support::{Count, generator, keyed_count, loc, run_to_end};

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
