use rewind_tests::{fixture_copy, redact, rewind};

#[test]
fn rescaled_copy_is_identical_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    assert_eq!(
        rewind(&["generate", a, "--keys", "3000", "--parallelism", "2"]).code,
        0
    );
    assert_eq!(rewind(&["rescale", a, b, "--parallelism", "3"]).code, 0);
    let run = rewind(&["diff", a, b]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn value_changes_exit_1_with_examples_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    assert_eq!(
        rewind(&["generate", a, "--keys", "50", "--seed", "1"]).code,
        0
    );
    assert_eq!(
        rewind(&[
            "generate",
            b,
            "--keys",
            "60",
            "--seed",
            "1",
            "--parallelism",
            "2"
        ])
        .code,
        0
    );
    let run = rewind(&["diff", a, b, "--examples", "2"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    insta::assert_snapshot!(run.stdout);

    let stat = rewind(&["diff", a, b, "--stat"]);
    assert_eq!(stat.code, 1);
    assert!(!stat.stdout.contains("Examples"), "{}", stat.stdout);

    let json = rewind(&["diff", a, b, "--json"]);
    assert_eq!(json.code, 1);
    let lines: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.iter().all(|l| l["json_version"] == 1));
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "summary");
    assert_eq!(last["identical"], false);
    assert_eq!(last["states"][0]["only_in_b"], 10);
    let rows: Vec<_> = lines.iter().filter(|l| l["type"] == "row").collect();
    assert_eq!(rows.len(), 5);
    assert!(
        rows.iter()
            .all(|r| r["kind"] == "added" && r["operator"] == "op-0")
    );
}

#[test]
fn schema_change_is_named() {
    let (_g1, a) = fixture_copy("v1/keyed-primitive");
    let (_g2, b) = fixture_copy("corrupt/schema-mismatch");
    let (a, b) = (a.join("savepoint"), b.join("savepoint"));
    let run = rewind(&[
        "diff",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--state",
        "count",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    insta::assert_snapshot!(redact(&run.stdout, &a));
}

#[test]
fn unreadable_side_exits_2() {
    let (_g, a) = fixture_copy("v1/keyed-primitive");
    let run = rewind(&[
        "diff",
        a.join("savepoint").to_str().unwrap(),
        "/nonexistent/savepoint",
    ]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "rewind: error: /nonexistent/savepoint: not a savepoint (no _manifest.json and no files)\n"
    );
}
