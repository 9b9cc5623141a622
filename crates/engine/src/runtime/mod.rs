//! Running a job: one thread per subtask, bounded channels between stages, aligned
//! barriers for checkpoints, and a coordinator that writes them as Rewind savepoints.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

use rewind_savepoint::Location;
use rewind_savepoint::format::{HashRange, Manifest, SplitEntry};

use crate::coordinator::{Command, Coordinator, CoordinatorMsg};
use crate::io::Io;
use crate::job::{Job, StageInput};
use crate::operator::ErasedOp;
use crate::{EngineError, Result};

pub(crate) mod messages;
mod restore;
pub(crate) mod stats;
mod worker;

pub use restore::restore_plan;
use restore::{check_restorable, open_savepoint, recommit_sinks, restore_subtask};
use worker::{Discovery, Output, Route, SinkOutput, Worker};

pub use crate::options::{DEFAULT_SINK_CHUNK_BYTES, RunOptions};
use messages::{DOWNSTREAM_STOPPED, Envelope, UPSTREAM_VANISHED};
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
    let default_parallelism = options.parallelism.unwrap_or(1).max(1);
    let chunk_bytes = options
        .sink_chunk_bytes
        .unwrap_or(DEFAULT_SINK_CHUNK_BYTES)
        .max(1);
    let parallelism: Vec<u32> = job
        .stages
        .iter()
        .map(|s| s.parallelism.unwrap_or(default_parallelism).max(1))
        .collect();
    let restored = match &options.from_savepoint {
        Some(loc) => Some(open_savepoint(&io, loc)?),
        None => None,
    };
    if let Some(sp) = &restored {
        check_restorable(&job, sp, options.allow_non_restored_state)?;
    }
    // Before anything is restored: a directory that cannot be listed fails the run at once.
    let first_checkpoint = crate::coordinator::first_checkpoint_id(
        &io,
        options.checkpoint_dir.as_ref(),
        restored.as_ref().map(|sp| sp.manifest().checkpoint_id),
    )?;
    if let Some(sp) = &restored {
        recommit_sinks(&io, &job, sp)?;
    }
    clean_sinks(&job);

    // A restored job's event time starts at the least watermark of its source splits: no
    // record the restored sources read can be earlier (they resume at those watermarks).
    let initial_watermark = restored
        .as_ref()
        .and_then(|sp| sp.manifest().least_watermark())
        .unwrap_or(i64::MIN);
    let (to_coordinator, coordinator_rx) = channel::<CoordinatorMsg>();
    let counters = Arc::new(Counters {
        late: job.late.clone(),
        incremental: options.checkpoint_dir.is_some() && options.max_delta_layers != Some(0),
        ..Counters::default()
    });

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
            job.stages.get(s + 1).and_then(|next| {
                let (route, new_batch) = match &next.input {
                    StageInput::Hash(f, new_batch) => (Route::Hash(f.clone()), new_batch),
                    StageInput::Rebalance(new_batch) => (Route::RoundRobin(0), new_batch),
                    StageInput::Source(_) => return None,
                };
                Some(Output {
                    senders: senders[s + 1].clone(),
                    buffers: (0..senders[s + 1].len()).map(|_| new_batch()).collect(),
                    new_batch: new_batch.clone(),
                    route,
                })
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
                let current = source.splits();
                let splits = match restored.as_ref().and_then(|sp| {
                    sp.manifest()
                        .operator(&uid)
                        .and_then(|o| o.source.as_ref())
                        .map(|s| s.splits.clone())
                }) {
                    // Restored splits resume at their positions; splits the source has
                    // now and the savepoint lacks (a partition added since) start at
                    // their beginning, as with a new Kafka partition.
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
            _ => None,
        };
        // Every subtask loads its hash range of the state at once, in parallel.
        let mut chains: Vec<Vec<Box<dyn ErasedOp>>> = (0..p)
            .map(|i| {
                let range = HashRange::for_subtask(i, p).unwrap_or(HashRange::FULL);
                stage.ops.iter().map(|f| f(range)).collect()
            })
            .collect();
        if let (Some(sp), Some(uid)) = (&restored, &stage.uid) {
            std::thread::scope(|scope| {
                let loads: Vec<_> = chains
                    .iter_mut()
                    .enumerate()
                    .map(|(i, ops)| {
                        let io = &io;
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
        if initial_watermark != i64::MIN {
            for op in chains.iter_mut().flatten() {
                op.set_initial_watermark(initial_watermark);
            }
        }
        for (i, ops) in (0..p).zip(chains) {
            let worker = Worker {
                stage: s,
                subtask: i,
                scratch: (0..ops.len()).map(|_| Vec::new()).collect(),
                ops,
                output: outputs(),
                sink: stage.sink.as_ref().map(|(_, sink, render)| {
                    SinkOutput::new(sink.clone(), render.clone(), chunk_bytes)
                }),
                acks: to_coordinator.clone(),
                name: stage.name.clone(),
                initial_watermark,
                idle_timeout: stage.idle_timeout,
                last_flush: std::time::Instant::now(),
                counters: counters.clone(),
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
                    let io = io.clone();
                    std::thread::Builder::new()
                        .name(format!("{}-{i}", stage.name))
                        .spawn(move || {
                            let _entered = io.enter();
                            worker.run_source(readers, ctl_rx, discovery)
                        })
                        .map_err(|e| EngineError::Internal(e.to_string()))?
                }
                None => {
                    let rx = inputs[s][i as usize]
                        .take()
                        .ok_or_else(|| EngineError::Internal("input taken twice".into()))?;
                    let io = io.clone();
                    std::thread::Builder::new()
                        .name(format!("{}-{i}", stage.name))
                        .spawn(move || {
                            let _entered = io.enter();
                            worker.run_operator(rx, upstream)
                        })
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
        source_controls,
        options.clone(),
        crate::coordinator::Start {
            restored: restored
                .as_ref()
                .map(|r| (r.manifest().id.clone(), r.location().to_string())),
            first_checkpoint,
        },
        counters.clone(),
        io.clone(),
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
        control: JobControl {
            counters,
            commands,
            io: Arc::downgrade(&io),
        },
        coordinator: Some(coordinator),
        workers,
        _io: io,
    })
}

/// Removes the sinks' staged output that no committed checkpoint lists any more (a crash
/// or cancel left it); a failure is reported and the job runs on.
fn clean_sinks(job: &Job) {
    for (uid, sink, _) in job.stages.iter().filter_map(|s| s.sink.as_ref()) {
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
