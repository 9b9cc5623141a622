//! Event time at the sources: timestamps extracted per record and a watermark per split
//! that trails the largest timestamp by a bound ("bounded out-of-orderness").

use std::sync::Arc;
use std::time::Duration;

use rewind_savepoint::format::SplitEntry;

use crate::Result;
use crate::operator::{ErasedReader, ErasedSource, Rec};

/// Extracts a record's event time.
pub(crate) type ExtractFn = Arc<dyn Fn(&Rec) -> Option<i64> + Send + Sync>;

/// A source whose readers stamp records with event time and track their watermark.
pub(crate) struct Timestamped {
    inner: Arc<dyn ErasedSource>,
    extract: ExtractFn,
    bound: i64,
}

impl Timestamped {
    pub(crate) fn new(inner: Arc<dyn ErasedSource>, extract: ExtractFn, bound: Duration) -> Self {
        Timestamped {
            inner,
            extract,
            bound: i64::try_from(bound.as_millis()).unwrap_or(i64::MAX / 4),
        }
    }
}

impl ErasedSource for Timestamped {
    fn splits(&self) -> Vec<SplitEntry> {
        self.inner.splits()
    }

    fn discovery_interval(&self) -> Option<Duration> {
        self.inner.discovery_interval()
    }

    fn discover(&self) -> Result<Vec<SplitEntry>> {
        self.inner.discover()
    }

    fn reader(&self, split: &SplitEntry) -> Result<Box<dyn ErasedReader>> {
        Ok(Box::new(TimestampedReader {
            inner: self.inner.reader(split)?,
            extract: self.extract.clone(),
            bound: self.bound,
            // A restored split resumes at its recorded watermark, not at minus infinity.
            max_ts: split
                .watermark
                .map(|w| w.saturating_add(self.bound).saturating_add(1))
                .unwrap_or(i64::MIN),
        }))
    }
}

struct TimestampedReader {
    inner: Box<dyn ErasedReader>,
    extract: ExtractFn,
    bound: i64,
    max_ts: i64,
}

impl ErasedReader for TimestampedReader {
    fn next(&mut self) -> Option<Rec> {
        let mut rec = self.inner.next()?;
        if let Some(ts) = (self.extract)(&rec) {
            rec.set_timestamp(ts);
            self.max_ts = self.max_ts.max(ts);
        }
        Some(rec)
    }

    fn finished(&self) -> bool {
        self.inner.finished()
    }

    fn position(&self) -> serde_json::Value {
        self.inner.position()
    }

    fn watermark(&self) -> Option<i64> {
        (self.max_ts != i64::MIN).then(|| self.max_ts.saturating_sub(self.bound).saturating_sub(1))
    }
}

/// The watermark of an operator subtask: the minimum over its inputs that have neither
/// ended nor gone idle. Inputs that have not sent one yet hold it at minus infinity.
pub(crate) struct InputWatermarks {
    marks: Vec<i64>,
    idle: Vec<bool>,
    ended: Vec<bool>,
    /// The watermark last passed on.
    pub current: i64,
    /// Whether every live input is idle (and so is this subtask).
    pub idle_now: bool,
}

/// What changed after an input event.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Change {
    None,
    /// Pass this watermark on (it advanced, or the subtask is active again).
    Emit(i64),
    WentIdle,
}

impl InputWatermarks {
    pub(crate) fn new(inputs: usize, initial: i64) -> Self {
        InputWatermarks {
            marks: vec![initial; inputs],
            idle: vec![false; inputs],
            ended: vec![false; inputs],
            current: initial,
            idle_now: false,
        }
    }

    pub(crate) fn watermark(&mut self, input: usize, watermark: i64) -> Change {
        self.marks[input] = self.marks[input].max(watermark);
        self.idle[input] = false;
        self.update()
    }

    pub(crate) fn set_idle(&mut self, input: usize) -> Change {
        self.idle[input] = true;
        self.update()
    }

    pub(crate) fn end(&mut self, input: usize) -> Change {
        self.ended[input] = true;
        self.update()
    }

    fn update(&mut self) -> Change {
        let live = (0..self.marks.len()).filter(|&i| !self.ended[i]);
        let active: Vec<usize> = live.clone().filter(|&i| !self.idle[i]).collect();
        if active.is_empty() {
            // All ended: nothing more to say. All idle: tell downstream once.
            if live.count() > 0 && !self.idle_now {
                self.idle_now = true;
                return Change::WentIdle;
            }
            return Change::None;
        }
        let was_idle = std::mem::replace(&mut self.idle_now, false);
        let min = active
            .iter()
            .map(|&i| self.marks[i])
            .min()
            .unwrap_or(i64::MIN);
        if min > self.current {
            self.current = min;
            Change::Emit(min)
        } else if was_idle {
            Change::Emit(self.current)
        } else {
            Change::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_over_live_inputs() {
        let mut w = InputWatermarks::new(2, i64::MIN);
        assert_eq!(w.watermark(0, 10), Change::None);
        assert_eq!(w.watermark(1, 5), Change::Emit(5));
        assert_eq!(w.watermark(1, 20), Change::Emit(10));
        assert_eq!(w.set_idle(0), Change::Emit(20));
        assert_eq!(w.set_idle(1), Change::WentIdle);
        assert_eq!(w.watermark(0, 15), Change::Emit(20));
        assert_eq!(w.watermark(0, 25), Change::Emit(25));
        assert_eq!(w.end(0), Change::WentIdle);
        assert_eq!(w.end(1), Change::None);
    }
}
