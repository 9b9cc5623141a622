//! The window operator: assigns records to windows, keeps one accumulator per (key, window)
//! and fires windows from event-time timers.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_array::RecordBatch;
use rewind_savepoint::format::HashRange;

use super::stored::{FixedWindows, SessionWindows, Slot};
use super::{Window, WindowLogic, Windowed, Windows};
use crate::key::Key;
use crate::keyed::{NsKey, TIMERS, Table, TimeDomain, Timers, ValueCodec, ValueKind, ValueTable};
use crate::operator::{ErasedOp, KeyFn, Rec, StateSnapshot};
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
    /// What a restore loaded: windows without timers get their timers derived.
    restored_windows: bool,
    restored_timers: bool,
    watermark: i64,
    late: Arc<AtomicU64>,
    pass_late: bool,
    /// The windows of the record being processed (kept to reuse its allocation).
    assigned: Vec<Window>,
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
        let codec: Arc<dyn ValueCodec<NsKey<K>, Slot<L::Acc>>> = match windows {
            Windows::Tumbling { size } | Windows::Sliding { size, .. } => Arc::new(FixedWindows {
                size: millis(size),
                acc: std::marker::PhantomData,
            }),
            Windows::Session { .. } => Arc::new(SessionWindows::default()),
        };
        let mut timers = Timers::new(true);
        if let (Windows::Tumbling { size } | Windows::Sliding { size, .. }, true) =
            (windows, lateness > 0)
        {
            // The firing timer of window [ns, ns + size) is at ns + size - 1.
            let size = millis(size);
            timers.stored = Some(Arc::new(move |ts, ns| ts == ns.saturating_add(size) - 1));
        }
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
            restored_timers: false,
            watermark: i64::MIN,
            late,
            pass_late,
            assigned: Vec::new(),
        }
    }

    /// The window's state is purged once the watermark reaches this.
    fn cleanup_time(&self, end: i64) -> i64 {
        end.saturating_sub(1).saturating_add(self.lateness)
    }

    /// Puts the windows `ts` belongs to in `out` (cleared first).
    fn assign(&self, ts: i64, out: &mut Vec<Window>) {
        out.clear();
        let (size, slide) = match self.windows {
            Windows::Tumbling { size } => (millis(size), millis(size)),
            Windows::Sliding { size, slide } => (millis(size), millis(slide)),
            Windows::Session { gap } => {
                out.push(Window {
                    start: ts,
                    end: ts.saturating_add(millis(gap)),
                });
                return;
            }
        };
        let mut start = ts - ts.rem_euclid(slide);
        while start > ts - size {
            out.push(Window {
                start,
                end: start + size,
            });
            start -= slide;
        }
    }

    fn register(&mut self, key: &K, w: Window) {
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

    /// Drops the window's state; its timers are gone already (its cleanup timer just
    /// fired, and the firing timer, never later, fired before or is the same one).
    fn purge(&mut self, key: &K, w: Window) {
        self.table.map.remove(&NsKey {
            key: key.clone(),
            ns: w.start,
        });
        if let Some(starts) = self.sessions.get_mut(key) {
            starts.remove(&w.start);
            if starts.is_empty() {
                self.sessions.remove(key);
            }
        }
    }

    fn emit(&self, key: &K, w: Window, acc: &L::Acc, out: &mut Vec<Rec>) {
        let mut results = Vec::new();
        self.logic.emit(key, w, acc, &mut results);
        out.extend(
            results
                .into_iter()
                .map(|r| Rec::new(Windowed::<L::Out, T>::Result(r), Some(w.end - 1))),
        );
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

    /// Without allowed lateness a window is purged when it fires, so every window in the
    /// state is still to fire and its timers follow from it: they are not stored (see
    /// [`ErasedOp::snapshot`]) and are derived here after a restore. With allowed lateness
    /// the firing timers tell which windows fired and are stored; the cleanup timers (one
    /// per window) are derived (windows of a fixed size store only their firing timers).
    /// A savepoint written by release 0.1.0 has every timer and restores as stored.
    fn derive_timers(&mut self) {
        let restored = std::mem::take(&mut self.restored_windows);
        let with_timers = std::mem::take(&mut self.restored_timers);
        if !restored {
            return;
        }
        for (key, w) in self.windows() {
            if !with_timers {
                self.register(&key, w);
            } else if self.lateness > 0 {
                // Cleanup timers follow from the windows (stored ones are set already).
                let cleanup = self.cleanup_time(w.end);
                self.timers.event.insert(cleanup, key, w.start);
            } else if !self.timers.event.contains(w.end - 1, &key, w.start) {
                // Stored by a job with allowed lateness: a window it kept after it fired
                // (no firing timer left) goes, as this job would have purged it.
                self.remove(&key, w);
            }
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

    /// Brings derived structures up to date after a restore.
    fn settle(&mut self) {
        self.derive_timers();
        self.rebuild_sessions();
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

impl<K: Key, T: Send + Sync + 'static, L: WindowLogic<K, T>> ErasedOp for WindowOp<K, T, L> {
    fn process(&mut self, rec: Rec, out: &mut Vec<Rec>) -> Result<()> {
        self.settle();
        let ts = rec.timestamp().ok_or_else(|| {
            EngineError::InvalidJob(
                "windows need event time: call assign_timestamps on the source".into(),
            )
        })?;
        let input = rec.downcast::<T>()?;
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

    fn on_watermark(&mut self, watermark: i64, out: &mut Vec<Rec>) -> Result<()> {
        self.settle();
        self.watermark = self.watermark.max(watermark);
        while let Some((ts, key, start)) =
            self.timers.pop_due(TimeDomain::EventTime, self.watermark)
        {
            let ns = NsKey {
                key: key.clone(),
                ns: start,
            };
            let Some(slot) = self.table.map.get(&ns) else {
                continue;
            };
            let w = Window {
                start,
                end: slot.end,
            };
            if ts == w.end - 1 {
                self.emit(&key, w, &slot.acc, out);
            }
            if ts == self.cleanup_time(w.end) {
                self.purge(&key, w);
            }
        }
        Ok(())
    }

    fn set_initial_watermark(&mut self, watermark: i64) {
        self.watermark = watermark;
    }

    fn snapshot(&mut self, at: crate::operator::SnapshotAt) -> Vec<Box<dyn StateSnapshot>> {
        self.settle();
        let mut states = vec![self.table.snapshot(at)];
        // With allowed lateness, a window kept after it fired has no firing timer any more:
        // which windows fired is told by the timers alone. Without, they follow from the
        // windows (see `derive_timers`).
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
            TIMERS => {
                self.restored_timers = true;
                self.timers.restore(batch)
            }
            other => Err(EngineError::Restore(format!(
                "no state {other:?} in a window operator"
            ))),
        }
    }
}
