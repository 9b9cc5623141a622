//! In-memory keyed state tables with copy-on-write snapshots (persistent maps: a snapshot
//! is O(1) on the processing thread), converted to the spec's shard columns off it.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, FieldRef, Schema};
use rewind_savepoint::StateSpec;
use rewind_savepoint::format::{HashRange, sort_by_hash};

use super::StateValue;
use super::cow_map::{CowMap, Walk};
use super::row_key::RowKey;
use super::timer_set::TimerSet;
use crate::key::Key;
use crate::operator::{Part, Parts, SnapshotAt, StateSnapshot};
use crate::{EngineError, Result};

mod map;
mod values;
pub(crate) use map::MapTable;
pub(crate) use values::{evolve_column, value_field, values_from_array, values_to_array};

fn name(t: &DataType) -> String {
    rewind_savepoint::format::type_name(t).unwrap_or_else(|_| t.to_string())
}

/// A state table of one keyed operator subtask, type-erased so an operator can hold several.
pub(crate) trait Table<K: Key>: Send + 'static {
    fn as_any(&self) -> &dyn std::any::Any;
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any;
    fn snapshot(&mut self, at: SnapshotAt) -> Box<dyn StateSnapshot>;
    fn restore(&mut self, batch: &RecordBatch) -> Result<()>;
    /// Removes the rows whose identities `batch` holds: a delta layer's deletes, applied
    /// after the layers below it were restored.
    fn restore_deletes(&mut self, batch: &RecordBatch) -> Result<()>;
    /// About `rows` rows are to be restored: room for them at once (see
    /// [`CowMap::reserve`]).
    fn reserve(&mut self, _rows: usize) {}
    /// Looks `keys` up, to bring their entries into the cache before they are used.
    fn touch(&self, _keys: &[K]) {}
}

/// Whether a value table holds plain values or whole lists (`V` is then a `Vec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueKind {
    Value,
    List,
}

/// How a value table's values become its stored `value` column and back.
pub(crate) trait ValueCodec<R, V>: Send + Sync + 'static {
    /// The stored field `value`.
    fn field(&self) -> Result<FieldRef>;
    /// The column of `values`, of [`field`](Self::field)'s type.
    fn encode(&self, values: &[&V]) -> Result<ArrayRef>;
    /// The values of a stored column, one per row key in `rows`.
    fn decode(&self, rows: &[R], column: &ArrayRef) -> Result<Vec<V>>;
}

/// Values stored as their type traces ([`value_field`]).
struct Traced;

impl<R, V: StateValue> ValueCodec<R, V> for Traced {
    fn field(&self) -> Result<FieldRef> {
        value_field::<V>()
    }
    fn encode(&self, values: &[&V]) -> Result<ArrayRef> {
        values_to_array(values)
    }
    fn decode(&self, _: &[R], column: &ArrayRef) -> Result<Vec<V>> {
        let column = evolve_column("value", column, value_field::<V>()?.data_type())?;
        values_from_array(&column)
    }
}

/// Value and list state: one value (or whole list) per row key.
pub(crate) struct ValueTable<K: Key, R: RowKey<K>, V: StateValue> {
    pub name: Arc<str>,
    pub kind: ValueKind,
    pub map: CowMap<K, R, V>,
    codec: Arc<dyn ValueCodec<R, V>>,
}

impl<K: Key, R: RowKey<K>, V: StateValue> ValueTable<K, R, V> {
    /// An empty table of the subtask that owns `range`.
    pub(crate) fn new(name: &str, kind: ValueKind, range: HashRange) -> Self {
        Self::with_codec(name, kind, range, Arc::new(Traced))
    }

    /// An empty table whose values are stored by `codec`.
    pub(crate) fn with_codec(
        name: &str,
        kind: ValueKind,
        range: HashRange,
        codec: Arc<dyn ValueCodec<R, V>>,
    ) -> Self {
        ValueTable {
            name: name.into(),
            kind,
            map: CowMap::new(range),
            codec,
        }
    }
}

/// Rows per part of a snapshot (see [`StateSnapshot::parts`]): a part's entries and
/// columns stay in the CPU's cache while it is converted and encoded.
const PART_ROWS: usize = 16 * 1024;

/// The parts of `walk`: `fill` adds a key's rows (its entry, or its removal) to the part
/// being built and returns how many, `finish` converts a part. At least one part.
fn walk_parts<'a, K: Key, R: RowKey<K>, T: Clone + Send + Sync, P>(
    mut walk: Walk<'a, K, R, T>,
    mut new_part: impl FnMut() -> P + Send + 'a,
    mut fill: impl FnMut(&mut P, u64, &'a R, Option<&'a T>) -> usize + Send + 'a,
    mut finish: impl FnMut(P) -> Result<Part> + Send + 'a,
) -> Parts<'a> {
    let mut first = true;
    Box::new(std::iter::from_fn(move || {
        let mut part = new_part();
        let more = walk.next_part(PART_ROWS, |h, r, t| fill(&mut part, h, r, t));
        if !more && !first {
            return None;
        }
        first = false;
        Some(finish(part))
    }))
}

/// The key columns of a snapshot's rows (hash, key and, when namespaced, namespace),
/// filled in key-hash order.
struct SortedColumns<K> {
    hashes: Vec<u64>,
    keys: Vec<K>,
    namespaces: Option<Vec<i64>>,
    /// The first row outside the subtask's range, if any.
    stray: Option<(u64, K)>,
}

impl<K: Key> SortedColumns<K> {
    fn with_capacity<R: RowKey<K>>(n: usize) -> Self {
        SortedColumns {
            hashes: Vec::with_capacity(n),
            keys: Vec::with_capacity(n),
            namespaces: R::namespace_type().map(|_| Vec::with_capacity(n)),
            stray: None,
        }
    }

    /// Adds the row of `r` (key hash `h`), noting it if it lies outside `range`.
    fn push<R: RowKey<K>>(&mut self, range: HashRange, h: u64, r: &R) {
        if !range.contains(h) {
            self.stray.get_or_insert_with(|| (h, r.key().clone()));
        }
        self.hashes.push(h);
        self.keys.push(r.key().clone());
        if let Some(ns) = &mut self.namespaces {
            ns.push(r.namespace().unwrap_or_default());
        }
    }

    /// The columns, unless a row lay outside the subtask's range.
    fn checked(self, state: &str) -> Result<Self> {
        match &self.stray {
            Some((h, key)) => Err(EngineError::Internal(format!(
                "state {state}: key {key:?} (hash {h:016x}) in the wrong subtask"
            ))),
            None => Ok(self),
        }
    }

    /// The `key` and, when namespaced, `namespace` fields and columns.
    fn key_columns(&mut self) -> (Vec<Field>, Vec<ArrayRef>) {
        let mut fields = vec![Field::new("key", K::data_type(), false)];
        let mut columns = vec![K::into_array(std::mem::take(&mut self.keys))];
        if let Some(ns) = self.namespaces.take() {
            fields.push(Field::new("namespace", DataType::Int64, false));
            columns.push(Arc::new(Int64Array::from(ns)));
        }
        (fields, columns)
    }
}

/// Adds the `value` column (`field`, of the values written): for a whole state as it is;
/// for a delta (`at`: per row, where its value is among `values`, `None` for a delete)
/// nullable, with a null for each delete, followed by the `deleted` column.
fn push_values(
    fields: &mut Vec<Field>,
    columns: &mut Vec<ArrayRef>,
    field: Field,
    values: ArrayRef,
    at: Option<Vec<Option<u32>>>,
) -> Result<()> {
    let Some(at) = at else {
        fields.push(field);
        columns.push(values);
        return Ok(());
    };
    let (values, deleted) = if at.iter().all(Option::is_some) {
        // No deletes (the common case): the values are the rows, in order.
        (values, BooleanArray::from(vec![false; at.len()]))
    } else {
        let deleted = BooleanArray::from_iter(at.iter().map(|a| Some(a.is_none())));
        let values =
            arrow_select::take::take(values.as_ref(), &arrow_array::UInt32Array::from(at), None)
                .map_err(|e| EngineError::Internal(e.to_string()))?;
        (values, deleted)
    };
    fields.push(field.with_nullable(true));
    columns.push(values);
    fields.push(Field::new("deleted", DataType::Boolean, false));
    columns.push(Arc::new(deleted));
    Ok(())
}

/// Whether `batch`'s rows (in key-hash order) lie far apart among `map`'s entries, as a
/// delta layer's changes over a restored base do: each then misses the cache, and
/// looking them all up first lets the misses overlap. A base's batches are runs of
/// neighbours, in cache as they are written.
fn scattered<K: Key, R: RowKey<K>, V: Clone>(map: &CowMap<K, R, V>, batch: &RecordBatch) -> bool {
    use arrow_array::cast::AsArray;
    let Some(hashes) = batch
        .column_by_name("key_hash")
        .and_then(|c| c.as_primitive_opt::<arrow_array::types::UInt64Type>())
    else {
        return false;
    };
    let (Some(first), Some(last)) = (hashes.values().first(), hashes.values().last()) else {
        return false;
    };
    map.len() >= 1 << 16 && map.entries_between(*first, *last) > 16.0 * hashes.len() as f64
}

/// The row keys of a stored batch (`key`, and `namespace` when the table has one).
fn row_keys<K: Key, R: RowKey<K>>(batch: &RecordBatch) -> Result<Vec<R>> {
    let keys = keys_of::<K>(batch)?;
    let namespaces = namespaces_of(batch, keys.len())?;
    keys.into_iter()
        .zip(namespaces)
        .map(|(k, n)| {
            R::from_parts(k, n).ok_or_else(|| {
                EngineError::Restore(
                    "the savepoint's state is namespaced differently from the job's".into(),
                )
            })
        })
        .collect()
}

/// The `key` column of a stored batch, as the job's key type.
fn keys_of<K: Key>(batch: &RecordBatch) -> Result<Vec<K>> {
    let key = column(batch, "key")?;
    K::from_array(key.as_ref()).ok_or_else(|| {
        EngineError::Restore(format!(
            "state type changed at field key: the savepoint has {}, the job has {}",
            name(key.data_type()),
            name(&K::data_type())
        ))
    })
}

/// The `namespace` column of a stored batch (`None` per row when it has none).
fn namespaces_of(batch: &RecordBatch, rows: usize) -> Result<Vec<Option<i64>>> {
    Ok(match batch.column_by_name("namespace") {
        None => vec![None; rows],
        Some(ns) => ns
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| EngineError::Restore("namespace column is not int64".into()))?
            .values()
            .iter()
            .map(|n| Some(*n))
            .collect(),
    })
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| EngineError::Restore(format!("state without {name} column")))
}

fn batch(fields: Vec<Field>, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| EngineError::Internal(e.to_string()))
}

fn value_spec<K: Key, R: RowKey<K>>(
    name: &str,
    kind: ValueKind,
    value: &Field,
) -> Result<StateSpec> {
    let value = value.data_type().clone();
    let spec = match (kind, &value) {
        (ValueKind::List, DataType::List(item) | DataType::LargeList(item)) => {
            StateSpec::list(name, K::data_type(), item.data_type().clone())
        }
        (ValueKind::List, other) => {
            return Err(EngineError::Internal(format!("list state of {other}")));
        }
        (ValueKind::Value, _) => StateSpec::value(name, K::data_type(), value),
    };
    Ok(match R::namespace_type() {
        Some(ns) => spec.with_namespace(ns),
        None => spec,
    })
}

impl<K: Key, R: RowKey<K>, V: StateValue> Table<K> for ValueTable<K, R, V> {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn reserve(&mut self, rows: usize) {
        // A row per key (and namespace).
        self.map.reserve(rows);
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }

    fn touch(&self, keys: &[K]) {
        // Tables whose row key is the key alone (not namespaced).
        self.map.warm(
            keys.iter()
                .filter_map(|k| (k as &dyn std::any::Any).downcast_ref::<R>()),
        );
    }

    fn snapshot(&mut self, at: SnapshotAt) -> Box<dyn StateSnapshot> {
        Box::new(ValueSnapshot::<K, R, V> {
            name: self.name.clone(),
            kind: self.kind,
            map: self
                .map
                .snapshot_at(at.id, at.needed_from, at.track_removals),
            codec: self.codec.clone(),
        })
    }

    fn restore(&mut self, batch: &RecordBatch) -> Result<()> {
        let keys = row_keys::<K, R>(batch)?;
        let values = self.codec.decode(&keys, column(batch, "value")?)?;
        if scattered(&self.map, batch) {
            self.map.warm(keys.iter());
        }
        for (k, v) in keys.into_iter().zip(values) {
            self.map.insert(k, v);
        }
        Ok(())
    }

    fn restore_deletes(&mut self, batch: &RecordBatch) -> Result<()> {
        for k in row_keys::<K, R>(batch)? {
            self.map.remove(&k);
        }
        Ok(())
    }
}

struct ValueSnapshot<K: Key, R: RowKey<K>, V: StateValue> {
    name: Arc<str>,
    kind: ValueKind,
    map: CowMap<K, R, V>,
    codec: Arc<dyn ValueCodec<R, V>>,
}

impl<K: Key, R: RowKey<K>, V: StateValue> StateSnapshot for ValueSnapshot<K, R, V> {
    fn state(&self) -> &str {
        &self.name
    }
    fn spec(&self) -> Result<StateSpec> {
        value_spec::<K, R>(&self.name, self.kind, self.codec.field()?.as_ref())
    }
    fn parts(&self, range: HashRange) -> Parts<'_> {
        self.value_parts(self.map.walk(), range, false)
    }

    fn has_deltas(&self) -> bool {
        true
    }

    fn delta_parts(&self, range: HashRange, since: u64) -> Parts<'_> {
        self.value_parts(self.map.walk_changes_since(since), range, true)
    }
}

/// A part of a value table's rows being built: the key columns, the values written, and
/// for a delta where each row's value is among them (`None`: a removed key).
struct ValuePart<'a, K, V> {
    rows: SortedColumns<K>,
    values: Vec<&'a V>,
    at: Vec<Option<u32>>,
}

impl<K: Key, R: RowKey<K>, V: StateValue> ValueSnapshot<K, R, V> {
    /// The parts of `walk` (a delta's, with `deleted` marks and nullable values).
    fn value_parts<'a>(
        &'a self,
        walk: Walk<'a, K, R, V>,
        range: HashRange,
        delta: bool,
    ) -> Parts<'a> {
        walk_parts(
            walk,
            || ValuePart {
                rows: SortedColumns::with_capacity::<R>(PART_ROWS),
                values: Vec::with_capacity(PART_ROWS),
                at: Vec::new(),
            },
            move |part, h, r, v| {
                part.rows.push(range, h, r);
                if delta {
                    part.at.push(v.map(|_| part.values.len() as u32));
                }
                part.values.extend(v);
                1
            },
            move |part| {
                let mut rows = part.rows.checked(&self.name)?;
                let values = self.codec.encode(&part.values)?;
                let (mut fields, mut columns) = rows.key_columns();
                let field = self.codec.field()?.as_ref().clone();
                let at = delta.then_some(part.at);
                push_values(&mut fields, &mut columns, field, values, at)?;
                Ok((rows.hashes, batch(fields, columns)?))
            },
        )
    }
}

/// The two clocks timers run on, named as in the spec's `domain` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimeDomain {
    /// Fires when the watermark reaches the timer's timestamp.
    EventTime,
    /// Fires when the wall clock reaches it.
    ProcessingTime,
}

impl TimeDomain {
    fn as_str(self) -> &'static str {
        match self {
            TimeDomain::EventTime => "event_time",
            TimeDomain::ProcessingTime => "processing_time",
        }
    }
}

/// Timers of one keyed operator subtask, ordered by time so the due ones come first.
#[derive(Clone)]
pub(crate) struct Timers<K: Key> {
    pub namespaced: bool,
    pub event: TimerSet<K>,
    pub processing: TimerSet<K>,
    /// A window operator's timers (namespace = window start): the time a window fires. A
    /// window still to fire has its timers derived from it on restore, so a snapshot
    /// stores only the timers of windows that fired (their cleanup timers). `None`: every
    /// timer is stored.
    pub firing: Option<FiringTime>,
}

/// See [`Timers::firing`].
pub(crate) type FiringTime = Arc<dyn Fn(i64) -> i64 + Send + Sync>;

/// The name of the timer state of every keyed operator that has timers.
pub(crate) const TIMERS: &str = "timers";

impl<K: Key> Timers<K> {
    pub(crate) fn new(namespaced: bool) -> Self {
        Timers {
            namespaced,
            event: TimerSet::default(),
            processing: TimerSet::default(),
            firing: None,
        }
    }

    pub(crate) fn set(&mut self, domain: TimeDomain) -> &mut TimerSet<K> {
        match domain {
            TimeDomain::EventTime => &mut self.event,
            TimeDomain::ProcessingTime => &mut self.processing,
        }
    }

    /// Removes and returns the earliest timer due at `now` in `domain`.
    pub(crate) fn pop_due(&mut self, domain: TimeDomain, now: i64) -> Option<(i64, K, i64)> {
        self.set(domain).pop_due(now)
    }
}

impl<K: Key> Table<K> for Timers<K> {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
    fn snapshot(&mut self, _at: SnapshotAt) -> Box<dyn StateSnapshot> {
        Box::new(self.clone())
    }
    fn restore(&mut self, batch: &RecordBatch) -> Result<()> {
        for (domain, timestamp, key, namespace) in stored_timers(batch)? {
            self.set(domain).insert(timestamp, key, namespace);
        }
        Ok(())
    }

    fn restore_deletes(&mut self, batch: &RecordBatch) -> Result<()> {
        for (domain, timestamp, key, namespace) in stored_timers(batch)? {
            self.set(domain).remove(timestamp, &key, namespace);
        }
        Ok(())
    }
}

/// The timers of a stored batch: (domain, timestamp, key, namespace; 0 without one).
fn stored_timers<K: Key>(batch: &RecordBatch) -> Result<Vec<(TimeDomain, i64, K, i64)>> {
    let keys = keys_of::<K>(batch)?;
    let namespaces = namespaces_of(batch, keys.len())?;
    let domains = column(batch, "domain")?
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| EngineError::Restore("timer domain is not a string".into()))?;
    let timestamps = column(batch, "timestamp")?
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| EngineError::Restore("timer timestamp is not int64".into()))?;
    keys.into_iter()
        .enumerate()
        .map(|(i, key)| {
            let domain = match domains.value(i) {
                "event_time" => TimeDomain::EventTime,
                "processing_time" => TimeDomain::ProcessingTime,
                other => {
                    return Err(EngineError::Restore(format!(
                        "unknown timer domain {other:?}"
                    )));
                }
            };
            Ok((domain, timestamps.value(i), key, namespaces[i].unwrap_or(0)))
        })
        .collect()
}

impl<K: Key> Timers<K> {
    /// The event-time timers a snapshot stores (see [`Timers::firing`]).
    fn stored_event_timers(&self) -> Vec<(i64, &K, i64)> {
        let Some(firing) = &self.firing else {
            return self.event.iter().collect();
        };
        let mut stored = Vec::new();
        for (ts, group) in self.event.groups() {
            // The cleanup timers of one window start whose firing timers are all still
            // set: no window of them fired (a window that waits to fire has both), so the
            // group is passed over without a lookup per timer.
            if let Some(&(_, start)) = group.iter().next() {
                let fires = firing(start);
                if fires != ts && group.iter().all(|(_, ns)| *ns == start) {
                    let waiting = self
                        .event
                        .group(fires)
                        .map_or(0, |f| f.iter().filter(|(_, ns)| *ns == start).count());
                    if waiting == group.len() {
                        continue;
                    }
                }
            }
            for (key, ns) in group {
                let fires = firing(*ns);
                if ts != fires && !self.event.contains(fires, key, *ns) {
                    stored.push((ts, key, *ns));
                }
            }
        }
        stored
    }
}

impl<K: Key> Timers<K> {
    /// Every row, in one part.
    fn rows(&self, range: HashRange) -> Result<crate::operator::Part> {
        let event = self.stored_event_timers();
        let all = event.into_iter().map(|t| (TimeDomain::EventTime, t)).chain(
            self.processing
                .iter()
                .map(|t| (TimeDomain::ProcessingTime, t)),
        );
        let mut rows: Vec<(u64, TimeDomain, (i64, &K, i64))> =
            Vec::with_capacity(self.event.len() + self.processing.len());
        rows.extend(all.map(|(d, t)| (t.1.key_hash(), d, t)));
        if let Some((h, _, t)) = rows.iter().find(|(h, _, _)| !range.contains(*h)) {
            return Err(EngineError::Internal(format!(
                "timer of key {:?} (hash {h:016x}) in the wrong subtask",
                t.1
            )));
        }
        sort_by_hash(&mut rows, |(h, _, _)| *h);
        let keys: Vec<K> = rows.iter().map(|(_, _, t)| t.1.clone()).collect();
        let mut fields = vec![Field::new("key", K::data_type(), false)];
        let mut columns: Vec<ArrayRef> = vec![K::to_array(&keys)];
        if self.namespaced {
            fields.push(Field::new("namespace", DataType::Int64, false));
            columns.push(Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|(_, _, t)| t.2),
            )));
        }
        fields.push(Field::new("domain", DataType::Utf8, false));
        columns.push(Arc::new(StringArray::from_iter_values(
            rows.iter().map(|(_, d, _)| d.as_str()),
        )));
        fields.push(Field::new("timestamp", DataType::Int64, false));
        columns.push(Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|(_, _, t)| t.0),
        )));
        let hashes = rows.iter().map(|(h, _, _)| *h).collect();
        Ok((hashes, batch(fields, columns)?))
    }
}

impl<K: Key> StateSnapshot for Timers<K> {
    fn state(&self) -> &str {
        TIMERS
    }
    fn spec(&self) -> Result<StateSpec> {
        let spec = StateSpec::timers(TIMERS, K::data_type());
        Ok(if self.namespaced {
            spec.with_namespace(DataType::Int64)
        } else {
            spec
        })
    }
    fn parts(&self, range: HashRange) -> crate::operator::Parts<'_> {
        Box::new(std::iter::once(self.rows(range)))
    }
}

#[cfg(test)]
mod tests;
