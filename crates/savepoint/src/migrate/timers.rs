//! Repairing the timer domains that `rewind import-flink` 0.1.0 wrote, `event` and
//! `processing`, as the spec's `event_time` and `processing_time` (spec: "Timers").

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{ArrayRef, RecordBatch, StringArray};
use futures::TryStreamExt;
use parquet::arrow::ProjectionMask;
use rewind_format::{ShardEntry, StateEntry};

use crate::parquet_io::{guarded_stream, parquet_error};
use crate::reader::open_shard;
use crate::values::repaired_timer_domain;
use crate::{Error, Result, SavepointReader, SavepointWriter, columns};

/// How many rows of a timers shard hold a legacy domain (reads only the `domain` column).
pub(super) async fn legacy_rows(source: &SavepointReader, shard: &ShardEntry) -> Result<u64> {
    let location = source.location();
    let described = location.describe(&shard.path);
    let builder = open_shard(location, shard, 8192).await?;
    let mask = ProjectionMask::columns(builder.parquet_schema(), [columns::TIMER_DOMAIN]);
    let stream = builder
        .with_projection(mask)
        .build()
        .map_err(|e| parquet_error(&described, "reading Parquet", e))?;
    let mut stream = guarded_stream(described.clone(), stream);
    let mut legacy = 0;
    while let Some(batch) = stream.try_next().await? {
        let Some(domains) = batch
            .column_by_name(columns::TIMER_DOMAIN)
            .and_then(|c| c.as_string_opt::<i32>())
        else {
            return Err(Error::corrupt(
                described,
                "timer domain is not a utf8 column",
            ));
        };
        legacy += domains
            .iter()
            .filter(|d| d.is_some_and(|d| repaired_timer_domain(d).is_some()))
            .count() as u64;
    }
    Ok(legacy)
}

/// Rewrites one keyed shard, same range, same rows, in the writer's layout (full or lean),
/// with the legacy domains of a timers shard repaired.
pub(super) async fn rewrite_keyed_shard(
    source: &SavepointReader,
    writer: &SavepointWriter,
    uid: &str,
    state: &StateEntry,
    shard: &ShardEntry,
) -> Result<()> {
    let mut out = writer.shard_like(uid, &state.name, shard)?;
    let mut batches = source.read_whole_shard(uid, &state.name, shard).await?;
    while let Some(batch) = batches.try_next().await? {
        out.write_with_hashes(repaired(&batch)?).await?;
    }
    out.finish().await?;
    Ok(())
}

fn repaired(batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = batch.schema();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, column)| match column.as_string_opt::<i32>() {
            Some(domains) if field.name() == columns::TIMER_DOMAIN => {
                let fixed: StringArray = domains
                    .iter()
                    .map(|d| d.map(|d| repaired_timer_domain(d).unwrap_or(d)))
                    .collect();
                Arc::new(fixed) as ArrayRef
            }
            _ => column.clone(),
        })
        .collect();
    RecordBatch::try_new(schema, columns).map_err(|e| Error::Internal(e.to_string()))
}
