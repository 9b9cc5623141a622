//! Writing a checkpoint or savepoint: every subtask's snapshot converted and encoded in a
//! task of its own, keyed states as delta layers over the last checkpoint where they can
//! be, the manifest last; a write that fails before its manifest deletes what it wrote.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rewind_savepoint::format::{HashRange, Manifest, ParentRef, SavepointKind, SplitEntry};
use rewind_savepoint::{Location, SavepointInfo, SavepointWriter, ShardWriter, WriterOptions};

use super::{Ack, Coordinator};
use crate::operator::{Parts, StateSnapshot};
use crate::{EngineError, Result};

impl Coordinator {
    /// The checkpoint a keyed state's delta builds on: its folder, the state's shards there,
    /// the new layer's number and the barrier whose changes follow. `None` writes the
    /// state whole: no checkpoint of this run yet, another layout, too many layers, or
    /// layers grown to half the base's rows (then the whole state is the new base). Rows,
    /// not bytes: a small delta file is mostly its Parquet footer, so tiny deltas over a
    /// small base reached half its bytes within a few checkpoints.
    /// A delta since checkpoint N relies on the snapshots of N having recorded removals
    /// (`SnapshotAt::track_removals`): it holds since incremental checkpoints are on or
    /// off for a whole run, and `last_checkpoint` is one of this run's.
    fn delta_base(&self, uid: &str, state: &str, parallelism: u32) -> Option<DeltaBase> {
        let max_layers = self
            .options
            .max_delta_layers
            .unwrap_or(crate::options::DEFAULT_MAX_DELTA_LAYERS);
        let (folder, manifest) = self.last_checkpoint.as_ref()?;
        let op = manifest
            .operator(uid)
            .filter(|o| o.parallelism == parallelism)?;
        let entry = op.state(state).filter(|s| s.kind.is_keyed())?;
        let layers: std::collections::BTreeSet<u32> =
            entry.shards.iter().map(|s| s.layer).collect();
        let (base, deltas): (Vec<_>, Vec<_>) = entry.shards.iter().partition(|s| s.layer == 0);
        let base_rows: u64 = base.iter().map(|s| s.rows).sum();
        let delta_rows: u64 = deltas.iter().map(|s| s.rows).sum();
        if layers.len() > max_layers || delta_rows * 2 > base_rows {
            return None;
        }
        Some(DeltaBase {
            folder: folder.clone(),
            shards: entry.shards.clone(),
            layer: layers.last().copied().unwrap_or(0) + 1,
            since: manifest.checkpoint_id,
        })
    }

    pub(super) fn write(
        &self,
        location: &Location,
        kind: SavepointKind,
        checkpoint_id: u64,
        acks: &mut [Ack],
        incremental: bool,
    ) -> Result<Manifest> {
        let mut info = SavepointInfo::new(&self.job, "engine");
        info.kind = kind;
        info.checkpoint_id = checkpoint_id;
        info.lineage.parent = self.parent.as_ref().map(|(id, location)| ParentRef {
            id: id.clone(),
            location: location.clone(),
        });
        let stages = &self.stages;
        // What each sink subtask's output this checkpoint records (read before the async
        // block, which must not hold the coordinator).
        let records: HashMap<(usize, u32), Vec<String>> = stages
            .iter()
            .enumerate()
            .filter(|(_, stage)| stage.sink.is_some())
            .flat_map(|(s, stage)| (0..stage.parallelism).map(move |i| (s, i)))
            .map(|key| (key, self.output.records(checkpoint_id, key)))
            .collect();
        self.io.block_on(async {
            // Lean keyed shards (format 1.1): the key hash is not stored, readers compute it.
            let options = WriterOptions {
                lean_keyed_shards: true,
                ..WriterOptions::default()
            };
            let writer = Arc::new(
                SavepointWriter::create_with_options(location.clone(), info, options).await?,
            );
            // One task per subtask snapshot: converting to Arrow and encoding run in
            // parallel, and the job keeps processing meanwhile.
            let mut tasks = tokio::task::JoinSet::new();
            let stop = Arc::new(AtomicBool::new(false));
            let written = self
                .write_shards(&writer, &mut tasks, &stop, acks, incremental, &records)
                .await;
            let snapshots = match written {
                Ok(snapshots) => snapshots,
                Err(e) => {
                    // Every task ends before the files are deleted: the others stop at
                    // their next part, and one ended has no write in flight (a cancelled
                    // one could: a local file's rename, a PUT already sent, may land
                    // after the delete).
                    stop.store(true, Ordering::Release);
                    while tasks.join_next().await.is_some() {}
                    match writer.abort().await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(
                            checkpoint = checkpoint_id,
                            files = n,
                            "removed the {n} files of checkpoint {checkpoint_id} that failed"
                        ),
                        Err(a) => tracing::warn!(
                            checkpoint = checkpoint_id,
                            "cannot remove the files of checkpoint {checkpoint_id} that failed: {a}"
                        ),
                    }
                    return Err(e);
                }
            };
            let writer = match Arc::try_unwrap(writer) {
                Ok(writer) => writer,
                Err(shared) => {
                    shared.abort().await.ok();
                    return Err(rewind_savepoint::Error::Internal("writer still shared".into()));
                }
            };
            let manifest = writer.commit().await;
            // Freeing a large snapshot the job no longer shares takes a while (0.3 s for
            // 5M keys): after the commit, so it never delays one.
            std::thread::spawn(move || drop(snapshots));
            manifest
        })?
        .map_err(EngineError::from)
    }

    /// Writes the shards of every stage's snapshots in `acks` (and the sinks' staged
    /// output) through `writer`, a task per subtask snapshot spawned into `tasks`; returns
    /// the snapshots once every shard is written.
    async fn write_shards(
        &self,
        writer: &Arc<SavepointWriter>,
        tasks: &mut tokio::task::JoinSet<rewind_savepoint::Result<Arc<dyn StateSnapshot>>>,
        stop: &Arc<AtomicBool>,
        acks: &mut [Ack],
        incremental: bool,
        records: &HashMap<(usize, u32), Vec<String>>,
    ) -> rewind_savepoint::Result<Vec<Arc<dyn StateSnapshot>>> {
        let stages = &self.stages;
        for (s, stage) in stages.iter().enumerate() {
            let Some(uid) = &stage.uid else { continue };
            writer.add_operator(uid, &stage.name, stage.parallelism)?;
            if stage.is_source {
                let mut splits: Vec<SplitEntry> = acks
                    .iter()
                    .filter(|a| a.stage == s)
                    .flat_map(|a| a.splits.clone())
                    .collect();
                splits.sort_by(|a, b| a.id.cmp(&b.id));
                writer.set_source_splits(uid, splits)?;
            }
            for state in &stage.states {
                let mut declared = false;
                // Changes only, over the last checkpoint, when every subtask's
                // snapshot of the state can tell them.
                let delta = incremental
                    .then(|| self.delta_base(uid, state, stage.parallelism))
                    .flatten()
                    .filter(|_| {
                        acks.iter()
                            .filter(|a| a.stage == s)
                            .flat_map(|a| a.snapshots.iter())
                            .filter(|x| x.state() == state)
                            .all(|x| x.has_deltas())
                    });
                for ack in acks.iter_mut().filter(|a| a.stage == s) {
                    let range = HashRange::for_subtask(ack.subtask, stage.parallelism)
                        .ok_or_else(|| rewind_savepoint::Error::Internal("subtask range".into()))?;
                    let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut ack.snapshots)
                        .into_iter()
                        .partition(|x| x.state() == state);
                    ack.snapshots = rest;
                    for snap in mine {
                        let spec = snap.spec().map_err(internal)?;
                        let keyed = spec.kind().is_keyed();
                        if !declared {
                            writer.add_state(uid, spec)?;
                            declared = true;
                            if let Some(base) = &delta {
                                writer.reuse_shards(
                                    uid,
                                    state,
                                    &base.folder,
                                    &base.shards,
                                    true,
                                )?;
                            }
                        }
                        let (writer, uid, state) = (writer.clone(), uid.clone(), state.clone());
                        let stop = stop.clone();
                        let subtask = ack.subtask;
                        if let Some(base) = &delta {
                            let (layer, since) = (base.layer, base.since);
                            tasks.spawn(async move {
                                // A subtask without changes adds no file to the layer.
                                let open = || writer.keyed_delta_shard(&uid, &state, range, layer);
                                let parts = snap.delta_parts(range, since);
                                if let Some(shard) = write_parts(parts, open, &stop).await? {
                                    going_on(&stop)?;
                                    shard.finish().await?;
                                }
                                Ok::<_, rewind_savepoint::Error>(snap)
                            });
                            continue;
                        }
                        tasks.spawn(async move {
                            let open = || {
                                if keyed {
                                    writer.keyed_shard(&uid, &state, range)
                                } else {
                                    writer.operator_shard(&uid, &state, subtask)
                                }
                            };
                            // A whole state has its shard, rows or not.
                            let shard = match write_parts(snap.parts(range), open, &stop).await? {
                                Some(shard) => shard,
                                None => open()?,
                            };
                            going_on(&stop)?;
                            shard.finish().await?;
                            Ok::<_, rewind_savepoint::Error>(snap)
                        });
                    }
                }
            }
        }
        // Each sink's staged, not yet committed output: re-committed on restore.
        for (s, stage) in stages.iter().enumerate() {
            let Some(crate::job::StageSink { uid, .. }) = &stage.sink else {
                continue;
            };
            writer.add_operator(uid, &format!("{} sink", stage.name), stage.parallelism)?;
            let spec = rewind_savepoint::StateSpec::operator_list(
                crate::sink::pending::SINK_PENDING,
                arrow_schema::DataType::Utf8,
                rewind_savepoint::format::Redistribution::Union,
            );
            writer.add_state(uid, spec)?;
            for subtask in 0..stage.parallelism {
                let list = records.get(&(s, subtask)).cloned().unwrap_or_default();
                let values: arrow_array::ArrayRef = Arc::new(arrow_array::StringArray::from(list));
                let schema = Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
                    "value",
                    arrow_schema::DataType::Utf8,
                    true,
                )]));
                let batch = arrow_array::RecordBatch::try_new(schema, vec![values])
                    .map_err(|e| rewind_savepoint::Error::Internal(e.to_string()))?;
                let mut shard =
                    writer.operator_shard(uid, crate::sink::pending::SINK_PENDING, subtask)?;
                shard.write(&batch).await?;
                shard.finish().await?;
            }
        }
        let mut snapshots = Vec::with_capacity(tasks.len());
        while let Some(done) = tasks.join_next().await {
            snapshots.push(done.map_err(|e| rewind_savepoint::Error::Internal(e.to_string()))??);
        }
        Ok(snapshots)
    }
}

/// What a keyed state's delta layer builds on (see `Coordinator::delta_base`).
struct DeltaBase {
    folder: String,
    shards: Vec<rewind_savepoint::format::ShardEntry>,
    layer: u32,
    since: u64,
}

/// Writes a snapshot's parts to the shard `open` opens at the first row; returns it
/// (`None`: no rows, no shard).
async fn write_parts(
    parts: Parts<'_>,
    open: impl Fn() -> rewind_savepoint::Result<ShardWriter>,
    stop: &AtomicBool,
) -> rewind_savepoint::Result<Option<ShardWriter>> {
    let mut shard = None;
    for part in parts {
        going_on(stop)?;
        let (hashes, batch) = part.map_err(internal)?;
        if batch.num_rows() == 0 {
            continue;
        }
        let shard = match &mut shard {
            Some(shard) => shard,
            None => shard.insert(open()?),
        };
        // Keyed rows come with their key hashes; operator state's without.
        if hashes.is_empty() {
            shard.write(&batch).await?;
        } else {
            shard.write_hashed(hashes, &batch).await?;
        }
    }
    Ok(shard)
}

/// Fails once the write was given up (another of its tasks failed): a task checks
/// between parts and before it completes its file.
fn going_on(stop: &AtomicBool) -> rewind_savepoint::Result<()> {
    if stop.load(Ordering::Acquire) {
        return Err(rewind_savepoint::Error::Internal(
            "given up: another shard of this checkpoint failed".into(),
        ));
    }
    Ok(())
}

fn internal(e: EngineError) -> rewind_savepoint::Error {
    rewind_savepoint::Error::Internal(e.to_string())
}
