//! Library tests: writer and reader round trips, bad input, validation.

mod common;
mod diff;
mod edit;
mod errors;
mod incremental;
mod lean;
mod rescale;
mod roundtrip;
mod storage;
