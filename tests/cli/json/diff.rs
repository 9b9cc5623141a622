use super::*;

/// One line: its `type` names which.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Line {
    Structure {
        json_version: u32,
        change: String,
        uid: Option<String>,
        field: Option<String>,
        state: Option<String>,
        column: Option<String>,
        split: Option<String>,
        a: Option<Value>,
        b: Option<Value>,
        delta: Option<i64>,
        delta_ms: Option<i64>,
    },
    Row {
        json_version: u32,
        operator: String,
        state: String,
        kind: String,
        key: Value,
        a: Option<Value>,
        b: Option<Value>,
    },
    Summary {
        json_version: u32,
        identical: bool,
        structure_changes: u64,
        states: Vec<StateSummary>,
    },
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct StateSummary {
    operator: String,
    state: String,
    only_in_a: u64,
    only_in_b: u64,
    changed: u64,
    same: u64,
    skipped_rows: u64,
}

fn lines(a: &Path, b: &Path) -> Vec<Line> {
    let run = rewind(&["diff", s(a), s(b), "--json", "--examples", "1"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    run.stdout.lines().map(parse).collect()
}

#[test]
fn structure_rows_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for (at, keys, p) in [(&a, "50", "1"), (&b, "60", "2")] {
        let run = rewind(&["generate", s(at), "--keys", keys, "--parallelism", p]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let lines = lines(&a, &b);
    let changes: Vec<&str> = lines
        .iter()
        .filter_map(|l| match l {
            Line::Structure {
                json_version: 1,
                change,
                ..
            } => Some(change.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        changes,
        [
            "parallelism_changed",
            "position_moved",
            "split_added",
            "parallelism_changed"
        ]
    );
    let Some(Line::Structure { delta, .. }) = lines.get(1) else {
        panic!("{lines:?}")
    };
    assert_eq!(*delta, Some(-20));
    let rows: Vec<_> = lines
        .iter()
        .filter_map(|l| match l {
            Line::Row {
                json_version: 1,
                operator,
                state,
                kind,
                a,
                ..
            } => Some((
                operator.as_str(),
                state.as_str(),
                kind.as_str(),
                a.is_none(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(rows, [("op-0", "state", "added", true)]);
    let Some(Line::Summary {
        json_version,
        identical,
        structure_changes,
        states,
    }) = lines.last()
    else {
        panic!("{lines:?}")
    };
    assert_eq!(
        (*json_version, *identical, *structure_changes),
        (1, false, 4)
    );
    assert_eq!(
        states,
        &[StateSummary {
            operator: "op-0".into(),
            state: "state".into(),
            only_in_a: 0,
            only_in_b: 10,
            changed: 0,
            same: 50,
            skipped_rows: 0,
        }]
    );
}

#[test]
fn a_schema_change() {
    let (_g1, a) = fixture_copy("v1/keyed-primitive");
    let (_g2, b) = fixture_copy("corrupt/schema-mismatch");
    let lines = lines(&a.join("savepoint"), &b.join("savepoint"));
    assert!(
        lines.iter().any(|l| matches!(
            l,
            Line::Structure { change, column: Some(c), state: Some(st), .. }
                if change == "schema_changed" && c == "value" && st == "count"
        )),
        "{lines:?}"
    );
}
