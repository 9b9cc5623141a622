//! The `--json` wire format: its one version number and the writers every command uses.
//!
//! # Format
//!
//! A command given `--json` prints either one document, a pretty-printed JSON object and
//! a newline (`inspect`, `validate`, `analyze`, `log`, `list`), or JSON lines, one compact
//! object per line (`diff`). Every document and every line begins with `json_version`, an
//! integer, [`JSON_VERSION`] for every command alike; the fields after it are the
//! command's own, listed in `docs/json.md`.
//!
//! The promise to scripts: `json_version` is raised when a change could break a reader
//! (a field removed or renamed, or its type or meaning changed). Fields may be added
//! without a new version, so a reader ignores the fields it does not know.
//!
//! Each command serializes view structs of its own, so a library type can change without
//! changing this format. Errors come back as `io::Error`, the underlying write error where
//! there is one, so a closed pipe stays recognisable as one.

use std::io::{self, Write};

use serde::Serialize;

/// The version of the `--json` wire format of every command.
pub const JSON_VERSION: u32 = 1;

/// `json_version` followed by the fields of `body`, which must serialize as an object.
#[derive(Serialize)]
struct Versioned<'a, T> {
    json_version: u32,
    #[serde(flatten)]
    body: &'a T,
}

impl<'a, T> Versioned<'a, T> {
    fn new(body: &'a T) -> Self {
        Versioned {
            json_version: JSON_VERSION,
            body,
        }
    }
}

/// Writes `body` as one pretty-printed document with `json_version` first.
pub fn write_document<T: Serialize>(out: &mut dyn Write, body: &T) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &Versioned::new(body))?;
    writeln!(out)
}

/// Writes `body` as one compact line (of JSON lines) with `json_version` first.
pub fn write_line<T: Serialize>(out: &mut dyn Write, body: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &Versioned::new(body))?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    #[derive(Serialize)]
    struct Body {
        name: &'static str,
        rows: u64,
    }

    fn written(write: fn(&mut dyn std::io::Write, &Body) -> std::io::Result<()>) -> String {
        let mut out = Vec::new();
        write(&mut out, &Body { name: "a", rows: 2 }).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_document_is_pretty_with_the_version_first() {
        assert_eq!(
            written(super::write_document),
            "{\n  \"json_version\": 1,\n  \"name\": \"a\",\n  \"rows\": 2\n}\n"
        );
    }

    #[test]
    fn a_line_is_compact_with_the_version_first() {
        assert_eq!(
            written(super::write_line),
            "{\"json_version\":1,\"name\":\"a\",\"rows\":2}\n"
        );
    }

    #[test]
    fn a_closed_pipe_stays_an_io_error_of_its_kind() {
        struct Closed;
        impl std::io::Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let err = super::write_document(&mut Closed, &Body { name: "a", rows: 2 }).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
    }
}
