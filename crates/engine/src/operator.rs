//! The type-erased operator interface every stage runs: records in flight ([`Rec`]),
//! operators ([`ErasedOp`]) and the snapshots of their state ([`StateSnapshot`]), sources
//! and split readers ([`ErasedSource`], [`ErasedReader`]), and the function types stages
//! are built from. The bottom of the engine: the typed API (`job`), the operators (`keyed`,
//! `operator_state`, `window`, `time`) and the runtime are all built on it.

use std::any::Any;
use std::sync::Arc;

use arrow_array::RecordBatch;
use rewind_savepoint::StateSpec;
use rewind_savepoint::format::{HashRange, SplitEntry};

use crate::{EngineError, Result};

/// A record in flight between operators with its event time (type-erased; the API keeps
/// types straight).
pub(crate) struct Rec {
    /// Event time in milliseconds, [`NO_TIMESTAMP`] if the source assigns none.
    ts: i64,
    value: Box<dyn Any + Send>,
}

const NO_TIMESTAMP: i64 = i64::MIN;

impl Rec {
    pub(crate) fn new<T: Send + 'static>(value: T, timestamp: Option<i64>) -> Rec {
        Rec {
            ts: timestamp.unwrap_or(NO_TIMESTAMP),
            value: Box::new(value),
        }
    }

    pub(crate) fn timestamp(&self) -> Option<i64> {
        timestamp_of(self.ts)
    }

    pub(crate) fn set_timestamp(&mut self, timestamp: i64) {
        self.ts = timestamp;
    }

    pub(crate) fn downcast<T: 'static>(self) -> Result<T> {
        self.value
            .downcast::<T>()
            .map(|b| *b)
            .map_err(|_| EngineError::Internal("record of an unexpected type".into()))
    }

    pub(crate) fn downcast_ref<T: 'static>(&self) -> Result<&T> {
        self.value
            .downcast_ref::<T>()
            .ok_or_else(|| EngineError::Internal("record of an unexpected type".into()))
    }
}

/// Records of one type on their way to another thread, unboxed: a record is boxed and
/// unboxed on the thread that made or uses it, so each allocation is freed by the thread
/// that made it, which the allocator serves from its thread cache (a box freed on another
/// thread costs several times more and contends for the allocating thread's arena).
pub(crate) trait Batch: Send {
    fn push(&mut self, rec: Rec) -> Result<()>;
    fn len(&self) -> usize;
    /// Hands every record to `f`, in order; stops at the first error.
    fn drain_into(self: Box<Self>, f: &mut dyn FnMut(Rec) -> Result<()>) -> Result<()>;
    fn as_any(&self) -> &dyn Any;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

/// An operator that knows its input type: it takes channel batches unboxed (the box and
/// free of each record were a fifth of a keyed count's time) and looks up the state of a
/// few records before processing them, so their cache misses overlap instead of stalling
/// each record. Its [`ErasedOp`] methods call [`process_typed`] and [`process_typed_batch`].
pub(crate) trait TypedInput {
    type In: Send + 'static;
    /// Brings the state of `chunk`'s records (with batch timestamps) into the cache. It
    /// may create state they are about to write (the window operator creates their new
    /// windows): every record of a warmed chunk is processed next.
    fn warm(&mut self, chunk: &[(i64, Self::In)]);
    fn process_input(
        &mut self,
        input: Self::In,
        timestamp: Option<i64>,
        out: &mut Vec<Rec>,
    ) -> Result<()>;
    /// Processes a chunk of records (with batch timestamps) in order, leaving it empty:
    /// warms their state, then processes each. An operator that can write a chunk's
    /// state in one pass does so instead.
    fn process_chunk(
        &mut self,
        chunk: &mut Vec<(i64, Self::In)>,
        out: &mut Vec<Rec>,
    ) -> Result<()> {
        warm_then_process(self, chunk, out)
    }
}

/// [`TypedInput::process_chunk`]'s default: warms the chunk's state, then processes each
/// record.
pub(crate) fn warm_then_process<O: TypedInput + ?Sized>(
    op: &mut O,
    chunk: &mut Vec<(i64, O::In)>,
    out: &mut Vec<Rec>,
) -> Result<()> {
    op.warm(chunk);
    for (ts, input) in chunk.drain(..) {
        op.process_input(input, timestamp_of(ts), out)?;
    }
    Ok(())
}

/// [`ErasedOp::process`] of a [`TypedInput`] operator.
pub(crate) fn process_typed<O: TypedInput>(op: &mut O, rec: Rec, out: &mut Vec<Rec>) -> Result<()> {
    let timestamp = rec.timestamp();
    op.process_input(rec.downcast()?, timestamp, out)
}

/// [`ErasedOp::process_batch`] of a [`TypedInput`] operator: the records unboxed, warmed
/// 32 at a time before they are processed.
pub(crate) fn process_typed_batch<O: TypedInput>(
    op: &mut O,
    batch: Box<dyn Batch>,
    out: &mut Vec<Rec>,
) -> Result<()> {
    const AHEAD: usize = 32;
    let records = match unboxed::<O::In>(batch) {
        Ok(records) => records,
        Err(batch) => return batch.drain_into(&mut |r| process_typed(op, r, out)),
    };
    let mut rest = records.into_iter();
    let mut chunk = Vec::with_capacity(AHEAD);
    loop {
        chunk.extend(rest.by_ref().take(AHEAD));
        if chunk.is_empty() {
            return Ok(());
        }
        op.process_chunk(&mut chunk, out)?;
    }
}

/// The records of `batch` with their timestamps, unboxed, when they are `T`s.
fn unboxed<T: Send + 'static>(
    batch: Box<dyn Batch>,
) -> std::result::Result<Vec<(i64, T)>, Box<dyn Batch>> {
    if !batch.as_any().is::<Typed<T>>() {
        return Err(batch);
    }
    match batch.into_any().downcast::<Typed<T>>() {
        Ok(typed) => Ok(typed.0),
        // Checked just above; an empty batch loses nothing.
        Err(_) => Ok(Vec::new()),
    }
}

/// A timestamp as [`Rec::timestamp`] gives it, from the form batches store.
pub(crate) fn timestamp_of(ts: i64) -> Option<i64> {
    (ts != NO_TIMESTAMP).then_some(ts)
}

/// Makes an empty [`Batch`] of the records entering a stage.
pub(crate) type NewBatch = Arc<dyn Fn() -> Box<dyn Batch> + Send + Sync>;

/// [`NewBatch`] for records of type `T`.
pub(crate) fn batch_of<T: Send + 'static>() -> NewBatch {
    Arc::new(|| Box::new(Typed::<T>(Vec::new())) as Box<dyn Batch>)
}

struct Typed<T>(Vec<(i64, T)>);

impl<T: Send + 'static> Batch for Typed<T> {
    fn push(&mut self, rec: Rec) -> Result<()> {
        let ts = rec.ts;
        self.0.push((ts, rec.downcast::<T>()?));
        Ok(())
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn drain_into(self: Box<Self>, f: &mut dyn FnMut(Rec) -> Result<()>) -> Result<()> {
        for (ts, value) in self.0 {
            f(Rec {
                ts,
                value: Box::new(value),
            })?;
        }
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// Whether an operator fired all that was due ([`ErasedOp::on_watermark`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Firing {
    Done,
    /// It stopped after about [`FIRING_CHUNK`] records: call again with the same watermark.
    More,
}

/// About how many records an operator fires per call. The worker runs them through the
/// chain before asking for more, so they are used while still in cache: a million windows
/// fired at once were a million boxed results written, then read back after the last.
pub(crate) const FIRING_CHUNK: usize = 4096;

pub(crate) trait ErasedOp: Send {
    fn process(&mut self, rec: Rec, out: &mut Vec<Rec>) -> Result<()>;
    /// Processes a channel batch, in order (all its records are this operator's input).
    /// An operator that knows its input type takes it unboxed ([`TypedInput`]).
    fn process_batch(&mut self, batch: Box<dyn Batch>, out: &mut Vec<Rec>) -> Result<()> {
        batch.drain_into(&mut |r| self.process(r, out))
    }
    /// The operator's input watermark advanced to `watermark`: fire what is due, or about
    /// [`FIRING_CHUNK`] records of it ([`Firing::More`]).
    fn on_watermark(&mut self, _watermark: i64, _out: &mut Vec<Rec>) -> Result<Firing> {
        Ok(Firing::Done)
    }
    /// The earliest processing-time timer, if any.
    fn next_processing_timer(&self) -> Option<i64> {
        None
    }
    /// The wall clock reached `now`: fire what is due.
    fn on_processing_time(&mut self, _now: i64, _out: &mut Vec<Rec>) -> Result<()> {
        Ok(())
    }
    /// After a restore: the watermark the restored job had reached.
    fn set_initial_watermark(&mut self, _watermark: i64) {}
    fn snapshot(&mut self, _at: SnapshotAt) -> Vec<Box<dyn StateSnapshot>> {
        Vec::new()
    }
    fn restore(&mut self, _state: &str, _batch: &RecordBatch) -> Result<()> {
        Err(EngineError::Internal(
            "restore into a stateless operator".into(),
        ))
    }
    /// Restoring a delta layer of state `state`: removes the identities of `batch`'s rows.
    fn restore_deletes(&mut self, state: &str, _batch: &RecordBatch) -> Result<()> {
        Err(EngineError::Restore(format!(
            "state {state:?} has a delta layer's deletes, but this operator's state takes none"
        )))
    }
    /// Before restoring state `state`: about `rows` rows will come, so tables may be
    /// sized once instead of growing step by step.
    fn reserve(&mut self, _state: &str, _rows: usize) {}
}

/// Makes a stage's operator for the subtask that owns a hash range (keyed state tables
/// are laid out by it).
pub(crate) type OpFactory = Arc<dyn Fn(HashRange) -> Box<dyn ErasedOp> + Send + Sync>;
pub(crate) type HashFn = Arc<dyn Fn(&Rec) -> Result<u64> + Send + Sync>;
/// Appends a record's JSON line (without the newline) to a sink subtask's buffer.
pub(crate) type RenderFn = Arc<dyn Fn(&Rec, &mut Vec<u8>) -> Result<()> + Send + Sync>;
pub(crate) type KeyFn<T, K> = Arc<dyn Fn(&T) -> K + Send + Sync>;

pub(crate) trait ErasedSource: Send + Sync {
    fn splits(&self) -> Vec<SplitEntry>;
    fn reader(&self, split: &SplitEntry) -> Result<Box<dyn ErasedReader>>;
    fn discovery_interval(&self) -> Option<std::time::Duration>;
    fn discover(&self) -> Result<Vec<SplitEntry>>;
}

pub(crate) trait ErasedReader: Send {
    fn next(&mut self) -> Option<Rec>;
    fn finished(&self) -> bool;
    fn position(&self) -> serde_json::Value;
    /// The split's watermark, if its records carry event time.
    fn watermark(&self) -> Option<i64> {
        None
    }
}

/// Where a snapshot is taken: at barrier `id`. Checkpoints are written whole or as the
/// changes since a completed checkpoint of this run; none will be asked for changes since
/// a barrier before `needed_from`, so what only those need may be forgotten.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SnapshotAt {
    pub id: u64,
    pub needed_from: u64,
    /// Whether later checkpoints may be written as changes since this one: only then do
    /// keyed states keep a record of the keys they remove (else it would grow for ever).
    pub track_removals: bool,
}

/// One part of a snapshot's rows: each row's key hash (none for operator state) and the
/// rows.
pub(crate) type Part = (Vec<u64>, RecordBatch);

/// A snapshot's rows in parts, in key-hash order, at least one part (maybe empty).
pub(crate) type Parts<'a> = Box<dyn Iterator<Item = Result<Part>> + Send + 'a>;

/// State captured at a barrier, converted to Arrow when the checkpoint is written.
pub(crate) trait StateSnapshot: Send + Sync {
    fn state(&self) -> &str;
    fn spec(&self) -> Result<StateSpec>;
    /// The state's input columns (without `key_hash`), sorted by key hash, all inside
    /// `range`, and each row's key hash: in parts of a few thousand rows for keyed value,
    /// list and map state (each converted when the writer asks for it, after encoding
    /// the one before), in one for the others.
    fn parts(&self, range: HashRange) -> Parts<'_>;
    /// Whether [`delta_parts`](Self::delta_parts) can tell what changed (else the state
    /// is always written whole).
    fn has_deltas(&self) -> bool {
        false
    }
    /// The rows written since barrier `since` (`deleted` false) and the rows removed since
    /// then (`deleted` true, value null), as [`parts`](Self::parts) with a `deleted`
    /// column: a delta layer over the checkpoint of barrier `since` (format 1.1).
    fn delta_parts(&self, _range: HashRange, _since: u64) -> Parts<'_> {
        let error =
            crate::EngineError::Internal(format!("state {} is always written whole", self.state()));
        Box::new(std::iter::once(Err(error)))
    }

    /// Every part of [`parts`](Self::parts) in one batch.
    #[cfg(test)]
    fn to_batch(&self, range: HashRange) -> Result<Part> {
        concat_parts(self.parts(range))
    }

    /// Every part of [`delta_parts`](Self::delta_parts) in one batch.
    #[cfg(test)]
    fn to_delta(&self, range: HashRange, since: u64) -> Result<Part> {
        concat_parts(self.delta_parts(range, since))
    }
}

#[cfg(test)]
fn concat_parts(parts: Parts<'_>) -> Result<Part> {
    let parts = parts.collect::<Result<Vec<Part>>>()?;
    let schema = parts
        .first()
        .map(|(_, b)| b.schema())
        .ok_or_else(|| crate::EngineError::Internal("no part".into()))?;
    let hashes = parts.iter().flat_map(|(h, _)| h.iter().copied()).collect();
    let batch = arrow_select::concat::concat_batches(&schema, parts.iter().map(|(_, b)| b))
        .map_err(|e| crate::EngineError::Internal(e.to_string()))?;
    Ok((hashes, batch))
}
