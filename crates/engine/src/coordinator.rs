//! The checkpoint coordinator: triggers barriers at the sources, collects every subtask's
//! acknowledgement, writes the checkpoint through `SavepointWriter` (manifest last), and
//! only then commits the sinks' output of that checkpoint.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};

use rewind_savepoint::Location;
use rewind_savepoint::format::{Manifest, SavepointKind, SplitEntry};

use crate::io::Io;
use crate::job::StageSink;
use crate::operator::StateSnapshot;
use crate::options::RunOptions;
use crate::runtime::messages::{FINAL, SourceControl};
use crate::runtime::stats::Counters;
use crate::sink::Sink;
use crate::sink::pending::{PendingOutput, SubtaskOutput};
use crate::{EngineError, Result};

mod write;

pub(crate) struct StageInfo {
    pub uid: Option<String>,
    pub name: String,
    pub parallelism: u32,
    pub is_source: bool,
    pub states: Vec<String>,
    pub sink: Option<StageSink>,
}

/// Where a run starts: the savepoint it was restored from (its id and location), and
/// its first checkpoint id (see [`first_checkpoint_id`]).
pub(crate) struct Start {
    pub restored: Option<(String, String)>,
    pub first_checkpoint: u64,
}

pub(crate) struct Ack {
    /// How long the subtask paused processing to take its snapshot.
    pub sync_pause: std::time::Duration,
    /// How much of that its thread waited, runnable, for a CPU.
    pub sync_pause_waiting: std::time::Duration,
    pub id: u64,
    pub stage: usize,
    pub subtask: u32,
    pub splits: Vec<SplitEntry>,
    pub snapshots: Vec<Arc<dyn StateSnapshot>>,
    /// Sink output since the last checkpoint: (seq, token) of the chunks the subtask
    /// staged, then the lines it has not staged yet, numbered as its next chunk.
    pub sink_output: Option<SubtaskOutput>,
}

/// What an ended subtask contributes to every later checkpoint.
struct FinishedSubtask {
    splits: Vec<SplitEntry>,
    snapshots: Vec<Arc<dyn StateSnapshot>>,
}

impl FinishedSubtask {
    /// Its acknowledgement of checkpoint `id`: its final positions and state, no output.
    fn ack(&self, id: u64, (stage, subtask): (usize, u32)) -> Ack {
        Ack {
            sync_pause: std::time::Duration::ZERO,
            sync_pause_waiting: std::time::Duration::ZERO,
            id,
            stage,
            subtask,
            splits: self.splits.clone(),
            snapshots: self.snapshots.clone(),
            sink_output: None,
        }
    }
}

pub(crate) enum Command {
    /// Stop every source now; no checkpoint.
    Cancel,
    Savepoint {
        target: Location,
        stop: bool,
        drain: bool,
        reply: Sender<Result<Manifest>>,
    },
}

pub(crate) enum CoordinatorMsg {
    Ack(Ack),
    Command(Command),
    Tick,
    WorkersDone,
}

struct Pending {
    acks: Vec<Ack>,
    target: Target,
    /// The sources stop after this one (stop- or drain-with-savepoint).
    stop: bool,
}

impl Pending {
    fn new(target: Target, stop: bool) -> Pending {
        Pending {
            acks: Vec::new(),
            target,
            stop,
        }
    }
}

enum Target {
    Checkpoint,
    Savepoint {
        location: Location,
        reply: Sender<Result<Manifest>>,
    },
    Final,
}

pub(crate) struct Coordinator {
    job: String,
    stages: Vec<StageInfo>,
    total: usize,
    sources: Vec<Sender<SourceControl>>,
    options: RunOptions,
    parent: Option<(String, String)>,
    next_id: u64,
    pending: BTreeMap<u64, Pending>,
    /// Sink output from staging to commit.
    output: PendingOutput,
    /// Subtasks that have ended (acknowledged the final barrier) while the job goes on:
    /// their final state stands in for them in every later checkpoint (as Flink's
    /// checkpoints after tasks finish, FLIP-147).
    finished: BTreeMap<(usize, u32), FinishedSubtask>,
    /// The stop-with-savepoint that became the final savepoint, once the input was ending.
    stopped_at: Option<u64>,
    retained: Vec<Location>,
    /// The newest checkpoint of this run in the checkpoint directory (its folder name and
    /// manifest): the next checkpoint may be written as changes since it.
    last_checkpoint: Option<(String, Manifest)>,
    written: Vec<Manifest>,
    stopping: bool,
    cancelled: bool,
    /// Whether the final checkpoint (every subtask ended) completed: nothing follows it.
    final_written: bool,
    counters: Arc<Counters>,
    /// The job's I/O runtime.
    io: Arc<Io>,
}

/// The folder of checkpoint `id` in the checkpoint directory.
fn checkpoint_folder(id: u64) -> String {
    format!("chk-{id:010}")
}

/// The first checkpoint id of a run: after the checkpoint it was restored from, and after
/// every checkpoint folder already in its checkpoint directory, complete or not. A run
/// restored from an older checkpoint, or a new run in a used directory, so never writes
/// into an existing folder (writes are create-only: each such checkpoint failed until the
/// ids passed the old ones), and its checkpoints are the newest there from the first, so
/// restoring "the newest under the directory" never picks the abandoned line.
pub(crate) fn first_checkpoint_id(
    io: &Io,
    dir: Option<&Location>,
    restored: Option<u64>,
) -> Result<u64> {
    let after_restored = restored.map_or(1, |id| id.saturating_add(1));
    let Some(dir) = dir else {
        return Ok(after_restored);
    };
    let folders = io
        .block_on(rewind_savepoint::list_folders(dir))?
        .map_err(|e| EngineError::Checkpoint {
            id: after_restored,
            message: format!("cannot list the checkpoint directory {dir}: {e}"),
        })?;
    // Ids near u64::MAX are no checkpoints of ours (FINAL is u64::MAX): numbering after
    // them would overflow.
    let used = folders
        .iter()
        .filter_map(|f| f.strip_prefix("chk-")?.parse::<u64>().ok())
        .filter(|id| *id < 1 << 62)
        .max();
    Ok(used.map_or(after_restored, |id| {
        after_restored.max(id.saturating_add(1))
    }))
}

impl Coordinator {
    pub(crate) fn new(
        job: String,
        stages: Vec<StageInfo>,
        sources: Vec<Sender<SourceControl>>,
        options: RunOptions,
        start: Start,
        counters: Arc<Counters>,
        io: Arc<Io>,
    ) -> Result<Coordinator> {
        // Every subtask acknowledges every checkpoint.
        let total = stages.iter().map(|s| s.parallelism as usize).sum();
        Ok(Coordinator {
            job,
            stages,
            total,
            sources,
            options,
            parent: start.restored,
            next_id: start.first_checkpoint,
            pending: BTreeMap::new(),
            output: PendingOutput::default(),
            finished: BTreeMap::new(),
            stopped_at: None,
            retained: Vec::new(),
            last_checkpoint: None,
            written: Vec::new(),
            stopping: false,
            cancelled: false,
            final_written: false,
            counters,
            io,
        })
    }

    pub(crate) fn run(mut self, messages: Receiver<CoordinatorMsg>) -> Result<Vec<Manifest>> {
        // The sinks it commits do their I/O on the job's runtime too.
        let io = self.io.clone();
        let _entered = io.enter();
        let mut error = None;
        while let Ok(msg) = messages.recv() {
            match msg {
                CoordinatorMsg::Tick => {
                    let in_flight = self.pending.keys().any(|id| *id != FINAL);
                    if !self.stopping && !self.all_sources_finished() && !in_flight {
                        self.trigger(Target::Checkpoint, false, false);
                    }
                }
                CoordinatorMsg::Command(Command::Cancel) => {
                    self.stopping = true;
                    self.cancelled = true;
                    // Checkpoints in flight are abandoned: their output is never committed.
                    let in_flight = self.pending.keys().filter(|id| **id != FINAL).count();
                    if let Ok(mut stats) = self.counters.stats.lock() {
                        stats.checkpoints_abandoned += in_flight as u64;
                    }
                    self.pending.clear();
                    for s in &self.sources {
                        let _ = s.send(SourceControl::Cancel);
                    }
                }
                CoordinatorMsg::Command(Command::Savepoint {
                    target,
                    stop,
                    drain,
                    reply,
                }) => {
                    if self.stopping {
                        let _ =
                            reply.send(Err(EngineError::Internal("the job is stopping".into())));
                        continue;
                    }
                    if self.all_sources_finished() {
                        // Once the final checkpoint is written, no barrier is to come: a
                        // stop then waited for acknowledgements forever.
                        if stop && self.stopped_at.is_none() && !self.final_written {
                            // The final savepoint, which is being taken, becomes this one;
                            // the sources still reading stop now.
                            self.stopping = true;
                            let id = self.next_id;
                            self.next_id += 1;
                            self.stopped_at = Some(id);
                            self.final_entry().target = Target::Savepoint {
                                location: target,
                                reply,
                            };
                            // The final savepoint needs every source to end: no pause.
                            self.send_trigger(id, true, drain, false);
                        } else {
                            let _ = reply.send(Err(input_ended()));
                        }
                        continue;
                    }
                    self.stopping |= stop;
                    self.trigger(
                        Target::Savepoint {
                            location: target,
                            reply,
                        },
                        stop,
                        drain,
                    );
                }
                // After a cancel, barriers still in flight complete nothing.
                CoordinatorMsg::Ack(_) if self.cancelled => {}
                CoordinatorMsg::Ack(mut ack) => {
                    if Some(ack.id) == self.stopped_at && self.is_source(ack.stage) {
                        // A source stopped by the stop that became the final savepoint:
                        // its state at that barrier is its final state.
                        ack.id = FINAL;
                    }
                    let id = ack.id;
                    if id == FINAL {
                        self.finish_subtask(&mut ack);
                    }
                    if id != FINAL && !self.pending.contains_key(&id) {
                        // A barrier of an abandoned checkpoint: keep the output it carries.
                        self.keep_output(&mut ack);
                        std::thread::spawn(move || drop(ack));
                        continue;
                    }
                    let entry = self
                        .pending
                        .entry(id)
                        .or_insert_with(|| Pending::new(Target::Final, false));
                    entry.acks.push(ack);
                    // Checkpoints complete in id order (the final one last); an ended
                    // subtask may have completed earlier ones with its final state.
                    let ready: Vec<u64> = self
                        .pending
                        .iter()
                        .filter(|(_, p)| p.acks.len() == self.total)
                        .map(|(id, _)| *id)
                        .collect();
                    for id in ready {
                        self.final_written |= id == FINAL;
                        if let Some(done) = self.pending.remove(&id) {
                            if let Err(e) = self.complete(id, done) {
                                if id == FINAL {
                                    // The job ends without its final checkpoint.
                                    tracing::error!("{e}");
                                    error = Some(e);
                                } else {
                                    tracing::warn!(checkpoint = id, "{e}");
                                }
                            }
                        }
                    }
                }
                CoordinatorMsg::WorkersDone => break,
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(self.written),
        }
    }

    /// A subtask acknowledged the final barrier: it takes no other, so its final state
    /// stands in for it in the checkpoints in flight it has not acknowledged and in every
    /// later one. Its last output goes with the next checkpoint that completes.
    fn finish_subtask(&mut self, ack: &mut Ack) {
        self.keep_output(ack);
        let key = (ack.stage, ack.subtask);
        let done = FinishedSubtask {
            splits: ack.splits.clone(),
            snapshots: ack.snapshots.clone(),
        };
        for (id, pending) in self.pending.iter_mut() {
            if *id != FINAL && !pending.acks.iter().any(|a| (a.stage, a.subtask) == key) {
                pending.acks.push(done.ack(*id, key));
            }
        }
        self.finished.insert(key, done);
    }

    /// Whether every source subtask has ended: only the final checkpoint is to come.
    fn all_sources_finished(&self) -> bool {
        self.stages
            .iter()
            .enumerate()
            .filter(|(_, stage)| stage.is_source)
            .all(|(s, stage)| (0..stage.parallelism).all(|t| self.finished.contains_key(&(s, t))))
    }

    /// Moves the sink output an acknowledgement carries to the pending output.
    fn keep_output(&mut self, ack: &mut Ack) {
        if let Some(output) = ack.sink_output.take() {
            self.output.add((ack.stage, ack.subtask), output);
        }
    }

    fn final_entry(&mut self) -> &mut Pending {
        self.pending
            .entry(FINAL)
            .or_insert_with(|| Pending::new(Target::Final, false))
    }

    fn is_source(&self, stage: usize) -> bool {
        self.stages.get(stage).is_some_and(|s| s.is_source)
    }

    fn trigger(&mut self, target: Target, stop: bool, drain: bool) {
        let id = self.next_id;
        self.next_id += 1;
        let mut pending = Pending::new(target, stop);
        // Ended subtasks take no barrier: their final state stands in.
        for (key, done) in &self.finished {
            pending.acks.push(done.ack(id, *key));
        }
        self.pending.insert(id, pending);
        // A stopping source waits for the savepoint to be written (it reads on if it
        // fails), unless a drain already ran event time to the end.
        self.send_trigger(id, stop, drain, stop && !drain);
    }

    fn send_trigger(&self, id: u64, stop: bool, drain: bool, pause: bool) {
        for s in &self.sources {
            let _ = s.send(SourceControl::Trigger {
                id,
                stop,
                drain,
                pause,
            });
        }
    }

    /// Tells sources paused after a stop barrier to end (or, `resume`, to read on).
    fn release_sources(&self, resume: bool) {
        let message = || {
            if resume {
                SourceControl::Resume
            } else {
                SourceControl::Finish
            }
        };
        for s in &self.sources {
            // A source that has ended already has nothing to be told.
            let _ = s.send(message());
        }
    }

    /// Tells each sink which of its staged chunks the checkpoint about to be written at
    /// `location` lists, before its manifest exists (see `sink/staging.rs`).
    fn record_listings(&self, location: &Location, checkpoint_id: u64) -> Result<()> {
        for (s, stage) in self.stages.iter().enumerate() {
            let Some(StageSink { sink, .. }) = &stage.sink else {
                continue;
            };
            let tokens: Vec<String> = (0..stage.parallelism)
                .flat_map(|i| self.output.records(checkpoint_id, (s, i)))
                .map(|r| {
                    crate::sink::pending::parse_record(&r, checkpoint_id)
                        .1
                        .to_string()
                })
                .collect();
            if !tokens.is_empty() {
                sink.record_listing(checkpoint_id, &location.to_string(), &tokens)?;
            }
        }
        Ok(())
    }

    /// Every subtask acknowledged checkpoint `id`: write it, then commit its output.
    fn complete(&mut self, id: u64, done: Pending) -> Result<()> {
        let checkpoint_id = if id == FINAL { self.next_id } else { id };
        let (location, kind) = match &done.target {
            Target::Checkpoint => match &self.options.checkpoint_dir {
                Some(dir) => (
                    Some(child(dir, &checkpoint_folder(checkpoint_id))),
                    SavepointKind::Checkpoint,
                ),
                None => (None, SavepointKind::Checkpoint),
            },
            Target::Savepoint { location, .. } => {
                (Some(location.clone()), SavepointKind::Savepoint)
            }
            Target::Final => (
                self.options.savepoint_on_finish.clone(),
                SavepointKind::Savepoint,
            ),
        };
        let mut acks = done.acks;
        let pause = acks.iter().map(|a| a.sync_pause).max().unwrap_or_default();
        let running = acks
            .iter()
            .map(|a| a.sync_pause.saturating_sub(a.sync_pause_waiting))
            .max()
            .unwrap_or_default();
        let started = std::time::Instant::now();
        // Phase one: stage the output; its tokens go into the checkpoint.
        let written_to = location.as_ref().map(|l| l.to_string()).unwrap_or_default();
        for ack in acks.iter_mut() {
            self.keep_output(ack);
        }
        let result = match self.output.stage(sink_of(&self.stages)) {
            Ok(()) => match location {
                Some(loc) => self
                    .record_listings(&loc, checkpoint_id)
                    .and_then(|()| {
                        let incremental = matches!(done.target, Target::Checkpoint);
                        self.write(&loc, kind, checkpoint_id, &mut acks, incremental)
                    })
                    .map(Some),
                None => Ok(None),
            },
            // Whatever failed to stage waits for the next checkpoint.
            Err(e) => Err(e),
        };
        if let Ok(Some(m)) = &result {
            let what = match m.kind {
                SavepointKind::Savepoint => "savepoint",
                _ => "checkpoint",
            };
            tracing::debug!(
                checkpoint = checkpoint_id,
                path = %written_to,
                "{what} {checkpoint_id} written to {written_to} in {:?}",
                started.elapsed()
            );
        }
        if let Ok(mut stats) = self.counters.stats.lock() {
            stats.max_sync_pause = stats.max_sync_pause.max(pause);
            stats.max_sync_pause_running = stats.max_sync_pause_running.max(running);
            if result.is_err() {
                stats.checkpoints_failed += 1;
            }
            if let Ok(Some(m)) = &result {
                stats.checkpoints_written += 1;
                stats.last_write = started.elapsed();
                stats.last_checkpoint = Some(crate::CompletedCheckpoint {
                    id: m.checkpoint_id,
                    location: written_to,
                    savepoint: m.kind == SavepointKind::Savepoint,
                    completed_at: std::time::SystemTime::now(),
                });
            }
        }
        match result {
            Ok(manifest) => {
                // Phase two: the checkpoint is durable, so its output becomes visible.
                let sink_of = sink_of(&self.stages);
                let failed = self.output.commit(checkpoint_id, sink_of).map(|(id, e)| {
                    EngineError::Operator {
                        operator: "sink".into(),
                        message: format!("committing the output of checkpoint {id}: {e}"),
                    }
                });
                if let Some(m) = &manifest {
                    match done.target {
                        Target::Checkpoint => self.retain(m),
                        Target::Savepoint { reply, .. } => {
                            self.written.push(m.clone());
                            let _ = reply.send(Ok(m.clone()));
                        }
                        Target::Final => self.written.push(m.clone()),
                    }
                }
                if done.stop && id != FINAL {
                    // The stop's savepoint is written: the paused sources end.
                    self.release_sources(false);
                }
                if failed.is_none() {
                    for stage in &self.stages {
                        if let Some(StageSink { uid, sink, .. }) = &stage.sink {
                            if let Err(e) = sink.committed_through(checkpoint_id) {
                                tracing::warn!(%uid, checkpoint = checkpoint_id, "sink {uid}: {e}");
                            }
                        }
                    }
                }
                match failed {
                    // The job ends: say that its last output is not visible yet.
                    Some(e) if id == FINAL => Err(e),
                    Some(e) => {
                        tracing::warn!(
                            checkpoint = checkpoint_id,
                            "{e}; retried after the next checkpoint"
                        );
                        Ok(())
                    }
                    None => Ok(()),
                }
            }
            Err(e) => {
                // The staged output waits for the next checkpoint; the job goes on. A stop
                // whose savepoint failed is no stop: its paused sources read on.
                if done.stop && id != FINAL && !self.cancelled {
                    self.stopping = false;
                    self.release_sources(true);
                }
                if let Target::Savepoint { reply, .. } = done.target {
                    let _ = reply.send(Err(EngineError::Checkpoint {
                        id: checkpoint_id,
                        message: e.to_string(),
                    }));
                }
                Err(EngineError::Checkpoint {
                    id: checkpoint_id,
                    message: e.to_string(),
                })
            }
        }
    }

    fn retain(&mut self, manifest: &Manifest) {
        let Some(dir) = &self.options.checkpoint_dir else {
            return;
        };
        let folder = checkpoint_folder(manifest.checkpoint_id);
        self.retained.push(child(dir, &folder));
        // Later checkpoints may build on this one; none on an older one, so the workers may
        // forget what only those would need.
        self.last_checkpoint = Some((folder, manifest.clone()));
        self.counters
            .committed_checkpoint
            .store(manifest.checkpoint_id, std::sync::atomic::Ordering::Release);
        let keep = self.options.retain_checkpoints;
        while keep > 0 && self.retained.len() > keep {
            let old = self.retained.remove(0);
            if let Err(e) = self
                .io
                .block_on(rewind_savepoint::remove(&old, false))
                .and_then(|r| r.map_err(EngineError::from))
            {
                tracing::warn!(path = %old, "cannot delete old checkpoint {old}: {e}");
            }
        }
    }
}

fn input_ended() -> EngineError {
    EngineError::Internal(
        "the job's input ended before the savepoint could be taken; a bounded job writes its \
         last savepoint with --savepoint-on-finish"
            .into(),
    )
}

/// The sink of a stage, by its index.
fn sink_of(stages: &[StageInfo]) -> impl Fn(usize) -> Option<Arc<dyn Sink>> + '_ {
    |s| {
        stages
            .get(s)
            .and_then(|s| s.sink.as_ref())
            .map(|s| s.sink.clone())
    }
}

fn child(dir: &Location, name: &str) -> Location {
    Location::new(dir.store().clone(), dir.child(name), dir.describe(name))
}
