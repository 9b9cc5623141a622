use super::*;

/// A row of `rewind generate`'s value state: int64 key and value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    key: i64,
    value: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HashedRow {
    key_hash: u64,
    key: i64,
    value: i64,
}

/// Rows carry no `json_version`: each line is a row of the state's own columns.
#[test]
fn rows_are_the_state_columns() {
    let dir = tempfile::tempdir().unwrap();
    let sp = dir.path().join("sp");
    assert_eq!(rewind(&["generate", s(&sp), "--keys", "5"]).code, 0);
    let rows = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["state", s(&sp), "op-0", "state", "--format", "json"];
        args.extend(extra);
        let run = rewind(&args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout.lines().map(str::to_string).collect()
    };
    let plain: Vec<Row> = rows(&[]).iter().map(|l| parse(l)).collect();
    let mut keys: Vec<i64> = plain.iter().map(|r| r.key).collect();
    keys.sort();
    assert_eq!(keys, [0, 1, 2, 3, 4]);
    let hashed: Vec<HashedRow> = rows(&["--with-hash"]).iter().map(|l| parse(l)).collect();
    assert_eq!(hashed.len(), 5);
    assert!(hashed.windows(2).all(|w| w[0].key_hash <= w[1].key_hash));
    assert!(
        hashed
            .iter()
            .zip(&plain)
            .all(|(h, p)| (h.key, h.value) == (p.key, p.value))
    );
}
