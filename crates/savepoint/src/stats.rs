//! The key-hash range of every row group: what lets readers skip row groups and rescale
//! copy them without decoding. Full shards have it in the `key_hash` column's statistics,
//! lean ones in their footer (see [`crate::lean`]).

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_schema::Schema;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::file::metadata::ParquetMetaData;

use crate::spec::columns;

/// `(min, max)` key hash of each row group, `None` where the writer recorded no
/// statistics (or, in a lean shard, where the row group has no rows).
pub(crate) fn row_group_hash_bounds(
    metadata: &ParquetMetaData,
    schema: &Schema,
) -> Result<Vec<Option<(u64, u64)>>, String> {
    if crate::lean::is_lean(schema) {
        return crate::lean::row_group_ranges(metadata);
    }
    let converter = StatisticsConverter::try_new(
        columns::KEY_HASH,
        schema,
        metadata.file_metadata().schema_descr(),
    )
    .map_err(|e| e.to_string())?;
    let groups = metadata.row_groups();
    let mins = converter
        .row_group_mins(groups.iter())
        .map_err(|e| e.to_string())?;
    let maxes = converter
        .row_group_maxes(groups.iter())
        .map_err(|e| e.to_string())?;
    let (Some(mins), Some(maxes)) = (
        mins.as_primitive_opt::<UInt64Type>(),
        maxes.as_primitive_opt::<UInt64Type>(),
    ) else {
        return Err("key_hash statistics are not unsigned 64-bit integers".into());
    };
    Ok((0..groups.len())
        .map(|i| (!mins.is_null(i) && !maxes.is_null(i)).then(|| (mins.value(i), maxes.value(i))))
        .collect())
}
