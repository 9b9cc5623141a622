//! Flink's placement of keys and operators, computed without a JVM: a key's Java
//! `hashCode`, its key group (`KeyGroupRangeAssignment`), the key-group range of each
//! subtask, and an operator's id from its uid (Guava's murmur3_128 of the UTF-8 uid).

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type};
use arrow_array::{Array, StructArray};
use arrow_schema::DataType;

use crate::snapshots::Ty;

/// The largest max parallelism Flink allows (key groups are 2-byte prefixes).
pub(crate) const MAX_MAX_PARALLELISM: i32 = 32768;

/// Flink's `MathUtils.murmurHash(int)`: non-negative.
pub(crate) fn murmur_int(code: i32) -> i32 {
    let mut h = code.wrapping_mul(0xcc9e_2d51_u32 as i32);
    h = h.rotate_left(15);
    h = h.wrapping_mul(0x1b87_3593);
    h = h.rotate_left(13);
    h = h.wrapping_mul(5).wrapping_add(0xe654_6b64_u32 as i32);
    h ^= 4;
    h ^= ((h as u32) >> 16) as i32;
    h = h.wrapping_mul(0x85eb_ca6b_u32 as i32);
    h ^= ((h as u32) >> 13) as i32;
    h = h.wrapping_mul(0xc2b2_ae35_u32 as i32);
    h ^= ((h as u32) >> 16) as i32;
    if h >= 0 {
        h
    } else if h != i32::MIN {
        -h
    } else {
        0
    }
}

/// The key group of a key with Java hash code `hash` under `max_parallelism` key groups.
pub(crate) fn key_group(hash: i32, max_parallelism: i32) -> i32 {
    murmur_int(hash) % max_parallelism
}

/// The key groups subtask `index` of `parallelism` owns (inclusive).
pub(crate) fn key_group_range(max_parallelism: i32, parallelism: i32, index: i32) -> (i32, i32) {
    let (m, p, i) = (
        i64::from(max_parallelism),
        i64::from(parallelism),
        i64::from(index),
    );
    let start = (i * m + p - 1) / p;
    let end = ((i + 1) * m - 1) / p;
    (start as i32, end as i32)
}

/// The subtask of `parallelism` that owns key group `group`.
pub(crate) fn subtask_of(max_parallelism: i32, parallelism: i32, group: i32) -> i32 {
    ((i64::from(group) * i64::from(parallelism)) / i64::from(max_parallelism)) as i32
}

/// Bytes of the key-group prefix of every key (Flink: 1 up to 128 key groups, else 2).
pub(crate) fn prefix_len(max_parallelism: i32) -> usize {
    if max_parallelism > 128 { 2 } else { 1 }
}

/// Whether Rewind computes Java's `hashCode` for keys of `ty`; `Err` names the type.
pub(crate) fn check_hashable(ty: &Ty) -> Result<(), String> {
    match ty {
        Ty::Bool
        | Ty::I8
        | Ty::I16
        | Ty::I32
        | Ty::I64
        | Ty::F32
        | Ty::F64
        | Ty::Char
        | Ty::Str => Ok(()),
        Ty::Tuple(fs) => fs.iter().try_for_each(check_hashable),
        Ty::Pojo(_) => Err("POJOs (their hashCode is the job's own code)".into()),
        other => Err(format!(
            "of Flink type {} (no Java hashCode known)",
            other.describe()
        )),
    }
}

/// Java's `hashCode` of the key at `row` of `array`, a column of `ty`.
pub(crate) fn java_hash(ty: &Ty, array: &dyn Array, row: usize) -> Result<i32, String> {
    if array.is_null(row) {
        return Ok(0);
    }
    Ok(match (ty, array.data_type()) {
        (Ty::I64, DataType::Int64) => {
            let v = array.as_primitive::<Int64Type>().value(row);
            (v ^ ((v as u64) >> 32) as i64) as i32
        }
        (Ty::I32, DataType::Int32) => array.as_primitive::<Int32Type>().value(row),
        (Ty::I16, DataType::Int16) => i32::from(array.as_primitive::<Int16Type>().value(row)),
        (Ty::I8, DataType::Int8) => i32::from(array.as_primitive::<Int8Type>().value(row)),
        (Ty::Bool, DataType::Boolean) => {
            if array.as_boolean().value(row) {
                1231
            } else {
                1237
            }
        }
        (Ty::F64, DataType::Float64) => {
            let v = array.as_primitive::<Float64Type>().value(row);
            let bits = if v.is_nan() {
                0x7ff8_0000_0000_0000
            } else {
                v.to_bits()
            };
            (bits ^ (bits >> 32)) as i32
        }
        (Ty::F32, DataType::Float32) => {
            let v = array.as_primitive::<Float32Type>().value(row);
            (if v.is_nan() { 0x7fc0_0000 } else { v.to_bits() }) as i32
        }
        (Ty::Str | Ty::Char, DataType::Utf8) => string_hash(array.as_string::<i32>().value(row)),
        (Ty::Str | Ty::Char, DataType::LargeUtf8) => {
            string_hash(array.as_string::<i64>().value(row))
        }
        (Ty::Tuple(fs), DataType::Struct(_)) => {
            let s: &StructArray = array.as_struct();
            let mut h: i32 = 0;
            for (i, f) in fs.iter().enumerate() {
                let field = java_hash(f, s.column(i).as_ref(), row)?;
                h = if i == 0 {
                    field
                } else {
                    h.wrapping_mul(31).wrapping_add(field)
                };
            }
            h
        }
        (ty, dt) => {
            check_hashable(ty)?;
            return Err(format!("a key column of type {dt} for a Flink {ty:?} key"));
        }
    })
}

/// Java's `String.hashCode`: over UTF-16 code units.
fn string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)))
}

/// The 16-byte operator id Flink derives from a user uid, in the hex form `_metadata`
/// readers print (bytes in order).
pub(crate) fn operator_id(uid: &str) -> String {
    let (h1, h2) = murmur3_x64_128(uid.as_bytes(), 0);
    let mut out = String::with_capacity(32);
    for b in h1.to_le_bytes().iter().chain(h2.to_le_bytes().iter()) {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// MurmurHash3 x64 128 (Austin Appleby's public-domain algorithm, as Guava computes it).
fn murmur3_x64_128(data: &[u8], seed: u64) -> (u64, u64) {
    const C1: u64 = 0x87c3_7b91_1142_53d5;
    const C2: u64 = 0x4cf5_ad43_2745_937f;
    let (mut h1, mut h2) = (seed, seed);
    let mut chunks = data.chunks_exact(16);
    for block in &mut chunks {
        let mut k1 = u64::from_le_bytes(block[..8].try_into().unwrap_or_default());
        let mut k2 = u64::from_le_bytes(block[8..].try_into().unwrap_or_default());
        k1 = k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
        h1 ^= k1;
        h1 = h1
            .rotate_left(27)
            .wrapping_add(h2)
            .wrapping_mul(5)
            .wrapping_add(0x52dc_e729);
        k2 = k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
        h2 ^= k2;
        h2 = h2
            .rotate_left(31)
            .wrapping_add(h1)
            .wrapping_mul(5)
            .wrapping_add(0x3849_5ab5);
    }
    let tail = chunks.remainder();
    let (mut k1, mut k2) = (0u64, 0u64);
    for (i, &b) in tail.iter().enumerate() {
        if i < 8 {
            k1 |= u64::from(b) << (8 * i);
        } else {
            k2 |= u64::from(b) << (8 * (i - 8));
        }
    }
    if tail.len() > 8 {
        h2 ^= k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
    }
    if !tail.is_empty() {
        h1 ^= k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
    }
    let len = data.len() as u64;
    h1 ^= len;
    h2 ^= len;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix64(h1);
    h2 = fmix64(h2);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    (h1, h2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_ids_are_flinks() {
        // From the real samples' _metadata (uid -> id Flink wrote).
        assert_eq!(operator_id("counter"), "0da08f51eaa85fc298e176a139b3649a");
        for (uid, id) in [
            ("seq-source", "7a0e22450c7ff084b745556dd9e4a928"),
            ("idle-source", "96fc3ac5ed181ff0710004bf074af7eb"),
            ("profile", "3a6ebe42074adc76cfc3539a4ad436a8"),
            ("sessions-out", "f2e182ea1dd7b53e4cf3111dd543afb0"),
        ] {
            assert_eq!(operator_id(uid), id, "{uid}");
        }
    }

    #[test]
    fn key_groups_are_flinks() {
        // rich-state-A's README: Integer keys of `sessions` and their key groups at 128.
        for (key, group) in [(340, 118), (341, 47), (342, 76), (343, 40), (344, 31)] {
            assert_eq!(key_group(key, 128), group, "{key}");
        }
        for (key, group) in [
            ("user-0", 8),
            ("user-1", 121),
            ("user-344", 15),
            ("user-999", 50),
        ] {
            assert_eq!(key_group(string_hash(key), 128), group, "{key}");
        }
    }

    #[test]
    fn key_group_ranges_cover_every_group_once() {
        for (m, p) in [(128, 2), (128, 3), (4096, 5), (32, 3), (7, 7)] {
            let mut next = 0;
            for i in 0..p {
                let (s, e) = key_group_range(m, p, i);
                assert_eq!(s, next);
                for g in s..=e {
                    assert_eq!(subtask_of(m, p, g), i);
                }
                next = e + 1;
            }
            assert_eq!(next, m);
        }
    }

    #[test]
    fn java_hash_codes() {
        // Values Java prints for "hello".hashCode(), Long.hashCode(1L << 32 | 7),
        // Double.hashCode(1.5) and Boolean.hashCode(true).
        assert_eq!(string_hash("hello"), 99_162_322);
        assert_eq!(string_hash(""), 0);
        assert_eq!(string_hash("Aa"), string_hash("BB"));
        let long = arrow_array::Int64Array::from(vec![(1i64 << 32) | 7]);
        assert_eq!(java_hash(&Ty::I64, &long, 0).unwrap(), 6);
        let double = arrow_array::Float64Array::from(vec![1.5]);
        assert_eq!(java_hash(&Ty::F64, &double, 0).unwrap(), 1_073_217_536);
        let b = arrow_array::BooleanArray::from(vec![true]);
        assert_eq!(java_hash(&Ty::Bool, &b, 0).unwrap(), 1231);
    }
}
