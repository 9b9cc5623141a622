//! Snapshots in parts and deltas, restores layer by layer, timers, lookahead.

use arrow_array::{Array, Int64Array, UInt64Array};

use super::*;

fn column<'b, T: 'static>(batch: &'b RecordBatch, name: &str) -> &'b T {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .unwrap_or_else(|| panic!("no column {name}"))
}

/// A whole state, then each delta in turn (its upserts, then its deletes), rebuilds the
/// table, as a restore applies layers: a key deleted in one delta and written again in
/// the next is there with its new value; a key deleted last is gone.
#[test]
fn a_base_and_its_deltas_applied_in_turn_rebuild_the_table() {
    let range = HashRange::new(0, u64::MAX).unwrap();
    let at = |id| SnapshotAt {
        id,
        needed_from: id.saturating_sub(1),
        track_removals: true,
    };
    let mut table = ValueTable::<i64, i64, u64>::new("count", ValueKind::Value, range);
    for k in 0..100 {
        table.map.insert(k, k as u64);
    }
    let (_, base) = table.snapshot(at(1)).to_batch(range).unwrap();
    for k in 0..10 {
        table.map.remove(&k);
    }
    table.map.insert(50, 500);
    let (_, first) = table.snapshot(at(2)).to_delta(range, 1).unwrap();
    for k in 0..5 {
        table.map.insert(k, 1000 + k as u64);
    }
    table.map.remove(&60);
    let (_, second) = table.snapshot(at(3)).to_delta(range, 2).unwrap();

    let mut restored = ValueTable::<i64, i64, u64>::new("count", ValueKind::Value, range);
    restored.restore(&base).unwrap();
    for delta in [first, second] {
        let deleted = column::<BooleanArray>(&delta, "deleted").clone();
        let kept = BooleanArray::new(!deleted.values(), None);
        let pick = |marks: &BooleanArray| {
            arrow_select::filter::filter_record_batch(&delta, marks).unwrap()
        };
        restored.restore(&pick(&kept)).unwrap();
        restored.restore_deletes(&pick(&deleted)).unwrap();
    }
    let contents = |t: &ValueTable<i64, i64, u64>| -> Vec<(i64, u64)> {
        (0..100)
            .filter_map(|k| t.map.get(&k).map(|v| (k, *v)))
            .collect()
    };
    assert_eq!(contents(&restored), contents(&table));
    assert_eq!(restored.map.get(&0), Some(&1000));
    assert_eq!(restored.map.get(&5), None);
    assert_eq!(restored.map.get(&60), None);
    assert_eq!(restored.map.get(&50), Some(&500));
}

/// Timers restored from a batch and removed by a batch of deletes (a delta layer's,
/// from a writer that layers timers) leave the others set.
#[test]
fn timers_restore_and_restore_deletes() {
    let range = HashRange::new(0, u64::MAX).unwrap();
    let mut timers = Timers::<i64>::new(false);
    for k in 0..10 {
        timers.set(TimeDomain::EventTime).insert(100 + k, k, 0);
    }
    timers.set(TimeDomain::ProcessingTime).insert(7, 3, 0);
    let (_, stored) = Table::snapshot(
        &mut timers,
        SnapshotAt {
            id: 1,
            needed_from: 0,
            track_removals: false,
        },
    )
    .to_batch(range)
    .unwrap();
    let mut restored = Timers::<i64>::new(false);
    restored.restore(&stored).unwrap();
    assert_eq!(restored.event.len(), 10);
    let keys = column::<arrow_array::Int64Array>(&stored, "key");
    let even =
        BooleanArray::from_iter((0..stored.num_rows()).map(|i| Some(keys.value(i) % 2 == 0)));
    let deletes = arrow_select::filter::filter_record_batch(&stored, &even).unwrap();
    restored.restore_deletes(&deletes).unwrap();
    let mut left: Vec<(i64, i64)> = restored.event.iter().map(|(t, k, _)| (t, *k)).collect();
    left.sort();
    assert_eq!(left, [(101, 1), (103, 3), (105, 5), (107, 7), (109, 9)]);
    // Key 3's processing-time timer was not among the deletes.
    assert_eq!(restored.processing.len(), 1);
}

/// A batch whose rows spread over the table is looked up first; a run of neighbours
/// (a base's batch) and a small table are not.
#[test]
fn only_scattered_batches_are_looked_up_first() {
    let range = HashRange::new(0, u64::MAX).unwrap();
    let mut map = CowMap::<i64, i64, u64>::new(range);
    let hashes = |hs: Vec<u64>| {
        let column: ArrayRef = Arc::new(arrow_array::UInt64Array::from(hs));
        RecordBatch::try_from_iter([("key_hash", column)]).unwrap()
    };
    let spread = hashes((0..100u64).map(|i| i * (u64::MAX / 100)).collect());
    let run = hashes((0..100u64).map(|i| (1 << 40) + i).collect());
    assert!(!scattered(&map, &spread), "an empty table");
    for k in 0..100_000 {
        map.insert(k, 1);
    }
    assert!(scattered(&map, &spread));
    assert!(!scattered(&map, &run));
}

/// Several parts, deletes among them: the whole state's parts and the delta's hold
/// every row once, in key-hash order, each with its own value.
#[test]
fn snapshots_in_several_parts_keep_every_row_with_its_value() {
    let range = HashRange::new(0, u64::MAX).unwrap();
    let mut table = ValueTable::<i64, i64, u64>::new("count", ValueKind::Value, range);
    let n = 3 * PART_ROWS as i64 + 5;
    for k in 0..n {
        table.map.insert(k, k as u64 * 3);
    }
    let first = table.snapshot(SnapshotAt {
        id: 1,
        needed_from: 0,
        track_removals: true,
    });
    assert!(first.parts(range).count() >= 3);
    let (hashes, whole) = first.to_batch(range).unwrap();
    assert_eq!(whole.num_rows(), n as usize);
    assert!(hashes.windows(2).all(|w| w[0] <= w[1]));
    let (keys, values) = (
        column::<Int64Array>(&whole, "key"),
        column::<UInt64Array>(&whole, "value"),
    );
    for i in 0..whole.num_rows() {
        assert_eq!(values.value(i), keys.value(i) as u64 * 3);
    }

    for k in (0..n).step_by(2) {
        table.map.insert(k, k as u64 * 5);
    }
    for k in (0..n).step_by(7) {
        table.map.remove(&k);
    }
    let second = table.snapshot(SnapshotAt {
        id: 2,
        needed_from: 1,
        track_removals: true,
    });
    assert!(second.delta_parts(range, 1).count() > 1);
    let (hashes, delta) = second.to_delta(range, 1).unwrap();
    let expected = (0..n).filter(|k| k % 2 == 0 || k % 7 == 0).count();
    assert_eq!(delta.num_rows(), expected);
    assert!(hashes.windows(2).all(|w| w[0] <= w[1]));
    let keys = column::<Int64Array>(&delta, "key");
    let values = column::<UInt64Array>(&delta, "value");
    let deleted = column::<BooleanArray>(&delta, "deleted");
    for i in 0..delta.num_rows() {
        let k = keys.value(i);
        if k % 7 == 0 {
            assert!(deleted.value(i) && values.is_null(i), "key {k}");
        } else {
            assert!(!deleted.value(i), "key {k}");
            assert_eq!(values.value(i), k as u64 * 5, "key {k}");
        }
    }
}
