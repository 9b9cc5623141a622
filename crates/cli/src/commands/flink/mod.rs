//! Flink savepoints: `rewind inspect` on one, and `rewind import-flink`.

mod import;
mod inspect;

pub use import::import;
pub use inspect::inspect;
