//! Key hashing: the 64-bit hash that places every key in the hash space.
//!
//! `key_hash = XXH3_64bits(canonical_encoding(key), seed = 0)`. The canonical encoding
//! (spec/FORMAT.md, "Key hashing") depends only on the key's value and type, so any
//! language with an XXH3 implementation computes the same hash.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Int8Type, Int16Type, Int32Type, Int64Type, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrowPrimitiveType};
use arrow_schema::{DataType, TimeUnit};
use xxhash_rust::xxh3::xxh3_64;

use crate::FormatError;

/// The name of the key-hash algorithm format v1 records in every manifest.
pub const KEY_HASH_ALGORITHM: &str = "xxh3_64";

/// The key hash of one key given as its canonical encoding (see [`encode_key`]): what
/// engines use to route a record without building an Arrow array.
pub fn hash_encoded_key(encoding: &[u8]) -> u64 {
    xxh3_64(encoding)
}

/// The key hash of each row of `keys`.
///
/// Fails for a key type that cannot be hashed (see [`crate::is_key_type`]) and for null keys.
pub fn hash_keys(keys: &dyn Array) -> Result<Vec<u64>, FormatError> {
    if keys.null_count() > 0 {
        let row = (0..keys.len()).find(|&i| keys.is_null(i)).unwrap_or(0);
        return Err(FormatError::UnsupportedType {
            type_name: keys.data_type().to_string(),
            reason: format!("key in row {row} is null; keys cannot be null"),
        });
    }
    let hashes = match keys.data_type() {
        DataType::Int8 => signed::<Int8Type>(keys),
        DataType::Int16 => signed::<Int16Type>(keys),
        DataType::Int32 => signed::<Int32Type>(keys),
        DataType::Int64 => signed::<Int64Type>(keys),
        DataType::Date32 => signed::<Date32Type>(keys),
        DataType::Timestamp(TimeUnit::Second, None) => signed::<TimestampSecondType>(keys),
        DataType::Timestamp(TimeUnit::Millisecond, None) => {
            signed::<TimestampMillisecondType>(keys)
        }
        DataType::Timestamp(TimeUnit::Microsecond, None) => {
            signed::<TimestampMicrosecondType>(keys)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, None) => signed::<TimestampNanosecondType>(keys),
        DataType::UInt8 => unsigned::<UInt8Type>(keys),
        DataType::UInt16 => unsigned::<UInt16Type>(keys),
        DataType::UInt32 => unsigned::<UInt32Type>(keys),
        DataType::UInt64 => unsigned::<UInt64Type>(keys),
        DataType::Boolean => keys
            .as_boolean()
            .values()
            .iter()
            .map(|b| xxh3_64(&[b as u8]))
            .collect(),
        DataType::Utf8 => keys.as_string::<i32>().iter().map(hash_opt_str).collect(),
        DataType::LargeUtf8 => keys.as_string::<i64>().iter().map(hash_opt_str).collect(),
        DataType::Binary => keys.as_binary::<i32>().iter().map(hash_opt_bytes).collect(),
        DataType::LargeBinary => keys.as_binary::<i64>().iter().map(hash_opt_bytes).collect(),
        DataType::Struct(_) => {
            let mut buf = Vec::new();
            let mut out = Vec::with_capacity(keys.len());
            for row in 0..keys.len() {
                buf.clear();
                encode_key(keys, row, &mut buf)?;
                out.push(xxh3_64(&buf));
            }
            out
        }
        other => {
            return Err(FormatError::UnsupportedType {
                type_name: other.to_string(),
                reason: "not a key type (spec: Key hashing)".into(),
            });
        }
    };
    Ok(hashes)
}

fn hash_opt_str(s: Option<&str>) -> u64 {
    xxh3_64(s.unwrap_or_default().as_bytes())
}

fn hash_opt_bytes(b: Option<&[u8]>) -> u64 {
    xxh3_64(b.unwrap_or_default())
}

fn signed<T>(keys: &dyn Array) -> Vec<u64>
where
    T: ArrowPrimitiveType,
    T::Native: Into<i64>,
{
    keys.as_primitive::<T>()
        .values()
        .iter()
        .map(|v| xxh3_64(&(*v).into().to_le_bytes()))
        .collect()
}

fn unsigned<T>(keys: &dyn Array) -> Vec<u64>
where
    T: ArrowPrimitiveType,
    T::Native: Into<u64>,
{
    keys.as_primitive::<T>()
        .values()
        .iter()
        .map(|v| xxh3_64(&(*v).into().to_le_bytes()))
        .collect()
}

/// Appends the canonical encoding of `array[row]` to `out` (spec: "Canonical key encoding").
pub fn encode_key(array: &dyn Array, row: usize, out: &mut Vec<u8>) -> Result<(), FormatError> {
    if array.is_null(row) {
        return Err(FormatError::UnsupportedType {
            type_name: array.data_type().to_string(),
            reason: format!("key in row {row} is null; keys cannot be null"),
        });
    }
    fn prim<T: ArrowPrimitiveType>(a: &dyn Array, row: usize) -> T::Native {
        a.as_primitive::<T>().value(row)
    }
    match array.data_type() {
        DataType::Boolean => out.push(array.as_boolean().value(row) as u8),
        DataType::Int8 => out.extend((prim::<Int8Type>(array, row) as i64).to_le_bytes()),
        DataType::Int16 => out.extend((prim::<Int16Type>(array, row) as i64).to_le_bytes()),
        DataType::Int32 => out.extend((prim::<Int32Type>(array, row) as i64).to_le_bytes()),
        DataType::Int64 => out.extend(prim::<Int64Type>(array, row).to_le_bytes()),
        DataType::Date32 => out.extend((prim::<Date32Type>(array, row) as i64).to_le_bytes()),
        DataType::Timestamp(TimeUnit::Second, None) => {
            out.extend(prim::<TimestampSecondType>(array, row).to_le_bytes())
        }
        DataType::Timestamp(TimeUnit::Millisecond, None) => {
            out.extend(prim::<TimestampMillisecondType>(array, row).to_le_bytes())
        }
        DataType::Timestamp(TimeUnit::Microsecond, None) => {
            out.extend(prim::<TimestampMicrosecondType>(array, row).to_le_bytes())
        }
        DataType::Timestamp(TimeUnit::Nanosecond, None) => {
            out.extend(prim::<TimestampNanosecondType>(array, row).to_le_bytes())
        }
        DataType::UInt8 => out.extend((prim::<UInt8Type>(array, row) as u64).to_le_bytes()),
        DataType::UInt16 => out.extend((prim::<UInt16Type>(array, row) as u64).to_le_bytes()),
        DataType::UInt32 => out.extend((prim::<UInt32Type>(array, row) as u64).to_le_bytes()),
        DataType::UInt64 => out.extend(prim::<UInt64Type>(array, row).to_le_bytes()),
        DataType::Utf8 => out.extend(array.as_string::<i32>().value(row).as_bytes()),
        DataType::LargeUtf8 => out.extend(array.as_string::<i64>().value(row).as_bytes()),
        DataType::Binary => out.extend(array.as_binary::<i32>().value(row)),
        DataType::LargeBinary => out.extend(array.as_binary::<i64>().value(row)),
        DataType::Struct(_) => {
            for column in array.as_struct().columns() {
                let len_at = out.len();
                out.extend([0u8; 4]);
                encode_key(column.as_ref(), row, out)?;
                let len = (out.len() - len_at - 4) as u32;
                out[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
            }
        }
        other => {
            return Err(FormatError::UnsupportedType {
                type_name: other.to_string(),
                reason: "not a key type (spec: Key hashing)".into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{
        ArrayRef, BooleanArray, Int32Array, Int64Array, StringArray, StructArray, UInt64Array,
    };
    use arrow_schema::Field;

    use super::*;

    /// The spec's test vectors (spec/FORMAT.md, "Key hashing"); tests/interop checks them
    /// against Python's independent xxhash package too.
    #[test]
    fn spec_test_vectors() {
        let h = |a: &dyn Array| hash_keys(a).unwrap();
        assert_eq!(h(&Int64Array::from(vec![0])), vec![0xc77b3abb6f87acd9]);
        assert_eq!(h(&Int64Array::from(vec![1])), vec![0x2fbc593564db792e]);
        assert_eq!(h(&Int64Array::from(vec![-1])), vec![0x5111c7e47d784413]);
        assert_eq!(
            h(&StringArray::from(vec!["user-42"])),
            vec![0x50fe4b21cf7b09cd]
        );
        assert_eq!(h(&StringArray::from(vec![""])), vec![0x2d06800538d394c2]);
        assert_eq!(h(&BooleanArray::from(vec![true])), vec![0xe12ef9d2eb86ceeb]);
    }

    #[test]
    fn widths_do_not_matter() {
        let a = hash_keys(&Int32Array::from(vec![-5, 7])).unwrap();
        let b = hash_keys(&Int64Array::from(vec![-5, 7])).unwrap();
        assert_eq!(a, b);
        let u = hash_keys(&UInt64Array::from(vec![7])).unwrap();
        assert_eq!(u[0], b[1]);
    }

    #[test]
    fn structs_are_length_prefixed() {
        let s = StructArray::from(vec![
            (
                Arc::new(Field::new("a", DataType::Utf8, false)),
                Arc::new(StringArray::from(vec!["ab", "a"])) as ArrayRef,
            ),
            (
                Arc::new(Field::new("b", DataType::Utf8, false)),
                Arc::new(StringArray::from(vec!["c", "bc"])) as ArrayRef,
            ),
        ]);
        let h = hash_keys(&s).unwrap();
        assert_ne!(h[0], h[1], "(ab, c) and (a, bc) must differ");
        let mut buf = Vec::new();
        encode_key(&s, 0, &mut buf).unwrap();
        assert_eq!(buf, b"\x02\0\0\0ab\x01\0\0\0c");
        assert_eq!(h[0], 0x6d5f7d8c204561ef);
    }

    #[test]
    fn null_keys_are_refused() {
        let a = Int64Array::from(vec![Some(1), None]);
        let err = hash_keys(&a).unwrap_err();
        assert!(err.to_string().contains("row 1"), "{err}");
    }
}
