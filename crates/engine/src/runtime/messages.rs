//! What the runtime's threads send each other: records, barriers and watermarks between
//! stages ([`Msg`] in an [`Envelope`]), and the coordinator's commands to source subtasks
//! ([`SourceControl`]). The bottom of the runtime: workers, the coordinator and the run
//! loop are built on it.

use crate::operator::Batch;

pub(crate) const DOWNSTREAM_STOPPED: &str = "downstream stopped";
pub(crate) const UPSTREAM_VANISHED: &str = "upstream vanished";

/// The id of the checkpoint every source takes when its input ends.
pub(crate) const FINAL: u64 = u64::MAX;

pub(crate) enum Msg {
    /// Records in order; batched to keep the per-record cost of channels low.
    Recs(Box<dyn Batch>),
    Barrier(u64),
    /// The sender's event time will not go below this again.
    Watermark(i64),
    /// The sender has no active input: do not wait for its watermark until the next one.
    Idle,
    End,
}

pub(crate) struct Envelope {
    pub(crate) from: usize,
    pub(crate) msg: Msg,
}

pub(crate) enum SourceControl {
    /// Take checkpoint `id`; `stop` ends the job after it; `drain` first advances event
    /// time to the end, firing every timer and window. With `pause`, a stopping source
    /// waits after the barrier for [`Finish`](Self::Finish) (the savepoint is written) or
    /// [`Resume`](Self::Resume) (it failed); without, it ends right after the barrier.
    Trigger {
        id: u64,
        stop: bool,
        drain: bool,
        pause: bool,
    },
    /// The stop's savepoint is written: end.
    Finish,
    /// The stop's savepoint failed: read on.
    Resume,
    /// Stop now, without a checkpoint: output not yet committed is dropped.
    Cancel,
}
