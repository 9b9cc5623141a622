//! The library's errors as Python exceptions, one class per thing the caller can do next.
//! The message is the `rewind` command's one-line error (without its `rewind: error: `).

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use rewind_flink::FlinkError;

create_exception!(
    rewind,
    SavepointError,
    PyException,
    "Base class of every error rewind raises."
);
create_exception!(
    rewind,
    NotFoundError,
    SavepointError,
    "Nothing to read where asked: no savepoint (or an unfinished one), no such operator or state."
);
create_exception!(
    rewind,
    CorruptError,
    SavepointError,
    "The savepoint is damaged: a manifest that breaks the format's rules, a missing, truncated or unreadable file."
);
create_exception!(
    rewind,
    UnsupportedError,
    SavepointError,
    "A valid savepoint this build cannot read: a newer format, unknown reader features, a Flink savepoint the importer refuses."
);
create_exception!(
    rewind,
    InvalidInputError,
    SavepointError,
    "A request that cannot be carried out as given: a malformed URL, keys of the wrong type."
);
create_exception!(
    rewind,
    StorageError,
    SavepointError,
    "The object store failed: network, permissions, a missing bucket."
);

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("SavepointError", py.get_type::<SavepointError>())?;
    m.add("NotFoundError", py.get_type::<NotFoundError>())?;
    m.add("CorruptError", py.get_type::<CorruptError>())?;
    m.add("UnsupportedError", py.get_type::<UnsupportedError>())?;
    m.add("InvalidInputError", py.get_type::<InvalidInputError>())?;
    m.add("StorageError", py.get_type::<StorageError>())?;
    Ok(())
}

/// The exception for an error of `rewind-savepoint`.
pub fn savepoint_error(error: rewind_savepoint::Error) -> PyErr {
    use rewind_savepoint::Error as E;
    let message = error.to_string();
    match error {
        E::NotFound { .. }
        | E::Incomplete { .. }
        | E::UnknownOperator { .. }
        | E::UnknownState { .. } => NotFoundError::new_err(message),
        E::InvalidManifest { .. } | E::Corrupt { .. } => CorruptError::new_err(message),
        E::Unsupported { .. } => UnsupportedError::new_err(message),
        E::InvalidInput(_) | E::ValueDoesNotFit(_) | E::AlreadyExists { .. } => {
            InvalidInputError::new_err(message)
        }
        E::Storage { .. } => StorageError::new_err(message),
        // Internal (a bug) and variants a newer library adds.
        _ => SavepointError::new_err(message),
    }
}

/// The exception for an error of `rewind-flink` (opening or importing a Flink savepoint).
pub fn flink_error(error: FlinkError) -> PyErr {
    let message = error.to_string();
    match error {
        FlinkError::Savepoint(inner) => savepoint_error(inner),
        FlinkError::NotFlink { .. } | FlinkError::Corrupt { .. } => CorruptError::new_err(message),
        // A file the metadata names is gone: the savepoint is damaged, not the store.
        FlinkError::Storage {
            error: object_store::Error::NotFound { .. },
            ..
        } => CorruptError::new_err(message),
        FlinkError::Storage { .. } => StorageError::new_err(message),
        FlinkError::UnsupportedVersion { .. } | FlinkError::Unsupported { .. } => {
            UnsupportedError::new_err(message)
        }
        FlinkError::InvalidInput { .. } => InvalidInputError::new_err(message),
        _ => SavepointError::new_err(message),
    }
}
