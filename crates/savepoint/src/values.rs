//! The rules the spec sets on column values (spec: "Column values"): which columns may
//! never hold a null, and the two timer domains. Shared by readers, which refuse a shard
//! that breaks them, and validation, which reports it.

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use parquet::file::metadata::ParquetMetaData;

use crate::spec::columns;

/// The two timer domains a `timers` shard may hold.
pub const TIMER_DOMAINS: [&str; 2] = ["event_time", "processing_time"];

/// What `rewind import-flink` 0.1.0 wrote instead, and what they mean.
const LEGACY_TIMER_DOMAINS: [(&str, &str); 2] =
    [("event", "event_time"), ("processing", "processing_time")];

/// The domain a legacy timer domain value stands for (`event` -> `event_time`).
pub(crate) fn repaired_timer_domain(domain: &str) -> Option<&'static str> {
    LEGACY_TIMER_DOMAINS
        .iter()
        .find(|(old, _)| *old == domain)
        .map(|(_, new)| *new)
}

/// Columns that never hold a null, and whether the rule reaches into nested fields (keys
/// and namespaces are key types: no field of theirs may be null at any depth).
const NON_NULL: [(&str, bool); 5] = [
    (columns::KEY, true),
    (columns::NAMESPACE, true),
    (columns::USER_KEY, false),
    (columns::TIMER_DOMAIN, false),
    (columns::TIMER_TIMESTAMP, false),
];

/// The first null where the spec forbids one, as "null in column C at row R".
pub(crate) fn forbidden_null(batch: &RecordBatch, first_row: usize) -> Option<String> {
    for (name, deep) in NON_NULL {
        let Some(column) = batch.column_by_name(name) else {
            continue;
        };
        if let Some(row) = first_null(column.as_ref(), deep) {
            return Some(format!(
                "column {name:?} holds a null at row {}; the spec forbids nulls there",
                first_row + row
            ));
        }
    }
    None
}

fn first_null(array: &dyn Array, deep: bool) -> Option<usize> {
    if array.null_count() > 0 {
        return (0..array.len()).find(|&i| array.is_null(i));
    }
    if !deep {
        return None;
    }
    let DataType::Struct(_) = array.data_type() else {
        return None;
    };
    array
        .as_struct()
        .columns()
        .iter()
        .filter_map(|c| first_null(c.as_ref(), true))
        .min()
}

/// The first timer domain other than [`TIMER_DOMAINS`], with what to do about it.
pub(crate) fn bad_timer_domain(batch: &RecordBatch, first_row: usize) -> Option<String> {
    let domains = batch.column_by_name(columns::TIMER_DOMAIN)?;
    let domains = domains.as_string_opt::<i32>()?;
    let (row, value) = domains
        .iter()
        .enumerate()
        .find_map(|(i, d)| d.filter(|d| !TIMER_DOMAINS.contains(d)).map(|d| (i, d)))?;
    let hint = if repaired_timer_domain(value).is_some() {
        " (written by rewind import-flink 0.1.0; `rewind migrate SRC DEST --to-format-version 1.0` rewrites it)"
    } else {
        ""
    };
    Some(format!(
        "timer domain {value:?} at row {}; the spec allows only \"event_time\" and \"processing_time\"{hint}",
        first_row + row
    ))
}

/// A null the footer's statistics prove is there, without reading data: the first
/// column chunk under a non-null column whose null count is above zero. Chunks without
/// statistics prove nothing (`validate --deep` decodes them).
pub(crate) fn null_in_statistics(
    metadata: &ParquetMetaData,
    user_key_is_key_type: bool,
) -> Option<String> {
    let schema = metadata.file_metadata().schema_descr();
    for (g, group) in metadata.row_groups().iter().enumerate() {
        for (c, chunk) in group.columns().iter().enumerate() {
            let path = schema.column(c).path().parts().to_vec();
            let Some(top) = path.first() else { continue };
            let checked = NON_NULL.iter().any(|(name, deep)| {
                top == name
                    && (path.len() == 1
                        || *deep
                        || (top == columns::USER_KEY && user_key_is_key_type))
            });
            let nulls = chunk.statistics().and_then(|s| s.null_count_opt());
            if checked && nulls.is_some_and(|n| n > 0) {
                return Some(format!(
                    "column {:?} holds {} null(s) in row group {g} (footer statistics); the spec forbids nulls there",
                    path.join("."),
                    nulls.unwrap_or_default()
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array, StringArray, StructArray};
    use arrow_schema::{Field, Fields};

    use super::*;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).unwrap()
    }

    #[test]
    fn nulls_in_keys_are_found_at_any_depth() {
        let ok = batch(vec![(
            "key",
            Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef,
        )]);
        assert_eq!(forbidden_null(&ok, 0), None);
        let top = batch(vec![(
            "key",
            Arc::new(Int64Array::from(vec![Some(1), None])) as ArrayRef,
        )]);
        assert_eq!(
            forbidden_null(&top, 10).unwrap(),
            "column \"key\" holds a null at row 11; the spec forbids nulls there"
        );
        let fields = Fields::from(vec![Field::new("a", DataType::Utf8, true)]);
        let inner: ArrayRef = Arc::new(StringArray::from(vec![Some("x"), None, Some("z")]));
        let nested = StructArray::new(fields, vec![inner], None);
        let b = batch(vec![("key", Arc::new(nested.clone()) as ArrayRef)]);
        assert!(forbidden_null(&b, 0).unwrap().contains("row 1"));
        // A user key is checked at the top only: a nested null there is a value.
        let b = batch(vec![("user_key", Arc::new(nested) as ArrayRef)]);
        assert_eq!(forbidden_null(&b, 0), None);
    }

    #[test]
    fn timer_domains_other_than_the_two_are_named() {
        let good = batch(vec![(
            "domain",
            Arc::new(StringArray::from(vec!["event_time", "processing_time"])) as ArrayRef,
        )]);
        assert_eq!(bad_timer_domain(&good, 0), None);
        let legacy = batch(vec![(
            "domain",
            Arc::new(StringArray::from(vec!["event_time", "event"])) as ArrayRef,
        )]);
        let message = bad_timer_domain(&legacy, 5).unwrap();
        assert!(
            message.starts_with("timer domain \"event\" at row 6;"),
            "{message}"
        );
        assert!(message.contains("rewind migrate"), "{message}");
        let other = batch(vec![(
            "domain",
            Arc::new(StringArray::from(vec!["wall"])) as ArrayRef,
        )]);
        assert!(!bad_timer_domain(&other, 0).unwrap().contains("migrate"));
        assert_eq!(repaired_timer_domain("processing"), Some("processing_time"));
        assert_eq!(repaired_timer_domain("wall"), None);
    }
}
