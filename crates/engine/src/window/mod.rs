//! Event-time windows over a keyed stream: tumbling, sliding and session windows with an
//! aggregate, reduce or process function, allowed lateness, and late records dropped (and
//! counted) or passed on. Window contents are keyed state namespaced by the window's start
//! (`windows`, see `stored`), their triggers event-time timers (`timers`): stored with
//! allowed lateness, derived from the windows without it.

mod operator;
mod stored;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::job::{DataStream, KeyedStream};
use crate::key::Key;
use crate::keyed::StateValue;
use crate::operator::OpFactory;

pub(crate) use operator::WINDOWS;

/// How records are grouped into windows by their event time (milliseconds since the Unix
/// epoch). A window `[start, end)` fires when the watermark reaches `end - 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Windows {
    /// Back-to-back windows of one size, aligned to the epoch.
    Tumbling {
        /// Window length.
        size: Duration,
    },
    /// Windows of `size` starting every `slide` (a record is in `size / slide` windows).
    Sliding {
        /// Window length.
        size: Duration,
        /// Distance between window starts.
        slide: Duration,
    },
    /// Per key, records closer than `gap` to each other form one window.
    Session {
        /// Inactivity that closes a session.
        gap: Duration,
    },
}

impl Windows {
    /// Tumbling windows of `size`.
    pub fn tumbling(size: Duration) -> Windows {
        Windows::Tumbling { size }
    }
    /// Sliding windows of `size` every `slide`.
    pub fn sliding(size: Duration, slide: Duration) -> Windows {
        Windows::Sliding { size, slide }
    }
    /// Session windows closed by `gap` of inactivity.
    pub fn session(gap: Duration) -> Windows {
        Windows::Session { gap }
    }
}

/// A window: `[start, end)` in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Window {
    /// First millisecond in it.
    pub start: i64,
    /// First millisecond after it.
    pub end: i64,
}

/// The result of one window of one key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WindowResult<K, V> {
    /// The key.
    pub key: K,
    /// The window's start (inclusive), ms.
    pub start: i64,
    /// The window's end (exclusive), ms.
    pub end: i64,
    /// The aggregate.
    pub value: V,
}

/// The output of a window operator that passes late records on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Windowed<R, T> {
    /// A window fired.
    Result(R),
    /// A record that arrived after every window it belongs to was finished and purged.
    Late(T),
}

/// Incremental aggregation of a window's records: only the accumulator is kept as state.
pub trait AggregateFunction: Send + Sync + 'static {
    /// Input records.
    type In;
    /// The accumulator (window state; a struct becomes a struct column).
    type Acc: StateValue;
    /// The result.
    type Out: Send + 'static;
    /// An empty accumulator.
    fn create(&self) -> Self::Acc;
    /// Adds a record.
    fn add(&self, acc: &mut Self::Acc, input: &Self::In);
    /// Combines two accumulators (session windows merge).
    fn merge(&self, a: Self::Acc, b: Self::Acc) -> Self::Acc;
    /// The window's result.
    fn result(&self, acc: &Self::Acc) -> Self::Out;
}

/// Counts the records of each window (the most common aggregate).
pub struct CountAggregate<T>(std::marker::PhantomData<fn(&T)>);

impl<T> CountAggregate<T> {
    /// The count aggregate.
    pub fn new() -> Self {
        CountAggregate(std::marker::PhantomData)
    }
}

impl<T> Default for CountAggregate<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: 'static> AggregateFunction for CountAggregate<T> {
    type In = T;
    type Acc = u64;
    type Out = u64;
    fn create(&self) -> u64 {
        0
    }
    fn add(&self, acc: &mut u64, _: &T) {
        *acc += 1;
    }
    fn merge(&self, a: u64, b: u64) -> u64 {
        a + b
    }
    fn result(&self, acc: &u64) -> u64 {
        *acc
    }
}

/// What a window operator does with records and accumulators (aggregate, reduce and
/// process are three of these).
pub(crate) trait WindowLogic<K, T>: Send + Sync + 'static {
    type Acc: StateValue;
    type Out: Send + 'static;
    fn create(&self) -> Self::Acc;
    fn add(&self, acc: &mut Self::Acc, input: &T);
    fn merge(&self, a: Self::Acc, b: Self::Acc) -> Self::Acc;
    fn emit(&self, key: &K, window: Window, acc: &Self::Acc, out: &mut Vec<Self::Out>);
}

struct Aggregate<A>(A);

impl<K: Key, A: AggregateFunction> WindowLogic<K, A::In> for Aggregate<A> {
    type Acc = A::Acc;
    type Out = WindowResult<K, A::Out>;
    fn create(&self) -> A::Acc {
        self.0.create()
    }
    fn add(&self, acc: &mut A::Acc, input: &A::In) {
        self.0.add(acc, input)
    }
    fn merge(&self, a: A::Acc, b: A::Acc) -> A::Acc {
        self.0.merge(a, b)
    }
    fn emit(&self, key: &K, w: Window, acc: &A::Acc, out: &mut Vec<Self::Out>) {
        out.push(WindowResult {
            key: key.clone(),
            start: w.start,
            end: w.end,
            value: self.0.result(acc),
        });
    }
}

struct Reduce<F>(F);

impl<K: Key, T: StateValue, F: Fn(T, T) -> T + Send + Sync + 'static> WindowLogic<K, T>
    for Reduce<F>
{
    type Acc = Option<T>;
    type Out = WindowResult<K, T>;
    fn create(&self) -> Option<T> {
        None
    }
    fn add(&self, acc: &mut Option<T>, input: &T) {
        *acc = Some(match acc.take() {
            Some(a) => (self.0)(a, input.clone()),
            None => input.clone(),
        });
    }
    fn merge(&self, a: Option<T>, b: Option<T>) -> Option<T> {
        match (a, b) {
            (Some(a), Some(b)) => Some((self.0)(a, b)),
            (a, b) => a.or(b),
        }
    }
    fn emit(&self, key: &K, w: Window, acc: &Option<T>, out: &mut Vec<Self::Out>) {
        if let Some(value) = acc {
            out.push(WindowResult {
                key: key.clone(),
                start: w.start,
                end: w.end,
                value: value.clone(),
            });
        }
    }
}

struct Process<F, O>(F, std::marker::PhantomData<fn() -> O>);

impl<K: Key, T: StateValue, O: Send + 'static, F> WindowLogic<K, T> for Process<F, O>
where
    F: Fn(&K, Window, &[T], &mut Vec<O>) + Send + Sync + 'static,
{
    type Acc = Vec<T>;
    type Out = O;
    fn create(&self) -> Vec<T> {
        Vec::new()
    }
    fn add(&self, acc: &mut Vec<T>, input: &T) {
        acc.push(input.clone());
    }
    fn merge(&self, mut a: Vec<T>, b: Vec<T>) -> Vec<T> {
        a.extend(b);
        a
    }
    fn emit(&self, key: &K, w: Window, acc: &Vec<T>, out: &mut Vec<O>) {
        (self.0)(key, w, acc, out)
    }
}

/// A keyed stream grouped into windows; finish it with an aggregate, reduce or process.
pub struct WindowedStream<K, T> {
    keyed: KeyedStream<K, T>,
    windows: Windows,
    lateness: Duration,
}

impl<K: Key, T: Send + 'static> KeyedStream<K, T> {
    /// Groups each key's records into event-time windows. The source must assign
    /// timestamps ([`DataStream::assign_timestamps`]).
    pub fn window(self, windows: Windows) -> WindowedStream<K, T> {
        WindowedStream {
            keyed: self,
            windows,
            lateness: Duration::ZERO,
        }
    }
}

impl<K: Key, T: Send + Sync + 'static> WindowedStream<K, T> {
    /// Keeps a window's state this long after it fired: records arriving meanwhile update
    /// it and fire it again. Later records are late.
    pub fn allowed_lateness(mut self, lateness: Duration) -> Self {
        self.lateness = lateness;
        self
    }

    /// Aggregates each window incrementally; late records are dropped and counted
    /// ([`crate::JobStats::late_records_dropped`]).
    pub fn aggregate<A: AggregateFunction<In = T>>(
        self,
        name: &str,
        function: A,
    ) -> DataStream<WindowResult<K, A::Out>> {
        self.build(name, Aggregate(function))
    }

    /// [`aggregate`](Self::aggregate), passing late records on as [`Windowed::Late`]
    /// instead of dropping them (a side output).
    pub fn aggregate_with_late<A: AggregateFunction<In = T>>(
        self,
        name: &str,
        function: A,
    ) -> DataStream<Windowed<WindowResult<K, A::Out>, T>> {
        self.stage(name, Aggregate(function), true)
    }

    /// Reduces each window's records to one with `f`.
    pub fn reduce(
        self,
        name: &str,
        f: impl Fn(T, T) -> T + Send + Sync + 'static,
    ) -> DataStream<WindowResult<K, T>>
    where
        T: StateValue,
    {
        self.build(name, Reduce(f))
    }

    /// Keeps every record of a window (as list state) and hands them all to `f` when it
    /// fires.
    pub fn process<O: Send + 'static>(
        self,
        name: &str,
        f: impl Fn(&K, Window, &[T], &mut Vec<O>) + Send + Sync + 'static,
    ) -> DataStream<O>
    where
        T: StateValue,
    {
        self.build(name, Process(f, std::marker::PhantomData))
    }

    /// The window stage, dropping late records.
    fn build<L: WindowLogic<K, T>>(self, name: &str, logic: L) -> DataStream<L::Out> {
        self.stage(name, logic, false)
    }

    /// The window stage. Its records are `U`: `Windowed<L::Out, T>` when `pass_late`, else
    /// `L::Out` (see `WindowOp::emit_with`); only `build` and `aggregate_with_late` choose.
    fn stage<L: WindowLogic<K, T>, U>(
        self,
        name: &str,
        logic: L,
        pass_late: bool,
    ) -> DataStream<U> {
        let key = self.keyed.key_fn();
        let late: Arc<AtomicU64> = self.keyed.late_counter();
        let logic = Arc::new(logic);
        let windows = self.windows;
        let lateness = i64::try_from(self.lateness.as_millis()).unwrap_or(i64::MAX / 4);
        let factory: OpFactory = Arc::new(move |range| {
            Box::new(operator::WindowOp::new(
                range,
                logic.clone(),
                key.clone(),
                windows,
                lateness,
                late.clone(),
                pass_late,
            )) as Box<dyn crate::operator::ErasedOp>
        });
        let states = vec![WINDOWS.to_string(), crate::keyed::TIMERS.to_string()];
        self.keyed.stage(name, factory, states)
    }
}
