use rewind_tests::{fixture_copy, redact, rewind};

#[test]
fn valid_savepoint_exits_0() {
    let (_guard, copy) = fixture_copy("v1/struct-list-map");
    let run = rewind(&["validate", copy.join("savepoint").to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("valid: savepoint 0d0f8943-81da-40b5-b056-626857c4679c, 10 shards"),
        "{}",
        run.stdout
    );
}

#[test]
fn problems_are_listed_in_a_table_and_exit_1() {
    let (_guard, copy) = fixture_copy("corrupt/schema-mismatch");
    let sp = copy.join("savepoint");
    let run = rewind(&["validate", sp.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    insta::assert_snapshot!(redact(&run.stdout, &sp));
}
