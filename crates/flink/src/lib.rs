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
//! // Flink 1.x records operator ids only; a uid finds its operator by Flink's hash of it.
//! let counter = sp.operator_by_uid("counter");
//! let parallelism: Vec<(&str, i32)> =
//!     sp.metadata().operators.iter().map(|op| (op.id.as_str(), op.parallelism)).collect();
//! # Ok(()) }
//! ```
//!
//! The layout was learned from Flink's sources and checked byte for byte against real
//! Flink 2.3 savepoints (`fixtures/flink/`); `LAYOUT.md` describes it.
//!
//! ## Where things are
//!
//! Each of Flink's wire structures has one module holding its reader and its writer
//! (`read.rs`, `write.rs`) and the constants both use, so a format is described once:
//!
//! | module | structure |
//! |---|---|
//! | `java` | Java's `DataInput`/`DataOutput`: big-endian numbers, `writeUTF`, Flink strings |
//! | `metadata` | `_metadata`: operators, subtasks, state handles (and their type bytes) |
//! | `snapshots` | serializer snapshots, parsed into the types they stand for |
//! | `values` | values of Flink's serializers, to and from Arrow columns |
//! | `keyed` | the keyed-state header and the canonical key-group stream |
//! | `operator_state` | operator list and broadcast state streams |
//! | `placement` | key groups, subtask ranges, Java hash codes, operator ids |
//!
//! Above them: `savepoint` (a Flink savepoint on a store), `extension` (what an import
//! keeps for an export), and the two conversions, `import` and `export`, which only
//! orchestrate. A new structure gets a room of the same shape: RocksDB's files a module
//! beside these, Kryo's values one inside `values`.
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

// Flink's wire structures, each read and written in one place, bottom up: Java's byte
// vocabulary, serializer snapshots and the values they describe, then the structures
// built of them.
mod java;
mod keyed;
mod metadata;
mod operator_state;
mod placement;
mod snapshots;
mod values;

// The files: a Flink savepoint on a store, and what an import keeps for an export.
mod extension;
mod savepoint;

// The conversions.
mod error;
mod export;
mod import;

pub use error::FlinkError;
pub use export::{
    ExportOptions, ExportReport, ExportedOperator, ExportedState, Serializers, export,
};
pub use import::{
    ImportOptions, ImportReport, ImportedState, SkippedState, import, import_in_memory,
    is_flink_savepoint, readable_location,
};
pub use metadata::{
    Distribution, KeyGroups, KeyedHandle, MAGIC, MasterState, Metadata, Operator,
    OperatorStateHandle, OperatorStateOffsets, StreamHandle, Subtask,
};
pub use savepoint::{FlinkSavepoint, METADATA_FILE, looks_like_flink};
