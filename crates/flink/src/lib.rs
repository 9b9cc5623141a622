//! # rewind-flink
//!
//! Reads and writes Apache Flink savepoints with no JVM: `_metadata` versions 3 to 7 (operators,
//! subtasks, keyed and operator state handles, inline or in files), the keyed-state
//! header with its serializer snapshots, and the canonical keyed-state stream; and imports
//! canonical savepoints whose state uses Flink's built-in serializers into Rewind
//! savepoints, where every Rewind tool works on them; and exports Rewind savepoints back
//! as canonical Flink savepoints that Flink 2.x restores ([`export`]).
//!
//! ```no_run
//! # async fn f() -> Result<(), rewind_flink::FlinkError> {
//! use rewind_flink::FlinkSavepoint;
//! let sp = FlinkSavepoint::open(rewind_savepoint::Location::parse("/savepoints/savepoint-1")?).await?;
//! for op in &sp.metadata().operators {
//!     println!("{} {:?} parallelism {}", op.id, op.uid, op.parallelism);
//! }
//! # Ok(()) }
//! ```
//!
//! The layout was learned from Flink's sources and checked byte for byte against real
//! Flink 2.3 savepoints (`fixtures/flink/`).
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod bytes;
mod columns;
mod error;
mod export;
mod extension;
mod import;
mod keyed;
mod metadata;
mod savepoint;
mod serializers;

pub use error::FlinkError;
pub use export::{
    ExportOptions, ExportReport, ExportedOperator, ExportedState, Serializers, export,
};
pub use import::{ImportOptions, ImportReport, import, import_in_memory};
pub use metadata::{
    Distribution, KeyGroups, KeyedHandle, MAGIC, Metadata, Operator, OperatorStateHandle,
    StreamHandle, Subtask,
};
pub use savepoint::{FlinkSavepoint, METADATA_FILE, looks_like_flink};
