//! The window operator's behaviour on restored state.

use std::time::Duration;

use super::*;
use crate::operator::SnapshotAt;
use crate::window::{Aggregate, CountAggregate, WindowResult};

type Counts = Aggregate<CountAggregate<i64>>;

/// A batch of `table`'s rows as a savepoint stores them.
fn stored(table: &mut dyn Table<i64>) -> RecordBatch {
    let at = SnapshotAt {
        id: 1,
        needed_from: 0,
        track_removals: false,
    };
    table.snapshot(at).to_batch(HashRange::FULL).unwrap().1
}

/// Release 0.1.0 stored every window as `{end, acc}` with all its timers. Restored into
/// a job whose windows are twice as long, a window that had not fired fires once, with
/// the new size; one that had fired (only its cleanup timer left) does not.
#[test]
fn windows_of_release_0_1_0_fire_once_with_the_jobs_size() {
    // A 1 s tumbling count with 500 ms of lateness, in 0.1.0's layout: keys 1 and 3
    // still to fire, key 2 fired.
    let codec: Arc<dyn ValueCodec<NsKey<i64>, Slot<u64>>> =
        Arc::new(SessionWindows::<u64>::default());
    let mut windows = ValueTable::with_codec(WINDOWS, ValueKind::Value, HashRange::FULL, codec);
    let mut timers = Timers::<i64>::new(true);
    for (key, start, count, fired) in [
        (1i64, 0i64, 5u64, false),
        (2, 0, 7, true),
        (3, 1000, 9, false),
    ] {
        let end = start + 1000;
        windows
            .map
            .insert(NsKey { key, ns: start }, Slot { end, acc: count });
        if !fired {
            timers.event.insert(end - 1, key, start);
        }
        timers.event.insert(end - 1 + 500, key, start);
    }
    let (windows, timers) = (stored(&mut windows), stored(&mut timers));

    for lateness in [0, 100] {
        let mut op = WindowOp::<i64, i64, Counts>::new(
            HashRange::FULL,
            Arc::new(Aggregate(CountAggregate::new())),
            Arc::new(|e: &i64| *e),
            Windows::tumbling(Duration::from_secs(2)),
            lateness,
            Arc::new(AtomicU64::new(0)),
            false,
        );
        op.restore(WINDOWS, &windows).unwrap();
        op.restore(TIMERS, &timers).unwrap();
        let mut out = Vec::new();
        assert_eq!(op.on_watermark(i64::MAX, &mut out).unwrap(), Firing::Done);
        let mut results: Vec<(i64, i64, i64, u64)> = out
            .iter()
            .map(|r| match r.downcast_ref::<WindowResult<i64, u64>>() {
                Ok(r) => (r.key, r.start, r.end, r.value),
                _ => panic!("not a window result"),
            })
            .collect();
        results.sort();
        assert_eq!(
            results,
            [(1, 0, 2000, 5), (3, 1000, 3000, 9)],
            "lateness {lateness}"
        );
    }
}

fn counting(windows: Windows, lateness: i64) -> WindowOp<i64, i64, Counts> {
    WindowOp::new(
        HashRange::FULL,
        Arc::new(Aggregate(CountAggregate::new())),
        Arc::new(|e: &i64| *e),
        windows,
        lateness,
        Arc::new(AtomicU64::new(0)),
        false,
    )
}

/// Processes `(key, timestamp)` records in chunks of 32, as a channel batch is.
fn feed(op: &mut WindowOp<i64, i64, Counts>, records: impl Iterator<Item = (i64, i64)>) {
    use crate::operator::TypedInput;
    let records: Vec<(i64, i64)> = records.map(|(key, ts)| (ts, key)).collect();
    let mut out = Vec::new();
    for chunk in records.chunks(32) {
        op.process_chunk(&mut chunk.to_vec(), &mut out).unwrap();
    }
    assert!(out.is_empty(), "no window fires while records are added");
}

/// Fires what `watermark` makes due as the worker does, a chunk a call: the results as
/// (key, start, count) in firing order, and how many calls asked for more.
fn fire_all(op: &mut WindowOp<i64, i64, Counts>, watermark: i64) -> (Vec<(i64, i64, u64)>, usize) {
    let (mut results, mut more) = (Vec::new(), 0);
    loop {
        let mut out = Vec::new();
        let firing = op.on_watermark(watermark, &mut out).unwrap();
        // About a chunk: a scan stops after the bucket that filled it (a few windows here).
        assert!(
            out.len() <= FIRING_CHUNK + 64,
            "{} fired at once",
            out.len()
        );
        results.extend(out.iter().map(|r| {
            let r = r.downcast_ref::<WindowResult<i64, u64>>().unwrap();
            (r.key, r.start, r.value)
        }));
        if firing == Firing::Done {
            return (results, more);
        }
        assert!(!out.is_empty(), "more asked for with nothing fired");
        more += 1;
    }
}

/// More windows fire at one watermark than a call fires: every one comes out once, over
/// several calls, in the order of its path. Without lateness a fifth of the state is
/// looked up key by key (the list split between calls) and then the whole state is taken
/// by one scan, both in key-hash order; with lateness the timers fire in key order.
#[test]
fn many_windows_fire_in_chunks_in_order_on_every_path() {
    for lateness in [0, 100] {
        let mut op = counting(Windows::tumbling(Duration::from_secs(1)), lateness);
        feed(
            &mut op,
            (0..5000)
                .map(|k| (k, 10))
                .chain((0..20_000).map(|k| (k, 1010))),
        );
        for (watermark, start, keys) in [(999, 0, 5000), (1999, 1000, 20_000)] {
            let (results, more) = fire_all(&mut op, watermark);
            let label = format!("lateness {lateness}, window {start}");
            assert_eq!(results.len(), keys as usize, "{label}");
            assert!(
                results.iter().all(|&(_, s, n)| s == start && n == 1),
                "{label}"
            );
            assert_eq!(more, keys as usize / FIRING_CHUNK, "{label}: calls");
            // Key-hash order (then key) for listed windows, key order for timers.
            let fired: Vec<(u64, i64)> = results
                .iter()
                .map(|&(k, _, _)| (if lateness == 0 { k.key_hash() } else { 0 }, k))
                .collect();
            assert!(
                fired.windows(2).all(|p| p[0] < p[1]),
                "{label}: each window once, in firing order"
            );
        }
    }
}
