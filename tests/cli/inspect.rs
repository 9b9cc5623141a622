use rewind_tests::{fixture_copy, redact, rewind};

#[test]
fn inspect_tables() {
    for case in [
        "keyed-primitive",
        "operator-state-sources",
        "struct-list-map",
    ] {
        let (_guard, copy) = fixture_copy(&format!("v1/{case}"));
        let sp = copy.join("savepoint");
        let run = rewind(&["inspect", sp.to_str().unwrap()]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        insta::assert_snapshot!(format!("inspect_{case}"), redact(&run.stdout, &sp));
    }
}

#[test]
fn unsupported_scheme_is_an_error() {
    let run = rewind(&["inspect", "ftp://host/sp"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("unsupported scheme \"ftp\""),
        "{}",
        run.stderr
    );
}
