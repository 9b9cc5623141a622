//! Library tests: writer and reader round trips, bad input, validation.

mod common;
mod errors;
mod roundtrip;
mod storage;
