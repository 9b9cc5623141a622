//! Cleanup of a file sink's staged output: over random sequences of staging, checkpoints
//! that commit or crash before their manifest, commits, disposals and restarts, a restart
//! removes exactly the chunks no committed checkpoint lists, and never one it lists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use proptest::prelude::*;
use rewind_engine::{FileSink, Sink, find_staged_orphans};
use rewind_savepoint::Location;

#[derive(Debug, Clone)]
enum Op {
    /// Stage a chunk (output accumulating between checkpoints).
    Stage,
    /// A checkpoint listing every uncommitted chunk; its manifest is written or not (a
    /// crash between the listing record and the manifest).
    Checkpoint { committed: bool },
    /// The newest committed checkpoint's output becomes visible.
    Commit,
    /// The oldest retained checkpoint is disposed of (retention, `rewind rm`).
    Dispose,
    /// The job restarts: it removes what no committed checkpoint lists.
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Stage),
        2 => any::<bool>().prop_map(|committed| Op::Checkpoint { committed }),
        1 => Just(Op::Commit),
        1 => Just(Op::Dispose),
        1 => Just(Op::Restart),
    ]
}

fn pending(sink: &Path) -> BTreeSet<String> {
    std::fs::read_dir(sink.join("_pending"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter_map(|n| n.strip_suffix(".jsonl").map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn run(ops: &[Op]) {
    let dir = tempfile::tempdir().unwrap();
    let sink_dir = dir.path().join("out");
    let location = Location::parse(sink_dir.to_str().unwrap()).unwrap();
    let checkpoints = dir.path().join("chk");
    let mut sink = FileSink::new(location.clone()).unwrap();
    // The model: chunks staged and not committed, and what each retained checkpoint lists.
    let mut uncommitted: BTreeSet<String> = BTreeSet::new();
    let mut retained: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    let mut seq = 0u64;
    for (id, op) in (1u64..).zip(ops) {
        match op {
            Op::Stage => {
                seq += 1;
                let token = sink.stage(0, seq, b"{\"n\":1}\n").unwrap();
                uncommitted.insert(token);
            }
            Op::Checkpoint { committed } => {
                let at = checkpoints.join(format!("chk-{id}"));
                let tokens: Vec<String> = uncommitted.iter().cloned().collect();
                sink.record_listing(id, at.to_str().unwrap(), &tokens)
                    .unwrap();
                if *committed {
                    std::fs::create_dir_all(&at).unwrap();
                    std::fs::write(at.join("_manifest.json"), b"{}").unwrap();
                    retained.insert(id, tokens.into_iter().collect());
                }
            }
            Op::Commit => {
                if let Some((&id, tokens)) = retained.iter().next_back() {
                    for token in tokens {
                        sink.commit(id, token).unwrap();
                        uncommitted.remove(token);
                    }
                }
            }
            Op::Dispose => {
                if let Some(id) = retained.keys().next().copied() {
                    std::fs::remove_dir_all(checkpoints.join(format!("chk-{id}"))).unwrap();
                    retained.remove(&id);
                }
            }
            Op::Restart => {
                sink = FileSink::new(location.clone()).unwrap();
                sink.remove_orphans().unwrap();
                // What a crash left and no retained checkpoint lists is gone; the rest stays.
                let listed: BTreeSet<String> = retained.values().flatten().cloned().collect();
                uncommitted.retain(|t| listed.contains(t));
                let left = pending(&sink_dir);
                for token in &uncommitted {
                    assert!(
                        left.contains(token),
                        "{token} was listed and is gone: {ops:?}"
                    );
                }
                for token in &left {
                    assert!(
                        uncommitted.contains(token),
                        "{token} is an orphan left: {ops:?}"
                    );
                }
            }
        }
        // Whatever happens, a chunk a retained checkpoint lists and nobody committed stays.
        let left = pending(&sink_dir);
        for tokens in retained.values() {
            for token in tokens.iter().filter(|t| uncommitted.contains(*t)) {
                assert!(left.contains(token), "{token} lost: {ops:?}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_restart_removes_exactly_what_no_committed_checkpoint_lists(
        ops in prop::collection::vec(op(), 1..24)
    ) {
        run(&ops);
    }
}

/// A chunk younger than the minimum age is left alone, listed or not: `rewind rm --orphans`
/// may run beside a job whose checkpoint is in progress.
#[test]
fn young_files_are_not_orphans_yet() {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::parse(dir.path().join("out").to_str().unwrap()).unwrap();
    let sink = FileSink::new(location.clone()).unwrap();
    sink.stage(0, 1, b"{}\n").unwrap();
    let young = find_staged_orphans(&location, std::time::Duration::from_secs(3600)).unwrap();
    assert!(
        young.chunks.is_empty() && young.records.is_empty(),
        "{young:?}"
    );
    let now = find_staged_orphans(&location, std::time::Duration::ZERO).unwrap();
    assert_eq!(now.chunks.len(), 1, "{now:?}");
}
