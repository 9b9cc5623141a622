//! Keys of keyed streams: hashed exactly as the savepoint format hashes them, so a record
//! goes to the subtask whose hash range holds its key, and a restored job finds the state.

use std::hash::Hash;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, UInt64Type};
use arrow_array::{Array, ArrayRef, Int32Array, Int64Array, StringArray, UInt64Array};
use arrow_schema::DataType;
use rewind_savepoint::format::hash_keys;

/// A key type of a keyed stream.
pub trait Key: Clone + Eq + Ord + Hash + Send + Sync + std::fmt::Debug + 'static {
    /// The Arrow type of the `key` column.
    fn data_type() -> DataType;
    /// The keys as an Arrow array.
    fn to_array(keys: &[Self]) -> ArrayRef;
    /// The keys as an Arrow array, reusing the vector's memory where the type allows.
    fn into_array(keys: Vec<Self>) -> ArrayRef {
        Self::to_array(&keys)
    }
    /// Keys back from an Arrow array (of [`Key::data_type`]).
    fn from_array(array: &dyn Array) -> Option<Vec<Self>>;
    /// The spec's key hash of this key.
    fn key_hash(&self) -> u64 {
        let array = Self::to_array(std::slice::from_ref(self));
        hash_keys(array.as_ref())
            .ok()
            .and_then(|h| h.first().copied())
            .unwrap_or(0)
    }
}

macro_rules! primitive_key {
    ($t:ty, $arrow:ty, $array:ty, $dt:expr) => {
        impl Key for $t {
            fn data_type() -> DataType {
                $dt
            }
            fn to_array(keys: &[Self]) -> ArrayRef {
                Arc::new(<$array>::from(keys.to_vec()))
            }
            fn into_array(keys: Vec<Self>) -> ArrayRef {
                Arc::new(<$array>::from(keys))
            }
            fn from_array(array: &dyn Array) -> Option<Vec<Self>> {
                Some(array.as_primitive_opt::<$arrow>()?.values().to_vec())
            }
            fn key_hash(&self) -> u64 {
                // The canonical encoding of every integer is its 8-byte little-endian form.
                xxh3(&(*self as i128 as u64).to_le_bytes())
            }
        }
    };
}

fn xxh3(bytes: &[u8]) -> u64 {
    rewind_savepoint::format::hash_encoded_key(bytes)
}

primitive_key!(i64, Int64Type, Int64Array, DataType::Int64);
primitive_key!(i32, Int32Type, Int32Array, DataType::Int32);
primitive_key!(u64, UInt64Type, UInt64Array, DataType::UInt64);

impl Key for String {
    fn data_type() -> DataType {
        DataType::Utf8
    }
    fn to_array(keys: &[Self]) -> ArrayRef {
        Arc::new(StringArray::from_iter_values(keys.iter()))
    }
    fn from_array(array: &dyn Array) -> Option<Vec<Self>> {
        match array.data_type() {
            DataType::Utf8 => Some(
                array
                    .as_string::<i32>()
                    .iter()
                    .map(|s| s.unwrap_or_default().to_string())
                    .collect(),
            ),
            DataType::LargeUtf8 => Some(
                array
                    .as_string::<i64>()
                    .iter()
                    .map(|s| s.unwrap_or_default().to_string())
                    .collect(),
            ),
            _ => None,
        }
    }
    fn key_hash(&self) -> u64 {
        xxh3(self.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_the_format() {
        for k in [0i64, 1, -1, 42, i64::MAX, i64::MIN] {
            assert_eq!(
                k.key_hash(),
                hash_keys(&Int64Array::from(vec![k])).unwrap()[0]
            );
        }
        for k in [0u64, 7, u64::MAX] {
            assert_eq!(
                k.key_hash(),
                hash_keys(&UInt64Array::from(vec![k])).unwrap()[0]
            );
        }
        assert_eq!((-5i32).key_hash(), (-5i64).key_hash());
        let s = "user-42".to_string();
        assert_eq!(
            s.key_hash(),
            hash_keys(&StringArray::from(vec!["user-42"])).unwrap()[0]
        );
    }
}
