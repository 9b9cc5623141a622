//! Putting rows into key-hash order, the order every keyed shard stores.
//!
//! A most-significant-digit radix sort, a byte at a time: each pass streams the rows into
//! 256 buckets (few enough to stay in cache), and buckets of a few rows end with a
//! comparison sort. Key hashes are uniform, so a few passes sort millions of rows, where a
//! comparison sort needs `log n` passes of cache misses.

/// Buckets this small end with the standard library's stable sort.
const SMALL: usize = 48;

/// Sorts `items` by `hash`, stably: items of equal hash keep their order (several rows of
/// one key, as list and map state have).
pub fn sort_by_hash<T: Copy>(items: &mut [T], hash: impl Fn(&T) -> u64) {
    if items.len() <= SMALL {
        items.sort_by_key(|t| hash(t));
        return;
    }
    let mut scratch = items.to_vec();
    radix(items, &mut scratch, 56, &hash);
}

/// Sorts `items` by the hash bits from `shift + 8` down; `scratch` is as long as `items`.
fn radix<T: Copy>(items: &mut [T], scratch: &mut [T], shift: u32, hash: &impl Fn(&T) -> u64) {
    let digit = |t: &T| ((hash(t) >> shift) & 0xFF) as usize;
    let mut starts = [0usize; 257];
    for t in items.iter() {
        starts[digit(t) + 1] += 1;
    }
    for d in 1..starts.len() {
        starts[d] += starts[d - 1];
    }
    let mut next = starts;
    for t in items.iter() {
        let d = digit(t);
        scratch[next[d]] = *t;
        next[d] += 1;
    }
    items.copy_from_slice(scratch);
    for w in starts.windows(2) {
        let bucket = &mut items[w[0]..w[1]];
        if bucket.len() <= SMALL || shift == 0 {
            bucket.sort_by_key(|t| hash(t));
        } else {
            radix(bucket, &mut scratch[w[0]..w[1]], shift - 8, hash);
        }
    }
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
            raw in proptest::collection::vec(any::<u64>(), 0..3000),
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
