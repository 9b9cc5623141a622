//! The one error type of the library, with variants chosen by what the caller does next.

use rewind_format::FormatError;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong reading, writing or checking a savepoint.
///
/// Every variant names the file (or savepoint) it is about, so `{}` of the error is one
/// line a user can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Nothing at the location: no manifest and no files.
    #[error("{location}: not a savepoint (no {manifest} and no files)", manifest = rewind_format::MANIFEST_FILE)]
    NotFound {
        /// The savepoint location.
        location: String,
    },
    /// Files but no manifest: a writer crashed or is still writing.
    #[error("{location}: incomplete savepoint: {files} files, no {manifest}", manifest = rewind_format::MANIFEST_FILE)]
    Incomplete {
        /// The savepoint location.
        location: String,
        /// How many files were found under it.
        files: usize,
    },
    /// The manifest cannot be used: not JSON, not a savepoint, or breaks a rule.
    #[error("{path}: {problem}")]
    InvalidManifest {
        /// The manifest's location.
        path: String,
        /// What is wrong.
        problem: FormatError,
    },
    /// A valid savepoint that this build cannot read (too new, unknown reader features).
    #[error("{path}: {problem}")]
    Unsupported {
        /// The manifest's location.
        path: String,
        /// The version and missing features.
        problem: FormatError,
    },
    /// A shard is damaged: missing, truncated, bad checksum, unreadable Parquet, wrong schema.
    #[error("{path}: {message}")]
    Corrupt {
        /// The shard's location.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// The target already holds a savepoint; savepoints are never overwritten.
    #[error("{location}: already exists (savepoints are never overwritten)")]
    AlreadyExists {
        /// The target location.
        location: String,
    },
    /// No operator with this uid.
    #[error("unknown operator {uid:?}; the savepoint has: {}", .known.join(", "))]
    UnknownOperator {
        /// The uid asked for.
        uid: String,
        /// The uids the savepoint has.
        known: Vec<String>,
    },
    /// No state with this name in the operator.
    #[error("operator {uid:?} has no state {state:?}; it has: {}", .known.join(", "))]
    UnknownState {
        /// The operator.
        uid: String,
        /// The state asked for.
        state: String,
        /// The states the operator has.
        known: Vec<String>,
    },
    /// A migration would lose a value: it does not fit the new type.
    #[error("{0}")]
    ValueDoesNotFit(Box<ValueDoesNotFit>),
    /// A caller's request that cannot be carried out as given.
    #[error("{0}")]
    InvalidInput(String),
    /// The object store failed (network, permissions, missing bucket).
    // The store's error is part of the one-line message, not a separate `source`, so
    // printing the error chain does not repeat it.
    #[error("{path}: storage error: {}", summarize(.error))]
    Storage {
        /// The object the request was about.
        path: String,
        /// The store's error.
        error: object_store::Error,
    },
    /// A bug in Rewind: please report it.
    #[error("internal error (a bug in rewind): {0}")]
    Internal(String),
}

/// A value a migration cannot convert without loss.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{uid}/{state}: field {field}: the value {value} of {key} does not fit {to} (a lossy migration makes it null)"
)]
pub struct ValueDoesNotFit {
    /// The operator.
    pub uid: String,
    /// The state.
    pub state: String,
    /// The field (a dotted path into the value, or `value`).
    pub field: String,
    /// The row's key (`key K`), or its element number in operator state.
    pub key: String,
    /// The value, displayed.
    pub value: String,
    /// The type it was converted to.
    pub to: String,
}

impl Error {
    pub(crate) fn storage(path: impl Into<String>, source: object_store::Error) -> Self {
        Error::Storage {
            path: path.into(),
            error: source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn manifest(path: impl Into<String>, source: FormatError) -> Self {
        let path = path.into();
        match source {
            FormatError::Unsupported { .. } => Error::Unsupported {
                path,
                problem: source,
            },
            problem => Error::InvalidManifest { path, problem },
        }
    }
}

/// One line a user can act on from an object store error. Stores put whole XML bodies in
/// their messages; the well-known causes get a plain sentence, the rest their first line.
fn summarize(error: &object_store::Error) -> String {
    let full = error.to_string();
    let known = [
        ("NoSuchBucket", "the bucket does not exist"),
        (
            "SignatureDoesNotMatch",
            "the secret key is wrong (signature does not match)",
        ),
        (
            "InvalidAccessKeyId",
            "the access key id is unknown to the store",
        ),
        (
            "AccessDenied",
            "permission denied: check the credentials and the bucket policy",
        ),
        ("ExpiredToken", "the session token has expired"),
    ];
    if let Some((_, sentence)) = known.iter().find(|(code, _)| full.contains(code)) {
        return (*sentence).to_string();
    }
    match error {
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => {
            "permission denied: check the credentials and the bucket policy".to_string()
        }
        _ => {
            let first = full.lines().next().unwrap_or_default();
            // Drop a trailing XML or JSON body that some stores put on the same line.
            let cut = first
                .find(": <?xml")
                .or_else(|| first.find(": {"))
                .unwrap_or(first.len());
            first[..cut].to_string()
        }
    }
}
