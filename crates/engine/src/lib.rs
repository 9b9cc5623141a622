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
//! use rewind_engine::{GeneratorSource, JobBuilder, CollectSink, RunOptions, run};
//! # use rewind_engine::KeyedProcessFunction;
//! # #[derive(Clone)] struct Count;
//! # impl KeyedProcessFunction for Count {
//! #   type Key = i64; type In = rewind_engine::GeneratedEvent; type Out = (i64, u64); type State = u64;
//! #   fn state_name(&self) -> &str { "count" }
//! #   fn process(&self, k: &i64, _: Self::In, s: &mut Option<u64>, out: &mut Vec<(i64, u64)>) {
//! #     let c = s.unwrap_or(0) + 1; *s = Some(c); out.push((*k, c)); } }
//! let job = JobBuilder::new("keyed-count")
//!     .source("Generator", GeneratorSource { keys: 1000, events: 100_000, seed: 1, splits: 4, rate_per_split: None })
//!     .uid("events")
//!     .key_by(|e| e.key)
//!     .process("Counter", Count)
//!     .uid("counter")
//!     .sink("output", CollectSink::default());
//! let savepoints = run(job, RunOptions::default())?.wait()?;
//! # Ok::<(), rewind_engine::EngineError>(())
//! ```
//!
//! Not yet: event time, timers and windows; list and map state; operator state; a file
//! source; the job control endpoint. See the issue tracker.
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod coordinator;
mod error;
mod job;
mod key;
mod log_source;
mod options;
mod runtime;
mod sink;
mod source;
mod state;

pub use error::{EngineError, Result};
pub use job::{DataStream, Job, JobBuilder, KeyedProcessFunction, KeyedStream};
pub use key::Key;
pub use log_source::LogSource;
pub use options::EngineOptions;
pub use runtime::{JobHandle, JobStats, RunOptions, restore_plan, run};
pub use sink::{CollectSink, FileSink, Sink};
pub use source::{GeneratedEvent, GeneratorSource, Source, SplitReader};
pub use state::StateValue;
