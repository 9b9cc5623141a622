//! Flink savepoints: `rewind inspect` on one, `rewind import-flink` and
//! `rewind export-flink`.

mod export;
mod import;
mod inspect;

pub use export::export;
pub use import::import;
pub use inspect::inspect;
