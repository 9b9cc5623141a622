//! # rewind-savepoint
//!
//! Read, write and check Rewind savepoints on any object store: local disk, memory, S3,
//! GCS or Azure (through `object_store`). A savepoint is a `_manifest.json` plus one plain
//! Parquet file per state shard; see spec/FORMAT.md for the format.
//!
//! ## Most users want
//! - [`Location::parse`] to name a savepoint by path or URL;
//! - [`SavepointReader::open`] to read its manifest, then [`SavepointReader::read_state`]
//!   to stream a state's rows (optionally one hash range or some keys);
//! - [`SavepointWriter`] to write one: shards stream to storage with bounded memory and
//!   the manifest is put last, create-only, so a savepoint appears whole or not at all;
//! - [`validate`] to check a savepoint's files against its manifest.
//!
//! ## Errors
//! One [`Error`] enum, by what the caller does next: `NotFound`/`Incomplete` (wrong or
//! unfinished location), `Unsupported` (upgrade), `InvalidManifest`/`Corrupt` (damaged),
//! `AlreadyExists`, `InvalidInput`, `Storage`, `Internal`.
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod analyze;
mod diff;
mod dispose;
mod edit;
mod error;
mod file_copy;
mod generate;
mod layers;
mod lean;
mod lineage;
mod location;
mod migrate;
mod parquet_io;
mod reader;
mod rescale;
mod shard_writer;
mod sort;
mod spec;
mod stats;
mod validate;
mod values;
mod writer;

pub use analyze::{
    Analysis, AnalyzeOptions, ColumnBytes, FieldStats, Finding, Growth, HASH_SLICES, KeySize,
    Layer, Share, StateAnalysis, TimerStats, WindowRows, analyze,
};
pub use diff::{
    DiffOptions, DiffReport, RowChange, RowChangeKind, StateDiff, StructureChange, diff,
};
pub use dispose::{Removal, delete_files, plan_removal, remove};
pub use edit::{Edit, edit};
pub use error::{Error, Result, ValueDoesNotFit};
pub use generate::{GenerateOptions, generate};
pub use layers::{LayerRows, is_incremental};
pub use lineage::{LineageEntry, Unreadable, find_savepoints, latest_completed};
pub use location::Location;
pub use migrate::{
    MigrateOptions, Migration, MigrationReport, StateMigration, migrate, plan_migration,
};
pub use parquet_io::decoding_guarded;
pub use reader::{ReadOptions, SavepointReader, list_files, list_folders, read_manifest};
pub use rescale::{
    RescaleOptions, RescalePlan, RescaleStats, ShardAction, StatePlan, compact, plan_rescale,
    rescale,
};
pub use shard_writer::{ShardWriter, WRITER_NAME, WRITER_VERSION, WriterOptions};
pub use spec::{StateSpec, columns};
pub use validate::{Problem, ProblemKind, ValidateOptions, ValidationReport, validate};
pub use writer::{SavepointInfo, SavepointWriter};

/// The format crate, re-exported so users need one dependency.
pub use rewind_format as format;
