//! How operator list state is dealt out when it is restored, possibly at another
//! parallelism (spec: "Operator list state"). A rule of the format: the engine's restore,
//! the reader and offline rescale all use this one.

use crate::Redistribution;

/// Which elements `(offset, count)` of all of a list state's elements, concatenated in
/// ascending old-subtask order, new subtask `subtask` of `parallelism` gets: `split` deals
/// contiguous runs whose sizes differ by at most one (the first `total % parallelism`
/// subtasks get one more); `union` gives all; `broadcast` gives all of what it is given
/// (readers pass only old subtask 0's list).
pub fn deal(total: usize, mode: Redistribution, subtask: u32, parallelism: u32) -> (usize, usize) {
    match mode {
        Redistribution::Split => {
            let (p, t) = (parallelism.max(1) as usize, subtask as usize);
            let (base, extra) = (total / p, total % p);
            (t * base + t.min(extra), base + usize::from(t < extra))
        }
        Redistribution::Union | Redistribution::Broadcast => (0, total),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_deals_contiguous_runs_that_differ_by_at_most_one() {
        for total in 0..20usize {
            for p in 1..7u32 {
                let runs: Vec<(usize, usize)> = (0..p)
                    .map(|t| deal(total, Redistribution::Split, t, p))
                    .collect();
                let mut next = 0;
                for &(offset, len) in &runs {
                    assert_eq!(offset, next, "total {total}, p {p}: {runs:?}");
                    next += len;
                }
                assert_eq!(next, total);
                let (min, max) = (
                    runs.iter().map(|r| r.1).min().unwrap(),
                    runs.iter().map(|r| r.1).max().unwrap(),
                );
                assert!(max - min <= 1, "{runs:?}");
            }
        }
        assert_eq!(deal(7, Redistribution::Split, 0, 3), (0, 3));
        assert_eq!(deal(7, Redistribution::Split, 2, 3), (5, 2));
    }

    #[test]
    fn union_and_broadcast_give_everything() {
        for mode in [Redistribution::Union, Redistribution::Broadcast] {
            assert_eq!(deal(5, mode, 3, 4), (0, 5));
        }
    }
}
