//! Flink savepoints: `rewind inspect` on one, and `rewind import-flink`.

mod inspect;

pub use inspect::inspect;
