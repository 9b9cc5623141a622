//! # rewind-engine
//!
//! A small, real stream processor whose checkpoints and savepoints are Rewind savepoints:
//! a dataflow of sources, stateless transformations, keyed processing with value state and
//! sinks; parallel subtasks on threads with bounded channels; aligned barriers injected at
//! the sources; a coordinator that writes each checkpoint through `rewind-savepoint`
//! (manifest last) and only then commits the sinks' output; restore by operator uid at any
//! parallelism (keyed state is re-cut by hash range, source splits re-dealt).
//!
//! ```no_run
//! use rewind_engine::{CollectSink, Context, GeneratedEvent, GeneratorSource, JobBuilder};
//! use rewind_engine::{KeyedProcessFunction, RunOptions, StateDecl, ValueState, run};
//!
//! struct Count { count: ValueState<u64> }
//! impl KeyedProcessFunction for Count {
//!     type Key = i64;
//!     type In = GeneratedEvent;
//!     type Out = (i64, u64);
//!     fn states(&self) -> Vec<StateDecl<i64>> { vec![self.count.decl()] }
//!     fn process(&self, _: GeneratedEvent, ctx: &mut Context<'_, i64, (i64, u64)>) {
//!         let n = self.count.get(ctx).copied().unwrap_or(0) + 1;
//!         self.count.set(ctx, n);
//!         let key = *ctx.key();
//!         ctx.emit((key, n));
//!     }
//! }
//!
//! let job = JobBuilder::new("keyed-count")
//!     .source("Generator", GeneratorSource { keys: 1000, events: 100_000, seed: 1, splits: 4, rate_per_split: None })
//!     .uid("events")
//!     .key_by(|e| e.key)
//!     .process("Counter", Count { count: ValueState::new("count") })
//!     .uid("counter")
//!     .sink("output", CollectSink::default());
//! let savepoints = run(job, RunOptions::default())?.wait()?;
//! # Ok::<(), rewind_engine::EngineError>(())
//! ```
//!
//! Keyed functions keep value, list and map state and set timers ([`KeyedProcessFunction`]);
//! non-keyed ones keep operator list state ([`OperatorFunction`]);
//! sources can assign event time ([`DataStream::assign_timestamps`]), whose watermarks
//! drive timers and tumbling, sliding and session windows ([`KeyedStream::window`]).
//! Window contents, timers and each source split's watermark are in every savepoint, so a
//! restored job fires each window exactly once.
//!
//! # Logging and I/O
//!
//! The engine never prints: what a running job has to say (a retried staging, a
//! checkpoint that failed, a stop on SIGTERM) are [`tracing`] events, with the operator's
//! uid, the checkpoint id or the path as fields. A job runs its storage I/O on a runtime
//! of its own, started by [`run`] and stopped with the job.
//!
//! # Features
//!
//! - `cli`: for applications. [`EngineOptions`] derives `clap::Args`, and
//!   `init_logging` installs the stderr log that `rewind` and its applications share.
//!   Off by default: a library user pulls in neither clap nor a tracing subscriber.
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod control;
mod coordinator;
mod error;
mod io;
mod job;
mod key;
mod keyed;
mod log_source;
#[cfg(feature = "cli")]
mod logging;
mod operator;
mod operator_state;
mod options;
mod runtime;
mod sink;
mod source;
mod time;
mod window;

pub use control::{
    CheckpointRef, ControlCommand, ControlReply, JobEntry, JobRegistry, JobReport, JobStatus,
    KEEP_FINISHED, execute, watch_stop_signals,
};
pub use error::{EngineError, Result};
pub use job::{DataStream, Job, JobBuilder, KeyedStream};
pub use key::Key;
pub use keyed::{
    Context, KeyedProcessFunction, ListState, MapState, StateDecl, StateValue, TimeDomain, Timer,
    ValueState,
};
pub use log_source::LogSource;
#[cfg(feature = "cli")]
pub use logging::{init_logging, log_filter};
pub use operator_state::OperatorFunction;
pub use options::EngineOptions;
pub use rewind_savepoint::format::Redistribution;
pub use runtime::{
    CompletedCheckpoint, DEFAULT_SINK_CHUNK_BYTES, JobControl, JobHandle, JobStats, RunOptions,
    restore_plan, run,
};
pub use sink::{
    CollectSink, FileSink, Sink, StagedOrphans, StdoutSink, find_staged_orphans, read_committed,
    remove_staged_orphans,
};
pub use source::{GeneratedEvent, GeneratorSource, Source, SplitReader};
pub use window::{
    AggregateFunction, CountAggregate, Window, WindowResult, Windowed, WindowedStream, Windows,
};
