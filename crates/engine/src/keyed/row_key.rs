//! Row keys of state tables: a user's key alone, or with a namespace (a window's start).
//! The bottom of the keyed module: tables and the copy-on-write map are built on it.

use arrow_schema::DataType;

use crate::key::Key;

/// A key in a state table: the user's key, optionally with a namespace (a window's start).
pub(crate) trait RowKey<K: Key>:
    Clone + Eq + std::hash::Hash + Send + Sync + 'static
{
    fn key(&self) -> &K;
    fn namespace(&self) -> Option<i64>;
    fn from_parts(key: K, namespace: Option<i64>) -> Option<Self>;
    fn namespace_type() -> Option<DataType>;
}

impl<K: Key> RowKey<K> for K {
    fn key(&self) -> &K {
        self
    }
    fn namespace(&self) -> Option<i64> {
        None
    }
    fn from_parts(key: K, namespace: Option<i64>) -> Option<Self> {
        namespace.is_none().then_some(key)
    }
    fn namespace_type() -> Option<DataType> {
        None
    }
}

/// A key with a namespace: window state is kept per (key, window start).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct NsKey<K> {
    pub key: K,
    pub ns: i64,
}

impl<K: Key> RowKey<K> for NsKey<K> {
    fn key(&self) -> &K {
        &self.key
    }
    fn namespace(&self) -> Option<i64> {
        Some(self.ns)
    }
    fn from_parts(key: K, namespace: Option<i64>) -> Option<Self> {
        Some(NsKey {
            key,
            ns: namespace?,
        })
    }
    fn namespace_type() -> Option<DataType> {
        Some(DataType::Int64)
    }
}
