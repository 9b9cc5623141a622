//! Re-dealing operator list state to a new parallelism.

use arrow_array::RecordBatch;
use futures::TryStreamExt;
use rewind_format::{Redistribution, ShardEntry, deal};

use crate::parquet_io::{guarded_stream, parquet_error};
use crate::reader::open_shard;
use crate::shard_writer::WrittenShard;
use crate::spec::StateSpec;
use crate::{Error, Result, SavepointReader, SavepointWriter};

/// Reads every element (in subtask order) and writes `parallelism` new shards of
/// contiguous runs whose sizes differ by at most one (the first `len % parallelism`
/// subtasks get one more). For `split` that is the new share of each subtask; a `union`
/// state is concatenated again on restore, so its new lists need only concatenate to the
/// old ones (a full copy per subtask would multiply every element on restore).
pub(crate) async fn redeal(
    source: &SavepointReader,
    writer: &SavepointWriter,
    uid: &str,
    spec: &StateSpec,
    shards: &[ShardEntry],
    parallelism: u32,
) -> Result<Vec<WrittenShard>> {
    let mut elements: Vec<RecordBatch> = Vec::new();
    for shard in shards {
        let stream = open_shard(source.location(), shard, 8192)
            .await?
            .build()
            .map_err(|e| {
                parquet_error(
                    crate::layers::describe(source.location(), shard),
                    "reading Parquet",
                    e,
                )
            })?;
        let batches: Vec<RecordBatch> =
            guarded_stream(crate::layers::describe(source.location(), shard), stream)
                .try_collect()
                .await?;
        elements.extend(batches);
    }
    let all = match elements.first() {
        Some(first) => arrow_select::concat::concat_batches(&first.schema(), &elements)
            .map_err(|e| Error::Internal(e.to_string()))?,
        None => RecordBatch::new_empty(spec.shard_schema()),
    };
    let mut out = Vec::with_capacity(parallelism as usize);
    for t in 0..parallelism {
        let (offset, len) = deal(all.num_rows(), Redistribution::Split, t, parallelism);
        let part = all.slice(offset, len);
        let mut shard = writer.operator_shard(uid, spec.name(), t)?;
        shard.write(&part).await?;
        out.push(shard.finish_unlisted().await?);
    }
    Ok(out)
}
