//! The `rewind` binary as a user runs it: help text, tables, JSON, exit codes.

mod analyze;
mod bootstrap_restore;
mod crash;
mod demo;
mod diff;
mod edit;
mod export_flink;
mod flink;
mod generate;
mod help;
mod hostile;
mod incremental;
mod inspect;
mod jobs;
mod json;
mod load;
mod log;
mod migrate;
mod pipe;
mod rescale;
mod s3;
mod signals;
mod state;
mod validate;
mod windows;
