//! Keyed processing: a function called per record with the record's key, any number of
//! named states of that key (value, list, map) and timers on event or processing time.

mod cow_map;
mod evolve;
mod flat_struct;
mod row_key;
mod tables;
mod timer_set;

use std::sync::Arc;

use arrow_array::RecordBatch;
use rewind_savepoint::format::HashRange;

pub(crate) use row_key::NsKey;
pub use tables::TimeDomain;
pub(crate) use tables::{
    TIMERS, Table, Timers, ValueCodec, ValueKind, ValueTable, evolve_column, value_field,
    values_from_array, values_to_array,
};

use crate::key::Key;
use crate::operator::{Batch, ErasedOp, Firing, Rec, StateSnapshot};
use crate::{EngineError, Result};

/// A state value type: anything serde can write to Arrow (a struct becomes a struct column).
pub trait StateValue:
    serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static
{
}
impl<T: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static> StateValue
    for T
{
}

/// A function over a keyed stream, in the spirit of Flink's `KeyedProcessFunction`: it
/// sees one record at a time with that record's key, reads and writes the key's states
/// through the handles it declared in [`states`](Self::states), and may set timers whose
/// [`on_timer`](Self::on_timer) runs later with the same key.
///
/// ```
/// use rewind_engine::{Context, KeyedProcessFunction, StateDecl, ValueState};
/// struct Count { count: ValueState<i64> }
/// impl KeyedProcessFunction for Count {
///     type Key = i64;
///     type In = i64;
///     type Out = (i64, i64);
///     fn states(&self) -> Vec<StateDecl<i64>> { vec![self.count.decl()] }
///     fn process(&self, _: i64, ctx: &mut Context<'_, i64, (i64, i64)>) {
///         let n = self.count.get(ctx).copied().unwrap_or(0) + 1;
///         self.count.set(ctx, n);
///         let key = *ctx.key();
///         ctx.emit((key, n));
///     }
/// }
/// ```
pub trait KeyedProcessFunction: Send + Sync + 'static {
    /// The key type.
    type Key: Key;
    /// Input records.
    type In: Send + 'static;
    /// Output records.
    type Out: Send + 'static;
    /// The states the function uses, by their handles' [`decl`](ValueState::decl). Only
    /// declared states can be used, and they are what a savepoint holds for the operator.
    fn states(&self) -> Vec<StateDecl<Self::Key>>;
    /// Whether the function sets timers (they are then state, saved as `timers`).
    fn uses_timers(&self) -> bool {
        false
    }
    /// Handles one record of the context's key.
    fn process(&self, input: Self::In, ctx: &mut Context<'_, Self::Key, Self::Out>);
    /// A timer set with [`Context::register_timer`] fired; `ctx` has the timer's key.
    fn on_timer(&self, timer: Timer, ctx: &mut Context<'_, Self::Key, Self::Out>) {
        let _ = (timer, ctx);
    }
}

/// A fired timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timer {
    /// Its clock.
    pub domain: TimeDomain,
    /// When it was due, in milliseconds since the Unix epoch.
    pub timestamp: i64,
}

/// A state a function declares: its name and how to make its empty table.
pub struct StateDecl<K: Key> {
    pub(crate) name: Arc<str>,
    pub(crate) make: Box<dyn Fn(HashRange) -> Box<dyn Table<K>> + Send + Sync>,
}

/// The states of one keyed operator subtask.
pub(crate) struct Tables<K: Key> {
    tables: Vec<(Arc<str>, Box<dyn Table<K>>)>,
}

impl<K: Key> Tables<K> {
    /// Empty tables of the subtask that owns `range`.
    pub(crate) fn new(decls: &[StateDecl<K>], range: HashRange) -> Self {
        Tables {
            tables: decls
                .iter()
                .map(|d| (d.name.clone(), (d.make)(range)))
                .collect(),
        }
    }

    fn get<T: 'static>(&self, name: &str) -> Option<&T> {
        self.tables
            .iter()
            .find(|(n, _)| &**n == name)
            .and_then(|(_, t)| t.as_any().downcast_ref::<T>())
    }

    fn get_mut<T: 'static>(&mut self, name: &str) -> Option<&mut T> {
        self.tables
            .iter_mut()
            .find(|(n, _)| &**n == name)
            .and_then(|(_, t)| t.as_any_mut().downcast_mut::<T>())
    }

    /// Looks `keys` up in every table, to bring their entries into the cache.
    fn touch(&self, keys: &[K]) {
        for (_, table) in &self.tables {
            table.touch(keys);
        }
    }

    pub(crate) fn snapshot(
        &mut self,
        at: crate::operator::SnapshotAt,
    ) -> Vec<Box<dyn StateSnapshot>> {
        self.tables
            .iter_mut()
            .map(|(_, t)| t.snapshot(at))
            .collect()
    }

    pub(crate) fn reserve(&mut self, state: &str, rows: usize) {
        if let Ok(table) = self.table_mut(state) {
            table.reserve(rows);
        }
    }

    pub(crate) fn restore(&mut self, state: &str, batch: &RecordBatch) -> Result<()> {
        self.table_mut(state)?.restore(batch)
    }

    pub(crate) fn restore_deletes(&mut self, state: &str, batch: &RecordBatch) -> Result<()> {
        self.table_mut(state)?.restore_deletes(batch)
    }

    fn table_mut(&mut self, state: &str) -> Result<&mut Box<dyn Table<K>>> {
        match self.tables.iter_mut().find(|(n, _)| &**n == state) {
            Some((_, table)) => Ok(table),
            None => Err(EngineError::Restore(format!(
                "no state {state:?} in this operator"
            ))),
        }
    }
}

/// What a [`KeyedProcessFunction`] sees of its operator while handling one record or timer.
pub struct Context<'a, K: Key, O> {
    key: &'a K,
    tables: &'a mut Tables<K>,
    timers: &'a mut Timers<K>,
    out: &'a mut Vec<Rec>,
    timestamp: Option<i64>,
    watermark: i64,
    timers_on: bool,
    error: &'a mut Option<EngineError>,
    _o: std::marker::PhantomData<fn(O)>,
}

impl<K: Key, O: Send + 'static> Context<'_, K, O> {
    /// The key of the record or timer being handled.
    pub fn key(&self) -> &K {
        self.key
    }

    /// The event time of the record (or the timer's time), if the source assigns them.
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }

    /// The operator's current watermark (`None` before the first one arrives).
    pub fn watermark(&self) -> Option<i64> {
        (self.watermark != i64::MIN).then_some(self.watermark)
    }

    /// Sends a record downstream, with the current record's timestamp.
    pub fn emit(&mut self, record: O) {
        self.out.push(Rec::new(record, self.timestamp));
    }

    /// Sets a timer for the current key; setting the same one twice fires it once. Needs
    /// [`KeyedProcessFunction::uses_timers`].
    pub fn register_timer(&mut self, domain: TimeDomain, timestamp: i64) {
        if !self.timers_on {
            self.fail(TIMERS);
            return;
        }
        self.timers
            .set(domain)
            .insert(timestamp, self.key.clone(), 0);
    }

    /// Removes a timer of the current key, if set.
    pub fn delete_timer(&mut self, domain: TimeDomain, timestamp: i64) {
        self.timers.set(domain).remove(timestamp, self.key, 0);
    }

    /// The wall clock in milliseconds since the Unix epoch, for processing-time timers.
    pub fn processing_time(&self) -> i64 {
        now_ms()
    }

    /// The table of a state the function writes; `None` (and the job fails after this
    /// record) when it was not declared with this type.
    fn table_mut<T: 'static>(&mut self, state: &str) -> Option<&mut T> {
        if self.tables.get::<T>(state).is_none() {
            self.fail(state);
            return None;
        }
        self.tables.get_mut::<T>(state)
    }

    fn fail(&mut self, state: &str) {
        if self.error.is_none() {
            *self.error = Some(EngineError::InvalidJob(format!(
                "state {state:?} is used but not declared in states() (or declared with another type)"
            )));
        }
    }
}

/// Milliseconds since the Unix epoch on the wall clock.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// A handle to a value state: one `T` per key.
pub struct ValueState<T> {
    name: Arc<str>,
    _t: std::marker::PhantomData<fn() -> T>,
}

/// A handle to a list state: a list of `T` per key.
pub struct ListState<T> {
    name: Arc<str>,
    _t: std::marker::PhantomData<fn() -> T>,
}

/// A handle to a map state: a map of `UK` to `V` per key, stored one row per entry.
pub struct MapState<UK, V> {
    name: Arc<str>,
    _t: std::marker::PhantomData<fn() -> (UK, V)>,
}

impl<T: StateValue> ValueState<T> {
    /// The value state called `name` (its name in savepoints).
    pub fn new(name: &str) -> Self {
        ValueState {
            name: name.into(),
            _t: std::marker::PhantomData,
        }
    }

    /// Declares it (see [`KeyedProcessFunction::states`]).
    pub fn decl<K: Key>(&self) -> StateDecl<K> {
        let name = self.name.clone();
        StateDecl {
            name: self.name.clone(),
            make: Box::new(move |range| {
                Box::new(ValueTable::<K, K, T>::new(&name, ValueKind::Value, range))
            }),
        }
    }

    /// The key's value, if set.
    pub fn get<'c, K: Key, O: Send + 'static>(&self, ctx: &'c Context<'_, K, O>) -> Option<&'c T> {
        let table = ctx.tables.get::<ValueTable<K, K, T>>(&self.name)?;
        table.map.get(ctx.key)
    }

    /// Sets the key's value.
    pub fn set<K: Key, O: Send + 'static>(&self, ctx: &mut Context<'_, K, O>, value: T) {
        let key = ctx.key.clone();
        if let Some(t) = ctx.table_mut::<ValueTable<K, K, T>>(&self.name) {
            t.map.insert(key, value);
        }
    }

    /// Removes the key's value.
    pub fn clear<K: Key, O: Send + 'static>(&self, ctx: &mut Context<'_, K, O>) {
        let key = ctx.key;
        if let Some(t) = ctx.table_mut::<ValueTable<K, K, T>>(&self.name) {
            t.map.remove(key);
        }
    }
}

impl<T: StateValue> ListState<T> {
    /// The list state called `name`.
    pub fn new(name: &str) -> Self {
        ListState {
            name: name.into(),
            _t: std::marker::PhantomData,
        }
    }

    /// Declares it (see [`KeyedProcessFunction::states`]).
    pub fn decl<K: Key>(&self) -> StateDecl<K> {
        let name = self.name.clone();
        StateDecl {
            name: self.name.clone(),
            make: Box::new(move |range| {
                Box::new(ValueTable::<K, K, Vec<T>>::new(
                    &name,
                    ValueKind::List,
                    range,
                ))
            }),
        }
    }

    /// The key's list (empty if none).
    pub fn get<'c, K: Key, O: Send + 'static>(&self, ctx: &'c Context<'_, K, O>) -> &'c [T] {
        ctx.tables
            .get::<ValueTable<K, K, Vec<T>>>(&self.name)
            .and_then(|t| t.map.get(ctx.key))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Appends to the key's list.
    pub fn add<K: Key, O: Send + 'static>(&self, ctx: &mut Context<'_, K, O>, value: T) {
        let key = ctx.key.clone();
        if let Some(t) = ctx.table_mut::<ValueTable<K, K, Vec<T>>>(&self.name) {
            t.map.get_or_insert_default(key).push(value);
        }
    }

    /// Replaces the key's list (an empty list is stored as `[]`).
    pub fn update<K: Key, O: Send + 'static>(&self, ctx: &mut Context<'_, K, O>, values: Vec<T>) {
        let key = ctx.key.clone();
        if let Some(t) = ctx.table_mut::<ValueTable<K, K, Vec<T>>>(&self.name) {
            t.map.insert(key, values);
        }
    }

    /// Removes the key's list.
    pub fn clear<K: Key, O: Send + 'static>(&self, ctx: &mut Context<'_, K, O>) {
        let key = ctx.key;
        if let Some(t) = ctx.table_mut::<ValueTable<K, K, Vec<T>>>(&self.name) {
            t.map.remove(key);
        }
    }
}

impl<UK: Key, V: StateValue> MapState<UK, V> {
    /// The map state called `name`.
    pub fn new(name: &str) -> Self {
        MapState {
            name: name.into(),
            _t: std::marker::PhantomData,
        }
    }

    /// Declares it (see [`KeyedProcessFunction::states`]).
    pub fn decl<K: Key>(&self) -> StateDecl<K> {
        let name = self.name.clone();
        StateDecl {
            name: self.name.clone(),
            make: Box::new(move |range| Box::new(tables::MapTable::<K, UK, V>::new(&name, range))),
        }
    }

    fn table<'c, K: Key, O: Send + 'static>(
        &self,
        ctx: &'c Context<'_, K, O>,
    ) -> Option<&'c tables::MapTable<K, UK, V>> {
        ctx.tables.get::<tables::MapTable<K, UK, V>>(&self.name)
    }

    /// The value of `user_key` in the key's map.
    pub fn get<'c, K: Key, O: Send + 'static>(
        &self,
        ctx: &'c Context<'_, K, O>,
        user_key: &UK,
    ) -> Option<&'c V> {
        self.table(ctx)?.get(ctx.key, user_key)
    }

    /// The key's map, ordered by user key.
    pub fn entries<'c, K: Key, O: Send + 'static>(
        &self,
        ctx: &'c Context<'_, K, O>,
    ) -> impl Iterator<Item = (&'c UK, &'c V)> {
        self.table(ctx).into_iter().flat_map(|t| t.entries(ctx.key))
    }

    /// Sets `user_key` to `value` in the key's map.
    pub fn insert<K: Key, O: Send + 'static>(
        &self,
        ctx: &mut Context<'_, K, O>,
        user_key: UK,
        value: V,
    ) {
        let key = ctx.key.clone();
        if let Some(t) = ctx.table_mut::<tables::MapTable<K, UK, V>>(&self.name) {
            t.insert(key, user_key, value);
        }
    }

    /// Removes `user_key` from the key's map.
    pub fn remove<K: Key, O: Send + 'static>(&self, ctx: &mut Context<'_, K, O>, user_key: &UK) {
        let key = ctx.key;
        if let Some(t) = ctx.table_mut::<tables::MapTable<K, UK, V>>(&self.name) {
            t.remove(key, user_key);
        }
    }

    /// Removes the key's whole map.
    pub fn clear<K: Key, O: Send + 'static>(&self, ctx: &mut Context<'_, K, O>) {
        let key = ctx.key;
        if let Some(t) = ctx.table_mut::<tables::MapTable<K, UK, V>>(&self.name) {
            t.clear(key);
        }
    }
}

/// The names a keyed operator's states take in savepoints (its declared states, then the
/// timer table).
pub(crate) fn state_names<K: Key>(decls: &[StateDecl<K>], timers: bool) -> Vec<String> {
    decls
        .iter()
        .map(|d| d.name.to_string())
        .chain(timers.then(|| TIMERS.to_string()))
        .collect()
}

/// A keyed operator subtask running a [`KeyedProcessFunction`].
pub(crate) struct KeyedOp<F: KeyedProcessFunction> {
    pub f: Arc<F>,
    pub key: crate::operator::KeyFn<F::In, F::Key>,
    pub tables: Tables<F::Key>,
    pub timers: Timers<F::Key>,
    pub watermark: i64,
    /// The keys of the chunk being warmed (kept to reuse its allocation).
    pub warming: Vec<F::Key>,
}

impl<F: KeyedProcessFunction> KeyedOp<F> {
    fn fire(&mut self, domain: TimeDomain, now: i64, out: &mut Vec<Rec>) -> Result<()> {
        let mut error = None;
        while let Some((timestamp, key, _)) = self.timers.pop_due(domain, now) {
            let mut ctx = Context {
                key: &key,
                tables: &mut self.tables,
                timers: &mut self.timers,
                out,
                timestamp: Some(timestamp),
                watermark: self.watermark,
                timers_on: true,
                error: &mut error,
                _o: std::marker::PhantomData,
            };
            self.f.on_timer(Timer { domain, timestamp }, &mut ctx);
            if let Some(e) = error.take() {
                return Err(e);
            }
        }
        Ok(())
    }
}

impl<F: KeyedProcessFunction> crate::operator::TypedInput for KeyedOp<F> {
    type In = F::In;

    fn warm(&mut self, chunk: &[(i64, F::In)]) {
        self.warming.clear();
        self.warming
            .extend(chunk.iter().map(|(_, input)| (self.key)(input)));
        self.tables.touch(&self.warming);
    }

    fn process_input(
        &mut self,
        input: F::In,
        timestamp: Option<i64>,
        out: &mut Vec<Rec>,
    ) -> Result<()> {
        let key = (self.key)(&input);
        let mut error = None;
        let mut ctx = Context {
            key: &key,
            tables: &mut self.tables,
            timers: &mut self.timers,
            out,
            timestamp,
            watermark: self.watermark,
            timers_on: self.f.uses_timers(),
            error: &mut error,
            _o: std::marker::PhantomData,
        };
        self.f.process(input, &mut ctx);
        error.map_or(Ok(()), Err)
    }
}

impl<F: KeyedProcessFunction> ErasedOp for KeyedOp<F> {
    fn process(&mut self, rec: Rec, out: &mut Vec<Rec>) -> Result<()> {
        crate::operator::process_typed(self, rec, out)
    }

    fn process_batch(&mut self, batch: Box<dyn Batch>, out: &mut Vec<Rec>) -> Result<()> {
        crate::operator::process_typed_batch(self, batch, out)
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Vec<Rec>) -> Result<Firing> {
        self.watermark = self.watermark.max(watermark);
        self.fire(TimeDomain::EventTime, self.watermark, out)?;
        Ok(Firing::Done)
    }

    fn next_processing_timer(&self) -> Option<i64> {
        self.timers.processing.next_time()
    }

    fn on_processing_time(&mut self, now: i64, out: &mut Vec<Rec>) -> Result<()> {
        self.fire(TimeDomain::ProcessingTime, now, out)
    }

    fn set_initial_watermark(&mut self, watermark: i64) {
        self.watermark = watermark;
    }

    fn snapshot(&mut self, at: crate::operator::SnapshotAt) -> Vec<Box<dyn StateSnapshot>> {
        let mut all = self.tables.snapshot(at);
        if self.f.uses_timers() {
            all.push(Box::new(self.timers.clone()));
        }
        all
    }

    fn restore(&mut self, state: &str, batch: &RecordBatch) -> Result<()> {
        if state == TIMERS {
            return self.timers.restore(batch);
        }
        self.tables.restore(state, batch)
    }

    fn restore_deletes(&mut self, state: &str, batch: &RecordBatch) -> Result<()> {
        if state == TIMERS {
            return self.timers.restore_deletes(batch);
        }
        self.tables.restore_deletes(state, batch)
    }

    fn reserve(&mut self, state: &str, rows: usize) {
        self.tables.reserve(state, rows);
    }
}
