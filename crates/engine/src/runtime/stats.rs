//! Measurements of a running job, shared by its threads and whoever watches it.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Measurements of a running job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobStats {
    /// The longest a subtask paused processing to snapshot its state (wall time).
    pub max_sync_pause: Duration,
    /// The longest such pause without the time the subtask's thread waited for a CPU
    /// while runnable (Linux; elsewhere equal to `max_sync_pause`): the snapshot's own work.
    pub max_sync_pause_running: Duration,
    /// Checkpoints and savepoints written.
    pub checkpoints_written: u64,
    /// Checkpoints and savepoints that failed to be written (after a periodic one the job
    /// goes on and its output goes with the next; a failed final one ends the job with
    /// its error).
    pub checkpoints_failed: u64,
    /// Checkpoints in flight when the job was cancelled, which never complete. (An ended
    /// input no longer abandons any: its final state stands in for it.)
    pub checkpoints_abandoned: u64,
    /// How long writing the last one took (asynchronous: processing went on).
    pub last_write: Duration,
    /// The last checkpoint or savepoint that completed.
    pub last_checkpoint: Option<CompletedCheckpoint>,
    /// Records late for windows that were already finished, dropped by window operators
    /// (see [`crate::WindowedStream::allowed_lateness`]).
    pub late_records_dropped: u64,
    /// Records the sources read in this run (published every few hundred records).
    pub records_read: u64,
}

/// A checkpoint or savepoint a job wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedCheckpoint {
    /// Its checkpoint id.
    pub id: u64,
    /// Where it is.
    pub location: String,
    /// A savepoint (taken by a user or at the end), not a periodic checkpoint.
    pub savepoint: bool,
    /// When its manifest was written.
    pub completed_at: std::time::SystemTime,
}

/// Counters shared by a job's threads and whoever watches it.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) stats: Mutex<JobStats>,
    pub(crate) late: Arc<AtomicU64>,
    pub(crate) read: AtomicU64,
    /// The newest checkpoint of this run written to the checkpoint directory (0: none):
    /// later checkpoints may be written as changes since it, never since an older one.
    pub(crate) committed_checkpoint: AtomicU64,
    /// Whether checkpoints of this run may be written as changes since an earlier one
    /// (else keyed state keeps no record of removed keys).
    pub(crate) incremental: bool,
}
