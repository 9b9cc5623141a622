//! Walking a map's rows in key-hash order a part at a time, for writing a snapshot: every
//! entry (a whole shard), or the changes since a barrier (a delta layer). A part is a run
//! of whole buckets, so a writer converts and encodes the state a few thousand rows at a
//! time while they are in cache, and never holds the whole state as Arrow arrays (at 10M
//! keys that doubled a checkpoint's memory, and freeing and faulting in the arrays' pages
//! was a third of the writer's time).

use super::{BUCKET_BITS, CowMap, Entry, Slot};
use crate::key::Key;
use crate::keyed::row_key::RowKey;

/// Puts one bucket's entries in offset order (so in key-hash order), reusing its buffers
/// from bucket to bucket: a counting sort on the next bits of the offset, then a sort of
/// each (tiny) run. About one digit per entry: the counts cost as much as the entries (a
/// subtask of 500k keys holds ~120 a bucket; 1024 digits doubled the time).
struct BucketSorter<'a, R, V> {
    entries: Vec<(u64, &'a Entry<R, V>)>,
    sorted: Vec<(u64, &'a Entry<R, V>)>,
    starts: Vec<usize>,
    next: Vec<usize>,
}

impl<R, V> Default for BucketSorter<'_, R, V> {
    fn default() -> Self {
        BucketSorter {
            entries: Vec::new(),
            sorted: Vec::new(),
            starts: Vec::new(),
            next: Vec::new(),
        }
    }
}

impl<'a, R, V> BucketSorter<'a, R, V> {
    const MAX_DIGIT_BITS: u32 = 10;

    /// `rows` (offset, entry) of one bucket, sorted by offset.
    fn sort(
        &mut self,
        rows: impl Iterator<Item = (u64, &'a Entry<R, V>)>,
    ) -> &[(u64, &'a Entry<R, V>)] {
        self.entries.clear();
        self.entries.extend(rows);
        self.sorted.clear();
        let Some(&first) = self.entries.first() else {
            return &self.sorted;
        };
        let bits =
            (usize::BITS - self.entries.len().leading_zeros()).clamp(1, Self::MAX_DIGIT_BITS);
        let digit_shift = 64 - BUCKET_BITS - bits;
        let digit = |offset: u64| ((offset >> digit_shift) & ((1 << bits) - 1)) as usize;
        self.starts.clear();
        self.starts.resize((1 << bits) + 1, 0usize);
        for (offset, _) in &self.entries {
            self.starts[digit(*offset) + 1] += 1;
        }
        for d in 1..self.starts.len() {
            self.starts[d] += self.starts[d - 1];
        }
        self.sorted.resize(self.entries.len(), first);
        self.next.clear();
        self.next.extend_from_slice(&self.starts);
        for item in &self.entries {
            let d = digit(item.0);
            self.sorted[self.next[d]] = *item;
            self.next[d] += 1;
        }
        for run in self.starts.windows(2) {
            // For hashes in the range, offsets order exactly as hashes do.
            self.sorted[run[0]..run[1]].sort_unstable_by_key(|(offset, _)| *offset);
        }
        &self.sorted
    }
}

/// A walk over a map's rows in key-hash order (when every hash lies in the map's range),
/// a part at a time: see [`CowMap::walk`] and [`CowMap::walk_changes_since`].
pub(crate) struct Walk<'a, K: Key, R: RowKey<K>, V: Clone> {
    map: &'a CowMap<K, R, V>,
    /// `None`: every entry; else the barrier whose changes are walked.
    since: Option<u64>,
    /// The keys removed since then and absent now (key hash, key), by offset, each once.
    gone: std::iter::Peekable<std::vec::IntoIter<(u64, &'a R)>>,
    /// The next bucket to walk.
    bucket: usize,
    sorter: BucketSorter<'a, R, V>,
}

impl<K: Key, R: RowKey<K>, V: Clone> CowMap<K, R, V> {
    /// Every entry: rows (key hash, key, `Some(value)`).
    pub(crate) fn walk(&self) -> Walk<'_, K, R, V> {
        Walk {
            map: self,
            since: None,
            gone: Vec::new().into_iter().peekable(),
            bucket: 0,
            sorter: BucketSorter::default(),
        }
    }

    /// What changed since barrier `since` (the epochs from `since` on): each key written
    /// since then with `Some(value)`, and each key removed since then and absent now with
    /// `None`.
    pub(crate) fn walk_changes_since(&self, since: u64) -> Walk<'_, K, R, V> {
        let mut gone: Vec<(u64, &R)> = self
            .removed_before
            .iter()
            .flat_map(|chunk| chunk.iter())
            .chain(&self.removed)
            .filter(|(e, _, key)| *e >= since && !self.contains_key(key))
            .map(|(_, hash, key)| (*hash, key))
            .collect();
        // A key removed twice (with a write between) is one delete.
        let mut seen = std::collections::HashSet::new();
        gone.retain(|(_, key)| seen.insert(*key));
        gone.sort_unstable_by_key(|(h, _)| self.offset(*h));
        Walk {
            map: self,
            since: Some(since),
            gone: gone.into_iter().peekable(),
            bucket: 0,
            sorter: BucketSorter::default(),
        }
    }
}

impl<'a, K: Key, R: RowKey<K>, V: Clone> Walk<'a, K, R, V> {
    /// Calls `f` with the rows of the next buckets, in order, until `f` has counted at
    /// least `limit` rows (it returns how many rows each call made: a map state's key
    /// makes one per entry) or the map ends; returns false, calling nothing, once the
    /// walk is done.
    pub(crate) fn next_part(
        &mut self,
        limit: usize,
        mut f: impl FnMut(u64, &'a R, Option<&'a V>) -> usize,
    ) -> bool {
        let map = self.map;
        let buckets = map.buckets.len();
        if self.bucket >= buckets && self.gone.peek().is_none() {
            return false;
        }
        let since = self.since.unwrap_or(0);
        let limit = limit.max(1);
        let mut rows = 0;
        while self.bucket < buckets && rows < limit {
            let b = self.bucket;
            self.bucket += 1;
            // Nothing written to the bucket since then when its epoch is older (removals
            // are in `gone`).
            if map.bucket_epochs[b] >= since {
                let written = Slot::table(&map.buckets[b])
                    .iter()
                    .filter(|e| e.stamp >= since)
                    .map(|e| (map.offset(e.hash), e));
                for &(offset, e) in self.sorter.sort(written) {
                    // Deletes merge in by hash (a key is never both written and gone).
                    while let Some((h, key)) = self.gone.next_if(|(h, _)| map.offset(*h) < offset) {
                        rows += f(h, key, None);
                    }
                    rows += f(e.hash, &e.key, Some(&e.value));
                }
            }
            // The bucket's deletes after its last written row; they count towards the
            // part, so a delta of deletes alone is cut into parts too.
            while let Some((h, key)) = self.gone.next_if(|(h, _)| map.bucket_of(*h) <= b) {
                rows += f(h, key, None);
            }
        }
        if self.bucket >= buckets {
            // Every hash has a bucket, so nothing is left here but when the map has no
            // buckets at all; draining it keeps the walk finite whatever `gone` holds.
            for (h, key) in self.gone.by_ref() {
                f(h, key, None);
            }
        }
        true
    }
}
