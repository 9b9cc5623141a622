//! Restoring a job: which savepoint state goes where, sinks' pending output, the plan.

use rewind_savepoint::format::{HashRange, StateKind};
use rewind_savepoint::{LayerRows, Location, ReadOptions, SavepointReader};

use crate::io::Io;
use crate::job::Job;
use crate::operator::ErasedOp;
use crate::options::RunOptions;
use crate::sink::pending::SINK_PENDING;
use crate::{EngineError, Result};

fn block_on<T: Send>(
    io: &Io,
    future: impl std::future::Future<Output = Result<T>> + Send,
) -> Result<T> {
    io.block_on(future)?
}

/// Opens the savepoint at `location`; a directory that holds no savepoint itself but
/// savepoints or checkpoints below it (a checkpoint directory) means the newest completed
/// one by checkpoint id.
pub(super) fn open_savepoint(io: &Io, location: &Location) -> Result<SavepointReader> {
    block_on(io, async {
        match SavepointReader::open(location.clone()).await {
            Err(
                e @ (rewind_savepoint::Error::NotFound { .. }
                | rewind_savepoint::Error::Incomplete { .. }),
            ) => {
                let (found, _) = rewind_savepoint::find_savepoints(location).await?;
                let Some(latest) = rewind_savepoint::latest_completed(&found) else {
                    return Err(e.into());
                };
                let at = location.join(&latest.path)?;
                tracing::info!(
                    path = %at,
                    checkpoint = latest.checkpoint_id,
                    "restoring from {at}, the newest completed checkpoint under {location} (checkpoint {})",
                    latest.checkpoint_id
                );
                Ok(SavepointReader::open(at).await?)
            }
            other => Ok(other?),
        }
    })
}

/// Commits again the output the restored checkpoint had staged: if the job stopped between
/// writing that checkpoint and committing its output, the output appears now, once.
pub(super) fn recommit_sinks(io: &Io, job: &Job, sp: &SavepointReader) -> Result<()> {
    for crate::job::StageSink { uid, sink, .. } in job.stages.iter().filter_map(|s| s.sink.as_ref())
    {
        if sp
            .manifest()
            .operator(uid)
            .and_then(|o| o.state(SINK_PENDING))
            .is_none()
        {
            continue;
        }
        let batches: Vec<arrow_array::RecordBatch> = block_on(io, async {
            use futures::TryStreamExt;
            let stream = sp
                .read_state(uid, SINK_PENDING, ReadOptions::default())
                .await?;
            Ok(stream.try_collect().await?)
        })?;
        for batch in batches {
            let handles = batch
                .column_by_name("value")
                .and_then(|c| {
                    c.as_any()
                        .downcast_ref::<arrow_array::StringArray>()
                        .cloned()
                })
                .ok_or_else(|| {
                    EngineError::Restore(format!("sink {uid:?}: pending commits are not strings"))
                })?;
            for record in handles.iter().flatten() {
                let (checkpoint, token) =
                    crate::sink::pending::parse_record(record, sp.manifest().checkpoint_id);
                sink.commit(checkpoint, token)?;
            }
        }
    }
    Ok(())
}

/// State of uids the job lacks is an error (listing them) unless allowed.
pub(super) fn check_restorable(job: &Job, sp: &SavepointReader, allow: bool) -> Result<()> {
    let uids = job.uids();
    let dropped: Vec<String> = sp
        .manifest()
        .operators
        .iter()
        .filter(|o| !o.states.is_empty() || o.source.is_some())
        .filter(|o| !uids.contains(&o.uid.as_str()))
        .map(|o| o.uid.clone())
        .collect();
    if !dropped.is_empty() && !allow {
        return Err(EngineError::Restore(format!(
            "the savepoint has state for operators this job lacks: {}; pass --allow-non-restored-state to drop it",
            dropped.join(", ")
        )));
    }
    for stage in &job.stages {
        let Some(uid) = &stage.uid else { continue };
        let Some(op) = sp.manifest().operator(uid) else {
            continue;
        };
        for st in &op.states {
            if !stage.states.contains(&st.name) && !allow {
                return Err(EngineError::Restore(format!(
                    "operator {uid:?}: the savepoint has state {:?} the job does not declare; pass --allow-non-restored-state to drop it",
                    st.name
                )));
            }
        }
    }
    Ok(())
}

/// Loads the part of each state that subtask `i` of `p` owns.
pub(super) fn restore_subtask(
    io: &Io,
    sp: &SavepointReader,
    uid: &str,
    states: &[String],
    ops: &mut [Box<dyn ErasedOp>],
    i: u32,
    p: u32,
) -> Result<()> {
    let Some(op) = sp.manifest().operator(uid) else {
        return Ok(());
    };
    let range = HashRange::for_subtask(i, p)
        .ok_or_else(|| EngineError::Internal("subtask range".into()))?;
    for name in states {
        let Some(entry) = op.state(name) else {
            continue;
        };
        let first = ops
            .first_mut()
            .ok_or_else(|| EngineError::Internal("stateful stage without operator".into()))?;
        let in_context = |e: EngineError| match e {
            EngineError::Restore(m) => {
                EngineError::Restore(format!("operator {uid:?}, state {name:?}: {m}"))
            }
            other => other,
        };
        if entry.kind == StateKind::OperatorList {
            // The share the list's redistribution mode deals the subtask.
            let list = block_on(io, async {
                Ok(sp.read_operator_list(uid, name, i, p).await?)
            })?;
            first.reserve(name, list.num_rows());
            first.restore(name, &list).map_err(in_context)?;
            continue;
        }
        // Keyed state: the rows of the subtask's hash range, layer by layer (a hash table
        // needs no key-hash order, so delta layers are applied in turn, not merged), each
        // batch into the table as it is decoded: the next batch's buffers reuse the freed
        // ones (decoding the whole range first held it twice and faulted in fresh pages).
        first.reserve(name, rows_in(entry, range));
        let options = ReadOptions {
            hash_range: Some(range),
            ..Default::default()
        };
        block_on(io, async {
            use futures::TryStreamExt;
            let mut rows = sp.read_state_layers(uid, name, options).await?;
            while let Some(next) = rows.try_next().await? {
                match next {
                    LayerRows::Upserts(batch) => first.restore(name, &batch),
                    LayerRows::Deletes(batch) => first.restore_deletes(name, &batch),
                }
                .map_err(in_context)?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// About how many rows of keyed state `entry`'s base lie in `range`: each base shard's
/// rows in proportion to the share of its hash range inside `range` (key hashes are
/// uniform). Delta layers are left out: their rows are mostly changes and deletes of keys
/// the base holds (counting them sized tables for up to 1.5 times the rows, a power of two
/// more memory per bucket), and the few new keys grow the table. A size hint, never a
/// count.
fn rows_in(entry: &rewind_savepoint::format::StateEntry, range: HashRange) -> usize {
    let width = |r: HashRange| (r.end() - r.start()) as f64 + 1.0;
    let rows: f64 = entry
        .shards
        .iter()
        .filter(|s| !s.is_delta())
        .map(|s| {
            let Some(shard) = s.hash_range else {
                return s.rows as f64;
            };
            shard
                .intersection(&range)
                .map_or(0.0, |inside| s.rows as f64 * width(inside) / width(shard))
        })
        .sum();
    rows.ceil() as usize
}

/// What restoring `options.from_savepoint` into `job` would do, for people to read before
/// running: per operator the state it takes (and at which parallelism), operators that
/// start empty, and state that would be dropped.
pub fn restore_plan(job: &Job, options: &RunOptions) -> Result<String> {
    use std::fmt::Write;
    let mut out = String::new();
    let Some(location) = &options.from_savepoint else {
        return Ok("no --from-savepoint: every operator starts empty".into());
    };
    let sp = open_savepoint(&*Io::start()?, location)?;
    let m = sp.manifest();
    let _ = writeln!(out, "restore plan from savepoint {} ({location}):", m.id);
    let default_p = options.parallelism.unwrap_or(1).max(1);
    for stage in &job.stages {
        let p = stage.parallelism.unwrap_or(default_p);
        let Some(uid) = &stage.uid else {
            let _ = writeln!(out, "  {:<24} stateless", stage.name);
            continue;
        };
        match m.operator(uid) {
            None => {
                let _ = writeln!(out, "  {uid:<24} new: starts empty (parallelism {p})");
            }
            Some(op) => {
                let mut parts: Vec<String> = op
                    .states
                    .iter()
                    .map(|s| format!("state {:?} ({} rows)", s.name, s.rows()))
                    .collect();
                if let Some(src) = &op.source {
                    parts.push(format!("{} source splits", src.splits.len()));
                }
                let rescale = if op.parallelism == p {
                    String::new()
                } else {
                    format!(", parallelism {} -> {p}", op.parallelism)
                };
                let _ = writeln!(
                    out,
                    "  {uid:<24} restores {}{rescale}",
                    if parts.is_empty() {
                        "nothing".into()
                    } else {
                        parts.join(", ")
                    }
                );
            }
        }
    }
    let uids = job.uids();
    for op in m
        .operators
        .iter()
        .filter(|o| !uids.contains(&o.uid.as_str()))
    {
        let verdict = if options.allow_non_restored_state {
            "dropped (allowed)"
        } else {
            "refused: pass --allow-non-restored-state to drop it"
        };
        let _ = writeln!(
            out,
            "  {:<24} not in this job: its state would be {verdict}",
            op.uid
        );
    }
    Ok(out)
}
