//! Format versions and feature flags.

use std::fmt;
use std::str::FromStr;

use crate::FormatError;

/// The value of a manifest's `format` field: the marker that says "this is a Rewind savepoint".
pub const FORMAT_MARKER: &str = "rewind-savepoint";

/// A format version, `major.minor`.
///
/// A reader reads every minor version of the majors it knows (minor versions only add
/// optional fields, which older readers ignore); a newer major is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FormatVersion {
    /// Incompatible changes bump the major version.
    pub major: u32,
    /// Compatible additions bump the minor version.
    pub minor: u32,
}

impl FormatVersion {
    /// The newest version this build writes.
    pub const CURRENT: FormatVersion = FormatVersion { major: 1, minor: 1 };

    /// Format 1.0: what the writer writes when a savepoint uses nothing newer.
    pub const V1_0: FormatVersion = FormatVersion { major: 1, minor: 0 };

    /// Format 1.1: adds `extensions` (information for other systems, e.g. Flink's) and
    /// the reader feature [`LEAN_KEYED_SHARDS`].
    pub const V1_1: FormatVersion = FormatVersion { major: 1, minor: 1 };

    /// Whether a reader of this build can read a manifest of `self`'s version.
    pub fn is_readable(self) -> bool {
        self.major == Self::CURRENT.major
    }
}

impl fmt::Display for FormatVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for FormatVersion {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || FormatError::invalid("version", format!("{s:?} is not MAJOR.MINOR"));
        let (major, minor) = s.split_once('.').ok_or_else(bad)?;
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(major) || !digits(minor) {
            return Err(bad());
        }
        Ok(FormatVersion {
            major: major.parse().map_err(|_| bad())?,
            minor: minor.parse().map_err(|_| bad())?,
        })
    }
}

/// Reader features this build implements. A manifest listing any other reader feature
/// cannot be read correctly by this build and is refused (see spec/FORMAT.md, "Features").
///
/// This is the one registry of features: the spec's table and the tests read from it.
pub const SUPPORTED_READER_FEATURES: &[&str] = &[LEAN_KEYED_SHARDS, INCREMENTAL_CHECKPOINTS];

/// Reader feature of format 1.1: keyed shards may omit the `key_hash` column (readers
/// compute it from the key) and record each row group's hash range in the footer instead
/// (spec/FORMAT.md, "Lean keyed shards").
pub const LEAN_KEYED_SHARDS: &str = "lean_keyed_shards";

/// Reader feature of format 1.1: shards may live in a sibling folder (a checkpoint of the
/// same job written earlier) and keyed states may have delta layers of upserts and deletes
/// on top of their base shards (spec/FORMAT.md, "Incremental checkpoints").
pub const INCREMENTAL_CHECKPOINTS: &str = "incremental_checkpoints";

/// Writer features this build knows. Unknown writer features are allowed when reading
/// (they only matter to a writer that would modify the savepoint in place, which Rewind never does).
pub const SUPPORTED_WRITER_FEATURES: &[&str] = &[];

/// The reader features in `required` that this build does not support, in the order given.
pub fn missing_reader_features(required: &[String]) -> Vec<String> {
    missing_from(required, SUPPORTED_READER_FEATURES)
}

/// The reader features in `required` that a reader supporting only `supported` lacks.
pub fn missing_from(required: &[String], supported: &[&str]) -> Vec<String> {
    required
        .iter()
        .filter(|f| !supported.contains(&f.as_str()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let v: FormatVersion = "1.7".parse().unwrap();
        assert_eq!(v, FormatVersion { major: 1, minor: 7 });
        assert_eq!(v.to_string(), "1.7");
        assert!(v.is_readable());
        assert!(!FormatVersion { major: 2, minor: 0 }.is_readable());
        for bad in ["1", "1.", ".1", "a.b", "1.2.3", "-1.0", "+1.0", ""] {
            assert!(bad.parse::<FormatVersion>().is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_reader_features_are_listed() {
        let req = vec!["deletion-vectors".to_string(), "zorder".to_string()];
        assert_eq!(missing_reader_features(&req), req);
    }
}
