//! Putting rows into key-hash order, the order every keyed shard stores.
//!
//! Key hashes are uniform, so one counting pass on the top bits deals the rows into
//! buckets of a few rows each, and only those small buckets need comparing: about two
//! passes over the rows instead of a comparison sort's `log n`.

/// Sorts `items` by `hash`, stably: items of equal hash keep their order (several rows of
/// one key, as list and map state have).
pub fn sort_by_hash<T: Copy>(items: &mut Vec<T>, hash: impl Fn(&T) -> u64) {
    let n = items.len();
    if n < 1024 {
        items.sort_by_key(|t| hash(t));
        return;
    }
    // About four rows a bucket; at most 2^20 buckets (4 MiB of counts).
    let bits = (usize::BITS - n.leading_zeros()).saturating_sub(2).clamp(8, 20);
    let bucket = |t: &T| (hash(t) >> (64 - bits)) as usize;
    let mut starts = vec![0usize; (1 << bits) + 1];
    for t in items.iter() {
        starts[bucket(t) + 1] += 1;
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    let mut next = starts.clone();
    // Every slot is overwritten by the scatter; the copy only makes it initialized.
    let mut sorted = items.clone();
    for t in items.iter() {
        let b = bucket(t);
        sorted[next[b]] = *t;
        next[b] += 1;
    }
    for w in starts.windows(2) {
        let slice = &mut sorted[w[0]..w[1]];
        if slice.len() > 1 {
            // Stable; insertion sort for the few rows of a bucket.
            slice.sort_by_key(|t| hash(t));
        }
    }
    *items = sorted;
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The same order as the standard library's stable sort, for uniform hashes and
        /// for hashes crowded into few buckets (every row of a key, or skewed bits).
        #[test]
        fn equals_a_stable_sort(
            raw in proptest::collection::vec(any::<u64>(), 0..5000),
            crowd in 0u32..3,
        ) {
            let items: Vec<(u64, usize)> = raw
                .iter()
                .enumerate()
                .map(|(i, &h)| match crowd {
                    0 => (h, i),
                    1 => (h % 7, i),
                    _ => (h | 0xFFFF_0000_0000_0000, i),
                })
                .collect();
            let mut ours = items.clone();
            sort_by_hash(&mut ours, |t| t.0);
            let mut expected = items;
            expected.sort_by_key(|t| t.0);
            prop_assert_eq!(ours, expected);
        }
    }
}
