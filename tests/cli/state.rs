use rewind_tests::{fixture_copy, rewind};

#[test]
fn state_table_with_limit() {
    let (_guard, copy) = fixture_copy("v1/keyed-primitive");
    let sp = copy.join("savepoint");
    let run = rewind(&[
        "state",
        sp.to_str().unwrap(),
        "counter",
        "count",
        "--limit",
        "3",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn keys_of_every_notation() {
    let (_guard, copy) = fixture_copy("v1/keyed-primitive");
    let sp = copy.join("savepoint");
    let sp = sp.to_str().unwrap();
    let run = rewind(&[
        "state", sp, "counter", "count", "--key", "-3", "--key", "39", "--key", "1000", "--format",
        "csv",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.remove(0), "key,value");
    lines.sort();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    assert_eq!(lines, ["-3,9", "39,1521"]);

    // A bare word is a string key; a JSON string works too.
    let run = rewind(&[
        "state",
        sp,
        "counter",
        "label",
        "--key",
        "apple",
        "--key",
        "\"ünïcødé\"",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 2, "{}", run.stdout);

    let run = rewind(&["state", sp, "counter", "count", "--key", "abc"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .starts_with("rewind: error: --key values must be keys of type int64"),
        "{}",
        run.stderr
    );
}

#[test]
fn struct_keys_and_nested_values() {
    let (_guard, copy) = fixture_copy("v1/two-operators");
    let sp = copy.join("savepoint");
    let run = rewind(&[
        "state",
        sp.to_str().unwrap(),
        "totals",
        "total",
        "--key",
        r#"{"region": "ap", "customer": 29}"#,
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "{\"key\":{\"region\":\"ap\",\"customer\":29},\"value\":2900}\n"
    );

    let (_guard, copy) = fixture_copy("v1/struct-list-map");
    let sp = copy.join("savepoint");
    let run = rewind(&[
        "state",
        sp.to_str().unwrap(),
        "profiles",
        "profile",
        "--format",
        "csv",
        "--key",
        "bob",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!(run.stdout);
}

/// The key hash is an internal column: shown first, and only when asked for.
#[test]
fn the_key_hash_only_on_request() {
    let (_guard, copy) = fixture_copy("v1/keyed-primitive");
    let sp = copy.join("savepoint");
    let sp = sp.to_str().unwrap();
    for (format, plain, hashed) in [
        ("csv", "key,value", "key_hash,key,value"),
        ("table", "| key | value |", "| key_hash | key | value |"),
    ] {
        let run = rewind(&["state", sp, "counter", "count", "--format", format]);
        assert_eq!(run.stdout.lines().next(), Some(plain), "{}", run.stdout);
        let run = rewind(&[
            "state",
            sp,
            "counter",
            "count",
            "--format",
            format,
            "--with-hash",
        ]);
        assert_eq!(
            run.stdout
                .lines()
                .next()
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")),
            Some(hashed.to_string()),
            "{}",
            run.stdout
        );
    }
    let run = rewind(&[
        "state",
        sp,
        "counter",
        "count",
        "--format",
        "json",
        "--key",
        "-3",
        "--with-hash",
    ]);
    assert!(run.stdout.starts_with("{\"key_hash\":"), "{}", run.stdout);
    assert!(
        run.stdout.contains("\"key\":-3,\"value\":9}"),
        "{}",
        run.stdout
    );
}

#[test]
fn unknown_names_list_what_exists() {
    let (_guard, copy) = fixture_copy("v1/keyed-primitive");
    let sp = copy.join("savepoint");
    let run = rewind(&["state", sp.to_str().unwrap(), "countr", "count"]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "rewind: error: unknown operator \"countr\"; the savepoint has: counter\n"
    );
    let run = rewind(&["state", sp.to_str().unwrap(), "counter", "cnt"]);
    assert_eq!(
        run.stderr,
        "rewind: error: operator \"counter\" has no state \"cnt\"; it has: count, label\n"
    );
}
