//! Re-dealing operator list state to a new parallelism.

use arrow_array::RecordBatch;
use futures::TryStreamExt;
use rewind_format::{Redistribution, ShardEntry, StateEntry, deal};

use crate::parquet_io::{guarded_stream, parquet_error};
use crate::reader::open_checked;
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
    state: &StateEntry,
    shards: &[ShardEntry],
    parallelism: u32,
) -> Result<Vec<WrittenShard>> {
    let spec = StateSpec::from_entry(state)?;
    let mut elements: Vec<RecordBatch> = Vec::new();
    for shard in shards {
        // The checks `read_operator_list` makes, so a bad shard fails as it would there.
        let footer = open_checked(source.location(), state, shard, false).await?;
        let described = footer.described.clone();
        let stream = footer
            .into_builder()
            .with_batch_size(8192)
            .build()
            .map_err(|e| parquet_error(&described, "reading Parquet", e))?;
        let batches: Vec<RecordBatch> = guarded_stream(described, stream).try_collect().await?;
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
