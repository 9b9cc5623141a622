//! Incremental checkpoints (format 1.1) on the command line: `inspect` shows the layers,
//! `compact` writes a self-contained copy, `rm` keeps files that remaining checkpoints list.

use rewind_tests::{fixture_copy, rewind};

#[test]
fn compact_inspect_and_rm_on_a_checkpoint_chain() {
    let (_guard, copy) = fixture_copy("v1.1/incremental-chain");
    let at = |name: &str| copy.join(name).to_str().unwrap().to_string();
    let last = at("savepoint");

    let inspect = rewind(&["inspect", &last]);
    assert_eq!(inspect.code, 0, "{}", inspect.stderr);
    assert!(
        inspect.stdout.contains("Incremental ") && inspect.stdout.contains("2 + 4 delta"),
        "{}",
        inspect.stdout
    );

    let compact = rewind(&["compact", &last, &at("compacted")]);
    assert_eq!(compact.code, 0, "{}", compact.stderr);
    assert!(
        compact.stdout.starts_with("wrote savepoint "),
        "{}",
        compact.stdout
    );
    assert_eq!(rewind(&["validate", &at("compacted"), "--deep"]).code, 0);
    let shown = rewind(&["inspect", &at("compacted"), "--json"]);
    let view: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(view["kind"], "savepoint");
    assert_eq!(view["lineage"]["operation"], "compact");
    assert_eq!(
        view["reader_features"],
        serde_json::json!(["lean_keyed_shards"])
    );
    for name in ["count", "tags"] {
        let a = rewind(&["state", &last, "counts", name, "--format", "json"]);
        let b = rewind(&[
            "state",
            &at("compacted"),
            "counts",
            name,
            "--format",
            "json",
        ]);
        assert_eq!(a.code, 0, "{}", a.stderr);
        assert_eq!(a.stdout, b.stdout, "{name}");
    }

    // The oldest checkpoint goes: its files stay for the one that lists them.
    let dry = rewind(&["rm", &at("chk-0000000001"), "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(
        dry.stdout.contains("would delete _manifest.json"),
        "{}",
        dry.stdout
    );
    assert_eq!(
        dry.stdout.matches("keep state/").count(),
        4,
        "every file of checkpoint 1 is listed by checkpoint 3: {}",
        dry.stdout
    );
    assert_eq!(rewind(&["rm", &at("chk-0000000001")]).code, 0);
    assert_eq!(rewind(&["rm", &at("chk-0000000002")]).code, 0);
    let valid = rewind(&["validate", &last, "--deep"]);
    assert_eq!(valid.code, 0, "{}", valid.stdout);
    // The last one takes the files it shared with them along.
    let rm = rewind(&["rm", &last]);
    assert_eq!(rm.code, 0, "{}", rm.stderr);
    assert!(
        rm.stdout.contains("delete ../chk-0000000001/state/"),
        "{}",
        rm.stdout
    );
    let left: Vec<_> = rewind_test_support::files_under(&copy)
        .into_iter()
        .filter(|p| p.contains("chk-") || p.starts_with("savepoint"))
        .collect();
    assert_eq!(left, Vec::<String>::new());
}
