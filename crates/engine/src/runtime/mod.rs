//! Running a job: one thread per subtask, bounded channels between stages, aligned
//! barriers for checkpoints, and a coordinator that writes them as Rewind savepoints.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

use rewind_savepoint::format::{HashRange, Manifest, SplitEntry};
use rewind_savepoint::{Location, SavepointReader};

use crate::coordinator::{Command, Coordinator, CoordinatorMsg};
use crate::io::Io;
use crate::job::{Job, StageDef, StageInput, StageSink};
use crate::operator::{ErasedOp, ErasedReader, ErasedSource};
use crate::{EngineError, Result};

pub(crate) mod messages;
mod restore;
pub(crate) mod stats;
mod worker;

pub use restore::restore_plan;
use restore::{check_restorable, open_savepoint, recommit_sinks, restore_subtask};
use worker::{Discovery, Output, Route, SinkOutput, Worker};

pub use crate::options::{DEFAULT_SINK_CHUNK_BYTES, RunOptions};
use messages::{DOWNSTREAM_STOPPED, Envelope, SourceControl, UPSTREAM_VANISHED};
use stats::Counters;
pub use stats::{CompletedCheckpoint, JobStats};

/// Batches (of up to 256 records) buffered between two stages, per channel: backpressure
/// beyond this. A barrier queues behind what is buffered, so this bounds how late an
/// aligned checkpoint starts under full load: with 64 (16k records, a few ms of work),
/// 100 ms checkpoints keep their schedule at full rate, where 1024 made them ~200 ms apart
/// and did not raise throughput (`rewind-bench --only engine`).
const CHANNEL_CAPACITY: usize = 64;

/// Controls a running job from any thread (a control endpoint, a signal handler): take
/// savepoints, stop or cancel it, read its measurements. Whoever holds the [`JobHandle`]
/// sees the job end in [`JobHandle::wait`].
#[derive(Clone)]
pub struct JobControl {
    counters: Arc<Counters>,
    commands: Sender<CoordinatorMsg>,
    /// The job's I/O runtime while the job runs (a control does not keep it alive).
    io: Weak<Io>,
}

impl JobControl {
    /// Takes a savepoint into `target` and waits for it; the job keeps running.
    pub fn savepoint(&self, target: Location) -> Result<Manifest> {
        self.command(target, false, false)
    }

    /// Takes a savepoint into `target` and waits for it, then the job stops; with `drain`,
    /// event time first advances to the end (see [`JobHandle::drain_with_savepoint`]).
    pub fn stop(&self, target: Location, drain: bool) -> Result<Manifest> {
        self.command(target, true, drain)
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
            .map_err(|_| finished())?;
        answer.recv().map_err(|_| finished())?
    }

    /// Stops the job at once, without a savepoint (see [`JobHandle::cancel`]).
    pub fn cancel(&self) -> Result<()> {
        self.commands
            .send(CoordinatorMsg::Command(Command::Cancel))
            .map_err(|_| finished())
    }

    /// Measurements so far.
    pub fn stats(&self) -> JobStats {
        let mut stats = self
            .counters
            .stats
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        stats.late_records_dropped = self.counters.late.load(Ordering::Relaxed);
        stats.records_read = self.counters.read.load(Ordering::Relaxed);
        stats
    }

    /// The running job's I/O runtime, for requests made on the job's behalf.
    pub(crate) fn io(&self) -> Result<Arc<Io>> {
        self.io.upgrade().ok_or_else(finished)
    }
}

fn finished() -> EngineError {
    EngineError::Internal("the job has finished".into())
}

/// A running job.
pub struct JobHandle {
    control: JobControl,
    coordinator: Option<JoinHandle<Result<Vec<Manifest>>>>,
    workers: Vec<JoinHandle<Result<()>>>,
    /// The job's I/O runtime: it stops once the handle and the job's threads are gone.
    _io: Arc<Io>,
}

impl JobHandle {
    /// Takes a savepoint into `target` and waits for it; the job keeps running.
    pub fn savepoint(&self, target: Location) -> Result<Manifest> {
        self.control.savepoint(target)
    }

    /// Takes a savepoint into `target`, then stops the job cleanly. Open windows and
    /// timers stay in the savepoint, for a job that will resume from it.
    pub fn stop_with_savepoint(mut self, target: Location) -> Result<Manifest> {
        let manifest = self.control.stop(target, false)?;
        self.join()?;
        Ok(manifest)
    }

    /// Advances event time to the end (every window and event-time timer fires and its
    /// output is committed), takes a savepoint into `target` and stops: for a job that will
    /// not be resumed.
    pub fn drain_with_savepoint(mut self, target: Location) -> Result<Manifest> {
        let manifest = self.control.stop(target, true)?;
        self.join()?;
        Ok(manifest)
    }

    /// Stops the job at once, without a savepoint (like `flink cancel`): output staged since
    /// the last completed checkpoint is never committed; restore from that checkpoint to
    /// go on exactly once.
    pub fn cancel(mut self) -> Result<()> {
        self.control.cancel()?;
        self.join().map(|_| ())
    }

    /// Measurements so far.
    pub fn stats(&self) -> JobStats {
        self.control.stats()
    }

    /// A handle for controlling the job from other threads.
    pub fn control(&self) -> JobControl {
        self.control.clone()
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
        let _ = self.control.commands.send(CoordinatorMsg::WorkersDone);
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
    let io = Io::start()?;
    // Sinks and sources called while the job starts (recommit, cleanup, readers) use it.
    let _entered = io.enter();
    let plan = plan(&job, &options);
    let start = restore(&io, &job, &options)?;
    let (acks, coordinator_rx) = channel::<CoordinatorMsg>();
    let counters = Arc::new(Counters {
        late: job.late.clone(),
        incremental: options.checkpoint_dir.is_some() && options.max_delta_layers != Some(0),
        ..Counters::default()
    });
    let links = Links {
        io: &io,
        acks: &acks,
        counters: &counters,
    };
    let spawned = spawn(&job, &plan, &start, &links)?;
    let coordinator = Coordinator::new(
        job.name.clone(),
        spawned.stages,
        spawned.source_controls,
        options.clone(),
        crate::coordinator::Start {
            restored: start
                .savepoint
                .as_ref()
                .map(|r| (r.manifest().id.clone(), r.location().to_string())),
            first_checkpoint: start.first_checkpoint,
        },
        counters.clone(),
        io.clone(),
    )?;
    drive(coordinator, &options, acks, coordinator_rx).map(|coordinator| JobHandle {
        control: JobControl {
            counters,
            commands: coordinator.commands,
            io: Arc::downgrade(&io),
        },
        coordinator: Some(coordinator.thread),
        workers: spawned.workers,
        _io: io,
    })
}

/// The job laid out: each stage's parallelism and the sinks' chunk size.
struct Plan {
    parallelism: Vec<u32>,
    chunk_bytes: usize,
}

/// Plan: every stage's parallelism (its own, else the options', else 1).
fn plan(job: &Job, options: &RunOptions) -> Plan {
    let default_parallelism = options.parallelism.unwrap_or(1).max(1);
    Plan {
        parallelism: job
            .stages
            .iter()
            .map(|s| s.parallelism.unwrap_or(default_parallelism).max(1))
            .collect(),
        chunk_bytes: options
            .sink_chunk_bytes
            .unwrap_or(DEFAULT_SINK_CHUNK_BYTES)
            .max(1),
    }
}

/// Where a run starts: the savepoint it restores, its first checkpoint id and the event
/// time its operators start at.
struct Start {
    savepoint: Option<SavepointReader>,
    first_checkpoint: u64,
    initial_watermark: i64,
}

/// Restore, before any subtask exists: opens and checks the savepoint, numbers the
/// checkpoints, commits the output the savepoint had staged and removes what none needs.
fn restore(io: &Io, job: &Job, options: &RunOptions) -> Result<Start> {
    let savepoint = match &options.from_savepoint {
        Some(loc) => Some(open_savepoint(io, loc)?),
        None => None,
    };
    if let Some(sp) = &savepoint {
        check_restorable(job, sp, options.allow_non_restored_state)?;
    }
    // Before anything is restored: a directory that cannot be listed fails the run at once.
    let first_checkpoint = crate::coordinator::first_checkpoint_id(
        io,
        options.checkpoint_dir.as_ref(),
        savepoint.as_ref().map(|sp| sp.manifest().checkpoint_id),
    )?;
    if let Some(sp) = &savepoint {
        recommit_sinks(io, job, sp)?;
    }
    clean_sinks(job);
    // A restored job's event time starts at the least watermark of its source splits: no
    // record the restored sources read can be earlier (they resume at those watermarks).
    let initial_watermark = savepoint
        .as_ref()
        .and_then(|sp| sp.manifest().least_watermark())
        .unwrap_or(i64::MIN);
    Ok(Start {
        savepoint,
        first_checkpoint,
        initial_watermark,
    })
}

/// What every subtask of a job shares.
struct Links<'a> {
    io: &'a Arc<Io>,
    acks: &'a Sender<CoordinatorMsg>,
    counters: &'a Arc<Counters>,
}

/// What [`spawn`] started.
#[derive(Default)]
struct Spawned {
    workers: Vec<JoinHandle<Result<()>>>,
    source_controls: Vec<Sender<SourceControl>>,
    stages: Vec<crate::coordinator::StageInfo>,
}

/// Spawn: a thread for every subtask of every stage, its state restored first, stages
/// chained by bounded channels.
fn spawn(job: &Job, plan: &Plan, start: &Start, links: &Links<'_>) -> Result<Spawned> {
    // Channels into every non-source stage.
    let (senders, mut inputs): (Vec<Vec<_>>, Vec<Vec<_>>) = plan
        .parallelism
        .iter()
        .map(|p| {
            (0..*p)
                .map(|_| {
                    let (tx, rx) = sync_channel::<Envelope>(CHANNEL_CAPACITY);
                    (tx, Some(rx))
                })
                .unzip()
        })
        .unzip();
    let mut spawned = Spawned::default();
    for (s, stage) in job.stages.iter().enumerate() {
        let p = plan.parallelism[s];
        spawned.stages.push(stage_info(stage, p));
        let splits = split_assignment(stage, start.savepoint.as_ref());
        let chains = load_chains(links.io, stage, p, start)?;
        for (i, ops) in (0..p).zip(chains) {
            let worker = Worker {
                stage: s,
                subtask: i,
                scratch: (0..ops.len()).map(|_| Vec::new()).collect(),
                ops,
                output: output_to(job, s, &senders),
                sink: stage
                    .sink
                    .as_ref()
                    .map(|s| SinkOutput::new(s.sink.clone(), s.render.clone(), plan.chunk_bytes)),
                acks: links.acks.clone(),
                name: stage.name.clone(),
                initial_watermark: start.initial_watermark,
                idle_timeout: stage.idle_timeout,
                last_flush: std::time::Instant::now(),
                counters: links.counters.clone(),
            };
            let handle = match &splits {
                Some((source, splits)) => {
                    let (readers, discovery) = source_subtask(source, splits, i, p)?;
                    let (control, controls) = channel();
                    spawned.source_controls.push(control);
                    subtask_thread(stage, i, links.io, move || {
                        worker.run_source(readers, controls, discovery)
                    })?
                }
                None => {
                    let rx = inputs[s][i as usize]
                        .take()
                        .ok_or_else(|| EngineError::Internal("input taken twice".into()))?;
                    let upstream = if s == 0 {
                        0
                    } else {
                        plan.parallelism[s - 1] as usize
                    };
                    subtask_thread(stage, i, links.io, move || {
                        worker.run_operator(rx, upstream)
                    })?
                }
            };
            spawned.workers.push(handle);
        }
    }
    Ok(spawned)
}

/// What the coordinator knows of a stage.
fn stage_info(stage: &StageDef, parallelism: u32) -> crate::coordinator::StageInfo {
    crate::coordinator::StageInfo {
        uid: stage.uid.clone(),
        name: stage.name.clone(),
        parallelism,
        is_source: matches!(stage.input, StageInput::Source(_)),
        states: stage.states.clone(),
        sink: stage.sink.clone(),
    }
}

/// Where stage `s` sends its records: into the next stage's channels, by key hash or
/// round robin; `None` for the last stage.
fn output_to(job: &Job, s: usize, senders: &[Vec<SyncSender<Envelope>>]) -> Option<Output> {
    let next = job.stages.get(s + 1)?;
    let (route, new_batch) = match &next.input {
        StageInput::Hash(f, new_batch) => (Route::Hash(f.clone()), new_batch),
        StageInput::Rebalance(new_batch) => (Route::RoundRobin(0), new_batch),
        StageInput::Source(_) => return None,
    };
    let senders = senders.get(s + 1)?;
    Some(Output {
        senders: senders.clone(),
        buffers: (0..senders.len()).map(|_| new_batch()).collect(),
        new_batch: new_batch.clone(),
        route,
    })
}

/// A source stage's source and all its splits: the restored ones at their positions,
/// then the ones the source has now and the savepoint lacks (a partition added since),
/// from their beginning, as with a new Kafka partition. `None` for other stages.
fn split_assignment(
    stage: &StageDef,
    savepoint: Option<&SavepointReader>,
) -> Option<(Arc<dyn ErasedSource>, Vec<SplitEntry>)> {
    let StageInput::Source(source) = &stage.input else {
        return None;
    };
    let uid = stage.uid.clone().unwrap_or_default();
    let current = source.splits();
    let saved = savepoint.and_then(|sp| {
        let op = sp.manifest().operator(&uid)?;
        op.source.as_ref().map(|s| s.splits.clone())
    });
    let splits = match saved {
        Some(mut saved) => {
            let known: std::collections::HashSet<String> =
                saved.iter().map(|s| s.id.clone()).collect();
            saved.extend(current.into_iter().filter(|s| !known.contains(&s.id)));
            saved
        }
        None => current,
    };
    Some((source.clone(), splits))
}

/// Every subtask's operator chain, each with its hash range of the stage's state loaded
/// from the savepoint (all subtasks at once, in parallel) and the run's start watermark.
fn load_chains(
    io: &Io,
    stage: &StageDef,
    p: u32,
    start: &Start,
) -> Result<Vec<Vec<Box<dyn ErasedOp>>>> {
    let mut chains: Vec<Vec<Box<dyn ErasedOp>>> = (0..p)
        .map(|i| {
            let range = HashRange::for_subtask(i, p).unwrap_or(HashRange::FULL);
            stage.ops.iter().map(|f| f(range)).collect()
        })
        .collect();
    if let (Some(sp), Some(uid)) = (&start.savepoint, &stage.uid) {
        std::thread::scope(|scope| {
            let loads: Vec<_> = chains
                .iter_mut()
                .enumerate()
                .map(|(i, ops)| {
                    scope.spawn(move || {
                        restore_subtask(io, sp, uid, &stage.states, ops, i as u32, p)
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
    if start.initial_watermark != i64::MIN {
        for op in chains.iter_mut().flatten() {
            op.set_initial_watermark(start.initial_watermark);
        }
    }
    Ok(chains)
}

/// A source subtask's splits, each with its reader.
type SplitReaders = Vec<(SplitEntry, Box<dyn ErasedReader>)>;

/// Readers of the splits source subtask `i` of `p` reads (every `p`-th), and its search
/// for new splits if the source grows.
fn source_subtask(
    source: &Arc<dyn ErasedSource>,
    splits: &[SplitEntry],
    i: u32,
    p: u32,
) -> Result<(SplitReaders, Option<Discovery>)> {
    let readers = splits
        .iter()
        .enumerate()
        .filter(|(j, _)| *j as u32 % p == i)
        .map(|(_, s)| Ok((s.clone(), source.reader(s)?)))
        .collect::<Result<Vec<_>>>()?;
    let discovery = source.discovery_interval().map(|every| Discovery {
        source: source.clone(),
        known: splits.iter().map(|s| s.id.clone()).collect(),
        every,
        last: std::time::Instant::now(),
        subtask: i,
        parallelism: p,
    });
    Ok((readers, discovery))
}

/// The thread of subtask `i` of `stage`, its I/O on the job's runtime.
fn subtask_thread(
    stage: &StageDef,
    i: u32,
    io: &Arc<Io>,
    body: impl FnOnce() -> Result<()> + Send + 'static,
) -> Result<JoinHandle<Result<()>>> {
    let io = io.clone();
    std::thread::Builder::new()
        .name(format!("{}-{i}", stage.name))
        .spawn(move || {
            let _entered = io.enter();
            body()
        })
        .map_err(|e| EngineError::Internal(e.to_string()))
}

/// The running coordinator: its thread and the channel commands reach it by.
struct Driving {
    thread: JoinHandle<Result<Vec<Manifest>>>,
    commands: Sender<CoordinatorMsg>,
}

/// Drive: the coordinator's thread, and the ticks of periodic checkpoints. The job runs
/// until its sources end or it is stopped; [`JobHandle::join`] finishes it.
fn drive(
    coordinator: Coordinator,
    options: &RunOptions,
    acks: Sender<CoordinatorMsg>,
    messages: Receiver<CoordinatorMsg>,
) -> Result<Driving> {
    if let Some(interval) = options
        .checkpoint_interval
        .filter(|_| options.checkpoint_dir.is_some())
    {
        let tick = acks.clone();
        std::thread::spawn(move || {
            while tick.send(CoordinatorMsg::Tick).is_ok() {
                std::thread::sleep(interval);
            }
        });
    }
    let thread = std::thread::Builder::new()
        .name("coordinator".into())
        .spawn(move || coordinator.run(messages))
        .map_err(|e| EngineError::Internal(e.to_string()))?;
    Ok(Driving {
        thread,
        commands: acks,
    })
}

/// Removes the sinks' staged output that no committed checkpoint lists any more (a crash
/// or cancel left it); a failure is reported and the job runs on.
fn clean_sinks(job: &Job) {
    for StageSink { uid, sink, .. } in job.stages.iter().filter_map(|s| s.sink.as_ref()) {
        match sink.remove_orphans() {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                %uid,
                files = n,
                "sink {uid}: removed {n} staged files no checkpoint needs"
            ),
            Err(e) => tracing::warn!(%uid, "sink {uid}: staged output not cleaned: {e}"),
        }
    }
}
