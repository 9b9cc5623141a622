//! The keyed count: events of the deterministic generator counted per key in value state
//! `count` of operator `counter`. The engine's tests, the reliability suite and the
//! benchmarks all run this one job (the engine's `keyed-count` example has its own count,
//! as an application built on the engine alone).

use rewind_engine::{
    Context, GeneratedEvent, GeneratorSource, Job, JobBuilder, KeyedProcessFunction, RunOptions,
    Sink, StateDecl, StateValue, ValueState,
};
use rewind_savepoint::format::Manifest;

/// The deterministic generator at full speed: `keys` keys, `events` events over `splits`
/// splits.
pub fn generator(keys: u64, events: u64, seed: u64, splits: u32) -> GeneratorSource {
    GeneratorSource {
        keys,
        events,
        seed,
        splits,
        rate_per_split: None,
    }
}

/// Runs a bounded `job` to the end of its input and returns the savepoints it wrote.
///
/// # Panics
/// When the job fails (test code).
pub fn run_to_end(job: Job, options: RunOptions) -> Vec<Manifest> {
    rewind_engine::run(job, options)
        .and_then(|handle| handle.wait())
        .unwrap_or_else(|e| panic!("job failed: {e}"))
}

/// Counts records (of type `I`, the generator's events by default) per `i64` key in value
/// state `count` (of type `V`: `u64`, or `i64` like Flink's `Long`), emitting
/// `(key, count)` for each record unless made [`Count::silent`].
pub struct Count<V: StateValue = u64, I = GeneratedEvent> {
    count: ValueState<V>,
    emit: bool,
    input: std::marker::PhantomData<fn(I)>,
}

impl Count {
    /// A count in `u64` that emits `(key, count)` for every event.
    pub fn new() -> Self {
        Self::emitting()
    }
}

impl<V: StateValue, I> Count<V, I> {
    /// A count that emits `(key, count)` for every record.
    pub fn emitting() -> Self {
        Count {
            count: ValueState::new("count"),
            emit: true,
            input: std::marker::PhantomData,
        }
    }

    /// A count that emits nothing (benchmarks measure state, not output).
    pub fn silent() -> Self {
        Count {
            emit: false,
            ..Self::emitting()
        }
    }
}

impl Default for Count {
    fn default() -> Self {
        Self::new()
    }
}

impl<V, I> KeyedProcessFunction for Count<V, I>
where
    V: StateValue + Copy + From<u8> + std::ops::Add<Output = V>,
    I: Send + 'static,
{
    type Key = i64;
    type In = I;
    type Out = (i64, V);

    fn states(&self) -> Vec<StateDecl<i64>> {
        vec![self.count.decl()]
    }

    fn process(&self, _: I, ctx: &mut Context<'_, i64, (i64, V)>) {
        let count = self.count.get(ctx).copied().unwrap_or(V::from(0)) + V::from(1);
        self.count.set(ctx, count);
        if self.emit {
            let key = *ctx.key();
            ctx.emit((key, count));
        }
    }
}

/// Generator (uid `events`, parallelism 2) -> [`Count`] of `u64` (uid `counter`,
/// `parallelism`) -> `sink` (uid `output`): the job the engine's tests run.
pub fn keyed_count(source: GeneratorSource, parallelism: u32, sink: impl Sink) -> Job {
    keyed_count_with(source, parallelism, Count::new(), |e| e.key, sink)
}

/// [`keyed_count`] with a given count and key: the benchmarks key by the event's sequence
/// number (every event its own key) and count silently.
pub fn keyed_count_with<V>(
    source: GeneratorSource,
    parallelism: u32,
    count: Count<V>,
    key: fn(&GeneratedEvent) -> i64,
    sink: impl Sink,
) -> Job
where
    V: StateValue + Copy + From<u8> + std::ops::Add<Output = V>,
{
    JobBuilder::new("keyed-count")
        .source("Generator", source)
        .uid("events")
        .parallelism(2)
        .key_by(key)
        .process("Counter", count)
        .uid("counter")
        .parallelism(parallelism)
        .sink("output", sink)
}
