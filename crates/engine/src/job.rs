//! The dataflow API: sources, stateless transformations, keyed processing and sinks, each
//! operator with a name and, where it holds state or positions, a stable uid.

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;

use arrow_array::RecordBatch;
use rewind_savepoint::format::SplitEntry;
use serde::Serialize;

use crate::key::Key;
use crate::sink::Sink;
use crate::source::{Source, SplitReader};
use crate::state::{StateSnapshot, StateValue, ValueTable};
use crate::{EngineError, Result};

/// A record in flight between operators (type-erased; the API keeps types straight).
pub(crate) type Rec = Box<dyn Any + Send>;

/// A keyed process function with one value state per key.
pub trait KeyedProcessFunction: Send + Sync + 'static {
    /// The key type.
    type Key: Key;
    /// Input records.
    type In: Send + 'static;
    /// Output records.
    type Out: Send + 'static;
    /// The state kept per key.
    type State: StateValue;
    /// The name of the state in savepoints.
    fn state_name(&self) -> &str;
    /// Handles one record of `key`; `state` is the key's value (`None` if unset); set it to
    /// `None` to clear it.
    fn process(
        &self,
        key: &Self::Key,
        input: Self::In,
        state: &mut Option<Self::State>,
        out: &mut Vec<Self::Out>,
    );
}

pub(crate) trait ErasedOp: Send {
    fn process(&mut self, rec: Rec, out: &mut Vec<Rec>) -> Result<()>;
    fn snapshot(&self) -> Vec<Box<dyn StateSnapshot>> {
        Vec::new()
    }
    fn restore(&mut self, _state: &str, _batch: &RecordBatch) -> Result<()> {
        Err(EngineError::Internal(
            "restore into a stateless operator".into(),
        ))
    }
}

pub(crate) type OpFactory = Arc<dyn Fn() -> Box<dyn ErasedOp> + Send + Sync>;
pub(crate) type HashFn = Arc<dyn Fn(&Rec) -> Result<u64> + Send + Sync>;
pub(crate) type RenderFn = Arc<dyn Fn(&Rec) -> Result<String> + Send + Sync>;
type KeyFn<T, K> = Arc<dyn Fn(&T) -> K + Send + Sync>;

pub(crate) trait ErasedSource: Send + Sync {
    fn splits(&self) -> Vec<SplitEntry>;
    fn reader(&self, split: &SplitEntry) -> Result<Box<dyn ErasedReader>>;
}

pub(crate) trait ErasedReader: Send {
    fn next(&mut self) -> Option<Rec>;
    fn finished(&self) -> bool;
    fn position(&self) -> serde_json::Value;
}

struct SourceAdapter<S: Source>(S);
struct ReaderAdapter<T>(Box<dyn SplitReader<T>>);

impl<S: Source> ErasedSource for SourceAdapter<S> {
    fn splits(&self) -> Vec<SplitEntry> {
        self.0.splits()
    }
    fn reader(&self, split: &SplitEntry) -> Result<Box<dyn ErasedReader>> {
        Ok(Box::new(ReaderAdapter(self.0.reader(split)?)))
    }
}

impl<T: Send + 'static> ErasedReader for ReaderAdapter<T> {
    fn next(&mut self) -> Option<Rec> {
        self.0.next().map(|r| Box::new(r) as Rec)
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
    Rebalance,
    Hash(HashFn),
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
    /// The stage's sink: its uid (its pending commits are state), the sink, and how
    /// records are rendered.
    pub sink: Option<(String, Arc<dyn Sink>, RenderFn)>,
}

/// A job under construction; start with [`JobBuilder::source`].
pub struct JobBuilder {
    pub(crate) name: String,
    pub(crate) stages: Vec<StageDef>,
}

/// A finished job definition, ready to run (see [`crate::run`]).
pub struct Job {
    pub(crate) name: String,
    pub(crate) stages: Vec<StageDef>,
}

/// A stream of `T` records.
pub struct DataStream<T> {
    job: JobBuilder,
    _t: PhantomData<fn() -> T>,
}

/// A stream partitioned by key.
pub struct KeyedStream<K, T> {
    job: JobBuilder,
    key: KeyFn<T, K>,
}

fn downcast<T: 'static>(rec: Rec) -> Result<T> {
    rec.downcast::<T>()
        .map(|b| *b)
        .map_err(|_| EngineError::Internal("record of an unexpected type".into()))
}

impl JobBuilder {
    /// A new job called `name`.
    pub fn new(name: &str) -> JobBuilder {
        JobBuilder {
            name: name.to_string(),
            stages: Vec::new(),
        }
    }

    /// Starts the stream with a source. Give it a uid (its positions are state).
    pub fn source<S: Source>(mut self, name: &str, source: S) -> DataStream<S::Out> {
        self.stages.push(StageDef {
            uid: None,
            name: name.to_string(),
            parallelism: None,
            input: StageInput::Source(Arc::new(SourceAdapter(source))),
            ops: Vec::new(),
            states: Vec::new(),
            sink: None,
        });
        DataStream {
            job: self,
            _t: PhantomData,
        }
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
        let DataStream { job, .. } = self.chain(Arc::new(move || {
            let f = f.clone();
            Box::new(FnOp(move |r: Rec, out: &mut Vec<Rec>| {
                out.push(Box::new(f(downcast::<T>(r)?)));
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
        self.chain(Arc::new(move || {
            let f = f.clone();
            Box::new(FnOp(move |r: Rec, out: &mut Vec<Rec>| {
                let t = downcast::<T>(r)?;
                if f(&t) {
                    out.push(Box::new(t));
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
        let DataStream { job, .. } = self.chain(Arc::new(move || {
            let f = f.clone();
            Box::new(FnOp(move |r: Rec, out: &mut Vec<Rec>| {
                out.extend(f(downcast::<T>(r)?).into_iter().map(|u| Box::new(u) as Rec));
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
    pub fn rebalance(mut self, name: &str) -> DataStream<T> {
        self.job.stages.push(StageDef {
            uid: None,
            name: name.to_string(),
            parallelism: None,
            input: StageInput::Rebalance,
            ops: Vec::new(),
            states: Vec::new(),
            sink: None,
        });
        self
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
        let render: RenderFn = Arc::new(|r: &Rec| {
            let t = r
                .downcast_ref::<T>()
                .ok_or_else(|| EngineError::Internal("sink record of an unexpected type".into()))?;
            serde_json::to_string(t).map_err(|e| EngineError::Operator {
                operator: "sink".into(),
                message: e.to_string(),
            })
        });
        if let Ok(stage) = self.last() {
            stage.sink = Some((uid.to_string(), Arc::new(sink), render));
        }
        Job {
            name: self.job.name,
            stages: self.job.stages,
        }
    }
}

impl<K: Key, T: Send + 'static> KeyedStream<K, T> {
    /// Processes each key's records with `f`, which keeps one value state per key.
    pub fn process<F>(mut self, name: &str, f: F) -> DataStream<F::Out>
    where
        F: KeyedProcessFunction<Key = K, In = T>,
    {
        let key = self.key.clone();
        let hash: HashFn = Arc::new(move |r: &Rec| {
            let t = r
                .downcast_ref::<T>()
                .ok_or_else(|| EngineError::Internal("record of an unexpected type".into()))?;
            Ok(key(t).key_hash())
        });
        let state = f.state_name().to_string();
        let f = Arc::new(f);
        let key = self.key.clone();
        let factory: OpFactory = Arc::new(move || {
            Box::new(KeyedOp {
                f: f.clone(),
                key: key.clone(),
                table: ValueTable::<K, F::State>::new(),
            }) as Box<dyn ErasedOp>
        });
        self.job.stages.push(StageDef {
            uid: None,
            name: name.to_string(),
            parallelism: None,
            input: StageInput::Hash(hash),
            ops: vec![factory],
            states: vec![state],
            sink: None,
        });
        DataStream {
            job: self.job,
            _t: PhantomData,
        }
    }
}

struct FnOp<F>(F);

impl<F: FnMut(Rec, &mut Vec<Rec>) -> Result<()> + Send> ErasedOp for FnOp<F> {
    fn process(&mut self, rec: Rec, out: &mut Vec<Rec>) -> Result<()> {
        (self.0)(rec, out)
    }
}

struct KeyedOp<F: KeyedProcessFunction> {
    f: Arc<F>,
    key: KeyFn<F::In, F::Key>,
    table: ValueTable<F::Key, F::State>,
}

impl<F: KeyedProcessFunction> ErasedOp for KeyedOp<F> {
    fn process(&mut self, rec: Rec, out: &mut Vec<Rec>) -> Result<()> {
        let input = downcast::<F::In>(rec)?;
        let key = (self.key)(&input);
        let mut state = self.table.map.get(&key).cloned();
        let mut produced = Vec::new();
        self.f.process(&key, input, &mut state, &mut produced);
        match state {
            Some(v) => {
                self.table.map.insert(key, v);
            }
            None => {
                self.table.map.remove(&key);
            }
        }
        out.extend(produced.into_iter().map(|o| Box::new(o) as Rec));
        Ok(())
    }

    fn snapshot(&self) -> Vec<Box<dyn StateSnapshot>> {
        vec![self.table.snapshot(self.f.state_name())]
    }

    fn restore(&mut self, state: &str, batch: &RecordBatch) -> Result<()> {
        if state != self.f.state_name() {
            return Err(EngineError::Restore(format!(
                "no state {state:?} in this operator"
            )));
        }
        self.table.restore(batch)
    }
}

impl Job {
    /// Checks the job: every source and keyed operator has a valid uid, uids are unique.
    pub fn validate(&self) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for (uid, _, _) in self.stages.iter().filter_map(|s| s.sink.as_ref()) {
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
