//! Re-dealing operator list state to a new parallelism.

use arrow_array::RecordBatch;
use futures::TryStreamExt;
use rewind_format::{Redistribution, ShardEntry};

use crate::reader::open_shard;
use crate::spec::StateSpec;
use crate::{Error, Result, SavepointReader, SavepointWriter};

/// Reads every element (in subtask order) and writes `parallelism` new shards:
/// `split` deals contiguous runs whose sizes differ by at most one (the first
/// `len % parallelism` subtasks get one more); `union` gives every subtask all elements.
pub(crate) async fn redeal(
    source: &SavepointReader,
    writer: &SavepointWriter,
    uid: &str,
    spec: &StateSpec,
    mode: Redistribution,
    shards: &[ShardEntry],
    parallelism: u32,
) -> Result<Vec<ShardEntry>> {
    let mut elements: Vec<RecordBatch> = Vec::new();
    for shard in shards {
        let stream = open_shard(source.location(), shard, 8192)
            .await?
            .build()
            .map_err(|e| Error::corrupt(source.location().describe(&shard.path), e.to_string()))?;
        let batches: Vec<RecordBatch> = stream
            .try_collect()
            .await
            .map_err(|e| Error::corrupt(source.location().describe(&shard.path), e.to_string()))?;
        elements.extend(batches);
    }
    let all = match elements.first() {
        Some(first) => arrow_select::concat::concat_batches(&first.schema(), &elements)
            .map_err(|e| Error::Internal(e.to_string()))?,
        None => RecordBatch::new_empty(spec.shard_schema()),
    };
    let total = all.num_rows();
    let p = parallelism as usize;
    let mut out = Vec::with_capacity(p);
    let mut offset = 0;
    for t in 0..p {
        let part = match mode {
            Redistribution::Split => {
                let len = total / p + usize::from(t < total % p);
                let part = all.slice(offset, len);
                offset += len;
                part
            }
            Redistribution::Union | Redistribution::Broadcast => all.clone(),
        };
        let mut shard = writer.operator_shard(uid, spec.name(), t as u32)?;
        shard.write(&part).await?;
        out.push(shard.finish().await?);
    }
    Ok(out)
}
