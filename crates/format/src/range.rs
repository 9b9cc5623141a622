//! Hash ranges: which part of the 64-bit key-hash space a shard or a subtask owns.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An inclusive range `start..=end` of key hashes. Never empty.
///
/// In JSON it is written as two 16-digit lowercase hex strings, because JSON numbers
/// above 2^53 do not survive most JSON parsers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HashRange {
    start: u64,
    end: u64,
}

impl HashRange {
    /// The whole hash space.
    pub const FULL: HashRange = HashRange {
        start: 0,
        end: u64::MAX,
    };

    /// The range `start..=end`, or `None` when `start > end`.
    pub fn new(start: u64, end: u64) -> Option<HashRange> {
        (start <= end).then_some(HashRange { start, end })
    }

    /// First hash in the range.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Last hash in the range (inclusive).
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Whether `hash` lies in the range.
    pub fn contains(&self, hash: u64) -> bool {
        self.start <= hash && hash <= self.end
    }

    /// Whether the two ranges share at least one hash.
    pub fn intersects(&self, other: &HashRange) -> bool {
        self.start <= other.end && other.start <= self.end
    }

    /// The hashes both ranges hold.
    pub fn intersection(&self, other: &HashRange) -> Option<HashRange> {
        HashRange::new(self.start.max(other.start), self.end.min(other.end))
    }

    /// The range subtask `index` of `parallelism` owns (spec: "Hash ranges").
    ///
    /// Subtask `i` of `p` owns the hashes `h` with `floor(h * p / 2^64) == i`, which is the
    /// range from `ceil(i * 2^64 / p)` to `ceil((i + 1) * 2^64 / p) - 1`.
    /// Returns `None` when `parallelism` is 0 or `index >= parallelism`.
    pub fn for_subtask(index: u32, parallelism: u32) -> Option<HashRange> {
        if parallelism == 0 || index >= parallelism {
            return None;
        }
        let start = range_start(index, parallelism);
        let end = if index + 1 == parallelism {
            u64::MAX
        } else {
            range_start(index + 1, parallelism) - 1
        };
        HashRange::new(start, end)
    }

    /// The ranges of all subtasks of `parallelism`, in subtask order.
    pub fn split(parallelism: u32) -> Vec<HashRange> {
        (0..parallelism)
            .filter_map(|i| HashRange::for_subtask(i, parallelism))
            .collect()
    }
}

/// `ceil(index * 2^64 / parallelism)`, for `index < parallelism`.
fn range_start(index: u32, parallelism: u32) -> u64 {
    let numerator = (index as u128) << 64;
    let p = parallelism as u128;
    // index < parallelism, so the quotient is below 2^64.
    numerator.div_ceil(p) as u64
}

/// The subtask of `parallelism` that owns `hash`: `floor(hash * parallelism / 2^64)`.
///
/// # Panics
/// Never; a `parallelism` of 0 is treated as 1.
pub fn subtask_for_hash(hash: u64, parallelism: u32) -> u32 {
    let p = parallelism.max(1) as u128;
    ((hash as u128 * p) >> 64) as u32
}

impl fmt::Display for HashRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}..={:016x}", self.start, self.end)
    }
}

#[derive(Serialize, Deserialize)]
struct HexRange {
    start: String,
    end: String,
}

impl Serialize for HashRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        HexRange {
            start: format!("{:016x}", self.start),
            end: format!("{:016x}", self.end),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for HashRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let raw = HexRange::deserialize(d)?;
        let parse = |s: &str| {
            if s.len() != 16 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return Err(D::Error::custom(format!(
                    "hash {s:?} is not 16 lowercase hex digits"
                )));
            }
            u64::from_str_radix(s, 16).map_err(D::Error::custom)
        };
        let (start, end) = (parse(&raw.start)?, parse(&raw.end)?);
        HashRange::new(start, end).ok_or_else(|| {
            D::Error::custom(format!("hash range start {} > end {}", raw.start, raw.end))
        })
    }
}

/// How a set of ranges fails to tile the whole hash space exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoverageProblem {
    /// Hashes that no range holds.
    Gap(HashRange),
    /// Hashes that two ranges hold.
    Overlap(HashRange),
}

/// Checks that `ranges` cover `0..=u64::MAX` with no gap and no overlap.
pub fn coverage_problems(ranges: &[HashRange]) -> Vec<CoverageProblem> {
    let mut sorted = ranges.to_vec();
    sorted.sort();
    let mut problems = Vec::new();
    // The next hash not yet covered; None once u64::MAX is covered.
    let mut next: Option<u64> = Some(0);
    let mut covered_to: Option<u64> = None;
    for r in sorted {
        match next {
            Some(n) if r.start > n => {
                problems.push(CoverageProblem::Gap(HashRange {
                    start: n,
                    end: r.start - 1,
                }));
            }
            _ => {}
        }
        if let Some(c) = covered_to {
            if r.start <= c {
                problems.push(CoverageProblem::Overlap(HashRange {
                    start: r.start,
                    end: c.min(r.end),
                }));
            }
        }
        let new_end = covered_to.map_or(r.end, |c| c.max(r.end));
        covered_to = Some(new_end);
        next = new_end.checked_add(1);
    }
    if let Some(n) = next {
        problems.push(CoverageProblem::Gap(HashRange {
            start: n,
            end: u64::MAX,
        }));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_splits() {
        assert_eq!(HashRange::split(1), vec![HashRange::FULL]);
        let two = HashRange::split(2);
        assert_eq!(two[0], HashRange::new(0, 0x7fff_ffff_ffff_ffff).unwrap());
        assert_eq!(
            two[1],
            HashRange::new(0x8000_0000_0000_0000, u64::MAX).unwrap()
        );
        let three = HashRange::split(3);
        assert_eq!(three[0].end(), 0x5555_5555_5555_5555);
        assert_eq!(three[1].start(), 0x5555_5555_5555_5556);
        assert_eq!(three[2].start(), 0xaaaa_aaaa_aaaa_aaab);
        assert!(HashRange::for_subtask(0, 0).is_none());
        assert!(HashRange::for_subtask(3, 3).is_none());
    }

    #[test]
    fn json_is_hex() {
        let r = HashRange::new(1, 0xff).unwrap();
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(
            j,
            r#"{"start":"0000000000000001","end":"00000000000000ff"}"#
        );
        assert_eq!(serde_json::from_str::<HashRange>(&j).unwrap(), r);
        for bad in [
            r#"{"start":"2","end":"1"}"#,
            r#"{"start":"0000000000000002","end":"0000000000000001"}"#,
            r#"{"start":"000000000000000g","end":"0000000000000001"}"#,
            r#"{"start":"000000000000000A","end":"00000000000000ff"}"#,
        ] {
            assert!(serde_json::from_str::<HashRange>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn coverage() {
        assert!(coverage_problems(&HashRange::split(7)).is_empty());
        assert_eq!(
            coverage_problems(&[]),
            vec![CoverageProblem::Gap(HashRange::FULL)]
        );
        let a = HashRange::new(0, 10).unwrap();
        let b = HashRange::new(5, u64::MAX).unwrap();
        assert_eq!(
            coverage_problems(&[a, b]),
            vec![CoverageProblem::Overlap(HashRange::new(5, 10).unwrap())]
        );
        let c = HashRange::new(12, u64::MAX).unwrap();
        assert_eq!(
            coverage_problems(&[a, c]),
            vec![CoverageProblem::Gap(HashRange::new(11, 11).unwrap())]
        );
    }

    proptest! {
        #[test]
        fn owner_agrees_with_ranges(hash in any::<u64>(), p in 1u32..10_000) {
            let i = subtask_for_hash(hash, p);
            prop_assert!(i < p);
            prop_assert!(HashRange::for_subtask(i, p).unwrap().contains(hash));
        }

        #[test]
        fn splits_tile_the_space(p in 1u32..5_000) {
            prop_assert!(coverage_problems(&HashRange::split(p)).is_empty());
        }
    }
}
