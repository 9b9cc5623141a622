//! The map behind keyed value, list and map state: a hash table split into buckets by key
//! hash. A bucket only this map holds is written in place; a snapshot shares every bucket
//! behind an `Arc`.
//!
//! - Snapshotting the map (the synchronous part of a checkpoint) shares the buckets: a
//!   fixed cost, whatever the state's size.
//! - The first write to a shared bucket takes it back, copying it only if a snapshot still
//!   holds it, so the snapshot keeps its contents while processing goes on. Writes to an
//!   owned bucket need no atomic instruction (a reference-count check on every write, as
//!   `Arc::make_mut` does, was a locked instruction that stalled the overlapped lookups of
//!   a batch: two thirds of an insert's time).
//! - Buckets cut the subtask's hash range into consecutive slices, so walking them in order
//!   and sorting each small bucket yields the rows in key-hash order, the order shards need.
//!
//! Each entry keeps its key hash: snapshots and rehashing never hash a key again.
//!
//! For incremental checkpoints, each entry also keeps the checkpoint epoch of its last
//! write (the id of the last barrier before it), each bucket the latest epoch written to
//! it, and removals leave a record of the key: so a snapshot can tell which rows changed
//! and which keys went since any earlier barrier, without comparing snapshots.

use std::marker::PhantomData;
use std::sync::Arc;

use hashbrown::HashTable;
use rewind_savepoint::format::HashRange;

use super::row_key::RowKey;
use crate::key::Key;

mod walk;
pub(crate) use walk::Walk;

/// log2 of the number of buckets. A snapshot bumps every bucket's reference count (each a
/// likely cache miss while a checkpoint streams through memory), so fewer buckets mean a
/// shorter pause: 0.1-0.3 ms with 4096 at 10M keys (0.01-0.05 ms with 1024). But a bucket
/// is what the first write to it after a snapshot copies, about 250 entries per million
/// keys of a subtask: at 1024 buckets a 5M-key subtask's buckets passed glibc's mmap
/// threshold (128 KiB), so every copy faulted in fresh zeroed pages (6% of the keyed
/// count's CPU with a checkpoint every second); at 4096 they come from the heap.
const BUCKET_BITS: u32 = 12;

/// In declaration order (`repr(C)`): `hash` first and `stamp` last, so reading both
/// brings the whole entry into the cache ([`Entry::touch`]).
#[derive(Clone)]
#[repr(C)]
struct Entry<R, V> {
    hash: u64,
    key: R,
    value: V,
    /// The epoch of the entry's last write.
    stamp: u64,
}

impl<R, V> Entry<R, V> {
    /// Loads both ends of the entry. An entry larger than 32 bytes may straddle two cache
    /// lines: a probe compares the key in one, and the write that follows missed on the
    /// value in the other (half of a window count's processing, with 48-byte entries).
    fn touch(&self) {
        std::hint::black_box(self.hash ^ self.stamp);
    }
}

/// Keys removed in one epoch range: (epoch, key hash, key).
type Removals<R> = Vec<(u64, u64, R)>;

/// One bucket of entries.
type Table<R, V> = HashTable<Entry<R, V>>;

/// A bucket: this map's own table, or (from a snapshot until the bucket's first write)
/// a table shared with snapshots.
struct Slot<R, V> {
    owned: Table<R, V>,
    shared: Option<Arc<Table<R, V>>>,
}

impl<R: Clone, V: Clone> Slot<R, V> {
    fn new() -> Self {
        Slot {
            owned: Table::new(),
            shared: None,
        }
    }

    fn table(&self) -> &Table<R, V> {
        self.shared.as_deref().unwrap_or(&self.owned)
    }

    /// The bucket for writing: a shared one is taken back (copied if a snapshot still
    /// holds it).
    fn table_mut(&mut self) -> &mut Table<R, V> {
        if let Some(shared) = self.shared.take() {
            self.owned = Arc::try_unwrap(shared).unwrap_or_else(|t| (*t).clone());
        }
        &mut self.owned
    }

    /// A handle on the bucket for a snapshot: the bucket is shared from now on.
    fn share(&mut self) -> Slot<R, V> {
        if self.shared.is_none() && !self.owned.is_empty() {
            self.shared = Some(Arc::new(std::mem::take(&mut self.owned)));
        }
        Slot {
            owned: Table::new(),
            shared: self.shared.clone(),
        }
    }
}

pub(crate) struct CowMap<K: Key, R: RowKey<K>, V: Clone> {
    /// Empty until the first write (a job has a map per state per subtask, and 4096 slots
    /// are 160 KiB); empty tables allocate nothing until a bucket gets its first entry, so
    /// a small state stays small.
    buckets: Vec<Slot<R, V>>,
    /// The subtask's range: a key hash `h` goes to the bucket of `(h - start) << shift`.
    start: u64,
    shift: u32,
    len: usize,
    /// The epoch writes are stamped with: the id of the last barrier passed.
    epoch: u64,
    /// Per bucket, the latest epoch written to it (so unchanged buckets are skipped);
    /// allocated with `buckets`.
    bucket_epochs: Vec<u64>,
    /// Removals since the last snapshot, and those of earlier epochs still needed, in
    /// chunks shared with the snapshots.
    removed: Removals<R>,
    removed_before: Vec<Arc<Removals<R>>>,
    /// Whether removals are recorded (see [`CowMap::snapshot_at`]).
    track_removals: bool,
    _k: PhantomData<fn() -> K>,
}

/// The hash the bucket's table probes with. The bucket is chosen by the key hash's top
/// bits (more of them at higher parallelism), so the table takes its slot from the low
/// bits up and its 7-bit tag from the lowest; rows of one key in several namespaces
/// (windows) get different table hashes.
fn table_hash(hash: u64, namespace: Option<i64>) -> u64 {
    let h = hash.rotate_right(7);
    match namespace {
        None => h,
        Some(ns) => {
            let m = u128::from(ns as u64) * 0x9E37_79B9_7F4A_7C15;
            h ^ (m as u64) ^ ((m >> 64) as u64)
        }
    }
}

/// [`CowMap::offset`] of a map whose range starts at `start`, scaled by `shift`.
fn offset_in(start: u64, shift: u32, hash: u64) -> u64 {
    hash.wrapping_sub(start).checked_shl(shift).unwrap_or(0)
}

fn rehash<R: RowKey<K>, K: Key, V>(e: &Entry<R, V>) -> u64 {
    table_hash(e.hash, e.key.namespace())
}

impl<K: Key, R: RowKey<K>, V: Clone> CowMap<K, R, V> {
    /// An empty map for the keys of `range` (the subtask's hash range).
    pub(crate) fn new(range: HashRange) -> Self {
        CowMap {
            buckets: Vec::new(),
            start: range.start(),
            shift: (range.end() - range.start()).leading_zeros(),
            len: 0,
            epoch: 0,
            bucket_epochs: Vec::new(),
            removed: Vec::new(),
            removed_before: Vec::new(),
            track_removals: false,
            _k: PhantomData,
        }
    }

    /// The map as it stands at barrier `epoch` (the synchronous part of a checkpoint):
    /// later writes are stamped `epoch`. Removals before `needed_from` are forgotten: no
    /// checkpoint will be written as changes since an earlier barrier. Removals are
    /// recorded from here on only when `track_removals` (later checkpoints may be written
    /// as changes); a map never snapshotted records none.
    pub(crate) fn snapshot_at(
        &mut self,
        epoch: u64,
        needed_from: u64,
        track_removals: bool,
    ) -> Self {
        self.track_removals = track_removals;
        if !track_removals {
            self.removed.clear();
            self.removed_before.clear();
        }
        if !self.removed.is_empty() {
            self.removed_before
                .push(Arc::new(std::mem::take(&mut self.removed)));
        }
        self.removed_before
            .retain(|chunk| chunk.iter().any(|(e, _, _)| *e >= needed_from));
        let snapshot = self.share();
        self.epoch = epoch;
        snapshot
    }

    /// A copy of the map that shares its buckets.
    fn share(&mut self) -> Self {
        CowMap {
            buckets: self.buckets.iter_mut().map(Slot::share).collect(),
            start: self.start,
            shift: self.shift,
            len: self.len,
            epoch: self.epoch,
            bucket_epochs: self.bucket_epochs.clone(),
            removed: self.removed.clone(),
            removed_before: self.removed_before.clone(),
            track_removals: self.track_removals,
            _k: PhantomData,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// About how many of the map's entries lie between key hashes `from` and `to` (hashes
    /// are uniform over the map's range).
    pub(crate) fn entries_between(&self, from: u64, to: u64) -> f64 {
        let width = 2f64.powi(64 - self.shift as i32);
        self.len as f64 * (to.saturating_sub(from) as f64 / width).min(1.0)
    }

    fn bucket_of(&self, hash: u64) -> usize {
        (self.offset(hash) >> (64 - BUCKET_BITS)) as usize
    }

    /// The key's hash, its bucket and its table hash.
    fn locate(&self, key: &R) -> (u64, usize, u64) {
        let hash = key.key().key_hash();
        (
            hash,
            self.bucket_of(hash),
            table_hash(hash, key.namespace()),
        )
    }

    /// Allocates the buckets at the first write (checked on every write: the check
    /// inlines, the allocation not).
    #[inline]
    fn allocate(&mut self) {
        if self.buckets.is_empty() {
            self.allocate_buckets();
        }
    }

    #[cold]
    fn allocate_buckets(&mut self) {
        self.buckets = (0..1 << BUCKET_BITS).map(|_| Slot::new()).collect();
        self.bucket_epochs = vec![0; 1 << BUCKET_BITS];
    }

    /// The bucket for writing: copied first if a snapshot still shares it.
    fn bucket_mut(buckets: &mut [Slot<R, V>], bucket: usize) -> &mut Table<R, V> {
        buckets[bucket].table_mut()
    }

    /// The bucket holding `key` for changing it, with the key's table hash; `None` (and
    /// no copy of a shared bucket) when the key is absent.
    fn holding(&mut self, key: &R) -> Option<(&mut HashTable<Entry<R, V>>, u64)> {
        let (_, bucket, th) = self.locate(key);
        self.buckets
            .get(bucket)?
            .table()
            .find(th, |e| e.key == *key)?;
        self.bucket_epochs[bucket] = self.epoch;
        Some((Self::bucket_mut(&mut self.buckets, bucket), th))
    }

    pub(crate) fn get(&self, key: &R) -> Option<&V> {
        let (_, bucket, th) = self.locate(key);
        let table = self.buckets.get(bucket)?.table();
        table.find(th, |e| e.key == *key).map(|e| &e.value)
    }

    /// Looks the keys up, to bring their entries into the cache before they are used:
    /// their hashes first, then the probes, so the probes' cache misses overlap (a probe
    /// after each hash left room for only a few in flight).
    pub(crate) fn warm<'k>(&self, keys: impl Iterator<Item = &'k R>)
    where
        R: 'k,
    {
        const AT_ONCE: usize = 32;
        if self.buckets.is_empty() {
            return;
        }
        let mut located = [(0usize, 0u64, None); AT_ONCE];
        let mut keys = keys.peekable();
        while keys.peek().is_some() {
            let mut n = 0;
            for key in keys.by_ref().take(AT_ONCE) {
                let (_, bucket, th) = self.locate(key);
                located[n] = (bucket, th, Some(key));
                n += 1;
            }
            for &(bucket, th, key) in &located[..n] {
                if let Some(key) = key {
                    let table = self.buckets[bucket].table();
                    if let Some(e) = table.find(th, |e| e.key == *key) {
                        e.touch();
                    }
                }
            }
        }
    }

    /// Writes each item into its key's value with `update(value, item)`, the key's value
    /// made by `make(key)` first when the map lacks it (then `created(key)` is called).
    /// The keys of a group are located first, then probed and written: the group's cache
    /// misses overlap (written one by one after a lookup, a new key's slot and the far end
    /// of an existing entry each missed in turn).
    pub(crate) fn upsert_all<X>(
        &mut self,
        items: impl Iterator<Item = (R, X)>,
        mut make: impl FnMut(&R) -> V,
        mut update: impl FnMut(&mut V, X),
        mut created: impl FnMut(&R),
    ) {
        const AT_ONCE: usize = 32;
        let mut items = items.peekable();
        if items.peek().is_none() {
            // Nothing written: an empty map stays unallocated.
            return;
        }
        self.allocate();
        let mut located: Vec<(u64, usize, u64, R, X)> = Vec::with_capacity(AT_ONCE);
        let stamp = self.epoch;
        while items.peek().is_some() {
            located.extend(items.by_ref().take(AT_ONCE).map(|(key, x)| {
                let (hash, bucket, th) = self.locate(&key);
                (hash, bucket, th, key, x)
            }));
            for (hash, bucket, th, key, x) in located.drain(..) {
                self.bucket_epochs[bucket] = stamp;
                let table = Self::bucket_mut(&mut self.buckets, bucket);
                let entry = match table.entry(th, |e| e.key == key, rehash) {
                    hashbrown::hash_table::Entry::Occupied(e) => e.into_mut(),
                    hashbrown::hash_table::Entry::Vacant(slot) => {
                        created(&key);
                        let value = make(&key);
                        self.len += 1;
                        slot.insert(Entry {
                            hash,
                            key,
                            value,
                            stamp,
                        })
                        .into_mut()
                    }
                };
                entry.stamp = stamp;
                update(&mut entry.value, x);
            }
        }
    }

    /// Room for about `additional` more entries spread evenly over the buckets (key hashes
    /// are uniform), so that a restore sizes each bucket once: growing them step by step
    /// moved every entry again at each step and faulted in the pages of every
    /// intermediate table.
    /// Small states grow as they go (a bucket is sized for at least a few entries).
    pub(crate) fn reserve(&mut self, additional: usize) {
        let per_bucket = additional >> BUCKET_BITS;
        if per_bucket < 16 {
            return;
        }
        self.allocate();
        // Two standard deviations of a bucket's share above the mean: the rare bucket
        // holding more grows once.
        let per_bucket = per_bucket + 2 * per_bucket.isqrt() + 1;
        for b in 0..self.buckets.len() {
            Self::bucket_mut(&mut self.buckets, b).reserve(per_bucket, rehash);
        }
    }

    pub(crate) fn contains_key(&self, key: &R) -> bool {
        self.get(key).is_some()
    }

    /// The key's value for changing it; a shared bucket is copied only when the key is in it.
    pub(crate) fn get_mut(&mut self, key: &R) -> Option<&mut V> {
        let epoch = self.epoch;
        let (table, th) = self.holding(key)?;
        table.find_mut(th, |e| e.key == *key).map(|e| {
            e.stamp = epoch;
            &mut e.value
        })
    }

    /// Sets the key's value, returning the one it replaces.
    pub(crate) fn insert(&mut self, key: R, value: V) -> Option<V> {
        self.allocate();
        let (hash, bucket, th) = self.locate(&key);
        let stamp = self.epoch;
        self.bucket_epochs[bucket] = stamp;
        let table = Self::bucket_mut(&mut self.buckets, bucket);
        match table.find_mut(th, |e| e.key == key) {
            Some(e) => {
                e.stamp = stamp;
                Some(std::mem::replace(&mut e.value, value))
            }
            None => {
                let entry = Entry {
                    hash,
                    key,
                    value,
                    stamp,
                };
                table.insert_unique(th, entry, rehash);
                self.len += 1;
                None
            }
        }
    }

    /// The key's value, inserting `V::default()` first if it has none.
    pub(crate) fn get_or_insert_default(&mut self, key: R) -> &mut V
    where
        V: Default,
    {
        self.get_or_insert_with(key, V::default)
    }

    /// The key's value, inserting `make()` first if it has none.
    pub(crate) fn get_or_insert_with(&mut self, key: R, make: impl FnOnce() -> V) -> &mut V {
        self.entry_with(key, make).0
    }

    /// The key's value, inserting `make()` first if it has none, and whether it did.
    pub(crate) fn entry_with(&mut self, key: R, make: impl FnOnce() -> V) -> (&mut V, bool) {
        self.allocate();
        let (hash, bucket, th) = self.locate(&key);
        let stamp = self.epoch;
        self.bucket_epochs[bucket] = stamp;
        let table = Self::bucket_mut(&mut self.buckets, bucket);
        let entry = table.entry(th, |e| e.key == key, rehash);
        let inserted = matches!(entry, hashbrown::hash_table::Entry::Vacant(_));
        if inserted {
            self.len += 1;
        }
        let entry = entry
            .or_insert_with(|| Entry {
                hash,
                key,
                value: make(),
                stamp,
            })
            .into_mut();
        entry.stamp = stamp;
        (&mut entry.value, inserted)
    }

    /// Every key, in no particular order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &R> {
        self.buckets
            .iter()
            .map(Slot::table)
            .flat_map(|t| t.iter().map(|e| &e.key))
    }

    /// Removes the key, returning its value; a shared bucket is copied only when the key
    /// is in it.
    pub(crate) fn remove(&mut self, key: &R) -> Option<V> {
        let (table, th) = self.holding(key)?;
        let (entry, _) = table.find_entry(th, |e| e.key == *key).ok()?.remove();
        self.len -= 1;
        if self.track_removals {
            self.removed.push((self.epoch, entry.hash, entry.key));
        }
        Some(entry.value)
    }

    /// Removes every entry `pick` chooses and calls `f` with each (key hash, key, value)
    /// in key-hash order (then key, then namespace). A scan of the map in memory order, so
    /// meant for taking a large share of it at once: looking each key up missed the cache
    /// on nearly every one, whatever their order. A shared bucket is copied only when it
    /// holds an entry to take. Starts at bucket `from` and stops after the bucket where
    /// `limit` entries were taken, returning the bucket to go on from (`None`: all done).
    pub(crate) fn extract_sorted(
        &mut self,
        from: usize,
        limit: usize,
        mut pick: impl FnMut(&R) -> bool,
        mut f: impl FnMut(u64, R, V),
    ) -> Option<usize> {
        let mut taken: Vec<(u64, Entry<R, V>)> = Vec::new();
        let mut count = 0;
        for b in from..self.buckets.len() {
            if count >= limit {
                return Some(b);
            }
            if !self.buckets[b].table().iter().any(|e| pick(&e.key)) {
                continue;
            }
            let (start, shift) = (self.start, self.shift);
            let table = Self::bucket_mut(&mut self.buckets, b);
            taken.extend(
                table
                    .extract_if(|e| pick(&e.key))
                    .map(|e| (offset_in(start, shift, e.hash), e)),
            );
            self.bucket_epochs[b] = self.epoch;
            self.len -= taken.len();
            count += taken.len();
            taken.sort_unstable_by(|(a, x), (b, y)| {
                a.cmp(b)
                    .then_with(|| x.key.key().cmp(y.key.key()))
                    .then_with(|| x.key.namespace().cmp(&y.key.namespace()))
            });
            for (_, e) in taken.drain(..) {
                if self.track_removals {
                    self.removed.push((self.epoch, e.hash, e.key.clone()));
                }
                f(e.hash, e.key, e.value);
            }
        }
        None
    }

    /// Where a hash lies in the map's range, scaled so the top bits name its bucket.
    fn offset(&self, hash: u64) -> u64 {
        offset_in(self.start, self.shift, hash)
    }

    /// Every entry with its key hash, in key-hash order, in one part.
    #[cfg(test)]
    pub(crate) fn sorted(&self) -> Vec<(u64, &R, &V)> {
        let mut rows = Vec::with_capacity(self.len);
        self.walk().next_part(usize::MAX, |h, r, v| {
            rows.extend(v.map(|v| (h, r, v)));
            1
        });
        rows
    }

    /// The changes since barrier `since` (see [`CowMap::walk_changes_since`]), walked a
    /// row at a time (so every bucket a part); checked to equal one part's.
    #[cfg(test)]
    pub(crate) fn changes_since(&self, since: u64) -> Vec<(u64, &R, Option<&V>)>
    where
        V: PartialEq,
    {
        let mut out = Vec::new();
        let mut walk = self.walk_changes_since(since);
        while walk.next_part(1, |h, r, v| {
            out.push((h, r, v));
            1
        }) {}
        let mut whole = Vec::new();
        self.walk_changes_since(since)
            .next_part(usize::MAX, |h, r, v| {
                whole.push((h, r, v));
                1
            });
        assert!(out == whole, "a walk in parts differs from one in one part");
        out
    }
}

#[cfg(test)]
mod tests;
