//! Savepoints on local disk whose files are symlinks leading outside the savepoint: every
//! command refuses them with one line naming the file (exit 2), instead of reading
//! whatever the link points to.

use std::path::Path;

use rewind_tests::{fixture_copy, rewind};

/// Moves `relative` out of the savepoint and leaves a symlink to it in its place (same
/// bytes: only where the file lives is wrong).
fn escape(sp: &Path, relative: &str, outside: &Path) {
    let inside = sp.join(relative);
    std::fs::rename(&inside, outside).unwrap();
    std::os::unix::fs::symlink(outside, &inside).unwrap();
}

#[test]
fn a_shard_symlinked_outside_is_refused() {
    let (guard, copy) = fixture_copy("v1/keyed-primitive");
    let sp = copy.join("savepoint");
    let shard = "state/counter/count/00000-cc3860ee.parquet";
    escape(&sp, shard, &guard.path().join("elsewhere.parquet"));
    let sp = sp.to_str().unwrap();
    let dest = guard.path().join("dest");
    for args in [
        vec!["validate", sp],
        vec!["state", sp, "counter", "count"],
        vec!["rescale", sp, dest.to_str().unwrap(), "--parallelism", "3"],
    ] {
        let run = rewind(&args);
        assert_eq!(run.code, 2, "{args:?}: {}{}", run.stdout, run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(
            run.stderr.contains(shard)
                && run.stderr.contains("a symlink leads outside the savepoint"),
            "{args:?}: {}",
            run.stderr
        );
    }
}

#[test]
fn a_manifest_symlinked_outside_is_refused() {
    let (guard, copy) = fixture_copy("v1/keyed-primitive");
    let sp = copy.join("savepoint");
    escape(&sp, "_manifest.json", &guard.path().join("manifest.json"));
    let run = rewind(&["inspect", sp.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("_manifest.json"), "{}", run.stderr);
    assert!(
        run.stderr.contains("a symlink leads outside the savepoint"),
        "{}",
        run.stderr
    );
}

/// A symlink that stays inside the savepoint is fine.
#[test]
fn a_symlink_inside_the_savepoint_is_allowed() {
    let (_guard, copy) = fixture_copy("v1/keyed-primitive");
    let sp = copy.join("savepoint");
    let shard = "state/counter/count/00000-cc3860ee.parquet";
    escape(&sp, shard, &sp.join("moved.parquet"));
    let run = rewind(&[
        "state",
        sp.to_str().unwrap(),
        "counter",
        "count",
        "--limit",
        "1",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}
