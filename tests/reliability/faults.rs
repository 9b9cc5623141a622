use std::sync::Arc;
use std::time::Duration;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use rewind_savepoint::{
    GenerateOptions, Location, RescaleOptions, SavepointReader, ValidateOptions, generate, rescale,
    validate,
};
use rewind_tests::faulty::{FaultyStore, Op, Plan};

const WRITES: [Op; 5] = [Op::Put, Op::Multipart, Op::Part, Op::Complete, Op::Copy];

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn at(store: Arc<dyn ObjectStore>, prefix: &str) -> Location {
    Location::new(store, Path::from(prefix), format!("memory:///{prefix}"))
}

fn options() -> GenerateOptions {
    GenerateOptions {
        keys: 3000,
        parallelism: 3,
        operators: 2,
        ..Default::default()
    }
}

async fn has_manifest(store: &Arc<dyn ObjectStore>, prefix: &str) -> bool {
    store
        .head(&Path::from(format!("{prefix}/_manifest.json")))
        .await
        .is_ok()
}

async fn is_valid(location: &Location) -> bool {
    validate(location, ValidateOptions::default())
        .await
        .map(|r| r.is_valid())
        .unwrap_or(false)
}

fn count_job(
    source: rewind_engine::GeneratorSource,
    sink: impl rewind_engine::Sink,
) -> rewind_engine::Job {
    rewind_engine::JobBuilder::new("count")
        .source("Generator", source)
        .uid("events")
        .key_by(|e: &rewind_engine::GeneratedEvent| e.key)
        .process("Count", rewind_test_support::Count::new())
        .uid("counter")
        .sink("output", sink)
}

/// Fails the 1st, 2nd, ... write request of a savepoint write in turn, until one run
/// needs fewer requests than the fault's index: every failed run leaves no manifest, the
/// earlier savepoint stays valid, and the run without a fault writes a valid savepoint.
#[test]
fn a_write_failing_at_any_request_leaves_no_manifest() {
    block_on(async {
        let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        generate(at(memory.clone(), "sp0"), options())
            .await
            .unwrap();
        let mut injected = 0;
        for n in 1.. {
            let faulty = FaultyStore::new(
                memory.clone(),
                Plan::Nth {
                    ops: WRITES.to_vec(),
                    n,
                },
            );
            let target = format!("sp-{n}");
            let result = generate(at(faulty.clone(), &target), options()).await;
            if faulty.injected() == 0 {
                result.unwrap();
                assert!(is_valid(&at(memory.clone(), &target)).await);
                assert!(n > 3, "a savepoint takes more than {n} requests");
                break;
            }
            injected += 1;
            let err = result.expect_err("a write whose request failed must fail");
            assert!(
                matches!(err, rewind_savepoint::Error::Storage { .. }),
                "fault at request {n}: a storage error, not {err:?}"
            );
            assert!(err.to_string().contains("injected fault"), "{err}");
            assert!(
                !has_manifest(&memory, &target).await,
                "fault at request {n}: a manifest appeared"
            );
            assert!(is_valid(&at(memory.clone(), "sp0")).await);
        }
        assert!(injected >= 4, "only {injected} faults");
        eprintln!(
            "savepoint write: a fault at each of {injected} write requests, no manifest left"
        );
    });
}

/// Cuts off the 1st, 2nd, ... write request of a savepoint write (the store got it whole,
/// the reply is lost) until a run needs fewer: every such run fails with a storage error
/// and leaves no manifest, except when the lost reply was the manifest's own: the writer
/// then finds its own manifest there and reports the (valid) savepoint as committed.
/// Leftovers are what `rm --orphans` finds.
#[test]
fn a_write_cut_off_at_any_request_leaves_no_manifest_or_a_valid_one() {
    block_on(async {
        let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        generate(at(memory.clone(), "sp0"), options())
            .await
            .unwrap();
        let (mut cut, mut committed) = (0, 0);
        for n in 1.. {
            let faulty = FaultyStore::new(
                memory.clone(),
                Plan::CutOff {
                    ops: vec![Op::Put, Op::Part, Op::Complete],
                    n,
                },
            );
            let target = format!("sp-{n}");
            let result = generate(at(faulty.clone(), &target), options()).await;
            if faulty.injected() == 0 {
                result.unwrap();
                assert!(is_valid(&at(memory.clone(), &target)).await);
                break;
            }
            cut += 1;
            if result.is_ok() {
                // Only the manifest's own lost reply: the writer found its manifest there,
                // so the commit happened and it says so.
                committed += 1;
                assert!(has_manifest(&memory, &target).await, "request {n}");
                assert!(is_valid(&at(memory.clone(), &target)).await, "request {n}");
                continue;
            }
            let err = result.expect_err("checked above");
            assert!(
                matches!(err, rewind_savepoint::Error::Storage { .. }),
                "cut-off at request {n}: a storage error, not {err:?}"
            );
            assert!(err.to_string().contains("injected cut-off"), "{err}");
            {
                assert!(!has_manifest(&memory, &target).await, "request {n}");
                let leftovers = rewind_savepoint::plan_removal(&at(memory.clone(), &target), true)
                    .await
                    .unwrap();
                assert!(leftovers.listed.is_empty(), "{:?}", leftovers.listed);
            }
            assert!(is_valid(&at(memory.clone(), "sp0")).await);
        }
        assert!(cut >= 4, "only {cut} cut-offs");
        assert_eq!(
            committed, 1,
            "only the manifest's lost reply leaves a manifest"
        );
        eprintln!(
            "savepoint write: a lost reply at each of {cut} write requests; no manifest, \
             except the manifest's own, which the writer recognises as committed"
        );
    });
}

/// Cuts off the 1st, 2nd, ... read of a deep validation halfway: each fails with the
/// store's error, never a panic and never a verdict about the savepoint's bytes (it is
/// intact; only the connection failed).
#[test]
fn a_read_cut_off_at_any_request_fails_with_the_store_error() {
    block_on(async {
        let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        generate(at(memory.clone(), "sp"), options()).await.unwrap();
        let deep = ValidateOptions {
            deep: true,
            ..Default::default()
        };
        let mut cut = 0;
        for n in 1.. {
            let faulty = FaultyStore::new(
                memory.clone(),
                Plan::CutOff {
                    ops: vec![Op::Get],
                    n,
                },
            );
            let result = validate(&at(faulty.clone(), "sp"), deep.clone()).await;
            if faulty.injected() == 0 {
                assert!(result.unwrap().is_valid());
                break;
            }
            cut += 1;
            match result {
                Err(e) => {
                    assert!(
                        matches!(e, rewind_savepoint::Error::Storage { .. }),
                        "read {n}: {e:?}"
                    );
                    assert!(e.to_string().contains("injected cut-off"), "{e}");
                }
                Ok(report) => panic!("read {n} cut off, yet a report: {report:?}"),
            }
        }
        assert!(cut >= 4, "only {cut} cut-offs");
        eprintln!("deep validation: a cut-off at each of {cut} reads, each a storage error");
    });
}

/// A store that answers every write 40 ms late: checkpoints take longer than their
/// interval, yet they complete, every one with a manifest is valid, and the job's
/// output and final state are exact.
#[test]
fn a_slow_store_slows_checkpoints_but_loses_nothing() {
    use rewind_engine::{CollectSink, GeneratorSource, RunOptions, run};
    let source = GeneratorSource {
        keys: 20,
        events: 20_000,
        seed: 3,
        splits: 2,
        rate_per_split: Some(5_000),
    };
    let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let slow = FaultyStore::new(
        memory.clone(),
        Plan::Slow {
            ops: WRITES.to_vec(),
            delay: Duration::from_millis(40),
        },
    );
    let sink = CollectSink::default();
    let options = RunOptions {
        checkpoint_dir: Some(at(slow.clone(), "checkpoints")),
        checkpoint_interval: Some(Duration::from_millis(20)),
        retain_checkpoints: 100,
        savepoint_on_finish: Some(at(memory.clone(), "end")),
        ..Default::default()
    };
    let (_, stats) = run(count_job(source.clone(), sink.clone()), options)
        .unwrap()
        .wait_with_stats()
        .unwrap();
    assert!(stats.checkpoints_written >= 2, "{stats:?}");
    assert!(slow.injected() > 0);

    let mut expected = std::collections::BTreeMap::new();
    for seq in 0..source.events {
        *expected.entry(source.key_of(seq)).or_insert(0u64) += 1;
    }
    // Every count from 1 to the key's total, each exactly once: nothing dropped, nothing
    // repeated, however slow the checkpoints were.
    let mut lines = sink.lines();
    lines.sort();
    let mut want: Vec<String> = expected
        .iter()
        .flat_map(|(k, n)| (1..=*n).map(move |i| format!("[{k},{i}]")))
        .collect();
    want.sort();
    // Compared by count and first difference: the full lists are thousands of lines.
    assert_eq!(lines.len(), want.len(), "output lines");
    let first = lines.iter().zip(&want).position(|(a, b)| a != b);
    assert_eq!(first, None, "first differing output line");
    assert_eq!(
        rewind_test_support::state_counts(&at(memory.clone(), "end"), "counter", "count"),
        expected
    );
    block_on(async {
        let (found, _) = rewind_savepoint::find_savepoints(&at(memory.clone(), "checkpoints"))
            .await
            .unwrap();
        assert!(!found.is_empty());
        for entry in &found {
            let loc = at(memory.clone(), &format!("checkpoints/{}", entry.path));
            assert!(is_valid(&loc).await, "{}", entry.path);
        }
        eprintln!(
            "slow store: {} delayed writes, {} checkpoints, all valid, output exact",
            slow.injected(),
            found.len()
        );
    });
}

/// Every output line the counting job must commit for `source`, sorted: each key's
/// counts from 1 to its total.
fn expected_output(source: &rewind_engine::GeneratorSource) -> Vec<String> {
    let mut totals = std::collections::BTreeMap::new();
    for seq in 0..source.events {
        *totals.entry(source.key_of(seq)).or_insert(0u64) += 1;
    }
    let mut want: Vec<String> = totals
        .iter()
        .flat_map(|(k, n)| (1..=*n).map(move |i| format!("[{k},{i}]")))
        .collect();
    want.sort();
    want
}

/// A file sink whose store fails one write: a chunk staged as output is produced, the
/// rest staged at a checkpoint, or a commit after it. Whichever fails, the output is kept
/// and retried, so the committed output is every line exactly once, in order, and nothing
/// stays pending. Small chunks make the job stage output dozens of times between
/// checkpoints.
#[test]
fn a_failing_sink_write_loses_and_repeats_no_output() {
    use rewind_engine::{FileSink, GeneratorSource, RunOptions, read_committed, run};
    let source = GeneratorSource {
        keys: 20,
        events: 3000,
        seed: 5,
        splits: 2,
        rate_per_split: Some(10_000),
    };
    let want = expected_output(&source);
    let mut faults = 0;
    for n in [1u64, 2, 3, 5, 8, 13, 21, 34] {
        let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let faulty = FaultyStore::new(
            memory.clone(),
            Plan::Nth {
                ops: vec![Op::Put],
                n,
            },
        );
        let sink = FileSink::new(at(faulty.clone(), "out")).unwrap();
        let options = RunOptions {
            checkpoint_dir: Some(at(memory.clone(), "checkpoints")),
            checkpoint_interval: Some(Duration::from_millis(30)),
            savepoint_on_finish: Some(at(memory.clone(), "end")),
            sink_chunk_bytes: Some(256),
            ..Default::default()
        };
        run(count_job(source.clone(), sink), options)
            .unwrap()
            .wait()
            .unwrap_or_else(|e| panic!("put {n} failing: {e}"));
        faults += faulty.injected();
        let mut lines = read_committed(&at(memory.clone(), "out")).unwrap();
        // In file order, each key's counts run 1, 2, 3, ...: a chunk retried after a
        // failure still comes in its place.
        let mut last = std::collections::HashMap::new();
        for line in &lines {
            let (key, count) = line
                .trim_matches(|c| c == '[' || c == ']')
                .split_once(',')
                .unwrap();
            let count: u64 = count.parse().unwrap();
            let previous = last.insert(key.to_string(), count).unwrap_or(0);
            assert_eq!(
                count,
                previous + 1,
                "put {n} failing: key {key} out of order"
            );
        }
        lines.sort();
        assert_eq!(lines.len(), want.len(), "put {n} failing: output lines");
        let first = lines.iter().zip(&want).position(|(a, b)| a != b);
        assert_eq!(first, None, "put {n} failing: first differing line");
        let pending = block_on(async {
            use futures::TryStreamExt;
            let prefix = Path::from("out/_pending");
            memory
                .list(Some(&prefix))
                .try_collect::<Vec<_>>()
                .await
                .unwrap()
        });
        assert!(
            pending.is_empty(),
            "put {n} failing: {} pending",
            pending.len()
        );
    }
    assert_eq!(faults, 8, "one failed put per run");
    eprintln!("file sink: 8 runs, one failed write each, output exact");
}

/// Random faults (seeded) in reads and writes during rescale: a failed rescale leaves no
/// DEST manifest; a successful one is valid.
#[test]
fn rescale_under_random_faults_never_leaves_a_valid_looking_dest() {
    block_on(async {
        let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        generate(at(memory.clone(), "src"), options())
            .await
            .unwrap();
        let (mut failed, mut succeeded) = (0, 0);
        for seed in 0..40u64 {
            let ops = vec![Op::Get, Op::Put, Op::Part, Op::Complete, Op::Copy, Op::List];
            let faulty = FaultyStore::new(
                memory.clone(),
                Plan::Random {
                    ops,
                    per_mille: 30,
                    seed,
                },
            );
            let dest = format!("dest-{seed}");
            let result = async {
                let src = SavepointReader::open(at(faulty.clone(), "src")).await?;
                let options = RescaleOptions {
                    parallelism: Some(2 + (seed % 4) as u32),
                    ..Default::default()
                };
                rescale(&src, at(faulty.clone(), &dest), &options, None).await
            }
            .await;
            match result {
                Ok(_) => {
                    succeeded += 1;
                    assert!(is_valid(&at(memory.clone(), &dest)).await, "seed {seed}");
                }
                Err(e) => {
                    failed += 1;
                    assert!(faulty.injected() > 0, "seed {seed}: {e}");
                    assert!(!has_manifest(&memory, &dest).await, "seed {seed}: {e}");
                }
            }
        }
        assert!(
            failed > 0 && succeeded > 0,
            "{failed} failed, {succeeded} succeeded"
        );
        eprintln!("rescale: 40 seeds, {failed} failed cleanly, {succeeded} valid");
    });
}

/// A checkpoint whose write fails is reported and skipped; the job keeps running, later
/// checkpoints succeed, and the job restored from the last one ends with the exact counts.
#[test]
fn the_engine_survives_a_failed_checkpoint() {
    use rewind_engine::{CollectSink, GeneratorSource, RunOptions, run};
    let job = count_job;
    let source = GeneratorSource {
        keys: 20,
        events: 4000,
        seed: 1,
        splits: 2,
        rate_per_split: Some(5_000),
    };
    let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    // The first write requests fail: the first checkpoint (or two) cannot be written.
    let faulty = FaultyStore::new(
        memory.clone(),
        Plan::Random {
            ops: WRITES.to_vec(),
            per_mille: 200,
            seed: 7,
        },
    );
    let options = RunOptions {
        checkpoint_dir: Some(at(faulty.clone(), "checkpoints")),
        checkpoint_interval: Some(Duration::from_millis(20)),
        ..Default::default()
    };
    let handle = run(job(source.clone(), CollectSink::default()), options).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    handle
        .stop_with_savepoint(at(memory.clone(), "stop"))
        .unwrap();
    assert!(faulty.injected() > 0, "no fault was injected");
    eprintln!("engine: {} faults in checkpoint writes", faulty.injected());

    // Every checkpoint with a manifest is valid, whatever failed around it; restore from
    // the newest and run to the end: the counts are exact.
    let latest = block_on(async {
        let (found, _) = rewind_savepoint::find_savepoints(&at(memory.clone(), "checkpoints"))
            .await
            .unwrap();
        assert!(!found.is_empty(), "no checkpoint survived the faults");
        let mut best: Option<(u64, Location)> = None;
        for entry in found {
            let loc = at(memory.clone(), &format!("checkpoints/{}", entry.path));
            assert!(is_valid(&loc).await, "{}", entry.path);
            let id = rewind_savepoint::read_manifest(&loc)
                .await
                .unwrap()
                .checkpoint_id;
            if best.as_ref().is_none_or(|(b, _)| id > *b) {
                best = Some((id, loc));
            }
        }
        best.map(|(_, loc)| loc).unwrap()
    });
    let fast = GeneratorSource {
        rate_per_split: None,
        ..source.clone()
    };
    let end = at(memory.clone(), "end");
    let options = RunOptions {
        from_savepoint: Some(latest),
        savepoint_on_finish: Some(end.clone()),
        ..Default::default()
    };
    run(job(fast, CollectSink::default()), options)
        .unwrap()
        .wait()
        .unwrap();
    let counts = rewind_test_support::state_counts(&end, "counter", "count");
    let mut expected = std::collections::BTreeMap::new();
    for seq in 0..source.events {
        *expected.entry(source.key_of(seq)).or_insert(0u64) += 1;
    }
    assert_eq!(counts, expected);
}

/// A stop whose savepoint cannot be written (every put of its store fails, after the
/// sources have paused at its barrier) does not end the job: the stop reports the error,
/// the sources read on, a later stop succeeds, and restoring that savepoint finishes the
/// input with every output line exactly once.
#[test]
fn a_stop_whose_savepoint_fails_keeps_the_job_running() {
    use rewind_engine::{CollectSink, GeneratorSource, RunOptions, run};
    let source = GeneratorSource {
        keys: 20,
        events: 6000,
        seed: 3,
        splits: 2,
        rate_per_split: Some(5_000),
    };
    let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let broken = FaultyStore::new(
        memory.clone(),
        Plan::Random {
            ops: vec![Op::Put],
            per_mille: 1000,
            seed: 1,
        },
    );
    let first = CollectSink::default();
    let handle = run(
        count_job(source.clone(), first.clone()),
        RunOptions::default(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let control = handle.control();
    let err = control
        .stop(at(broken.clone(), "failed-stop"), false)
        .unwrap_err();
    assert!(broken.injected() > 0);
    assert!(err.to_string().contains("checkpoint"), "{err}");
    // The job reads on after the failed stop.
    let read_at_failure = control.stats().records_read;
    std::thread::sleep(Duration::from_millis(300));
    let read_later = control.stats().records_read;
    assert!(
        read_later > read_at_failure,
        "no record read after the failed stop ({read_at_failure})"
    );
    assert!(block_on(async {
        !has_manifest(&memory, "failed-stop").await
    }));
    let stopped = at(memory.clone(), "stopped");
    control.stop(stopped.clone(), false).unwrap();
    handle.wait().unwrap();
    assert!(block_on(is_valid(&stopped)));

    let second = CollectSink::default();
    let fast = GeneratorSource {
        rate_per_split: None,
        ..source.clone()
    };
    let options = RunOptions {
        from_savepoint: Some(stopped),
        ..Default::default()
    };
    run(count_job(fast, second.clone()), options)
        .unwrap()
        .wait()
        .unwrap();
    let mut both = first.lines();
    both.extend(second.lines());
    both.sort();
    assert_eq!(both, expected_output(&source));
}
