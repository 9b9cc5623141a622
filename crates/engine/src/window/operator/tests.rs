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
