//! Faults: a write that fails at any request leaves no manifest and every earlier
//! savepoint valid; offline commands never leave a DEST that looks valid; the engine keeps
//! running past a failed checkpoint and the next one succeeds.

mod faults;
