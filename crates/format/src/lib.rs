//! # rewind-format
//!
//! The Rewind savepoint format, version 1, without any I/O: the model of
//! `_manifest.json`, format versions and features, key hashing, hash ranges, type strings
//! and path rules. spec/FORMAT.md is the normative description; this crate is its
//! executable form.
//!
//! Most users want the `rewind-savepoint` crate, which reads and writes savepoints on
//! object storage. Use this crate directly to parse a manifest from bytes you already
//! have ([`Manifest::from_json`]), to compute the key hash of keys ([`hash_keys`]) or the
//! hash range of a subtask ([`HashRange::for_subtask`]).
//!
//! Parsing is checked: a [`Manifest`] value always satisfies the per-field rules of the
//! spec (valid names, paths that stay inside the savepoint, known types). Whole-state
//! rules such as coverage of the hash space are reported by [`Manifest::problems`].
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod error;
mod hash;
mod hash_order;
mod manifest;
mod path;
mod range;
mod redistribute;
mod types;
mod version;

pub use error::FormatError;
pub use hash::{KEY_HASH_ALGORITHM, encode_key, hash_encoded_key, hash_keys};
pub use hash_order::sort_by_hash;
pub use manifest::{
    Extensions, JobInfo, Lineage, MAX_ID_LEN, MAX_LAYERS, MAX_MANIFEST_BYTES, MAX_OPERATORS,
    MAX_SHARDS, MAX_SPLITS, MAX_STATES, Manifest, ManifestProblem, OperatorEntry, ParentRef,
    Redistribution, SavepointKind, ShardEntry, SourceEntry, SplitEntry, StateEntry, StateKind,
    WriterInfo,
};
pub use path::{
    MANIFEST_FILE, MAX_NAME_LEN, MAX_PATH_LEN, MAX_SEGMENT_LEN, check_name, check_relative_path,
    portable_segment,
};
pub use range::{CoverageProblem, HashRange, coverage_problems, subtask_for_hash};
pub use redistribute::deal;
pub use types::{
    MAX_STRUCT_FIELDS, MAX_TYPE_DEPTH, MAX_TYPE_LEN, is_key_type, list_of, map_of, parse_type,
    same_type, type_name,
};
pub use version::{
    FORMAT_MARKER, FormatVersion, INCREMENTAL_CHECKPOINTS, LEAN_KEYED_SHARDS,
    SUPPORTED_READER_FEATURES, SUPPORTED_WRITER_FEATURES, missing_reader_features,
};
