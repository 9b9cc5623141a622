//! Reading what a test's job wrote.

use std::collections::BTreeMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, UInt64Type};
use futures::TryStreamExt;
use rewind_savepoint::{Location, ReadOptions, SavepointReader};

/// The rows of the `int64 -> uint64` keyed state `uid/state` of the savepoint at
/// `location`, by key (the keyed count's `count`).
///
/// # Panics
/// When the savepoint or state cannot be read or has other types (test code).
pub fn state_counts(location: &Location, uid: &str, state: &str) -> BTreeMap<i64, u64> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let batches: Vec<arrow_array::RecordBatch> = runtime.block_on(async {
        let reader = SavepointReader::open(location.clone())
            .await
            .unwrap_or_else(|e| panic!("{location}: {e}"));
        reader
            .read_state(uid, state, ReadOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{uid}/{state}: {e}"))
            .try_collect()
            .await
            .unwrap_or_else(|e| panic!("{uid}/{state}: {e}"))
    });
    let mut out = BTreeMap::new();
    for b in batches {
        let column = |name: &str| {
            b.column_by_name(name)
                .unwrap_or_else(|| panic!("{uid}/{state} has no {name} column"))
                .clone()
        };
        let (keys, values) = (column("key"), column("value"));
        let (keys, values) = (
            keys.as_primitive::<Int64Type>(),
            values.as_primitive::<UInt64Type>(),
        );
        for i in 0..b.num_rows() {
            out.insert(keys.value(i), values.value(i));
        }
    }
    out
}
