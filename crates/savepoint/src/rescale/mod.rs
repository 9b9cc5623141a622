//! Offline rescale: a new savepoint whose operators have a new parallelism.
//!
//! Keyed state is never re-hashed: hash ranges are only re-cut, into one shard per new
//! subtask. A source shard whose range is exactly a new subtask's is copied whole
//! (server-side where the store can); otherwise the new subtask's shard is made of the parts
//! of the source shards it overlaps, by concatenating their whole row groups without
//! decoding and re-encoding only the row groups that hold a boundary. Operator state is dealt out
//! as its redistribution mode says (spec: "Operator state"). Source splits and their
//! positions are unchanged; the engine assigns them to subtasks when it starts.

mod keyed;
mod operator;
mod piece;
mod plan;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::{StreamExt, TryStreamExt};
use rewind_format::{Manifest, ShardEntry};

pub use plan::{RescaleOptions, RescalePlan, ShardAction, StatePlan, plan_rescale};

use crate::shard_writer::WrittenShard;
use crate::{
    Location, Result, SavepointInfo, SavepointReader, SavepointWriter, StateSpec, WriterOptions,
};

/// What a rescale did, for reports and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RescaleStats {
    /// Bytes of shards copied whole.
    pub bytes_copied: u64,
    /// Bytes of row groups copied into split shards without decoding.
    pub bytes_spliced: u64,
    /// Bytes of source row groups that were decoded and re-encoded.
    pub bytes_reencoded: u64,
    /// Shards written in the new savepoint.
    pub shards_written: u64,
}

/// Shards open at once.
const CONCURRENCY: usize = 8;

/// Shards being cut at once: one per core (measured on 2 cores: 3 was slower). A cut
/// shard gives its turn up before its upload completes, so one shard's final flush to
/// disk (fsync) overlaps the next shards' work instead of all shards waiting on the disk
/// together at the end.
fn cutting_turns() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

/// Writes a rescaled copy of `source` to `dest`. `source` is never modified; the new
/// savepoint's lineage names it as parent with operation `rescale`. `progress` is called
/// once per shard written, with its bytes, as it is listed.
pub async fn rescale(
    source: &SavepointReader,
    dest: Location,
    options: &RescaleOptions,
    progress: Option<Arc<dyn Fn(u64) + Send + Sync>>,
) -> Result<(Manifest, RescaleStats)> {
    let manifest = source.manifest();
    let plan = plan_rescale(manifest, options)?;
    let mut info = SavepointInfo::derived_from(source, "rescale");
    info.kind = manifest.kind;
    info.lineage.parameters = Some(plan.parameters());
    write_plan(source, dest, info, &plan, progress).await
}

/// Writes a self-contained savepoint (kind `savepoint`) with the state of `source`, which
/// may be an incremental checkpoint: files shared with other checkpoints are copied in,
/// delta layers are merged into plain shards, everything else is copied byte for byte.
/// Parallelism and source positions are unchanged; the lineage operation is `compact`.
/// `progress` is called as for [`rescale`].
pub async fn compact(
    source: &SavepointReader,
    dest: Location,
    progress: Option<Arc<dyn Fn(u64) + Send + Sync>>,
) -> Result<(Manifest, RescaleStats)> {
    // Every operator keeps its parallelism.
    let same = RescaleOptions {
        operators: source
            .manifest()
            .operators
            .iter()
            .map(|o| (o.uid.clone(), o.parallelism))
            .collect(),
        // Only a savepoint without operators needs this: it names none of them.
        parallelism: Some(1),
    };
    let plan = plan_rescale(source.manifest(), &same)?;
    let mut info = SavepointInfo::derived_from(source, "compact");
    info.kind = rewind_format::SavepointKind::Savepoint;
    write_plan(source, dest, info, &plan, progress).await
}

async fn write_plan(
    source: &SavepointReader,
    dest: Location,
    info: SavepointInfo,
    plan: &RescalePlan,
    progress: Option<Arc<dyn Fn(u64) + Send + Sync>>,
) -> Result<(Manifest, RescaleStats)> {
    let manifest = source.manifest();
    let writer =
        SavepointWriter::create_with_options(dest, info, WriterOptions::like(manifest)).await?;
    for op in &manifest.operators {
        let to = plan.parallelism_of(&op.uid).unwrap_or(op.parallelism);
        writer.add_operator(&op.uid, &op.name, to)?;
        if let Some(src) = &op.source {
            writer.set_source_splits(&op.uid, src.splits.clone())?;
        }
        for st in &op.states {
            writer.add_state(&op.uid, StateSpec::from_entry(st)?)?;
        }
    }
    writer.carry_operator_extensions(manifest, &|uid| uid.to_string())?;

    let stats = Counters::default();
    let jobs: Vec<(String, StatePlan)> = plan
        .operators
        .iter()
        .flat_map(|op| op.states.iter().map(move |s| (op.uid.clone(), s.clone())))
        .collect();
    let (writer_ref, stats_ref, progress_ref) = (&writer, &stats, &progress);
    let cutting = tokio::sync::Semaphore::new(cutting_turns());
    let cutting_ref = &cutting;
    futures::stream::iter(jobs)
        .flat_map(|(uid, state)| {
            futures::stream::iter(
                state
                    .actions
                    .clone()
                    .into_iter()
                    .map(move |a| (uid.clone(), state.clone(), a)),
            )
        })
        .map(|(uid, state, action)| async move {
            let written = run_action(source, writer_ref, &uid, &state, action, cutting_ref).await?;
            list_written(
                writer_ref,
                &uid,
                &state.name,
                written,
                stats_ref,
                progress_ref,
            )
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    let manifest = writer.commit().await?;
    Ok((manifest, stats.snapshot()))
}

/// What one action wrote: its shards, complete but not yet listed in the draft, and the
/// source bytes it moved by each means.
#[derive(Default)]
struct Written {
    shards: Vec<WrittenShard>,
    copied: u64,
    spliced: u64,
    reencoded: u64,
}

/// The one place shards of a rescale enter the draft: each is listed, counted and
/// reported to `progress` with its bytes, whichever action wrote it.
fn list_written(
    writer: &SavepointWriter,
    uid: &str,
    state: &str,
    written: Written,
    stats: &Counters,
    progress: &Option<Arc<dyn Fn(u64) + Send + Sync>>,
) -> Result<()> {
    stats.copied.fetch_add(written.copied, Ordering::Relaxed);
    stats.spliced.fetch_add(written.spliced, Ordering::Relaxed);
    stats
        .reencoded
        .fetch_add(written.reencoded, Ordering::Relaxed);
    for shard in written.shards {
        let bytes = shard.entry.bytes;
        writer.add_shard_entry(uid, state, shard.entry, shard.lean)?;
        stats.shards.fetch_add(1, Ordering::Relaxed);
        if let Some(p) = progress {
            p(bytes);
        }
    }
    Ok(())
}

#[derive(Default)]
struct Counters {
    copied: AtomicU64,
    spliced: AtomicU64,
    reencoded: AtomicU64,
    shards: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> RescaleStats {
        RescaleStats {
            bytes_copied: self.copied.load(Ordering::Relaxed),
            bytes_spliced: self.spliced.load(Ordering::Relaxed),
            bytes_reencoded: self.reencoded.load(Ordering::Relaxed),
            shards_written: self.shards.load(Ordering::Relaxed),
        }
    }
}

/// Writes the shards of one action, leaving them to the caller to list.
async fn run_action(
    source: &SavepointReader,
    writer: &SavepointWriter,
    uid: &str,
    state: &StatePlan,
    action: ShardAction,
    cutting: &tokio::sync::Semaphore,
) -> Result<Written> {
    match action {
        ShardAction::Copy { shard, subtask } => {
            let path = writer.shard_path(uid, &state.name)?;
            let home = crate::layers::home(source.location(), &shard)?;
            crate::file_copy::copy_file(&home, &shard.path, writer.location(), &path).await?;
            let lean = shard.hash_range.is_some() && crate::lean::allowed(source.manifest());
            Ok(Written {
                copied: shard.bytes,
                shards: vec![WrittenShard {
                    entry: ShardEntry {
                        path,
                        subtask: subtask.or(shard.subtask),
                        sibling: None,
                        ..shard
                    },
                    lean,
                }],
                ..Written::default()
            })
        }
        ShardAction::Recut { range, sources } => {
            let state = source.state(uid, &state.name)?;
            let to = keyed::Target {
                writer,
                uid,
                spec: &StateSpec::from_entry(state)?,
            };
            keyed::recut(source, state, &to, range, &sources, cutting).await
        }
        ShardAction::Merge { range, sources } => Ok(Written {
            shards: vec![merge_layers(source, writer, uid, &state.name, range).await?],
            reencoded: sources.iter().map(|s| s.bytes).sum(),
            ..Written::default()
        }),
        ShardAction::Redeal {
            shards,
            parallelism,
        } => {
            let entry = source.state(uid, &state.name)?;
            Ok(Written {
                shards: operator::redeal(source, writer, uid, entry, &shards, parallelism).await?,
                reencoded: shards.iter().map(|s| s.bytes).sum(),
                ..Written::default()
            })
        }
    }
}

/// Writes the shard of `range` of a layered state: its base and delta layers merged
/// (spec: "Incremental checkpoints"), so the new savepoint holds one plain layer.
async fn merge_layers(
    source: &SavepointReader,
    writer: &SavepointWriter,
    uid: &str,
    state: &str,
    range: rewind_format::HashRange,
) -> Result<WrittenShard> {
    let options = crate::ReadOptions {
        hash_range: Some(range),
        ..crate::ReadOptions::default()
    };
    let mut rows = source.read_state(uid, state, options).await?;
    let mut shard = writer.keyed_shard(uid, state, range)?;
    while let Some(batch) = rows.try_next().await? {
        shard.write_with_hashes(batch).await?;
    }
    shard.finish_unlisted().await
}
