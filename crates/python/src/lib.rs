//! `rewind` for Python: open a Rewind or canonical Flink savepoint and read its state into
//! pyarrow, zero-copy.
//!
//! Glue only, like the CLI: every rule lives in `rewind-savepoint` and `rewind-flink`;
//! this crate turns their calls into Python functions, classes and exceptions.

mod batches;
mod errors;
mod keys;
mod reports;
mod runtime;
mod savepoint;

use pyo3::prelude::*;

/// The native module behind the `rewind` package (`rewind/__init__.py` re-exports it).
#[pymodule]
fn _rewind(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(savepoint::open, m)?)?;
    m.add_function(wrap_pyfunction!(reports::analyze, m)?)?;
    m.add_class::<savepoint::Savepoint>()?;
    m.add_class::<batches::BatchIterator>()?;
    errors::register(m)?;
    Ok(())
}
