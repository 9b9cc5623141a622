//! Map state: per row key, an ordered map of user keys to values; one row per entry.
//!
//! For incremental checkpoints, each entry keeps the checkpoint epoch of its last write
//! (as the key map's entries do), and since a key's map tells which of its entries are
//! there, not which went, the table keeps a log of removed user keys (with the epoch of
//! their removal), as the key map keeps one of removed keys, for as long as a checkpoint
//! may need it. A delta then holds, for every key written since the checkpoint it builds
//! on, each entry written since then as an upsert and each user key logged as removed
//! since then and absent now as a delete.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::Field;
use rewind_savepoint::StateSpec;
use rewind_savepoint::format::HashRange;

use super::{
    SortedColumns, Table, batch, column, evolve_column, name, push_values, row_keys, value_field,
    values_from_array, values_to_array, walk_parts,
};
use crate::key::Key;
use crate::keyed::StateValue;
use crate::keyed::cow_map::{CowMap, Walk};
use crate::operator::{Parts, SnapshotAt, StateSnapshot};
use crate::{EngineError, Result};

/// User keys removed: (epoch of the removal, key, user key).
type Removed<K, UK> = Vec<(u64, K, UK)>;

/// A key's map: each user key's value and the epoch of its last write.
type Entries<UK, V> = imbl::OrdMap<UK, (V, u64)>;

pub(crate) struct MapTable<K: Key, UK: Key, V: StateValue> {
    pub name: Arc<str>,
    map: CowMap<K, K, Entries<UK, V>>,
    /// The epoch writes are stamped and removals logged with (the id of the last barrier
    /// passed).
    epoch: u64,
    /// Whether removals are logged (only while checkpoints may be written as changes).
    track_removals: bool,
    /// Removals since the last snapshot, and those before it still needed, in chunks a
    /// snapshot shares (not copies).
    removed: Removed<K, UK>,
    removed_before: Vec<Arc<Removed<K, UK>>>,
}

impl<K: Key, UK: Key, V: StateValue> MapTable<K, UK, V> {
    /// An empty table of the subtask that owns `range`.
    pub(crate) fn new(name: &str, range: HashRange) -> Self {
        MapTable {
            name: name.into(),
            map: CowMap::new(range),
            epoch: 0,
            track_removals: false,
            removed: Vec::new(),
            removed_before: Vec::new(),
        }
    }

    /// The value of `user_key` in `key`'s map.
    pub(crate) fn get(&self, key: &K, user_key: &UK) -> Option<&V> {
        self.map.get(key)?.get(user_key).map(|(v, _)| v)
    }

    /// `key`'s map, ordered by user key.
    pub(crate) fn entries(&self, key: &K) -> impl Iterator<Item = (&UK, &V)> {
        let entries = self.map.get(key).into_iter().flat_map(|m| m.iter());
        entries.map(|(uk, (v, _))| (uk, v))
    }

    /// Sets `user_key` to `value` in `key`'s map.
    pub(crate) fn insert(&mut self, key: K, user_key: UK, value: V) {
        let epoch = self.epoch;
        self.map
            .get_or_insert_default(key)
            .insert(user_key, (value, epoch));
    }

    /// Removes `user_key` from `key`'s map (and the key, with its last entry).
    pub(crate) fn remove(&mut self, key: &K, user_key: &UK) {
        // Looked up first: a write would mark the key changed (its map in the next delta).
        if !self.map.get(key).is_some_and(|m| m.contains_key(user_key)) {
            return;
        }
        let Some(m) = self.map.get_mut(key) else {
            return;
        };
        if m.remove(user_key).is_some() && self.track_removals {
            self.removed
                .push((self.epoch, key.clone(), user_key.clone()));
        }
        if m.is_empty() {
            self.map.remove(key);
        }
    }

    /// Removes `key`'s whole map.
    pub(crate) fn clear(&mut self, key: &K) {
        let Some(m) = self.map.remove(key) else {
            return;
        };
        if self.track_removals {
            let epoch = self.epoch;
            self.removed
                .extend(m.keys().map(|uk| (epoch, key.clone(), uk.clone())));
        }
    }
}

impl<K: Key, UK: Key, V: StateValue> Table<K> for MapTable<K, UK, V> {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }

    fn touch(&self, keys: &[K]) {
        self.map.warm(keys.iter());
    }

    fn snapshot(&mut self, at: SnapshotAt) -> Box<dyn StateSnapshot> {
        self.track_removals = at.track_removals;
        if !self.removed.is_empty() {
            self.removed_before
                .push(Arc::new(std::mem::take(&mut self.removed)));
        }
        if at.track_removals {
            self.removed_before
                .retain(|chunk| chunk.iter().any(|(e, ..)| *e >= at.needed_from));
        } else {
            self.removed_before.clear();
        }
        let removed = self.removed_before.clone();
        self.epoch = at.id;
        Box::new(MapSnapshot::<K, UK, V> {
            name: self.name.clone(),
            map: self
                .map
                .snapshot_at(at.id, at.needed_from, at.track_removals),
            removed,
        })
    }

    fn restore(&mut self, batch: &RecordBatch) -> Result<()> {
        let keys = row_keys::<K, K>(batch)?;
        let user_keys = user_keys::<UK>(batch)?;
        let value = evolve_column(
            "value",
            column(batch, "value")?,
            value_field::<V>()?.data_type(),
        )?;
        let values = values_from_array::<V>(&value)?;
        for ((k, uk), v) in keys.into_iter().zip(user_keys).zip(values) {
            // Restored entries belong to the base: the first checkpoint after a restore is
            // written whole.
            self.map.get_or_insert_default(k).insert(uk, (v, 0));
        }
        Ok(())
    }

    fn restore_deletes(&mut self, batch: &RecordBatch) -> Result<()> {
        let keys = row_keys::<K, K>(batch)?;
        for (k, uk) in keys.iter().zip(user_keys::<UK>(batch)?) {
            self.remove(k, &uk);
        }
        Ok(())
    }
}

/// The `user_key` column of stored rows.
fn user_keys<UK: Key>(batch: &RecordBatch) -> Result<Vec<UK>> {
    let user_key = column(batch, "user_key")?;
    UK::from_array(user_key.as_ref()).ok_or_else(|| {
        EngineError::Restore(format!(
            "state type changed at field user_key: the savepoint has {}, the job has {}",
            name(user_key.data_type()),
            name(&UK::data_type())
        ))
    })
}

struct MapSnapshot<K: Key, UK: Key, V: StateValue> {
    name: Arc<str>,
    map: CowMap<K, K, Entries<UK, V>>,
    /// The user keys removed since the oldest checkpoint a delta may build on (and maybe
    /// some before).
    removed: Vec<Arc<Removed<K, UK>>>,
}

impl<K: Key, UK: Key, V: StateValue> StateSnapshot for MapSnapshot<K, UK, V> {
    fn state(&self) -> &str {
        &self.name
    }
    fn spec(&self) -> Result<StateSpec> {
        Ok(StateSpec::map(
            &self.name,
            K::data_type(),
            UK::data_type(),
            value_field::<V>()?.data_type().clone(),
        ))
    }
    fn parts(&self, range: HashRange) -> Parts<'_> {
        self.map_parts(self.map.walk(), range, false, |_, map, part| {
            for (uk, (v, _)) in map.into_iter().flat_map(|m| m.iter()) {
                part.user_keys.push(uk.clone());
                part.values.push(v);
            }
        })
    }

    fn has_deltas(&self) -> bool {
        true
    }

    fn delta_parts(&self, range: HashRange, since: u64) -> Parts<'_> {
        // The user keys each key lost since `since`, sorted and once each.
        let mut gone: HashMap<&K, Vec<&UK>> = HashMap::new();
        let removed = self.removed.iter().flat_map(|chunk| chunk.iter());
        for (_, key, uk) in removed.filter(|(e, ..)| *e >= since) {
            gone.entry(key).or_default().push(uk);
        }
        for uks in gone.values_mut() {
            uks.sort();
            uks.dedup();
        }
        let walk = self.map.walk_changes_since(since);
        self.map_parts(walk, range, true, move |key, map, part| {
            // Upserts and deletes of one key in user-key order: the entries written since
            // then (a changed key's others are in the base), and the user keys it lost
            // and no longer has.
            let lost = gone.get(key).map(Vec::as_slice).unwrap_or_default();
            let mut entries = map
                .into_iter()
                .flat_map(|m| m.iter())
                .filter(|(_, (_, epoch))| *epoch >= since)
                .map(|(uk, (v, _))| (uk, v))
                .peekable();
            let mut lost = lost
                .iter()
                .filter(|uk| map.is_none_or(|m| !m.contains_key(**uk)))
                .peekable();
            loop {
                let take_entry = match (entries.peek(), lost.peek()) {
                    (Some((uk, _)), Some(l)) => *uk < **l,
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                    (None, None) => break,
                };
                if take_entry {
                    let Some((uk, v)) = entries.next() else { break };
                    part.user_keys.push(uk.clone());
                    part.at.push(Some(part.values.len() as u32));
                    part.values.push(v);
                } else {
                    let Some(uk) = lost.next() else { break };
                    part.user_keys.push((**uk).clone());
                    part.at.push(None);
                }
            }
        })
    }
}

/// A part of a map table's rows being built: the key columns, user keys and values, and
/// for a delta where each row's value is among the values (`None`: a removed user key).
struct MapPart<'a, K, UK, V> {
    rows: SortedColumns<K>,
    user_keys: Vec<UK>,
    values: Vec<&'a V>,
    at: Vec<Option<u32>>,
}

impl<K: Key, UK: Key, V: StateValue> MapSnapshot<K, UK, V> {
    /// The parts of `walk`, each key's rows added by `rows` (a delta's, when `delta`, with
    /// `deleted` marks and nullable values).
    fn map_parts<'a>(
        &'a self,
        walk: Walk<'a, K, K, Entries<UK, V>>,
        range: HashRange,
        delta: bool,
        mut rows: impl FnMut(&'a K, Option<&'a Entries<UK, V>>, &mut MapPart<'a, K, UK, V>) + Send + 'a,
    ) -> Parts<'a> {
        walk_parts(
            walk,
            || MapPart {
                rows: SortedColumns::with_capacity::<K>(0),
                user_keys: Vec::new(),
                values: Vec::new(),
                at: Vec::new(),
            },
            move |part, h, key, map| {
                let before = part.user_keys.len();
                rows(key, map, part);
                let added = part.user_keys.len() - before;
                for _ in 0..added {
                    part.rows.push(range, h, key);
                }
                added
            },
            move |part| {
                let mut rows = part.rows.checked(&self.name)?;
                let values = values_to_array::<V>(&part.values)?;
                let (mut fields, mut columns) = rows.key_columns();
                fields.push(Field::new("user_key", UK::data_type(), false));
                columns.push(UK::into_array(part.user_keys));
                let field = value_field::<V>()?.as_ref().clone();
                let at = delta.then_some(part.at);
                push_values(&mut fields, &mut columns, field, values, at)?;
                Ok((rows.hashes, batch(fields, columns)?))
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, UInt64Type};
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(i64, i64, u64),
        Remove(i64, i64),
        Clear(i64),
        /// A snapshot; whether it becomes the oldest a later delta may build on, and which
        /// earlier snapshot its delta builds on (an index into those allowed).
        Snapshot(bool, usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Few keys and user keys, so operations meet often.
        prop_oneof![
            4 => (0i64..12, 0i64..6, any::<u64>()).prop_map(|(k, u, v)| Op::Insert(k, u, v)),
            3 => (0i64..12, 0i64..6).prop_map(|(k, u)| Op::Remove(k, u)),
            1 => (0i64..12).prop_map(Op::Clear),
            1 => (any::<bool>(), 0usize..8).prop_map(|(c, s)| Op::Snapshot(c, s)),
        ]
    }

    type Rows = BTreeMap<(i64, i64), u64>;

    /// A batch's rows as ((key, user key), value, deleted), checking key-hash order and
    /// that deletes have no value.
    fn rows(hashes: &[u64], batch: &RecordBatch) -> Vec<((i64, i64), u64, bool)> {
        assert!(hashes.is_sorted(), "rows in key-hash order");
        let keys = batch
            .column_by_name("key")
            .unwrap()
            .as_primitive::<Int64Type>();
        let uks = batch
            .column_by_name("user_key")
            .unwrap()
            .as_primitive::<Int64Type>();
        let values = batch
            .column_by_name("value")
            .unwrap()
            .as_primitive::<UInt64Type>();
        let deleted = batch
            .column_by_name("deleted")
            .map(|d| d.as_boolean().clone());
        (0..batch.num_rows())
            .map(|i| {
                let gone = deleted.as_ref().is_some_and(|d| d.value(i));
                assert_eq!(
                    gone,
                    values.is_null(i),
                    "a delete, and only a delete, has no value"
                );
                (
                    (keys.value(i), uks.value(i)),
                    if gone { 0 } else { values.value(i) },
                    gone,
                )
            })
            .collect()
    }

    fn whole(snapshot: &dyn StateSnapshot) -> Rows {
        let (h, b) = snapshot.to_batch(HashRange::FULL).unwrap();
        rows(&h, &b).into_iter().map(|(id, v, _)| (id, v)).collect()
    }

    /// A map state over several parts (a key's rows never split): the delta, with
    /// removed user keys and cleared maps among its rows, applied to the whole state
    /// before gives the state after exactly.
    #[test]
    fn a_delta_in_several_parts_applied_to_the_state_before_gives_the_next() {
        let mut table = MapTable::<i64, i64, u64>::new("m", HashRange::FULL);
        let at = |id| SnapshotAt {
            id,
            needed_from: 0,
            track_removals: true,
        };
        for k in 0..4000 {
            for u in 0..10 {
                table.insert(k, u, (k * u) as u64);
            }
        }
        let first = table.snapshot(at(1));
        assert!(first.parts(HashRange::FULL).count() > 1);
        let before = whole(first.as_ref());
        for k in 0..4000 {
            table.remove(&k, &(k % 10));
            for u in 10..13 {
                table.insert(k, u + k % 5, 7);
            }
        }
        for k in (0..4000).step_by(11) {
            table.clear(&k);
        }
        let second = table.snapshot(at(2));
        assert!(second.delta_parts(HashRange::FULL, 1).count() > 1);
        let (h, d) = second.to_delta(HashRange::FULL, 1).unwrap();
        let mut rebuilt = before;
        for (id, v, gone) in rows(&h, &d) {
            if gone {
                rebuilt.remove(&id);
            } else {
                rebuilt.insert(id, v);
            }
        }
        assert_eq!(rebuilt, whole(second.as_ref()));
    }

    proptest! {
        /// A snapshot's delta since any earlier snapshot a delta may still build on
        /// (upserts of the entries written since, deletes of the user keys lost since),
        /// applied to that snapshot's rows, gives its rows exactly; no identity twice, and
        /// no upsert of an entry not written since. Removals before the first snapshot are
        /// not logged (it is written whole).
        #[test]
        fn a_delta_applied_to_an_earlier_snapshot_gives_the_next(
            ops in proptest::collection::vec(op(), 1..300),
        ) {
            let mut table = MapTable::<i64, i64, u64>::new("m", HashRange::FULL);
            let at = |id, needed_from| SnapshotAt { id, needed_from, track_removals: true };
            // The rows of each snapshot a delta may build on, by id; the oldest such.
            let mut history: BTreeMap<u64, Rows> = BTreeMap::new();
            let mut needed_from = 0;
            let mut next_id = 0;
            // Each entry's last write: the id of the snapshot before it (0 before any).
            let mut written: BTreeMap<(i64, i64), u64> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, u, v) => {
                        table.insert(k, u, v);
                        written.insert((k, u), next_id.max(1) - 1);
                    }
                    Op::Remove(k, u) => table.remove(&k, &u),
                    Op::Clear(k) => table.clear(&k),
                    Op::Snapshot(committed, pick) => {
                        let id = next_id;
                        next_id += 1;
                        let snapshot = table.snapshot(at(id, needed_from));
                        let expected = whole(snapshot.as_ref());
                        let bases: Vec<u64> = history.keys().copied().collect();
                        if !bases.is_empty() {
                            let since = bases[pick % bases.len()];
                            let mut rebuilt = history[&since].clone();
                            let (h, d) = snapshot.to_delta(HashRange::FULL, since).unwrap();
                            let mut ids = std::collections::HashSet::new();
                            for (id, v, gone) in rows(&h, &d) {
                                prop_assert!(ids.insert(id), "{:?} twice in a delta", id);
                                prop_assert!(
                                    gone || written[&id] >= since,
                                    "{:?} upserted, last written before {}", id, since
                                );
                                if gone {
                                    rebuilt.remove(&id);
                                } else {
                                    rebuilt.insert(id, v);
                                }
                            }
                            prop_assert_eq!(&rebuilt, &expected, "delta since {}", since);
                        }
                        history.insert(id, expected);
                        if committed {
                            needed_from = id;
                            history.retain(|&i, _| i >= id);
                        }
                    }
                }
            }
        }
    }
}
