//! The `--json` wire format (docs/json.md) of every command, read with types of this test's
//! own that deny unknown fields: a field added, renamed or retyped without updating
//! docs/json.md and these types fails here.

// Every field is declared so that `deny_unknown_fields` knows it, read or not.
#![allow(dead_code)]

use std::path::Path;

use rewind_tests::{copy_dir, fixture_copy, fixtures_dir, rewind, rewind_at};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Parses one document, naming the output when it does not fit.
fn parse<T: DeserializeOwned>(text: &str) -> T {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Runs `rewind ARGS` and parses its standard output as one `T`, expecting exit `code`.
fn document<T: DeserializeOwned>(code: i32, args: &[&str]) -> T {
    let run = rewind(args);
    assert_eq!(run.code, code, "{}", run.stderr);
    parse(&run.stdout)
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

mod analyze;
mod diff;
mod inspect;
mod list;
mod log;
mod state;
mod validate;
