//! Running a job: one thread per subtask, bounded channels between stages, aligned
//! barriers for checkpoints, and a coordinator that writes them as Rewind savepoints.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError, channel, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use rewind_savepoint::format::{HashRange, Manifest, SplitEntry, subtask_for_hash};
use rewind_savepoint::{Location, ReadOptions, SavepointReader};

use crate::coordinator::{Ack, Command, Coordinator, CoordinatorMsg};
use crate::job::{ErasedOp, Job, Rec, StageInput};
use crate::keyed::StateSnapshot;
use crate::time::{Change, InputWatermarks};
use crate::{EngineError, Result};

const DOWNSTREAM_STOPPED: &str = "downstream stopped";
const UPSTREAM_VANISHED: &str = "upstream vanished";

/// The id of the checkpoint every source takes when its input ends.
pub(crate) const FINAL: u64 = u64::MAX;

/// Records buffered between two stages, per channel: backpressure beyond this.
const CHANNEL_CAPACITY: usize = 1024;

/// How to run a job: the standard options of every Rewind application.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Restore from this savepoint or checkpoint.
    pub from_savepoint: Option<Location>,
    /// Allow state in the savepoint that no operator of the job takes.
    pub allow_non_restored_state: bool,
    /// Parallelism of every stage that does not set its own.
    pub parallelism: Option<u32>,
    /// Where periodic checkpoints go (`chk-<id>` under it).
    pub checkpoint_dir: Option<Location>,
    /// How often to checkpoint (needs `checkpoint_dir`).
    pub checkpoint_interval: Option<Duration>,
    /// Checkpoints to keep (older ones are deleted); 0 keeps all.
    pub retain_checkpoints: usize,
    /// A bounded job writes a final savepoint here when its input ends.
    pub savepoint_on_finish: Option<Location>,
}

pub(crate) enum Msg {
    /// Records in order; batched to keep the per-record cost of channels low.
    Recs(Vec<Rec>),
    Barrier(u64),
    /// The sender's event time will not go below this again.
    Watermark(i64),
    /// The sender has no active input: do not wait for its watermark until the next one.
    Idle,
    End,
}

pub(crate) struct Envelope {
    from: usize,
    msg: Msg,
}

pub(crate) enum SourceControl {
    /// Take checkpoint `id`; `stop` ends the job after it; `drain` first advances event
    /// time to the end, firing every timer and window.
    Trigger { id: u64, stop: bool, drain: bool },
}

/// Measurements of a job's checkpoints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobStats {
    /// The longest a subtask paused processing to snapshot its state.
    pub max_sync_pause: Duration,
    /// Checkpoints and savepoints written.
    pub checkpoints_written: u64,
    /// How long writing the last one took (asynchronous: processing went on).
    pub last_write: Duration,
    /// Records window operators dropped because they arrived after their windows were
    /// finished (see [`crate::WindowedStream::allowed_lateness`]).
    pub late_records_dropped: u64,
}

/// A running job.
pub struct JobHandle {
    stats: std::sync::Arc<std::sync::Mutex<JobStats>>,
    late: std::sync::Arc<std::sync::atomic::AtomicU64>,
    commands: Sender<CoordinatorMsg>,
    coordinator: Option<JoinHandle<Result<Vec<Manifest>>>>,
    workers: Vec<JoinHandle<Result<()>>>,
}

impl JobHandle {
    /// Takes a savepoint into `target` and waits for it; the job keeps running.
    pub fn savepoint(&self, target: Location) -> Result<Manifest> {
        self.command(target, false, false)
    }

    /// Takes a savepoint into `target`, then stops the job cleanly. Open windows and
    /// timers stay in the savepoint, for a job that will resume from it.
    pub fn stop_with_savepoint(mut self, target: Location) -> Result<Manifest> {
        let manifest = self.command(target, true, false)?;
        self.join()?;
        Ok(manifest)
    }

    /// Advances event time to the end (every window and event-time timer fires and its
    /// output is committed), takes a savepoint into `target` and stops: for a job that will
    /// not be resumed.
    pub fn drain_with_savepoint(mut self, target: Location) -> Result<Manifest> {
        let manifest = self.command(target, true, true)?;
        self.join()?;
        Ok(manifest)
    }

    fn command(&self, target: Location, stop: bool, drain: bool) -> Result<Manifest> {
        let (reply, answer) = channel();
        self.commands
            .send(CoordinatorMsg::Command(Command::Savepoint {
                target,
                stop,
                drain,
                reply,
            }))
            .map_err(|_| EngineError::Internal("the job has finished".into()))?;
        answer
            .recv()
            .map_err(|_| EngineError::Internal("the job has finished".into()))?
    }

    /// Checkpoint measurements so far.
    pub fn stats(&self) -> JobStats {
        let mut stats = self.stats.lock().map(|s| *s).unwrap_or_default();
        stats.late_records_dropped = self.late.load(std::sync::atomic::Ordering::Relaxed);
        stats
    }

    /// Waits for a bounded job to finish; returns the savepoints it wrote on its own
    /// (periodic checkpoints excluded).
    pub fn wait(mut self) -> Result<Vec<Manifest>> {
        self.join()
    }

    /// [`wait`](Self::wait), and the checkpoint measurements of the whole run.
    pub fn wait_with_stats(mut self) -> Result<(Vec<Manifest>, JobStats)> {
        let written = self.join()?;
        Ok((written, self.stats()))
    }

    fn join(&mut self) -> Result<Vec<Manifest>> {
        let mut errors = Vec::new();
        for w in self.workers.drain(..) {
            match w.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => errors.push(e),
                Err(_) => errors.push(EngineError::Internal("a subtask panicked".into())),
            }
        }
        // One failing subtask makes its neighbours fail too ("downstream stopped"): report
        // the cause.
        let is_echo = |e: &EngineError| matches!(e, EngineError::Operator { message, .. } if message == DOWNSTREAM_STOPPED || message == UPSTREAM_VANISHED);
        let first_error = match errors.iter().position(|e| !is_echo(e)) {
            Some(i) => Some(errors.swap_remove(i)),
            None => errors.into_iter().next(),
        };
        let _ = self.commands.send(CoordinatorMsg::WorkersDone);
        let written = match self.coordinator.take() {
            Some(c) => c
                .join()
                .map_err(|_| EngineError::Internal("the coordinator panicked".into()))??,
            None => Vec::new(),
        };
        match first_error {
            Some(e) => Err(e),
            None => Ok(written),
        }
    }
}

/// Starts `job`. Restores state first when `options.from_savepoint` is set.
pub fn run(job: Job, options: RunOptions) -> Result<JobHandle> {
    job.validate()?;
    let default_parallelism = options.parallelism.unwrap_or(1).max(1);
    let parallelism: Vec<u32> = job
        .stages
        .iter()
        .map(|s| s.parallelism.unwrap_or(default_parallelism).max(1))
        .collect();
    let restored = match &options.from_savepoint {
        Some(loc) => Some(open_savepoint(loc)?),
        None => None,
    };
    if let Some(sp) = &restored {
        check_restorable(&job, sp, options.allow_non_restored_state)?;
        recommit_sinks(&job, sp)?;
    }

    // A restored job's event time starts at the least watermark of its source splits: no
    // record the restored sources read can be earlier (they resume at those watermarks).
    let initial_watermark = restored
        .as_ref()
        .and_then(|sp| {
            sp.manifest()
                .operators
                .iter()
                .filter_map(|o| o.source.as_ref())
                .flat_map(|s| s.splits.iter().filter_map(|s| s.watermark))
                .min()
        })
        .unwrap_or(i64::MIN);
    let (to_coordinator, coordinator_rx) = channel::<CoordinatorMsg>();
    let stats = std::sync::Arc::new(std::sync::Mutex::new(JobStats::default()));
    let total_subtasks: usize = parallelism.iter().map(|p| *p as usize).sum();

    // Channels into every non-source stage.
    let mut inputs: Vec<Vec<Option<Receiver<Envelope>>>> = Vec::new();
    let mut senders: Vec<Vec<SyncSender<Envelope>>> = Vec::new();
    for p in &parallelism {
        let (mut tx, mut rx) = (Vec::new(), Vec::new());
        for _ in 0..*p {
            let (s, r) = sync_channel(CHANNEL_CAPACITY);
            tx.push(s);
            rx.push(Some(r));
        }
        senders.push(tx);
        inputs.push(rx);
    }

    let mut source_controls = Vec::new();
    let mut workers = Vec::new();
    let mut stage_info = Vec::new();
    for (s, stage) in job.stages.iter().enumerate() {
        let p = parallelism[s];
        stage_info.push(crate::coordinator::StageInfo {
            uid: stage.uid.clone(),
            name: stage.name.clone(),
            parallelism: p,
            is_source: matches!(stage.input, StageInput::Source(_)),
            states: stage.states.clone(),
            sink: stage
                .sink
                .as_ref()
                .map(|(uid, sink, _)| (uid.clone(), sink.clone())),
        });
        let outputs = || {
            job.stages.get(s + 1).map(|next| Output {
                senders: senders[s + 1].clone(),
                buffers: (0..senders[s + 1].len()).map(|_| Vec::new()).collect(),
                route: match &next.input {
                    StageInput::Hash(f) => Route::Hash(f.clone()),
                    _ => Route::RoundRobin(0),
                },
            })
        };
        let upstream = if s == 0 {
            0
        } else {
            parallelism[s - 1] as usize
        };
        let split_assignment = match &stage.input {
            StageInput::Source(source) => {
                let uid = stage.uid.clone().unwrap_or_default();
                let splits = restored
                    .as_ref()
                    .and_then(|sp| {
                        sp.manifest()
                            .operator(&uid)
                            .and_then(|o| o.source.as_ref())
                            .map(|s| s.splits.clone())
                    })
                    .unwrap_or_else(|| source.splits());
                Some((source.clone(), splits))
            }
            _ => None,
        };
        // Every subtask loads its hash range of the state at once, in parallel.
        let mut chains: Vec<Vec<Box<dyn ErasedOp>>> = (0..p)
            .map(|_| stage.ops.iter().map(|f| f()).collect())
            .collect();
        if let (Some(sp), Some(uid)) = (&restored, &stage.uid) {
            std::thread::scope(|scope| {
                let loads: Vec<_> = chains
                    .iter_mut()
                    .enumerate()
                    .map(|(i, ops)| {
                        scope.spawn(move || {
                            restore_subtask(sp, uid, &stage.states, ops, i as u32, p)
                        })
                    })
                    .collect();
                loads
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .map_err(|_| EngineError::Internal("restore thread panicked".into()))?
                    })
                    .collect::<Result<Vec<()>>>()
            })?;
        }
        if initial_watermark != i64::MIN {
            for op in chains.iter_mut().flatten() {
                op.set_initial_watermark(initial_watermark);
            }
        }
        for (i, ops) in (0..p).zip(chains) {
            let worker = Worker {
                stage: s,
                subtask: i,
                ops,
                output: outputs(),
                sink_render: stage.sink.as_ref().map(|(_, _, r)| r.clone()),
                sink_lines: Vec::new(),
                acks: to_coordinator.clone(),
                name: stage.name.clone(),
                initial_watermark,
                idle_timeout: stage.idle_timeout,
                last_flush: std::time::Instant::now(),
            };
            let handle = match &split_assignment {
                Some((source, splits)) => {
                    let mine: Vec<SplitEntry> = splits
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j as u32 % p == i)
                        .map(|(_, s)| s.clone())
                        .collect();
                    let readers = mine
                        .iter()
                        .map(|s| Ok((s.clone(), source.reader(s)?)))
                        .collect::<Result<Vec<_>>>()?;
                    let (ctl_tx, ctl_rx) = channel();
                    source_controls.push(ctl_tx);
                    let discovery = source.discovery_interval().map(|every| Discovery {
                        source: source.clone(),
                        known: splits.iter().map(|s| s.id.clone()).collect(),
                        every,
                        last: std::time::Instant::now(),
                        subtask: i,
                        parallelism: p,
                    });
                    std::thread::Builder::new()
                        .name(format!("{}-{i}", stage.name))
                        .spawn(move || worker.run_source(readers, ctl_rx, discovery))
                        .map_err(|e| EngineError::Internal(e.to_string()))?
                }
                None => {
                    let rx = inputs[s][i as usize]
                        .take()
                        .ok_or_else(|| EngineError::Internal("input taken twice".into()))?;
                    std::thread::Builder::new()
                        .name(format!("{}-{i}", stage.name))
                        .spawn(move || worker.run_operator(rx, upstream))
                        .map_err(|e| EngineError::Internal(e.to_string()))?
                }
            };
            workers.push(handle);
        }
    }
    drop(senders);

    let coordinator = Coordinator::new(
        job.name.clone(),
        stage_info,
        total_subtasks,
        source_controls,
        options.clone(),
        restored.as_ref().map(|r| crate::coordinator::Restored {
            id: r.manifest().id.clone(),
            location: r.location().to_string(),
            checkpoint_id: r.manifest().checkpoint_id,
        }),
        stats.clone(),
    )?;
    if let Some(interval) = options
        .checkpoint_interval
        .filter(|_| options.checkpoint_dir.is_some())
    {
        let tick = to_coordinator.clone();
        std::thread::spawn(move || {
            while tick.send(CoordinatorMsg::Tick).is_ok() {
                std::thread::sleep(interval);
            }
        });
    }
    let commands = to_coordinator.clone();
    drop(to_coordinator);
    let coordinator = std::thread::Builder::new()
        .name("coordinator".into())
        .spawn(move || coordinator.run(coordinator_rx))
        .map_err(|e| EngineError::Internal(e.to_string()))?;
    Ok(JobHandle {
        stats,
        late: job.late.clone(),
        commands,
        coordinator: Some(coordinator),
        workers,
    })
}

fn block_on<T: Send>(future: impl std::future::Future<Output = Result<T>> + Send) -> Result<T> {
    crate::io::block_on(future)?
}

fn open_savepoint(location: &Location) -> Result<SavepointReader> {
    block_on(async { Ok(SavepointReader::open(location.clone()).await?) })
}

/// Commits again the output the restored checkpoint had staged: if the job stopped between
/// writing that checkpoint and committing its output, the output appears now, once.
fn recommit_sinks(job: &Job, sp: &SavepointReader) -> Result<()> {
    for (uid, sink, _) in job.stages.iter().filter_map(|s| s.sink.as_ref()) {
        if sp
            .manifest()
            .operator(uid)
            .and_then(|o| o.state(SINK_PENDING))
            .is_none()
        {
            continue;
        }
        let batches: Vec<arrow_array::RecordBatch> = block_on(async {
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
            for handle in handles.iter().flatten() {
                sink.commit(handle)?;
            }
        }
    }
    Ok(())
}

/// The state in which a sink's staged, not yet committed, output is recorded.
pub(crate) const SINK_PENDING: &str = "pending_commits";

/// State of uids the job lacks is an error (listing them) unless allowed.
fn check_restorable(job: &Job, sp: &SavepointReader, allow: bool) -> Result<()> {
    let uids: Vec<&str> = job
        .stages
        .iter()
        .flat_map(|s| {
            s.uid
                .as_deref()
                .into_iter()
                .chain(s.sink.as_ref().map(|(u, _, _)| u.as_str()))
        })
        .collect();
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
fn restore_subtask(
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
        if op.state(name).is_none() {
            continue;
        }
        let batches: Vec<arrow_array::RecordBatch> = block_on(async {
            use futures::TryStreamExt;
            let stream = sp
                .read_state(
                    uid,
                    name,
                    ReadOptions {
                        hash_range: Some(range),
                        ..Default::default()
                    },
                )
                .await?;
            Ok(stream.try_collect().await?)
        })?;
        let keyed = ops
            .first_mut()
            .ok_or_else(|| EngineError::Internal("keyed stage without operator".into()))?;
        for batch in batches {
            keyed.restore(name, &batch).map_err(|e| match e {
                EngineError::Restore(m) => {
                    EngineError::Restore(format!("operator {uid:?}, state {name:?}: {m}"))
                }
                other => other,
            })?;
        }
    }
    Ok(())
}

#[derive(Clone)]
enum Route {
    RoundRobin(usize),
    Hash(crate::job::HashFn),
}

/// Records per channel message.
const BATCH: usize = 256;

/// The longest a source holds records back to fill a batch.
const MAX_BUFFER_DELAY: Duration = Duration::from_millis(20);

struct Output {
    senders: Vec<SyncSender<Envelope>>,
    buffers: Vec<Vec<Rec>>,
    route: Route,
}

struct Worker {
    stage: usize,
    subtask: u32,
    ops: Vec<Box<dyn ErasedOp>>,
    output: Option<Output>,
    sink_render: Option<crate::job::RenderFn>,
    sink_lines: Vec<String>,
    acks: Sender<CoordinatorMsg>,
    name: String,
    /// Event time the subtask starts at (a restored job's watermark).
    initial_watermark: i64,
    idle_timeout: Option<Duration>,
    last_flush: std::time::Instant,
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
        self.run_chain(0, vec![rec])
    }

    /// Runs records through the chain from operator `from` on and sends what comes out.
    fn run_chain(&mut self, from: usize, mut batch: Vec<Rec>) -> Result<()> {
        for op in self.ops.iter_mut().skip(from) {
            let mut next = Vec::with_capacity(batch.len());
            for r in batch {
                op.process(r, &mut next)?;
            }
            batch = next;
        }
        for r in batch {
            if let Some(render) = &self.sink_render {
                self.sink_lines.push(render(&r)?);
            }
            if let Some(out) = &mut self.output {
                let target = match &mut out.route {
                    Route::RoundRobin(next) => {
                        *next = (*next + 1) % out.senders.len();
                        *next
                    }
                    Route::Hash(f) => subtask_for_hash(f(&r)?, out.senders.len() as u32) as usize,
                };
                out.buffers[target].push(r);
                if out.buffers[target].len() >= BATCH {
                    let records = std::mem::take(&mut out.buffers[target]);
                    out.senders[target]
                        .send(Envelope {
                            from: self.subtask as usize,
                            msg: Msg::Recs(records),
                        })
                        .map_err(|_| self.fail(DOWNSTREAM_STOPPED.into()))?;
                }
            }
        }
        Ok(())
    }

    /// Event time reached `watermark`: each operator fires what is due (its output runs
    /// through the rest of the chain), then the watermark goes downstream, after that output.
    fn advance_watermark(&mut self, watermark: i64) -> Result<()> {
        for j in 0..self.ops.len() {
            let mut out = Vec::new();
            self.ops[j].on_watermark(watermark, &mut out)?;
            if !out.is_empty() {
                self.run_chain(j + 1, out)?;
            }
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
        for j in 0..self.ops.len() {
            let mut out = Vec::new();
            self.ops[j].on_processing_time(now, &mut out)?;
            if !out.is_empty() {
                self.run_chain(j + 1, out)?;
            }
        }
        self.flush()?;
        Ok(None)
    }

    /// Sends every buffered record: before a barrier or the end, records keep their place.
    fn flush(&mut self) -> Result<()> {
        self.last_flush = std::time::Instant::now();
        if let Some(out) = &mut self.output {
            for (target, buffer) in out.buffers.iter_mut().enumerate() {
                if buffer.is_empty() {
                    continue;
                }
                let records = std::mem::take(buffer);
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
        let started = std::time::Instant::now();
        let snapshots: Vec<Box<dyn StateSnapshot>> =
            self.ops.iter().flat_map(|o| o.snapshot()).collect();
        let ack = Ack {
            sync_pause: started.elapsed(),
            id,
            stage: self.stage,
            subtask: self.subtask,
            splits,
            snapshots,
            sink_lines: std::mem::take(&mut self.sink_lines),
        };
        self.acks
            .send(CoordinatorMsg::Ack(ack))
            .map_err(|_| self.fail("coordinator stopped".into()))
    }

    fn run_source(
        mut self,
        mut readers: Vec<(SplitEntry, Box<dyn crate::job::ErasedReader>)>,
        control: Receiver<SourceControl>,
        mut discovery: Option<Discovery>,
    ) -> Result<()> {
        let positions =
            |readers: &Vec<(SplitEntry, Box<dyn crate::job::ErasedReader>)>| -> Vec<SplitEntry> {
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
        loop {
            match control.try_recv() {
                Ok(SourceControl::Trigger { id, stop, drain }) => {
                    if drain {
                        self.advance_watermark(i64::MAX)?;
                    }
                    self.ack(id, positions(&readers))?;
                    self.broadcast(|| Msg::Barrier(id))?;
                    if stop {
                        self.broadcast(|| Msg::End)?;
                        return Ok(());
                    }
                    continue;
                }
                Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => {}
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
                    }
                    if clock.due() {
                        let wm = clock.watermark(&readers, &live);
                        self.source_watermark(&mut clock, wm)?;
                    }
                }
                None if readers[next].1.finished() => live[next] = false,
                // A followed split with nothing new: send what is buffered, so records do
                // not wait for the next barrier, and see whether the split went idle.
                None => {
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

    /// Passes on a source subtask's watermark when it advanced, and idleness.
    fn source_watermark(&mut self, clock: &mut SourceClock, wm: Option<i64>) -> Result<()> {
        clock.since_emit = 0;
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

    fn run_operator(mut self, input: Receiver<Envelope>, upstream: usize) -> Result<()> {
        let mut blocked = vec![false; upstream];
        let mut ended = vec![false; upstream];
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
                Msg::Recs(records) => {
                    for r in records {
                        self.push(r)?;
                    }
                }
                Msg::Barrier(id) => {
                    if barrier.is_some_and(|b| b != id) {
                        return Err(self.fail(format!("barrier {id} while aligning {barrier:?}")));
                    }
                    barrier = Some(id);
                    blocked[env.from] = true;
                }
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
            // Aligned when every input that has not ended delivered the barrier.
            if let Some(id) = barrier {
                if (0..upstream).all(|u| blocked[u] || ended[u]) {
                    self.ack(id, Vec::new())?;
                    self.broadcast(|| Msg::Barrier(id))?;
                    barrier = None;
                    blocked.iter_mut().for_each(|b| *b = false);
                    pending_replay.extend(waiting.drain(..));
                }
            }
            if barrier.is_none() && pending_replay.is_empty() && ended.iter().all(|e| *e) {
                self.broadcast(|| Msg::End)?;
                return Ok(());
            }
        }
    }
}

/// A source subtask's search for new splits: each one found goes to the subtask its id
/// hashes to, so subtasks never read the same split.
struct Discovery {
    source: std::sync::Arc<dyn crate::job::ErasedSource>,
    known: std::collections::HashSet<String>,
    every: Duration,
    last: std::time::Instant,
    subtask: u32,
    parallelism: u32,
}

impl Discovery {
    fn new_splits(&mut self) -> Result<Vec<(SplitEntry, Box<dyn crate::job::ErasedReader>)>> {
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
struct SourceClock {
    last_record: Vec<std::time::Instant>,
    idle: Vec<bool>,
    idle_timeout: Option<Duration>,
    since_emit: usize,
    emitted: i64,
    idle_sent: bool,
}

/// Records between two looks at a source subtask's watermark.
const WATERMARK_EVERY: usize = 256;

impl SourceClock {
    fn new(splits: usize, idle_timeout: Option<Duration>) -> Self {
        SourceClock {
            last_record: vec![std::time::Instant::now(); splits],
            idle: vec![false; splits],
            idle_timeout,
            since_emit: 0,
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
        self.since_emit >= WATERMARK_EVERY || self.idle_sent
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
        readers: &[(SplitEntry, Box<dyn crate::job::ErasedReader>)],
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

/// What restoring `options.from_savepoint` into `job` would do, for people to read before
/// running: per operator the state it takes (and at which parallelism), operators that
/// start empty, and state that would be dropped.
pub fn restore_plan(job: &Job, options: &RunOptions) -> Result<String> {
    use std::fmt::Write;
    let mut out = String::new();
    let Some(location) = &options.from_savepoint else {
        return Ok("no --from-savepoint: every operator starts empty".into());
    };
    let sp = open_savepoint(location)?;
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
    let uids: Vec<&str> = job
        .stages
        .iter()
        .flat_map(|s| {
            s.uid
                .as_deref()
                .into_iter()
                .chain(s.sink.as_ref().map(|(u, _, _)| u.as_str()))
        })
        .collect();
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
