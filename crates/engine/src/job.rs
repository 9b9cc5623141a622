//! The dataflow API: sources, stateless transformations, keyed processing and sinks, each
//! operator with a name and, where it holds state or positions, a stable uid.

use std::marker::PhantomData;
use std::sync::Arc;

use rewind_savepoint::format::SplitEntry;
use serde::Serialize;

use crate::key::Key;
use crate::keyed::{KeyedOp, KeyedProcessFunction, Tables, Timers};
use crate::operator::{
    ErasedOp, ErasedReader, ErasedSource, HashFn, KeyFn, NewBatch, OpFactory, Rec, RenderFn,
};
use crate::sink::Sink;
use crate::source::{Source, SplitReader};
use crate::{EngineError, Result};

struct SourceAdapter<S: Source>(S);
struct ReaderAdapter<T>(Box<dyn SplitReader<T>>);

impl<S: Source> ErasedSource for SourceAdapter<S> {
    fn splits(&self) -> Vec<SplitEntry> {
        self.0.splits()
    }
    fn reader(&self, split: &SplitEntry) -> Result<Box<dyn ErasedReader>> {
        Ok(Box::new(ReaderAdapter(self.0.reader(split)?)))
    }
    fn discovery_interval(&self) -> Option<std::time::Duration> {
        self.0.discovery_interval()
    }
    fn discover(&self) -> Result<Vec<SplitEntry>> {
        self.0.discover()
    }
}

impl<T: Send + 'static> ErasedReader for ReaderAdapter<T> {
    fn next(&mut self) -> Option<Rec> {
        self.0.next().map(|r| Rec::new(r, None))
    }
    fn finished(&self) -> bool {
        self.0.finished()
    }
    fn position(&self) -> serde_json::Value {
        self.0.position()
    }
}

/// How records reach a stage from the one before.
pub(crate) enum StageInput {
    Source(Arc<dyn ErasedSource>),
    /// Records dealt round-robin, carried in batches `NewBatch` makes.
    Rebalance(NewBatch),
    /// Records sent to the subtask owning their key's hash.
    Hash(HashFn, NewBatch),
}

/// A chain of operators that runs in one thread per subtask.
pub(crate) struct StageDef {
    pub uid: Option<String>,
    pub name: String,
    pub parallelism: Option<u32>,
    pub input: StageInput,
    pub ops: Vec<OpFactory>,
    /// The state names of the stage's keyed operator, if any.
    pub states: Vec<String>,
    /// A source stage's idle timeout: a split without records for this long stops holding
    /// the watermark back.
    pub idle_timeout: Option<std::time::Duration>,
    /// The stage's sink.
    pub sink: Option<StageSink>,
}

/// A stage's sink.
#[derive(Clone)]
pub(crate) struct StageSink {
    /// Its uid: its pending commits are state under it.
    pub uid: String,
    /// The sink.
    pub sink: Arc<dyn Sink>,
    /// How records are rendered into its output.
    pub render: RenderFn,
}

impl StageDef {
    fn new(name: &str, input: StageInput, ops: Vec<OpFactory>, states: Vec<String>) -> Self {
        StageDef {
            uid: None,
            name: name.to_string(),
            parallelism: None,
            input,
            ops,
            states,
            idle_timeout: None,
            sink: None,
        }
    }
}

/// A job under construction; start with [`JobBuilder::source`].
pub struct JobBuilder {
    pub(crate) name: String,
    pub(crate) stages: Vec<StageDef>,
    /// Mistakes in the definition, reported by [`Job::validate`].
    pub(crate) problems: Vec<String>,
    /// Late records that window operators dropped.
    pub(crate) late: Arc<std::sync::atomic::AtomicU64>,
}

/// A finished job definition, ready to run (see [`crate::run`]).
pub struct Job {
    pub(crate) name: String,
    pub(crate) stages: Vec<StageDef>,
    pub(crate) problems: Vec<String>,
    pub(crate) late: Arc<std::sync::atomic::AtomicU64>,
}

/// A stream of `T` records.
pub struct DataStream<T> {
    pub(crate) job: JobBuilder,
    _t: PhantomData<fn() -> T>,
}

/// A stream partitioned by key.
pub struct KeyedStream<K, T> {
    job: JobBuilder,
    key: KeyFn<T, K>,
}

impl JobBuilder {
    /// A new job called `name`.
    pub fn new(name: &str) -> JobBuilder {
        JobBuilder {
            name: name.to_string(),
            stages: Vec::new(),
            problems: Vec::new(),
            late: Arc::default(),
        }
    }

    /// Adds `stage` as the stream's next stage.
    fn then<U>(mut self, stage: StageDef) -> DataStream<U> {
        self.stages.push(stage);
        DataStream {
            job: self,
            _t: PhantomData,
        }
    }

    /// Starts the stream with a source. Give it a uid (its positions are state).
    pub fn source<S: Source>(self, name: &str, source: S) -> DataStream<S::Out> {
        let input = StageInput::Source(Arc::new(SourceAdapter(source)));
        self.then(StageDef::new(name, input, Vec::new(), Vec::new()))
    }
}

impl<T: Send + 'static> DataStream<T> {
    fn last(&mut self) -> Result<&mut StageDef> {
        self.job
            .stages
            .last_mut()
            .ok_or_else(|| EngineError::Internal("no stage".into()))
    }

    /// Sets the uid of the last source or keyed operator (required for both: it matches
    /// their state and positions across job versions).
    pub fn uid(mut self, uid: &str) -> Self {
        if let Ok(stage) = self.last() {
            stage.uid = Some(uid.to_string());
        }
        self
    }

    /// Sets the parallelism of the current stage (the source or keyed operator and the
    /// stateless operators chained to it).
    pub fn parallelism(mut self, parallelism: u32) -> Self {
        if let Ok(stage) = self.last() {
            stage.parallelism = Some(parallelism);
        }
        self
    }

    /// Gives the source's records event time: `timestamp` extracts it (milliseconds since
    /// the Unix epoch), and each split's watermark trails the largest timestamp seen by
    /// `max_out_of_orderness` (records later than that are late). Call it right after
    /// [`JobBuilder::source`].
    pub fn assign_timestamps(
        mut self,
        timestamp: impl Fn(&T) -> i64 + Send + Sync + 'static,
        max_out_of_orderness: std::time::Duration,
    ) -> Self {
        let extract: crate::time::ExtractFn =
            Arc::new(move |r: &Rec| r.downcast_ref::<T>().ok().map(&timestamp));
        match self.job.stages.last_mut() {
            Some(StageDef {
                input: StageInput::Source(source),
                ops,
                ..
            }) if ops.is_empty() => {
                *source = Arc::new(crate::time::Timestamped::new(
                    source.clone(),
                    extract,
                    max_out_of_orderness,
                ));
            }
            _ => self
                .job
                .problems
                .push("assign_timestamps must follow the source directly".into()),
        }
        self
    }

    /// A source split that has no new records for `timeout` is idle: it no longer holds
    /// back the watermark until records arrive again.
    pub fn idle_timeout(mut self, timeout: std::time::Duration) -> Self {
        match self.job.stages.last_mut() {
            Some(stage) if matches!(stage.input, StageInput::Source(_)) => {
                stage.idle_timeout = Some(timeout)
            }
            _ => self
                .job
                .problems
                .push("idle_timeout applies to a source stage".into()),
        }
        self
    }

    fn chain(mut self, op: OpFactory) -> Self {
        if let Ok(stage) = self.last() {
            stage.ops.push(op);
        }
        self
    }

    /// Transforms each record.
    pub fn map<U: Send + 'static>(
        self,
        f: impl Fn(T) -> U + Send + Sync + 'static,
    ) -> DataStream<U> {
        let f = Arc::new(f);
        let DataStream { job, .. } = self.chain(Arc::new(move |_| {
            let f = f.clone();
            Box::new(FnOp(move |r: Rec, out: &mut Vec<Rec>| {
                let ts = r.timestamp();
                out.push(Rec::new(f(r.downcast::<T>()?), ts));
                Ok(())
            })) as Box<dyn ErasedOp>
        }));
        DataStream {
            job,
            _t: PhantomData,
        }
    }

    /// Keeps the records for which `f` is true.
    pub fn filter(self, f: impl Fn(&T) -> bool + Send + Sync + 'static) -> DataStream<T> {
        let f = Arc::new(f);
        self.chain(Arc::new(move |_| {
            let f = f.clone();
            Box::new(FnOp(move |r: Rec, out: &mut Vec<Rec>| {
                if f(r.downcast_ref::<T>()?) {
                    out.push(r);
                }
                Ok(())
            })) as Box<dyn ErasedOp>
        }))
    }

    /// Turns each record into any number of records.
    pub fn flat_map<U: Send + 'static, I: IntoIterator<Item = U>>(
        self,
        f: impl Fn(T) -> I + Send + Sync + 'static,
    ) -> DataStream<U> {
        let f = Arc::new(f);
        let DataStream { job, .. } = self.chain(Arc::new(move |_| {
            let f = f.clone();
            Box::new(FnOp(move |r: Rec, out: &mut Vec<Rec>| {
                let ts = r.timestamp();
                out.extend(f(r.downcast::<T>()?).into_iter().map(|u| Rec::new(u, ts)));
                Ok(())
            })) as Box<dyn ErasedOp>
        }));
        DataStream {
            job,
            _t: PhantomData,
        }
    }

    /// Deals records round-robin to a new stage of stateless operators (e.g. to change
    /// parallelism without a key).
    pub fn rebalance(self, name: &str) -> DataStream<T> {
        self.job.then(StageDef::new(
            name,
            StageInput::Rebalance(crate::operator::batch_of::<T>()),
            Vec::new(),
            Vec::new(),
        ))
    }

    /// Processes records with a function whose subtasks each keep a list of elements
    /// (see [`crate::OperatorFunction`]), in a new stage fed round-robin. `make` builds one
    /// function per subtask. Give the stage a uid.
    pub fn process_with_state<F: crate::OperatorFunction<In = T>>(
        self,
        name: &str,
        make: impl Fn() -> F + Send + Sync + 'static,
    ) -> DataStream<F::Out> {
        let state = make().state_name().to_string();
        let factory: OpFactory = Arc::new(move |_| {
            Box::new(crate::operator_state::OperatorOp {
                f: make(),
                restored: None,
            }) as Box<dyn ErasedOp>
        });
        let input = StageInput::Rebalance(crate::operator::batch_of::<T>());
        let stage = StageDef::new(name, input, vec![factory], vec![state]);
        self.job.then(stage)
    }

    /// Partitions the stream by key: records of one key go to the subtask whose hash range
    /// holds the key's hash (spec: "Hash ranges").
    pub fn key_by<K: Key>(
        self,
        key: impl Fn(&T) -> K + Send + Sync + 'static,
    ) -> KeyedStream<K, T> {
        KeyedStream {
            job: self.job,
            key: Arc::new(key),
        }
    }

    /// Ends the stream in a sink; output becomes visible when its checkpoint completes.
    /// `uid` names the sink's pending commits in checkpoints.
    pub fn sink(mut self, uid: &str, sink: impl Sink) -> Job
    where
        T: Serialize,
    {
        let render: RenderFn = Arc::new(|r: &Rec, out: &mut Vec<u8>| {
            let t = r.downcast_ref::<T>()?;
            serde_json::to_writer(out, t).map_err(|e| EngineError::Operator {
                operator: "sink".into(),
                message: e.to_string(),
            })
        });
        if let Ok(stage) = self.last() {
            stage.sink = Some(StageSink {
                uid: uid.to_string(),
                sink: Arc::new(sink),
                render,
            });
        }
        Job {
            name: self.job.name,
            stages: self.job.stages,
            problems: self.job.problems,
            late: self.job.late,
        }
    }
}

impl<K: Key, T: Send + 'static> KeyedStream<K, T> {
    /// Processes each key's records with `f` (see [`KeyedProcessFunction`]).
    pub fn process<F>(self, name: &str, f: F) -> DataStream<F::Out>
    where
        F: KeyedProcessFunction<Key = K, In = T>,
    {
        let decls = f.states();
        let states = crate::keyed::state_names(&decls, f.uses_timers());
        let f = Arc::new(f);
        let key = self.key.clone();
        let factory: OpFactory = Arc::new(move |range| {
            Box::new(KeyedOp {
                f: f.clone(),
                key: key.clone(),
                tables: Tables::new(&decls, range),
                timers: Timers::new(false),
                watermark: i64::MIN,
                warming: Vec::new(),
            }) as Box<dyn ErasedOp>
        });
        self.stage(name, factory, states)
    }

    /// Adds a keyed stage whose operator `factory` makes, keeping `states`.
    pub(crate) fn stage<U>(
        self,
        name: &str,
        factory: OpFactory,
        states: Vec<String>,
    ) -> DataStream<U> {
        let key = self.key.clone();
        let hash: HashFn = Arc::new(move |r: &Rec| Ok(key(r.downcast_ref::<T>()?).key_hash()));
        let input = StageInput::Hash(hash, crate::operator::batch_of::<T>());
        let stage = StageDef::new(name, input, vec![factory], states);
        self.job.then(stage)
    }

    /// The job's counter of dropped late records.
    pub(crate) fn late_counter(&self) -> Arc<std::sync::atomic::AtomicU64> {
        self.job.late.clone()
    }

    /// The function that extracts the key of a record.
    pub(crate) fn key_fn(&self) -> Arc<dyn Fn(&T) -> K + Send + Sync> {
        self.key.clone()
    }
}

struct FnOp<F>(F);

impl<F: FnMut(Rec, &mut Vec<Rec>) -> Result<()> + Send> ErasedOp for FnOp<F> {
    fn process(&mut self, rec: Rec, out: &mut Vec<Rec>) -> Result<()> {
        (self.0)(rec, out)
    }
}

impl Job {
    /// Every uid of the job: its stateful operators' and its sinks'.
    pub(crate) fn uids(&self) -> Vec<&str> {
        self.stages
            .iter()
            .flat_map(|s| {
                s.uid
                    .as_deref()
                    .into_iter()
                    .chain(s.sink.as_ref().map(|sink| sink.uid.as_str()))
            })
            .collect()
    }

    /// Checks the job: every source and keyed operator has a valid uid, uids are unique.
    pub fn validate(&self) -> Result<()> {
        if let Some(problem) = self.problems.first() {
            return Err(EngineError::InvalidJob(problem.clone()));
        }
        let mut seen = std::collections::HashSet::new();
        for StageSink { uid, .. } in self.stages.iter().filter_map(|s| s.sink.as_ref()) {
            rewind_savepoint::format::check_name("sink uid", uid)
                .map_err(EngineError::InvalidJob)?;
            seen.insert(uid.clone());
        }
        for stage in &self.stages {
            let stateful = matches!(stage.input, StageInput::Source(_)) || !stage.states.is_empty();
            match &stage.uid {
                None if stateful => {
                    return Err(EngineError::InvalidJob(format!(
                        "operator {:?} has state but no uid; give it one with .uid(...) so its state survives job changes",
                        stage.name
                    )));
                }
                Some(uid) => {
                    rewind_savepoint::format::check_name("operator uid", uid)
                        .map_err(EngineError::InvalidJob)?;
                    if !seen.insert(uid.clone()) {
                        return Err(EngineError::InvalidJob(format!(
                            "uid {uid:?} is used twice"
                        )));
                    }
                }
                None => {}
            }
        }
        if self.stages.is_empty() {
            return Err(EngineError::InvalidJob("the job has no source".into()));
        }
        Ok(())
    }
}
