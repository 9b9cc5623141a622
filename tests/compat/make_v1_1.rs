//! Golden savepoints of format 1.1 (fixtures/v1.1), written once by
//! `cargo test -p rewind-tests --test compat -- --ignored make_fixtures`: what 1.1 added,
//! the `extensions` member, as `rewind import-flink` writes it.

use std::path::Path;

use rewind_tests::{fixture_copy, rewind};

use crate::make::record_expected;

/// The cases, each a folder of fixtures/v1.1.
pub const CASES: [&str; 1] = ["flink-import"];

/// `flink-import`: the real rich-state Flink sample (fixtures/flink/rich-state-A) imported:
/// keyed value, map, list, POJO and window state, timers and operator list state, with the
/// `flink` extension at every level.
pub fn make(dir: &Path, name: &str) {
    assert_eq!(name, "flink-import");
    let (_guard, copy) = fixture_copy("flink/rich-state-A");
    let src = copy.join("savepoint-46a48f-b5c105e0343a");
    let dest = dir.join("savepoint");
    let run = rewind(&[
        "import-flink",
        src.to_str().unwrap(),
        dest.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    record_expected(dir);
}
