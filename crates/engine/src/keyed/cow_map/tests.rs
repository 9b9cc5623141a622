//! The map's behaviour as a map, its snapshots and its changes, against a model.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::keyed::row_key::NsKey;

#[derive(Debug, Clone)]
enum Op {
    Insert(i64, u32),
    Add(i64, u32),
    Remove(i64),
    /// Adds 1 to each key's value (in turn), a key it lacks starting at the value, by
    /// `upsert_all`.
    Upsert(Vec<i64>, u32),
    Snapshot,
}

fn op() -> impl Strategy<Value = Op> {
    // Few keys, so operations meet the same keys and buckets often.
    prop_oneof![
        (0i64..200, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        (0i64..200, any::<u32>()).prop_map(|(k, v)| Op::Add(k, v)),
        (0i64..200).prop_map(Op::Remove),
        (proptest::collection::vec(0i64..200, 0..40), any::<u32>())
            .prop_map(|(ks, v)| Op::Upsert(ks, v)),
        Just(Op::Snapshot),
    ]
}

fn contents<R: RowKey<i64> + Ord>(map: &CowMap<i64, R, u64>) -> BTreeMap<R, u64> {
    map.sorted()
        .into_iter()
        .map(|(_, k, v)| (k.clone(), *v))
        .collect()
}

proptest! {
    /// The map behaves like an ordinary map, and every snapshot keeps exactly the
    /// contents it had when taken, whatever is written after it.
    #[test]
    fn behaves_like_a_map_and_snapshots_never_change(
        ops in proptest::collection::vec(op(), 1..400),
        parallelism in 1u32..5,
    ) {
        let range = HashRange::for_subtask(0, parallelism).unwrap();
        // Keys outside the range still work as a map (only their order is unspecified).
        let mut map = CowMap::<i64, i64, u64>::new(range);
        let mut model = BTreeMap::new();
        let mut snapshots = Vec::new();
        for op in ops {
            match op {
                Op::Insert(k, v) => {
                    prop_assert_eq!(map.insert(k, v.into()), model.insert(k, v.into()));
                }
                Op::Add(k, v) => {
                    *map.get_or_insert_default(k) += u64::from(v);
                    *model.entry(k).or_default() += u64::from(v);
                }
                Op::Remove(k) => prop_assert_eq!(map.remove(&k), model.remove(&k)),
                Op::Upsert(ks, v) => {
                    let mut created = Vec::new();
                    let items = ks.iter().map(|k| (*k, 1u64));
                    map.upsert_all(items, |_| v.into(), |x, n| *x += n, |k| created.push(*k));
                    let mut expected = Vec::new();
                    for k in ks {
                        *model.entry(k).or_insert_with(|| {
                            expected.push(k);
                            v.into()
                        }) += 1;
                    }
                    prop_assert_eq!(created, expected);
                }
                Op::Snapshot => snapshots.push((map.share(), model.clone())),
            }
            prop_assert_eq!(map.len(), model.len());
        }
        prop_assert_eq!(contents(&map), model.clone());
        for k in 0..200 {
            prop_assert_eq!(map.get(&k), model.get(&k));
        }
        for (snapshot, expected) in snapshots {
            prop_assert_eq!(contents(&snapshot), expected);
        }
    }

    /// A snapshot's changes since the one before (its writes, and its removals of keys
    /// now absent), applied to the one before, give it exactly; in key-hash order.
    #[test]
    fn changes_since_the_last_snapshot_rebuild_the_next(
        ops in proptest::collection::vec(op(), 1..400),
    ) {
        let mut map = CowMap::<i64, i64, u64>::new(HashRange::FULL);
        let mut epoch = 0;
        let mut previous = map.snapshot_at(epoch, 0, true);
        for op in ops {
            match op {
                Op::Insert(k, v) => {
                    map.insert(k, v.into());
                }
                Op::Add(k, v) => *map.get_or_insert_default(k) += u64::from(v),
                Op::Remove(k) => {
                    map.remove(&k);
                }
                Op::Upsert(ks, v) => {
                    let items = ks.into_iter().map(|k| (k, 1u64));
                    map.upsert_all(items, |_| v.into(), |x, n| *x += n, |_| {});
                }
                Op::Snapshot => {
                    // The previous snapshot is the newest checkpoint: changes before it
                    // are not needed any more.
                    let since = epoch;
                    epoch += 1;
                    let next = map.snapshot_at(epoch, since, true);
                    let changes = next.changes_since(since);
                    let hashes: Vec<u64> = changes.iter().map(|(h, _, _)| *h).collect();
                    prop_assert!(hashes.windows(2).all(|w| w[0] <= w[1]));
                    let mut rebuilt = contents(&previous);
                    let mut keys = std::collections::HashSet::new();
                    for (_, k, v) in changes {
                        prop_assert!(keys.insert(*k), "key {} twice", k);
                        match v {
                            Some(v) => rebuilt.insert(*k, *v),
                            None => rebuilt.remove(k),
                        };
                    }
                    prop_assert_eq!(rebuilt, contents(&next));
                    previous = next;
                }
            }
        }
    }

    /// Rows come out sorted by key hash for every subtask of every parallelism.
    #[test]
    fn rows_come_out_in_key_hash_order(
        keys in proptest::collection::vec(any::<i64>(), 0..2000),
        parallelism in 1u32..9,
    ) {
        for subtask in 0..parallelism {
            let range = HashRange::for_subtask(subtask, parallelism).unwrap();
            let mut map = CowMap::<i64, i64, u64>::new(range);
            let mut expected: Vec<u64> = Vec::new();
            for k in &keys {
                let h = k.key_hash();
                if range.contains(h) && map.insert(*k, 1).is_none() {
                    expected.push(h);
                }
            }
            expected.sort_unstable();
            let hashes: Vec<u64> = map.sorted().iter().map(|(h, _, _)| *h).collect();
            prop_assert_eq!(hashes, expected);
        }
    }
}

/// A job without incremental checkpoints keeps no record of removed keys (it would grow
/// for as long as the job runs); one with them keeps removals until a snapshot no
/// longer needs them.
#[test]
fn removals_are_recorded_only_while_deltas_may_need_them() {
    let mut map = CowMap::<i64, i64, u64>::new(HashRange::FULL);
    for k in 0..100 {
        map.insert(k, 1);
    }
    for k in 0..50 {
        map.remove(&k);
    }
    assert!(map.removed.is_empty(), "recorded before any snapshot");
    let _savepoint = map.snapshot_at(1, 0, false);
    map.remove(&50);
    assert!(
        map.removed.is_empty(),
        "recorded without incremental checkpoints"
    );
    let _checkpoint = map.snapshot_at(2, 0, true);
    map.remove(&51);
    assert_eq!(map.changes_since(2).len(), 1);
    let _next = map.snapshot_at(3, 3, true);
    assert!(
        map.removed.is_empty() && map.removed_before.is_empty(),
        "kept past need"
    );
}

#[test]
fn namespaces_of_one_key_are_separate_entries() {
    let mut map = CowMap::<i64, NsKey<i64>, u64>::new(HashRange::FULL);
    for ns in 0..100 {
        map.insert(
            NsKey {
                key: 7,
                ns: ns * 60_000,
            },
            ns as u64,
        );
    }
    assert_eq!(map.len(), 100);
    assert_eq!(
        map.get(&NsKey {
            key: 7,
            ns: 120_000
        }),
        Some(&2)
    );
    assert_eq!(map.remove(&NsKey { key: 7, ns: 0 }), Some(0));
    assert_eq!(map.get(&NsKey { key: 7, ns: 0 }), None);
    assert_eq!(map.len(), 99);
}

#[test]
fn a_map_allocates_its_buckets_at_the_first_write() {
    let mut map = CowMap::<i64, i64, u64>::new(HashRange::FULL);
    assert_eq!(map.get(&5), None);
    assert_eq!(map.remove(&5), None);
    map.warm([5i64].iter());
    let snapshot = map.snapshot_at(1, 0, true);
    assert!(map.buckets.is_empty() && snapshot.buckets.is_empty());
    assert!(snapshot.sorted().is_empty() && snapshot.changes_since(0).is_empty());
    map.insert(5, 1);
    assert_eq!(map.buckets.len(), 1 << BUCKET_BITS);
    assert_eq!(map.get(&5), Some(&1));
    assert!(snapshot.sorted().is_empty());
}

#[test]
fn extracted_entries_leave_in_key_hash_order_in_chunks_and_snapshots_keep_them() {
    let mut map = CowMap::<i64, NsKey<i64>, u64>::new(HashRange::FULL);
    for key in 0..2000i64 {
        for ns in [0, 60] {
            map.insert(NsKey { key, ns }, key as u64);
        }
    }
    let before = map.snapshot_at(1, 0, true);
    let mut out = Vec::new();
    // In chunks of at least 300 entries (whole buckets), resumed where each stopped.
    let mut from = Some(0);
    let mut chunks = 0;
    while let Some(bucket) = from {
        let before = out.len();
        from = map.extract_sorted(bucket, 300, |r| r.ns == 0, |h, r, v| out.push((h, r, v)));
        if from.is_some() {
            assert!(
                out.len() - before >= 300,
                "a chunk stops only after its limit"
            );
        }
        chunks += 1;
    }
    assert!((6..=7).contains(&chunks), "{chunks} chunks");
    let mut expected: Vec<(u64, NsKey<i64>, u64)> = (0..2000i64)
        .map(|key| (key.key_hash(), NsKey { key, ns: 0 }, key as u64))
        .collect();
    expected.sort_by_key(|(h, r, _)| (*h, r.key));
    assert_eq!(out, expected);
    assert_eq!(map.len(), 2000);
    assert!(map.sorted().iter().all(|(_, r, _)| r.ns == 60));
    assert_eq!(before.sorted().len(), 4000);
    // Removals are recorded for the next delta.
    let gone = map.changes_since(1);
    assert_eq!(gone.len(), 2000);
    assert!(gone.iter().all(|(_, r, v)| r.ns == 0 && v.is_none()));
}

#[test]
fn a_range_of_one_hash_uses_one_bucket() {
    let h = 5i64.key_hash();
    let mut map = CowMap::<i64, i64, u64>::new(HashRange::new(h, h).unwrap());
    map.insert(5, 1);
    assert_eq!(map.sorted().len(), 1);
    assert_eq!(map.get(&5), Some(&1));
}

/// A restore reserves room first: its keys then fill the buckets without growing them
/// (but for the rare bucket holding far more than its share), and a small state
/// reserves nothing.
#[test]
fn reserved_buckets_take_their_keys_without_growing() {
    let n = 300_000i64;
    let mut map = CowMap::<i64, i64, u64>::new(HashRange::FULL);
    map.reserve(n as usize);
    let capacities: Vec<usize> = map.buckets.iter().map(|s| s.owned.capacity()).collect();
    let share = n as usize >> BUCKET_BITS;
    assert!(capacities.len() == 1 << BUCKET_BITS && capacities.iter().all(|&c| c > share));
    for k in 0..n {
        map.insert(k, k as u64);
    }
    let grew = map
        .buckets
        .iter()
        .zip(&capacities)
        .filter(|(s, c)| s.owned.capacity() != **c)
        .count();
    assert!(grew < 10, "{grew} of {} buckets grew", capacities.len());
    assert_eq!(map.len(), n as usize);
    assert!((0..n).all(|k| map.get(&k) == Some(&(k as u64))));

    let mut small = CowMap::<i64, i64, u64>::new(HashRange::FULL);
    small.reserve(1000);
    assert!(
        small.buckets.is_empty(),
        "a small state allocates nothing up front"
    );
}

/// Deletes count towards a part: a delta of removals alone is cut into parts of about
/// the limit (it came out as one part, however large), and every removed key comes once,
/// in key-hash order.
#[test]
fn a_delta_of_removals_alone_comes_in_parts_of_the_limit() {
    let mut map = CowMap::<i64, i64, u64>::new(HashRange::FULL);
    for k in 0..50_000 {
        map.insert(k, 1);
    }
    map.snapshot_at(1, 0, true);
    for k in 0..50_000 {
        map.remove(&k);
    }
    let snapshot = map.snapshot_at(2, 1, true);
    let mut walk = snapshot.walk_changes_since(1);
    let (mut sizes, mut hashes) = (Vec::new(), Vec::new());
    loop {
        let mut part = Vec::new();
        if !walk.next_part(1000, |h, _, v| {
            assert!(v.is_none(), "only deletes");
            part.push(h);
            1
        }) {
            break;
        }
        sizes.push(part.len());
        hashes.extend(part);
    }
    assert_eq!(hashes.len(), 50_000);
    assert!(hashes.is_sorted());
    // A part ends with the bucket that reached the limit (~12 keys a bucket).
    assert!(sizes.iter().all(|&n| n < 1100), "part sizes {sizes:?}");
}
