use super::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Log {
    json_version: u32,
    savepoints: Vec<Savepoint>,
    unreadable: Vec<Unreadable>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Latest {
    json_version: u32,
    latest: Savepoint,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Savepoint {
    path: String,
    id: String,
    kind: String,
    created_at: String,
    checkpoint_id: u64,
    operation: String,
    job: String,
    app_version: Option<String>,
    parent_id: Option<String>,
    parent_location: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Unreadable {
    path: String,
    error: String,
}

#[test]
fn lineage_unreadable_and_latest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    copy_dir(
        &fixtures_dir().join("v1/keyed-primitive/savepoint"),
        &root.join("a"),
    );
    let run = rewind(&[
        "rescale",
        s(&root.join("a")),
        s(&root.join("a-p3")),
        "--parallelism",
        "3",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    std::fs::create_dir_all(root.join("broken")).unwrap();
    std::fs::write(root.join("broken/_manifest.json"), "{").unwrap();

    let v: Log = document(0, &["log", s(root), "--json"]);
    assert_eq!(v.json_version, 1);
    let paths: Vec<&str> = v.savepoints.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["a", "a-p3"]);
    let (a, child) = (&v.savepoints[0], &v.savepoints[1]);
    assert_eq!(
        (a.kind.as_str(), a.parent_id.as_deref()),
        ("savepoint", None)
    );
    assert_eq!(child.operation, "rescale");
    assert_eq!(child.parent_id.as_deref(), Some(a.id.as_str()));
    assert!(
        child
            .parent_location
            .as_deref()
            .is_some_and(|l| l.ends_with("/a")),
        "{child:?}"
    );
    assert_eq!(v.unreadable.len(), 1);
    assert_eq!(v.unreadable[0].path, "broken/_manifest.json");

    let latest: Latest = document(0, &["log", s(root), "--latest", "--json"]);
    assert_eq!(latest.json_version, 1);
    assert_eq!(latest.latest.path, "a-p3");
}
