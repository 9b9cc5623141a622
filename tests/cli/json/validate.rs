use super::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Validate {
    json_version: u32,
    valid: bool,
    id: String,
    shards_checked: u64,
    bytes_checked: u64,
    problems: Vec<Problem>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Problem {
    kind: String,
    path: Option<String>,
    operator: Option<String>,
    state: Option<String>,
    message: String,
}

#[test]
fn valid_and_invalid() {
    let (_guard, copy) = fixture_copy("v1/struct-list-map");
    let v: Validate = document(0, &["validate", s(&copy.join("savepoint")), "--json"]);
    assert_eq!(v.json_version, 1);
    assert!(v.valid && v.problems.is_empty());
    assert_eq!(v.id, "0d0f8943-81da-40b5-b056-626857c4679c");
    assert_eq!(v.shards_checked, 10);
    assert!(v.bytes_checked > 0);

    let (_guard, copy) = fixture_copy("corrupt/schema-mismatch");
    let v: Validate = document(1, &["validate", s(&copy.join("savepoint")), "--json"]);
    assert!(!v.valid);
    let p = &v.problems[0];
    assert_eq!(p.kind, "schema");
    assert_eq!(
        (p.operator.as_deref(), p.state.as_deref()),
        (Some("counter"), Some("count"))
    );
    assert!(p.path.is_some() && !p.message.is_empty(), "{p:?}");
}
