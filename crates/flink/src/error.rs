//! What can go wrong reading a Flink savepoint. Every message names the file.

/// An error reading or importing a Flink savepoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlinkError {
    /// No `_metadata` with Flink's magic number.
    #[error("{path}: not a Flink savepoint ({reason})")]
    NotFlink {
        /// The file looked at.
        path: String,
        /// What was found instead.
        reason: String,
    },
    /// A metadata version this build does not read.
    #[error("{path}: unsupported Flink metadata version {version} (this build reads 3 to 7)")]
    UnsupportedVersion {
        /// The `_metadata` file.
        path: String,
        /// The version found.
        version: i32,
    },
    /// The bytes do not parse: truncated or damaged.
    #[error("{path}: corrupt at byte {offset}: {message}")]
    Corrupt {
        /// The file.
        path: String,
        /// Where parsing stopped.
        offset: usize,
        /// Why.
        message: String,
    },
    /// Valid, but not something this build can import (native format, a serializer it
    /// cannot decode, compressed state).
    #[error("{path}: {message}")]
    Unsupported {
        /// The file or savepoint.
        path: String,
        /// What and why.
        message: String,
    },
    /// A file the metadata refers to is missing or unreadable, or the store failed.
    // The store's error is part of the one-line message (its first line: stores put whole
    // XML bodies in theirs), not a separate `source`, so printing the chain does not
    // repeat it; the caller still has the error itself to act on.
    #[error("{path}: {}", first_line(.error))]
    Storage {
        /// The file.
        path: String,
        /// The store's error.
        error: object_store::Error,
    },
    /// A request that cannot be carried out as given (an export of a type Flink has no
    /// serializer for, a max parallelism out of range, a destination that is taken).
    #[error("{path}: {message}")]
    InvalidInput {
        /// The savepoint, state or destination concerned.
        path: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// Writing the Rewind savepoint failed.
    #[error(transparent)]
    Savepoint(#[from] rewind_savepoint::Error),
}

fn first_line(error: &object_store::Error) -> String {
    error
        .to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}
