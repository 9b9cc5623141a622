//! The window operator: assigns records to windows, keeps one accumulator per (key, window)
//! and fires windows from event-time timers.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_array::RecordBatch;
use rewind_savepoint::format::HashRange;

use super::stored::{FixedWindows, SessionWindows, Slot};
use super::{Window, WindowLogic, Windowed, Windows};
use crate::key::Key;
use crate::keyed::{NsKey, TIMERS, Table, TimeDomain, Timers, ValueCodec, ValueKind, ValueTable};
use crate::operator::{Batch, ErasedOp, FIRING_CHUNK, Firing, KeyFn, Rec, StateSnapshot};
use crate::{EngineError, Result};

/// The state holding window contents: namespace = the window's start.
pub(crate) const WINDOWS: &str = "windows";

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4).max(1)
}

pub(crate) struct WindowOp<K: Key, T, L: WindowLogic<K, T>> {
    logic: Arc<L>,
    key: KeyFn<T, K>,
    windows: Windows,
    lateness: i64,
    table: ValueTable<K, NsKey<K>, Slot<L::Acc>>,
    timers: Timers<K>,
    /// Session windows: each key's open window starts (derived, rebuilt after a restore).
    sessions: HashMap<K, BTreeSet<i64>>,
    sessions_stale: bool,
    /// Whether a restore loaded windows: their timers are derived (`derive_timers`).
    restored_windows: bool,
    watermark: i64,
    late: Arc<AtomicU64>,
    pass_late: bool,
    /// The windows of the record being processed (kept to reuse its allocation).
    assigned: Vec<Window>,
    /// The windows of the chunk being warmed (with their record's index), those of them
    /// created, and the chunk's records without a window (kept to reuse their
    /// allocations).
    warming: Vec<(NsKey<K>, usize)>,
    created: Vec<NsKey<K>>,
    rest: Vec<usize>,
    /// `windows`' lengths in milliseconds: (size, slide) of fixed-size windows, (gap, 0)
    /// of sessions (converted once, not per record).
    spans: (i64, i64),
    /// Fixed-size windows without allowed lateness: per firing time, the keys (with their
    /// hashes) of the windows that fire then (`None`: windows have timers).
    /// Such a window needs no timer: it fires and goes at one time, and a snapshot stores
    /// no timer of it; a list push per window replaced a timer insert (a cache miss in a
    /// hash set of up to every key) and a sort of the timers' group.
    due: Option<BTreeMap<i64, Vec<(u64, K)>>>,
    /// The slide-aligned start last computed: records of one stretch of event time share
    /// it, so most need no division (two per record were an eighth of a window count).
    last_base: i64,
    /// The window whose firing scan stopped after a chunk, and the bucket it goes on from.
    scanning: Option<(Window, usize)>,
}

impl<K: Key, T: Send + Sync + 'static, L: WindowLogic<K, T>> WindowOp<K, T, L> {
    pub(crate) fn new(
        range: HashRange,
        logic: Arc<L>,
        key: KeyFn<T, K>,
        windows: Windows,
        lateness: i64,
        late: Arc<AtomicU64>,
        pass_late: bool,
    ) -> Self {
        let mut timers = Timers::new(true);
        let codec: Arc<dyn ValueCodec<NsKey<K>, Slot<L::Acc>>> = match windows {
            Windows::Tumbling { size } | Windows::Sliding { size, .. } => {
                let size = millis(size);
                // Window [ns, ns + size) fires at ns + size - 1.
                timers.firing = Some(Arc::new(move |ns| ns.saturating_add(size) - 1));
                Arc::new(FixedWindows {
                    size,
                    acc: std::marker::PhantomData,
                })
            }
            Windows::Session { .. } => Arc::new(SessionWindows::default()),
        };
        WindowOp {
            logic,
            key,
            windows,
            lateness,
            table: ValueTable::with_codec(WINDOWS, ValueKind::Value, range, codec),
            timers,
            sessions: HashMap::new(),
            sessions_stale: false,
            restored_windows: false,
            watermark: i64::MIN,
            late,
            pass_late,
            assigned: Vec::new(),
            warming: Vec::new(),
            created: Vec::new(),
            rest: Vec::new(),
            spans: match windows {
                Windows::Tumbling { size } => (millis(size), millis(size)),
                Windows::Sliding { size, slide } => (millis(size), millis(slide)),
                Windows::Session { gap } => (millis(gap), 0),
            },
            last_base: i64::MIN,
            scanning: None,
            due: match windows {
                Windows::Tumbling { .. } | Windows::Sliding { .. } if lateness == 0 => {
                    Some(BTreeMap::new())
                }
                _ => None,
            },
        }
    }

    /// The live windows of `chunk`'s records as (window, record index), and the indices
    /// of records with none (late, or without a timestamp), in buffers kept for reuse.
    fn chunk_windows(&mut self, chunk: &[(i64, T)]) -> (Vec<(NsKey<K>, usize)>, Vec<usize>) {
        let (mut windows, mut rest) = (
            std::mem::take(&mut self.warming),
            std::mem::take(&mut self.rest),
        );
        let mut assigned = std::mem::take(&mut self.assigned);
        let watermark = self.watermark;
        for (i, (ts, input)) in chunk.iter().enumerate() {
            let Some(ts) = crate::operator::timestamp_of(*ts) else {
                rest.push(i);
                continue;
            };
            self.assign(ts, &mut assigned);
            assigned.retain(|w| self.cleanup_time(w.end) > watermark);
            if assigned.is_empty() {
                rest.push(i);
                continue;
            }
            let key = (self.key)(input);
            windows.extend(assigned.iter().map(|w| {
                let ns = NsKey {
                    key: key.clone(),
                    ns: w.start,
                };
                (ns, i)
            }));
        }
        self.assigned = assigned;
        (windows, rest)
    }

    /// Writes fixed-size windows with `update`, creating (and registering) those that
    /// are new.
    fn upsert_windows<X>(
        &mut self,
        items: impl Iterator<Item = (NsKey<K>, X)>,
        mut update: impl FnMut(&L, &mut Slot<L::Acc>, X),
    ) {
        let (logic, size) = (&*self.logic, self.spans.0);
        let mut created = std::mem::take(&mut self.created);
        self.table.map.upsert_all(
            items,
            |ns| Slot {
                end: ns.ns.saturating_add(size),
                acc: logic.create(),
            },
            |slot, x| update(logic, slot, x),
            |ns| created.push(ns.clone()),
        );
        for ns in created.drain(..) {
            let end = ns.ns.saturating_add(size);
            self.register(&ns.key, Window { start: ns.ns, end });
        }
        self.created = created;
    }

    /// The window's state is purged once the watermark reaches this.
    fn cleanup_time(&self, end: i64) -> i64 {
        end.saturating_sub(1).saturating_add(self.lateness)
    }

    /// Puts the windows `ts` belongs to in `out` (cleared first).
    fn assign(&mut self, ts: i64, out: &mut Vec<Window>) {
        out.clear();
        let (size, slide) = self.spans;
        if let Windows::Session { .. } = self.windows {
            out.push(Window {
                start: ts,
                end: ts.saturating_add(size),
            });
            return;
        }
        // `ts` lies in [last_base, last_base + slide) (compared without overflow).
        if (ts as i128 - self.last_base as i128) as u128 >= slide as u128 {
            self.last_base = ts - ts.rem_euclid(slide);
        }
        let mut start = self.last_base;
        while start > ts - size {
            out.push(Window {
                start,
                end: start + size,
            });
            start -= slide;
        }
    }

    fn register(&mut self, key: &K, w: Window) {
        if let Some(due) = &mut self.due {
            due.entry(w.end - 1)
                .or_default()
                .push((key.key_hash(), key.clone()));
            return;
        }
        self.timers.event.insert(w.end - 1, key.clone(), w.start);
        if self.lateness > 0 {
            let cleanup = self.cleanup_time(w.end);
            self.timers.event.insert(cleanup, key.clone(), w.start);
        }
    }

    fn remove(&mut self, key: &K, w: Window) {
        self.timers.event.remove(w.end - 1, key, w.start);
        let cleanup = self.cleanup_time(w.end);
        self.timers.event.remove(cleanup, key, w.start);
        self.purge(key, w);
    }

    /// Drops the window's state, returning it; its timers are gone already (its cleanup timer just
    /// fired, and the firing timer, never later, fired before or is the same one).
    fn purge(&mut self, key: &K, w: Window) -> Option<Slot<L::Acc>> {
        let slot = self.table.map.remove(&NsKey {
            key: key.clone(),
            ns: w.start,
        });
        if let Some(starts) = self.sessions.get_mut(key) {
            starts.remove(&w.start);
            if starts.is_empty() {
                self.sessions.remove(key);
            }
        }
        slot
    }

    /// Fires and purges the listed windows due at the watermark, about [`FIRING_CHUNK`]
    /// results a call: each firing time's windows in key-hash order (then key), so a
    /// restored job fires as an uninterrupted one does. When they are a large share of the
    /// state, one scan takes them out (a lookup per window missed the cache on nearly
    /// every one: a quarter of a window count's firing).
    fn fire_listed(&mut self, out: &mut Vec<Rec>) -> Firing {
        let (size, watermark) = (self.spans.0, self.watermark);
        let mut results = Vec::new();
        loop {
            let room = FIRING_CHUNK.saturating_sub(out.len());
            if room == 0 {
                return Firing::More;
            }
            if let Some((w, bucket)) = self.scanning.take() {
                let emitter = (&*self.logic, self.pass_late);
                self.scanning = self
                    .table
                    .map
                    .extract_sorted(
                        bucket,
                        room,
                        |r| r.ns == w.start,
                        |_, r, slot| {
                            Self::emit_with(emitter, &r.key, w, &slot.acc, &mut results, out)
                        },
                    )
                    .map(|next| (w, next));
                continue;
            }
            let Some(due) = &mut self.due else {
                return Firing::Done;
            };
            let Some((time, mut keys)) = due.pop_first() else {
                return Firing::Done;
            };
            if time > watermark {
                due.insert(time, keys);
                return Firing::Done;
            }
            let end = time.saturating_add(1);
            let w = Window {
                start: end.saturating_sub(size),
                end,
            };
            if keys.len() * 4 >= self.table.map.len() {
                // A large share of the state fires: one scan in memory order takes it.
                self.scanning = Some((w, 0));
                continue;
            }
            // Equal hashes (rare) by key, so the order depends on the keys alone.
            keys.sort_unstable();
            if keys.len() > room {
                // The rest, still sorted, in the next chunk.
                due.insert(time, keys.split_off(room));
            }
            out.reserve(keys.len());
            for (_, key) in keys {
                if let Some(slot) = self.purge(&key, w) {
                    let emitter = (&*self.logic, self.pass_late);
                    Self::emit_with(emitter, &key, w, &slot.acc, &mut results, out);
                }
            }
        }
    }

    fn emit(&self, key: &K, w: Window, acc: &L::Acc, out: &mut Vec<Rec>) {
        let emitter = (&*self.logic, self.pass_late);
        Self::emit_with(emitter, key, w, acc, &mut Vec::new(), out);
    }

    /// Window `w`'s results as records, made in `results` (left empty, to be reused): as
    /// [`Windowed::Result`] beside late records passed on, else the results themselves (a
    /// stage unwrapping them was a second allocation per result).
    fn emit_with(
        (logic, pass_late): (&L, bool),
        key: &K,
        w: Window,
        acc: &L::Acc,
        results: &mut Vec<L::Out>,
        out: &mut Vec<Rec>,
    ) {
        logic.emit(key, w, acc, results);
        let ts = Some(w.end - 1);
        if pass_late {
            out.extend(
                results
                    .drain(..)
                    .map(|r| Rec::new(Windowed::<L::Out, T>::Result(r), ts)),
            );
        } else {
            out.extend(results.drain(..).map(|r| Rec::new(r, ts)));
        }
    }

    /// Adds `input` to window `w` of `key` (merging session windows first).
    fn add(&mut self, key: &K, mut w: Window, input: &T, out: &mut Vec<Rec>) {
        let mut merged = None;
        if matches!(self.windows, Windows::Session { .. }) {
            let mut acc = self.logic.create();
            let starts: Vec<i64> = self
                .sessions
                .get(key)
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default();
            for start in starts {
                let ns = NsKey {
                    key: key.clone(),
                    ns: start,
                };
                let Some(slot) = self.table.map.get(&ns).cloned() else {
                    continue;
                };
                if start < w.end && slot.end > w.start {
                    acc = self.logic.merge(acc, slot.acc);
                    self.remove(
                        key,
                        Window {
                            start,
                            end: slot.end,
                        },
                    );
                    w = Window {
                        start: w.start.min(start),
                        end: w.end.max(slot.end),
                    };
                }
            }
            self.sessions
                .entry(key.clone())
                .or_default()
                .insert(w.start);
            merged = Some(acc);
        }
        let ns = NsKey {
            key: key.clone(),
            ns: w.start,
        };
        let logic = &self.logic;
        let (slot, fresh) = self.table.map.entry_with(ns, || Slot {
            end: w.end,
            acc: merged.unwrap_or_else(|| logic.create()),
        });
        logic.add(&mut slot.acc, input);
        if fresh {
            self.register(key, w);
        }
        // A window that already fired and is within its allowed lateness fires again.
        if w.end - 1 <= self.watermark {
            let ns = NsKey {
                key: key.clone(),
                ns: w.start,
            };
            if let Some(slot) = self.table.map.get(&ns) {
                self.emit(key, w, &slot.acc, out);
            }
        }
    }

    /// The timers of a window still to fire follow from it: without allowed lateness every
    /// window in the state is one (it is purged when it fires), so no timers are stored
    /// (see [`ErasedOp::snapshot`]); with lateness, a fixed-size window's snapshot stores
    /// only the cleanup timers of windows that fired (session windows store every timer).
    /// After a restore every timer is derived again under this job's lateness: a window
    /// fired iff a timer of it was restored but not its firing timer. A job that has no
    /// lateness purges the windows that fired. Savepoints of release 0.1.0 (every timer
    /// stored) follow the same rule.
    fn derive_timers(&mut self) {
        if !std::mem::take(&mut self.restored_windows) {
            return;
        }
        let timed: HashSet<(K, i64)> = self
            .timers
            .event
            .iter()
            .map(|(_, key, ns)| (key.clone(), ns))
            .collect();
        let windows = self.windows();
        let fired: Vec<bool> = windows
            .iter()
            .map(|(key, w)| {
                !self.timers.event.contains(w.end - 1, key, w.start)
                    && timed.contains(&(key.clone(), w.start))
            })
            .collect();
        self.timers.event = Default::default();
        if let Some(due) = &mut self.due {
            due.clear();
        }
        for ((key, w), fired) in windows.into_iter().zip(fired) {
            let w = self.resized(&key, w);
            if !fired {
                self.register(&key, w);
            } else if self.lateness > 0 {
                let cleanup = self.cleanup_time(w.end);
                self.timers.event.insert(cleanup, key, w.start);
            } else {
                self.purge(&key, w);
            }
        }
    }

    /// A restored fixed-size window with the job's size: a window that release 0.1.0
    /// stored keeps its stored end until its timers are derived (its firing timer is at
    /// the end it had), then takes the size every fixed-size window has (firing relies on
    /// it).
    fn resized(&mut self, key: &K, w: Window) -> Window {
        let (Windows::Tumbling { .. } | Windows::Sliding { .. }) = self.windows else {
            return w;
        };
        let end = w.start.saturating_add(self.spans.0);
        if end != w.end {
            let ns = NsKey {
                key: key.clone(),
                ns: w.start,
            };
            if let Some(slot) = self.table.map.get_mut(&ns) {
                slot.end = end;
            }
        }
        Window {
            start: w.start,
            end,
        }
    }

    /// Every window in the state.
    fn windows(&self) -> Vec<(K, Window)> {
        self.table
            .map
            .keys()
            .filter_map(|ns| {
                let slot = self.table.map.get(ns)?;
                let w = Window {
                    start: ns.ns,
                    end: slot.end,
                };
                Some((ns.key.clone(), w))
            })
            .collect()
    }

    /// Brings derived structures up to date after a restore (checked per record: the
    /// checks inline, the work not).
    #[inline]
    fn settle(&mut self) {
        if self.restored_windows {
            self.derive_timers();
        }
        if self.sessions_stale {
            self.rebuild_sessions();
        }
    }

    fn rebuild_sessions(&mut self) {
        if !std::mem::take(&mut self.sessions_stale) {
            return;
        }
        self.sessions.clear();
        if matches!(self.windows, Windows::Session { .. }) {
            for ns in self.table.map.keys() {
                self.sessions
                    .entry(ns.key.clone())
                    .or_default()
                    .insert(ns.ns);
            }
        }
    }
}

impl<K: Key, T: Send + Sync + 'static, L: WindowLogic<K, T>> crate::operator::TypedInput
    for WindowOp<K, T, L>
{
    type In = T;

    /// Creates the windows of the chunk's records that are new, and looks up the others,
    /// to bring their state into the cache (session windows merge, so their lookups are
    /// not predicted). A window created here is registered here: processing finds it.
    fn warm(&mut self, chunk: &[(i64, T)]) {
        if matches!(self.windows, Windows::Session { .. }) {
            return;
        }
        self.settle();
        let (mut windows, mut rest) = self.chunk_windows(chunk);
        self.upsert_windows(windows.drain(..).map(|(ns, _)| (ns, ())), |_, _, ()| {});
        rest.clear();
        (self.warming, self.rest) = (windows, rest);
    }

    /// Fixed-size windows without allowed lateness add the chunk's records to their
    /// windows in one pass (no record fires a window as it is added): one probe a window,
    /// the group's cache misses overlapping. Records without a live window (late, or
    /// without a timestamp) are processed one by one after it: a missing timestamp fails
    /// the job after the chunk's other records were added (the job then restores from its
    /// last checkpoint, as after any failure).
    fn process_chunk(&mut self, chunk: &mut Vec<(i64, T)>, out: &mut Vec<Rec>) -> Result<()> {
        if self.due.is_none() {
            return crate::operator::warm_then_process(self, chunk, out);
        }
        self.settle();
        let (mut windows, mut rest) = self.chunk_windows(chunk);
        let items = windows.drain(..).map(|(ns, i)| (ns, &chunk[i].1));
        self.upsert_windows(items, |logic, slot, input| logic.add(&mut slot.acc, input));
        let result = if rest.is_empty() {
            chunk.clear();
            Ok(())
        } else {
            let mut next = rest.iter().copied().peekable();
            chunk
                .drain(..)
                .enumerate()
                .try_for_each(|(i, (ts, input))| {
                    if next.next_if_eq(&i).is_none() {
                        return Ok(());
                    }
                    self.process_input(input, crate::operator::timestamp_of(ts), out)
                })
        };
        rest.clear();
        (self.warming, self.rest) = (windows, rest);
        result
    }

    /// Adds a record to its windows.
    fn process_input(&mut self, input: T, ts: Option<i64>, out: &mut Vec<Rec>) -> Result<()> {
        self.settle();
        let ts = ts.ok_or_else(|| {
            EngineError::InvalidJob(
                "windows need event time: call assign_timestamps on the source".into(),
            )
        })?;
        let key = (self.key)(&input);
        let mut live = std::mem::take(&mut self.assigned);
        self.assign(ts, &mut live);
        live.retain(|w| self.cleanup_time(w.end) > self.watermark);
        if live.is_empty() {
            self.assigned = live;
            if self.pass_late {
                out.push(Rec::new(Windowed::<L::Out, T>::Late(input), Some(ts)));
            } else {
                self.late.fetch_add(1, Ordering::Relaxed);
            }
            return Ok(());
        }
        for &w in &live {
            self.add(&key, w, &input, out);
        }
        self.assigned = live;
        Ok(())
    }
}

impl<K: Key, T: Send + Sync + 'static, L: WindowLogic<K, T>> ErasedOp for WindowOp<K, T, L> {
    fn process(&mut self, rec: Rec, out: &mut Vec<Rec>) -> Result<()> {
        crate::operator::process_typed(self, rec, out)
    }

    fn process_batch(&mut self, batch: Box<dyn Batch>, out: &mut Vec<Rec>) -> Result<()> {
        crate::operator::process_typed_batch(self, batch, out)
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Vec<Rec>) -> Result<Firing> {
        self.settle();
        self.watermark = self.watermark.max(watermark);
        if self.fire_listed(out) == Firing::More {
            return Ok(Firing::More);
        }
        loop {
            if out.len() >= FIRING_CHUNK {
                return Ok(Firing::More);
            }
            let Some((ts, key, start)) = self.timers.pop_due(TimeDomain::EventTime, self.watermark)
            else {
                return Ok(Firing::Done);
            };
            let end = match self.windows {
                // A fixed-size window's end follows from its start: when the timer both
                // fires and purges it, one removal finds it (a lookup first was a tenth of
                // a window count's firing).
                Windows::Tumbling { .. } | Windows::Sliding { .. } => {
                    start.saturating_add(self.spans.0)
                }
                Windows::Session { .. } => {
                    let ns = NsKey {
                        key: key.clone(),
                        ns: start,
                    };
                    let Some(slot) = self.table.map.get(&ns) else {
                        continue;
                    };
                    slot.end
                }
            };
            let w = Window { start, end };
            let fires = ts == w.end - 1;
            if ts == self.cleanup_time(w.end) {
                if let Some(slot) = self.purge(&key, w).filter(|_| fires) {
                    self.emit(&key, w, &slot.acc, out);
                }
            } else if fires {
                let ns = NsKey {
                    key: key.clone(),
                    ns: start,
                };
                if let Some(slot) = self.table.map.get(&ns) {
                    self.emit(&key, w, &slot.acc, out);
                }
            }
        }
    }

    fn set_initial_watermark(&mut self, watermark: i64) {
        self.watermark = watermark;
    }

    fn snapshot(&mut self, at: crate::operator::SnapshotAt) -> Vec<Box<dyn StateSnapshot>> {
        self.settle();
        let mut states = vec![self.table.snapshot(at)];
        // With allowed lateness, the timers tell which windows fired (a fixed-size window's
        // snapshot keeps only those); without, every window is still to fire and its timers
        // follow from it (see `derive_timers`).
        if self.lateness > 0 {
            states.push(Table::snapshot(&mut self.timers, at));
        }
        states
    }

    fn restore(&mut self, state: &str, batch: &RecordBatch) -> Result<()> {
        self.sessions_stale = true;
        match state {
            WINDOWS => {
                self.restored_windows = true;
                self.table.restore(batch)
            }
            TIMERS => self.timers.restore(batch),
            other => Err(EngineError::Restore(format!(
                "no state {other:?} in a window operator"
            ))),
        }
    }

    fn restore_deletes(&mut self, state: &str, batch: &RecordBatch) -> Result<()> {
        self.sessions_stale = true;
        match state {
            WINDOWS => self.table.restore_deletes(batch),
            TIMERS => self.timers.restore_deletes(batch),
            other => Err(EngineError::Restore(format!(
                "no state {other:?} in a window operator"
            ))),
        }
    }

    fn reserve(&mut self, state: &str, rows: usize) {
        if state == WINDOWS {
            Table::reserve(&mut self.table, rows);
        }
    }
}

#[cfg(test)]
mod tests;
