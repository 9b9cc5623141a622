//! The one error type of the format crate.

use crate::version::FormatVersion;

/// What is wrong with a manifest, a name, a path or a type string.
///
/// The variants follow what a caller does next: a [`FormatError::NotASavepoint`] means
/// "you pointed at the wrong thing", [`FormatError::Unsupported`] means "upgrade Rewind",
/// everything else means the manifest itself is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The bytes are not JSON at all.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Json {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the JSON parser said.
        message: String,
    },
    /// JSON, but not a Rewind manifest (the `format` marker is missing or different).
    #[error("not a Rewind savepoint manifest: {reason}")]
    NotASavepoint {
        /// Why it was not recognised.
        reason: String,
    },
    /// A valid manifest of a version, or needing features, that this build cannot read.
    #[error("{}", unsupported_message(*.version, .missing_features))]
    Unsupported {
        /// The manifest's format version.
        version: FormatVersion,
        /// Reader features the manifest requires that this build does not know.
        missing_features: Vec<String>,
    },
    /// The manifest is recognised but breaks a rule of the spec.
    #[error("invalid manifest: {location}: {message}")]
    Invalid {
        /// Where in the manifest, as a JSON-pointer-like path (`operators[1].states[0]`).
        location: String,
        /// What rule is broken.
        message: String,
    },
    /// A shard path that is not a clean relative path inside the savepoint.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The offending path as written.
        path: String,
        /// Which path rule it breaks.
        reason: &'static str,
    },
    /// A type string or Arrow type outside what format v1 supports.
    #[error("unsupported type {type_name:?}: {reason}")]
    UnsupportedType {
        /// The type as written or displayed.
        type_name: String,
        /// Why it cannot be used.
        reason: String,
    },
}

fn unsupported_message(version: FormatVersion, missing: &[String]) -> String {
    if missing.is_empty() {
        format!(
            "savepoint format version {version} is newer than this build supports (up to {}); upgrade rewind",
            FormatVersion::CURRENT
        )
    } else {
        format!(
            "savepoint needs reader features this build does not support: {}; upgrade rewind",
            missing.join(", ")
        )
    }
}

impl FormatError {
    pub(crate) fn invalid(location: impl Into<String>, message: impl Into<String>) -> Self {
        FormatError::Invalid {
            location: location.into(),
            message: message.into(),
        }
    }
}
