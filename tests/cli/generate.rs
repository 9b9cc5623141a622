use rewind_tests::rewind;

/// The first thing a new user tries (README): generate, inspect, validate.
#[test]
fn generate_inspect_validate() {
    let dir = tempfile::tempdir().unwrap();
    let sp = dir.path().join("sp");
    let sp = sp.to_str().unwrap();
    let run = rewind(&[
        "generate",
        sp,
        "--keys",
        "100000",
        "--parallelism",
        "4",
        "--operators",
        "2",
        "--value-bytes",
        "8",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("3 operators, 8 shards, 200000 rows"),
        "{}",
        run.stdout
    );

    let inspect = rewind(&["inspect", sp, "--json"]);
    assert_eq!(inspect.code, 0);
    let view: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    assert_eq!(view["json_version"], 1);
    assert_eq!(view["operators"][1]["rows"], 100_000);
    assert_eq!(
        view["operators"][1]["states"][0]["value_type"],
        "struct<count: int64, payload: binary>"
    );
    assert_eq!(view["source_splits"].as_array().unwrap().len(), 4);

    let validate = rewind(&["validate", sp, "--deep"]);
    assert_eq!(validate.code, 0, "{}{}", validate.stdout, validate.stderr);

    let again = rewind(&["generate", sp, "--keys", "10"]);
    assert_eq!(again.code, 2);
    assert!(
        again
            .stderr
            .ends_with("already exists (savepoints are never overwritten)\n"),
        "{}",
        again.stderr
    );
}

#[test]
fn parallelism_zero_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = rewind(&[
        "generate",
        dir.path().join("x").to_str().unwrap(),
        "--keys",
        "10",
        "--parallelism",
        "0",
    ]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "rewind: error: parallelism must be at least 1\n"
    );
}
