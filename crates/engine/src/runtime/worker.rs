//! A subtask's thread: the source loop (splits, barriers, watermarks, discovery) and the
//! operator loop (alignment, watermarks, timers), and how records leave it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError};
use std::time::Duration;

use rewind_savepoint::format::{SplitEntry, subtask_for_hash};

use super::messages::{DOWNSTREAM_STOPPED, Envelope, FINAL, Msg, SourceControl, UPSTREAM_VANISHED};
use super::stats::Counters;
use crate::coordinator::{Ack, CoordinatorMsg};
use crate::operator::StateSnapshot;
use crate::operator::{
    Batch, ErasedOp, ErasedReader, ErasedSource, Firing, HashFn, NewBatch, Rec, RenderFn,
};
use crate::sink::Sink;
use crate::sink::pending::SubtaskOutput;
use crate::time::{Change, InputWatermarks};
use crate::{EngineError, Result};

#[derive(Clone)]
pub(super) enum Route {
    RoundRobin(usize),
    Hash(HashFn),
}

/// Records per channel message.
const BATCH: usize = 256;

/// The longest a source holds records back to fill a batch.
const MAX_BUFFER_DELAY: Duration = Duration::from_millis(20);

pub(super) struct Output {
    pub(super) senders: Vec<SyncSender<Envelope>>,
    /// Records not yet sent, per downstream subtask.
    pub(super) buffers: Vec<Box<dyn Batch>>,
    pub(super) new_batch: NewBatch,
    pub(super) route: Route,
}

/// A sink subtask's output since its last checkpoint: chunks already staged, and the
/// lines after them. Output is staged as it accumulates, so memory stays at about one
/// chunk per sink subtask however long a checkpoint takes, and a slow sink slows the
/// subtask (backpressure) instead of filling memory.
pub(super) struct SinkOutput {
    sink: Arc<dyn Sink>,
    render: RenderFn,
    buffer: Vec<u8>,
    /// (seq, token) of the chunks staged since the last checkpoint.
    staged: Vec<(u64, String)>,
    /// The number of the next chunk, in output order.
    next_seq: u64,
    chunk_bytes: usize,
}

/// How long this thread has waited, runnable, for a CPU since it started (the second
/// field of Linux's `/proc/thread-self/schedstat`, in ns); `None` elsewhere. Separates a
/// pause's own work from preemption on a busy machine.
fn runqueue_wait() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().nth(1)?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Attempts at staging a chunk before the subtask fails; waits double from 100 ms
/// between them (about 25 s in all), holding the subtask (and so its input) meanwhile.
const STAGE_ATTEMPTS: u32 = 9;

impl SinkOutput {
    pub(super) fn new(sink: Arc<dyn Sink>, render: RenderFn, chunk_bytes: usize) -> Self {
        SinkOutput {
            sink,
            render,
            buffer: Vec::new(),
            staged: Vec::new(),
            next_seq: 0,
            chunk_bytes,
        }
    }

    fn add(&mut self, subtask: u32, r: &Rec) -> Result<()> {
        (self.render)(r, &mut self.buffer)?;
        self.buffer.push(b'\n');
        if self.buffer.len() >= self.chunk_bytes {
            self.stage_buffer(subtask)?;
        }
        Ok(())
    }

    /// Stages the buffer as the next chunk, retrying a failing sink with backoff.
    fn stage_buffer(&mut self, subtask: u32) -> Result<()> {
        let mut wait = Duration::from_millis(100);
        for attempt in 1..=STAGE_ATTEMPTS {
            match self.sink.stage(subtask, self.next_seq, &self.buffer) {
                Ok(token) => {
                    self.staged.push((self.next_seq, token));
                    self.next_seq += 1;
                    self.buffer.clear();
                    return Ok(());
                }
                Err(e) if attempt == STAGE_ATTEMPTS => {
                    return Err(EngineError::Operator {
                        operator: "sink".into(),
                        message: format!("staging output failed {attempt} times: {e}"),
                    });
                }
                Err(e) => {
                    tracing::warn!(
                        subtask,
                        attempt,
                        "staging output failed, retrying in {wait:?}: {e}"
                    );
                    std::thread::sleep(wait);
                    wait *= 2;
                }
            }
        }
        Ok(())
    }

    /// At a barrier: the chunks staged since the last one, and the rest of the output
    /// numbered as the next chunk (the coordinator stages it).
    fn take(&mut self) -> SubtaskOutput {
        let staged = std::mem::take(&mut self.staged);
        if self.buffer.is_empty() {
            return SubtaskOutput { staged, rest: None };
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let rest = Some((seq, std::mem::take(&mut self.buffer)));
        SubtaskOutput { staged, rest }
    }
}

pub(super) struct Worker {
    pub(super) stage: usize,
    pub(super) subtask: u32,
    pub(super) ops: Vec<Box<dyn ErasedOp>>,
    /// One reusable output buffer per operator (see `run_from`).
    pub(super) scratch: Vec<Vec<Rec>>,
    pub(super) output: Option<Output>,
    pub(super) sink: Option<SinkOutput>,
    pub(super) acks: Sender<CoordinatorMsg>,
    pub(super) name: String,
    /// Event time the subtask starts at (a restored job's watermark).
    pub(super) initial_watermark: i64,
    pub(super) idle_timeout: Option<Duration>,
    pub(super) last_flush: std::time::Instant,
    /// Where a source subtask publishes how many records it read.
    pub(super) counters: std::sync::Arc<Counters>,
}

impl Worker {
    fn fail(&self, message: String) -> EngineError {
        EngineError::Operator {
            operator: format!("{} (subtask {})", self.name, self.subtask),
            message,
        }
    }

    /// Runs a record through the chain and sends what comes out.
    fn push(&mut self, rec: Rec) -> Result<()> {
        self.run_from(0, rec)
    }

    /// Runs a channel batch through the chain: the first operator takes it whole
    /// ([`ErasedOp::process_batch`]), then what it gave runs through the rest.
    fn push_batch(&mut self, records: Box<dyn crate::operator::Batch>) -> Result<()> {
        if self.ops.is_empty() {
            return records.drain_into(&mut |r| self.emit(r));
        }
        self.run_at(0, |op, out| op.process_batch(records, out))
    }

    /// Runs records (leaving `batch` empty) through the chain from operator `from` on and
    /// sends what comes out.
    fn run_chain(&mut self, from: usize, batch: &mut Vec<Rec>) -> Result<()> {
        for r in batch.drain(..) {
            self.run_from(from, r)?;
        }
        Ok(())
    }

    /// Runs one record through operators `from..`, depth first, and sends what comes out.
    fn run_from(&mut self, from: usize, rec: Rec) -> Result<()> {
        if from >= self.ops.len() {
            return self.emit(rec);
        }
        self.run_at(from, |op, out| op.process(rec, out))
    }

    /// Lets operator `at` (which exists) work with `step`, then runs what it gave through
    /// the rest of the chain. Each operator's output buffer is reused from call to call:
    /// nothing is allocated per record here.
    fn run_at(
        &mut self,
        at: usize,
        step: impl FnOnce(&mut dyn ErasedOp, &mut Vec<Rec>) -> Result<()>,
    ) -> Result<()> {
        let mut out = std::mem::take(&mut self.scratch[at]);
        let mut result = step(self.ops[at].as_mut(), &mut out);
        for r in out.drain(..) {
            if result.is_ok() {
                result = self.run_from(at + 1, r);
            }
        }
        self.scratch[at] = out;
        result
    }

    /// Sends a record that left the chain: to the stage's sink, and downstream.
    fn emit(&mut self, r: Rec) -> Result<()> {
        if let Some(sink) = &mut self.sink {
            sink.add(self.subtask, &r)?;
        }
        if let Some(out) = &mut self.output {
            let target = match &mut out.route {
                Route::RoundRobin(next) => {
                    *next = (*next + 1) % out.senders.len();
                    *next
                }
                Route::Hash(f) => subtask_for_hash(f(&r)?, out.senders.len() as u32) as usize,
            };
            out.buffers[target].push(r)?;
            if out.buffers[target].len() >= BATCH {
                let records = std::mem::replace(&mut out.buffers[target], (out.new_batch)());
                out.senders[target]
                    .send(Envelope {
                        from: self.subtask as usize,
                        msg: Msg::Recs(records),
                    })
                    .map_err(|_| self.fail(DOWNSTREAM_STOPPED.into()))?;
            }
        }
        Ok(())
    }

    /// Event time reached `watermark`: each operator fires what is due (its output runs
    /// through the rest of the chain), then the watermark goes downstream, after that output.
    fn advance_watermark(&mut self, watermark: i64) -> Result<()> {
        let mut out = Vec::new();
        for j in 0..self.ops.len() {
            // In chunks: each runs through the chain before the operator fires more.
            while self.ops[j].on_watermark(watermark, &mut out)? == Firing::More {
                // `More` means a chunk is full: an operator saying it with nothing
                // emitted would be called forever.
                debug_assert!(
                    !out.is_empty(),
                    "an operator fired nothing but asked for more"
                );
                self.run_chain(j + 1, &mut out)?;
            }
            self.run_chain(j + 1, &mut out)?;
        }
        self.broadcast(|| Msg::Watermark(watermark))
    }

    /// Fires processing-time timers due now, if any.
    fn fire_processing_timers(&mut self) -> Result<Option<std::time::Instant>> {
        let next = self
            .ops
            .iter()
            .filter_map(|o| o.next_processing_timer())
            .min();
        let Some(next) = next else { return Ok(None) };
        let now = crate::keyed::now_ms();
        if next > now {
            let wait = Duration::from_millis((next - now) as u64);
            return Ok(Some(std::time::Instant::now() + wait));
        }
        let mut out = Vec::new();
        for j in 0..self.ops.len() {
            self.ops[j].on_processing_time(now, &mut out)?;
            self.run_chain(j + 1, &mut out)?;
        }
        self.flush()?;
        Ok(None)
    }

    /// Sends every buffered record: before a barrier or the end, records keep their place.
    fn flush(&mut self) -> Result<()> {
        self.last_flush = std::time::Instant::now();
        if let Some(out) = &mut self.output {
            for (target, buffer) in out.buffers.iter_mut().enumerate() {
                if buffer.len() == 0 {
                    continue;
                }
                let records = std::mem::replace(buffer, (out.new_batch)());
                if out.senders[target]
                    .send(Envelope {
                        from: self.subtask as usize,
                        msg: Msg::Recs(records),
                    })
                    .is_err()
                {
                    return Err(EngineError::Operator {
                        operator: format!("{} (subtask {})", self.name, self.subtask),
                        message: DOWNSTREAM_STOPPED.into(),
                    });
                }
            }
        }
        Ok(())
    }

    fn broadcast(&mut self, make: impl Fn() -> Msg) -> Result<()> {
        self.flush()?;
        if let Some(out) = &self.output {
            for s in &out.senders {
                s.send(Envelope {
                    from: self.subtask as usize,
                    msg: make(),
                })
                .map_err(|_| self.fail(DOWNSTREAM_STOPPED.into()))?;
            }
        }
        Ok(())
    }

    /// Snapshots the chain's state and hands it to the coordinator with the staged output.
    fn ack(&mut self, id: u64, splits: Vec<SplitEntry>) -> Result<()> {
        let waited_before = runqueue_wait();
        let started = std::time::Instant::now();
        let at = crate::operator::SnapshotAt {
            id,
            needed_from: self
                .counters
                .committed_checkpoint
                .load(std::sync::atomic::Ordering::Acquire),
            track_removals: self.counters.incremental,
        };
        let snapshots: Vec<std::sync::Arc<dyn StateSnapshot>> = self
            .ops
            .iter_mut()
            .flat_map(|o| o.snapshot(at))
            .map(std::sync::Arc::from)
            .collect();
        let sync_pause = started.elapsed();
        let sync_pause_waiting = runqueue_wait()
            .zip(waited_before)
            .map(|(after, before)| after.saturating_sub(before))
            .unwrap_or_default();
        let ack = Ack {
            sync_pause,
            sync_pause_waiting,
            id,
            stage: self.stage,
            subtask: self.subtask,
            splits,
            snapshots,
            sink_output: self.sink.as_mut().map(SinkOutput::take),
        };
        self.acks
            .send(CoordinatorMsg::Ack(ack))
            .map_err(|_| self.fail("coordinator stopped".into()))
    }

    pub(super) fn run_source(
        mut self,
        mut readers: Vec<(SplitEntry, Box<dyn ErasedReader>)>,
        control: Receiver<SourceControl>,
        mut discovery: Option<Discovery>,
    ) -> Result<()> {
        let positions = |readers: &Vec<(SplitEntry, Box<dyn ErasedReader>)>| -> Vec<SplitEntry> {
            readers
                .iter()
                .map(|(s, r)| SplitEntry {
                    position: r.position(),
                    watermark: r.watermark(),
                    ..s.clone()
                })
                .collect()
        };
        let mut live: Vec<bool> = vec![true; readers.len()];
        let mut clock = SourceClock::new(readers.len(), self.idle_timeout);
        let mut quiet = 0usize;
        let mut next = 0usize;
        // Records to read before looking at the control channel again: a look per record
        // was a quarter of a fast source's time; a barrier waits at most this many records.
        const CONTROL_EVERY: u32 = 64;
        let mut unpolled = 0u32;
        loop {
            if unpolled > 0 {
                unpolled -= 1;
            } else {
                unpolled = CONTROL_EVERY;
                match control.try_recv() {
                    Ok(SourceControl::Cancel) => {
                        self.broadcast(|| Msg::End)?;
                        return Ok(());
                    }
                    Ok(SourceControl::Trigger {
                        id,
                        stop,
                        drain,
                        pause,
                    }) => {
                        if drain {
                            self.advance_watermark(i64::MAX)?;
                        }
                        self.publish_read(&mut clock);
                        self.ack(id, positions(&readers))?;
                        self.broadcast(|| Msg::Barrier(id))?;
                        if stop && !(pause && self.paused_until_written(&control)?) {
                            self.broadcast(|| Msg::End)?;
                            return Ok(());
                        }
                        // Another message may wait: look again at once.
                        unpolled = 0;
                        continue;
                    }
                    // Only meaningful while paused after a stop barrier.
                    Ok(SourceControl::Finish) | Ok(SourceControl::Resume) => {}
                    Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => {}
                }
            }
            if let Some(d) = &mut discovery {
                for (split, reader) in d.new_splits()? {
                    readers.push((split, reader));
                    live.push(true);
                    clock.add_split();
                }
            }
            if !live.iter().any(|l| *l) && discovery.is_none() {
                // The input is complete: event time runs to the end, firing what is left.
                self.advance_watermark(i64::MAX)?;
                self.publish_read(&mut clock);
                self.ack(FINAL, positions(&readers))?;
                self.broadcast(|| Msg::Barrier(FINAL))?;
                self.broadcast(|| Msg::End)?;
                return Ok(());
            }
            if readers.is_empty() {
                // Only discovery can bring work: wait for it (and for barriers), and do not
                // hold back downstream event time meanwhile.
                self.source_watermark(&mut clock, None)?;
                std::thread::sleep(Duration::from_millis(1));
                unpolled = 0;
                continue;
            }
            next = (next + 1) % readers.len();
            if !live[next] {
                continue;
            }
            match readers[next].1.next() {
                Some(rec) => {
                    quiet = 0;
                    self.push(rec)?;
                    clock.record(next);
                    // A slow source sends what it has every few milliseconds rather than
                    // waiting for full batches.
                    if clock.since_emit % 32 == 0 && self.last_flush.elapsed() >= MAX_BUFFER_DELAY {
                        self.flush()?;
                        // Event time, too, moves on at least this often.
                        clock.look_now = true;
                    }
                    if clock.due() {
                        let wm = clock.watermark(&readers, &live);
                        self.source_watermark(&mut clock, wm)?;
                    }
                }
                None if readers[next].1.finished() => {
                    live[next] = false;
                    unpolled = 0;
                }
                // A followed split with nothing new: send what is buffered, so records do
                // not wait for the next barrier, and see whether the split went idle.
                None => {
                    unpolled = 0;
                    self.flush()?;
                    clock.nothing_new(next);
                    // A whole round without records: rest briefly instead of spinning.
                    quiet += 1;
                    if quiet >= readers.len() {
                        quiet = 0;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    let wm = clock.watermark(&readers, &live);
                    self.source_watermark(&mut clock, wm)?;
                }
            }
        }
    }

    /// After a stop barrier: reads nothing until the coordinator says whether the stop's
    /// savepoint was written. `true` when it failed and the source reads on.
    fn paused_until_written(&mut self, control: &Receiver<SourceControl>) -> Result<bool> {
        self.flush()?;
        loop {
            match control.recv() {
                Ok(SourceControl::Resume) => return Ok(true),
                Ok(SourceControl::Finish) | Ok(SourceControl::Cancel) | Err(_) => {
                    return Ok(false);
                }
                // No checkpoint is triggered while a stop is pending.
                Ok(SourceControl::Trigger { .. }) => {}
            }
        }
    }

    /// Adds the records read since the last look to the job's count.
    fn publish_read(&self, clock: &mut SourceClock) {
        let read = std::mem::take(&mut clock.since_emit) as u64;
        clock.look_now = false;
        self.counters
            .read
            .fetch_add(read, std::sync::atomic::Ordering::Relaxed);
    }

    /// Passes on a source subtask's watermark when it advanced, and idleness.
    fn source_watermark(&mut self, clock: &mut SourceClock, wm: Option<i64>) -> Result<()> {
        self.publish_read(clock);
        match wm {
            None if !clock.idle_sent => {
                clock.idle_sent = true;
                self.broadcast(|| Msg::Idle)
            }
            None => Ok(()),
            Some(w) if w > clock.emitted || clock.idle_sent => {
                clock.idle_sent = false;
                clock.emitted = clock.emitted.max(w);
                let w = clock.emitted;
                self.broadcast(|| Msg::Watermark(w))
            }
            Some(_) => Ok(()),
        }
    }

    /// The next input message, or `None` when `deadline` (a processing-time timer) passed
    /// first. Before waiting, buffered output goes downstream, so a quiet input does not
    /// hold records back.
    fn receive(
        &mut self,
        input: &Receiver<Envelope>,
        deadline: Option<std::time::Instant>,
    ) -> Result<Option<Envelope>> {
        match input.try_recv() {
            Ok(e) => return Ok(Some(e)),
            Err(TryRecvError::Disconnected) => return Err(self.fail(UPSTREAM_VANISHED.into())),
            Err(TryRecvError::Empty) => self.flush()?,
        }
        let got = match deadline {
            None => input.recv().map_err(|_| ()),
            Some(at) => {
                match input.recv_timeout(at.saturating_duration_since(std::time::Instant::now())) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => return Ok(None),
                    other => other.map_err(|_| ()),
                }
            }
        };
        got.map(Some)
            .map_err(|()| self.fail(UPSTREAM_VANISHED.into()))
    }

    fn watermark_change(&mut self, change: Change) -> Result<()> {
        match change {
            Change::None => Ok(()),
            Change::Emit(w) => self.advance_watermark(w),
            Change::WentIdle => self.broadcast(|| Msg::Idle),
        }
    }

    pub(super) fn run_operator(mut self, input: Receiver<Envelope>, upstream: usize) -> Result<()> {
        let mut blocked = vec![false; upstream];
        let mut ended = vec![false; upstream];
        // Inputs that delivered the final barrier: nothing but their end follows, so they
        // count as aligned for every later checkpoint (checkpoints after tasks finish).
        let mut finished = vec![false; upstream];
        let mut final_acked = false;
        let mut waiting: VecDeque<Envelope> = VecDeque::new();
        let mut barrier: Option<u64> = None;
        let mut pending_replay: VecDeque<Envelope> = VecDeque::new();
        let mut watermarks = InputWatermarks::new(upstream, self.initial_watermark);
        loop {
            let deadline = self.fire_processing_timers()?;
            let env = match pending_replay.pop_front() {
                Some(e) => e,
                None => match self.receive(&input, deadline)? {
                    Some(e) => e,
                    None => continue,
                },
            };
            if blocked[env.from] {
                waiting.push_back(env);
                continue;
            }
            match env.msg {
                Msg::Recs(records) => self.push_batch(records)?,
                Msg::Barrier(FINAL) => finished[env.from] = true,
                Msg::Barrier(id) => match barrier {
                    Some(b) if b != id => {
                        return Err(self.fail(format!("barrier {id} while aligning {b}")));
                    }
                    _ => {
                        barrier = Some(id);
                        blocked[env.from] = true;
                    }
                },
                Msg::Watermark(w) => {
                    let change = watermarks.watermark(env.from, w);
                    self.watermark_change(change)?;
                }
                Msg::Idle => {
                    let change = watermarks.set_idle(env.from);
                    self.watermark_change(change)?;
                }
                Msg::End => {
                    ended[env.from] = true;
                    let change = watermarks.end(env.from);
                    self.watermark_change(change)?;
                }
            }
            // Aligned when every input that has not ended or finished delivered the barrier.
            if let Some(id) = barrier {
                if (0..upstream).all(|u| blocked[u] || ended[u] || finished[u]) {
                    self.ack(id, Vec::new())?;
                    self.broadcast(|| Msg::Barrier(id))?;
                    barrier = None;
                    blocked.iter_mut().for_each(|b| *b = false);
                    replay_first(&mut pending_replay, &mut waiting);
                }
            }
            // Every input delivered the final barrier: this subtask's state is final.
            if barrier.is_none() && !final_acked && finished.iter().all(|f| *f) {
                final_acked = true;
                self.ack(FINAL, Vec::new())?;
                self.broadcast(|| Msg::Barrier(FINAL))?;
            }
            if barrier.is_none() && pending_replay.is_empty() && ended.iter().all(|e| *e) {
                self.broadcast(|| Msg::End)?;
                return Ok(());
            }
        }
    }
}

/// Puts what waited behind a barrier before what is left to replay: it was taken from
/// its inputs earlier, and each input's messages must keep their order.
fn replay_first(pending_replay: &mut VecDeque<Envelope>, waiting: &mut VecDeque<Envelope>) {
    let rest = std::mem::take(pending_replay);
    pending_replay.extend(waiting.drain(..));
    pending_replay.extend(rest);
}

/// A source subtask's search for new splits: each one found goes to the subtask its id
/// hashes to, so subtasks never read the same split.
pub(super) struct Discovery {
    pub(super) source: std::sync::Arc<dyn ErasedSource>,
    pub(super) known: std::collections::HashSet<String>,
    pub(super) every: Duration,
    pub(super) last: std::time::Instant,
    pub(super) subtask: u32,
    pub(super) parallelism: u32,
}

impl Discovery {
    fn new_splits(&mut self) -> Result<Vec<(SplitEntry, Box<dyn ErasedReader>)>> {
        if self.last.elapsed() < self.every {
            return Ok(Vec::new());
        }
        self.last = std::time::Instant::now();
        let mut mine = Vec::new();
        for split in self.source.discover()? {
            if !self.known.insert(split.id.clone()) {
                continue;
            }
            let owner = rewind_savepoint::format::hash_encoded_key(split.id.as_bytes())
                % u64::from(self.parallelism);
            if owner == u64::from(self.subtask) {
                let reader = self.source.reader(&split)?;
                mine.push((split, reader));
            }
        }
        Ok(mine)
    }
}

/// Per source subtask: when its splits last had records, and what it last told downstream.
pub(super) struct SourceClock {
    last_record: Vec<std::time::Instant>,
    idle: Vec<bool>,
    idle_timeout: Option<Duration>,
    since_emit: usize,
    /// Whether the watermark is due whatever `since_emit` says.
    look_now: bool,
    emitted: i64,
    idle_sent: bool,
}

/// Records between two looks at a source subtask's watermark while it reads without pause
/// (a quiet split, and each time-bound flush, look at once). A watermark that advanced
/// flushes the batches being filled, so it goes after the records before it: every 256
/// records that halved the batches of a windowed job and doubled its channel messages, and
/// the wake-ups cost its window threads a fifth of their time (`rewind-bench --only
/// windows`).
const WATERMARK_EVERY: usize = 2048;

impl SourceClock {
    fn new(splits: usize, idle_timeout: Option<Duration>) -> Self {
        SourceClock {
            last_record: vec![std::time::Instant::now(); splits],
            idle: vec![false; splits],
            idle_timeout,
            since_emit: 0,
            look_now: false,
            emitted: i64::MIN,
            idle_sent: false,
        }
    }

    fn add_split(&mut self) {
        self.last_record.push(std::time::Instant::now());
        self.idle.push(false);
    }

    fn record(&mut self, split: usize) {
        self.since_emit += 1;
        if self.idle_timeout.is_some() {
            self.last_record[split] = std::time::Instant::now();
            self.idle[split] = false;
        }
    }

    fn due(&self) -> bool {
        self.since_emit >= WATERMARK_EVERY || self.idle_sent || self.look_now
    }

    fn nothing_new(&mut self, split: usize) {
        if let Some(timeout) = self.idle_timeout {
            if self.last_record[split].elapsed() >= timeout {
                self.idle[split] = true;
            }
        }
    }

    /// The least watermark of the live, active splits; `None` when all are idle.
    fn watermark(
        &self,
        readers: &[(SplitEntry, Box<dyn ErasedReader>)],
        live: &[bool],
    ) -> Option<i64> {
        let active: Vec<usize> = (0..readers.len())
            .filter(|&i| live[i] && !self.idle[i])
            .collect();
        if active.is_empty() {
            return None;
        }
        Some(
            active
                .iter()
                .map(|&i| readers[i].1.watermark().unwrap_or(i64::MIN))
                .min()
                .unwrap_or(i64::MIN),
        )
    }
}
