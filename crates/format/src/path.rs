//! Path and name rules: every path in a manifest stays inside the savepoint's root.

use crate::FormatError;

/// The manifest's name, at the root of every savepoint.
pub const MANIFEST_FILE: &str = "_manifest.json";

/// Longest path a manifest may hold, in bytes.
pub const MAX_PATH_LEN: usize = 1024;

/// Longest operator uid or state name, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// Longest segment of a path (between two `/`), in bytes: the limit of common file systems.
pub const MAX_SEGMENT_LEN: usize = 255;

/// Device names Windows reserves in every directory, with or without an extension.
const RESERVED_STEMS: [&str; 4] = ["con", "prn", "aux", "nul"];

/// Whether `segment` is one Windows cannot create: a reserved device name (see
/// [`is_reserved_stem`]) or a name ending in `.` (which Windows strips).
fn is_unportable_segment(segment: &str) -> bool {
    segment.ends_with('.') || is_reserved_stem(segment)
}

/// Whether the part of `segment` before its first `.` is a device name Windows reserves in
/// every directory: `CON`, `PRN`, `AUX`, `NUL`, `COM0`-`COM9`, `LPT0`-`LPT9`, in any case.
fn is_reserved_stem(segment: &str) -> bool {
    let stem = segment
        .split('.')
        .next()
        .unwrap_or(segment)
        .to_ascii_lowercase();
    RESERVED_STEMS.contains(&stem.as_str())
        || (stem.len() == 4
            && (stem.starts_with("com") || stem.starts_with("lpt"))
            && stem.as_bytes()[3].is_ascii_digit())
}

/// `name` as a path segment every file system can create: a reserved device name gets a
/// `_` in front (`aux` -> `_aux`, `nul.x` -> `_nul.x`), a name ending in `.` a `_` behind
/// (`op.` -> `op._`). Writers build shard paths from operator uids and state names with
/// this; readers never derive meaning from paths.
pub fn portable_segment(name: &str) -> std::borrow::Cow<'_, str> {
    if !is_unportable_segment(name) {
        return std::borrow::Cow::Borrowed(name);
    }
    let mut segment = String::with_capacity(name.len() + 2);
    if is_reserved_stem(name) {
        segment.push('_');
    }
    segment.push_str(name);
    if name.ends_with('.') {
        segment.push('_');
    }
    std::borrow::Cow::Owned(segment)
}

/// Checks that `path` is a clean relative path: `/`-separated, no empty, `.` or `..`
/// segments, no leading `/`, no backslash or control characters, and not the manifest itself.
///
/// Such a path cannot escape the savepoint's root on any object store or file system,
/// so a savepoint can be moved as a whole and a hostile manifest cannot point outside it.
pub fn check_relative_path(path: &str) -> Result<(), FormatError> {
    let fail = |reason| {
        Err(FormatError::InvalidPath {
            path: path.to_string(),
            reason,
        })
    };
    if path.is_empty() {
        return fail("empty path");
    }
    if path.len() > MAX_PATH_LEN {
        return fail("longer than 1024 bytes");
    }
    if path.starts_with('/') {
        return fail("absolute path");
    }
    if path.contains('\\') {
        return fail("backslash in path");
    }
    if path.chars().any(char::is_control) {
        return fail("control character in path");
    }
    for segment in path.split('/') {
        match segment {
            "" => return fail("empty path segment"),
            "." | ".." => return fail("path segment escapes the savepoint root"),
            _ => {}
        }
    }
    // Only characters that every object store and file system keeps as they are, so the
    // path names the same object for every reader (object_store percent-encodes others).
    // This also rules out URLs (`s3://...`) and drive letters (`C:...`).
    if !path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-'))
    {
        return fail("character outside A-Z a-z 0-9 . _ - / in path");
    }
    if path == MANIFEST_FILE {
        return fail("a shard cannot be the manifest");
    }
    // Portability: every file system can create every segment.
    for segment in path.split('/') {
        if segment.len() > MAX_SEGMENT_LEN {
            return fail("path segment longer than 255 bytes");
        }
        if is_unportable_segment(segment) {
            return fail("path segment is a name Windows reserves or ends in '.'");
        }
    }
    Ok(())
}

/// Checks an operator uid or state name: 1 to 128 characters from `A-Z a-z 0-9 _ - .`,
/// not starting with `.`. Names are used as path segments by writers, so they are portable.
pub fn check_name(kind: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{kind} is empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "{kind} {name:?} is longer than {MAX_NAME_LEN} bytes"
        ));
    }
    if name.starts_with('.') {
        return Err(format!("{kind} {name:?} starts with '.'"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!(
            "{kind} {name:?} contains {c:?}; allowed are A-Z a-z 0-9 _ - ."
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_clean_paths() {
        for ok in [
            "a.parquet",
            "state/op/s/0.parquet",
            "x/y..z/w",
            "a-b_c.d/E9",
            "state/console/con0.parquet",
            "state/com10/lpt.parquet",
            "state/.x/a",
        ] {
            check_relative_path(ok).unwrap();
        }
    }

    #[test]
    fn refuses_escaping_paths() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "a/./b",
            "a/",
            "a\\..\\b",
            "s3://bucket/x",
            "file:///etc/passwd",
            "a\nb",
            "_manifest.json",
            "a b",
            "a%2Fb",
            "state/CON/x.parquet",
            "state/op/nul.parquet",
            "state/op/Com1.txt",
            "state/lpt9/x",
            "state/op./x.parquet",
            "x.",
            "ä.parquet",
            "a#b",
        ] {
            assert!(
                matches!(
                    check_relative_path(bad),
                    Err(FormatError::InvalidPath { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(check_relative_path(&"a".repeat(MAX_PATH_LEN + 1)).is_err());
    }

    #[test]
    fn long_segments_are_refused() {
        check_relative_path(&format!("a/{}", "b".repeat(MAX_SEGMENT_LEN))).unwrap();
        assert!(check_relative_path(&format!("a/{}", "b".repeat(MAX_SEGMENT_LEN + 1))).is_err());
    }

    #[test]
    fn portable_segments_make_valid_paths() {
        for (name, segment) in [
            ("counter", "counter"),
            ("CON", "_CON"),
            ("aux", "_aux"),
            ("nul.x", "_nul.x"),
            ("com7", "_com7"),
            ("op.", "op._"),
            ("lpt1.", "_lpt1._"),
            ("comx", "comx"),
        ] {
            assert_eq!(portable_segment(name), segment);
            check_relative_path(&format!("state/{}/x.parquet", portable_segment(name))).unwrap();
        }
    }

    #[test]
    fn names() {
        check_name("uid", "counter-1.v2_x").unwrap();
        for bad in ["", ".hidden", "a/b", "a b", "ä", ".."] {
            assert!(check_name("uid", bad).is_err(), "{bad:?}");
        }
    }
}
