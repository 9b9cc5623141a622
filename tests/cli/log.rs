//! `rewind log`: savepoints are told apart by where they are, not by id, so copies of one
//! savepoint (same id) are distinct nodes and a child hangs under the copy it came from.

use rewind_tests::{copy_dir, fixtures_dir, rewind};

#[test]
fn copies_sharing_an_id_are_separate_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = fixtures_dir().join("v1/keyed-primitive/savepoint");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    copy_dir(&fixture, &a);
    copy_dir(&fixture, &b);
    let child = dir.path().join("b-p3");
    let run = rewind(&[
        "rescale",
        b.to_str().unwrap(),
        child.to_str().unwrap(),
        "--parallelism",
        "3",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let root = dir.path().to_str().unwrap();

    let dot = rewind(&["log", root, "--dot"]);
    assert_eq!(dot.code, 0, "{}", dot.stderr);
    let nodes: Vec<&str> = dot
        .stdout
        .lines()
        .filter(|l| l.contains("[label=") && !l.contains("->"))
        .map(|l| l.trim().split('"').nth(1).unwrap())
        .collect();
    assert_eq!(nodes, ["a", "b", "b-p3"], "{}", dot.stdout);
    let edges: Vec<&str> = dot.stdout.lines().filter(|l| l.contains("->")).collect();
    assert_eq!(
        edges,
        ["  \"b\" -> \"b-p3\" [label=\"rescale\"];"],
        "{}",
        dot.stdout
    );

    let tree = rewind(&["log", root]);
    let lines: Vec<&str> = tree.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", tree.stdout);
    assert!(
        lines[0].starts_with("a  savepoint cc3860ee"),
        "{}",
        tree.stdout
    );
    assert!(
        lines[1].starts_with("b  savepoint cc3860ee"),
        "{}",
        tree.stdout
    );
    assert!(
        lines[2].starts_with("└── b-p3  savepoint"),
        "{}",
        tree.stdout
    );
}

/// A savepoint whose recorded parent id is its own (a corrupt or hand-edited manifest)
/// never makes the tree loop.
#[test]
fn a_savepoint_that_names_itself_as_parent_is_a_root() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = fixtures_dir().join("v1/keyed-primitive/savepoint");
    for name in ["x", "y"] {
        let sp = dir.path().join(name);
        copy_dir(&fixture, &sp);
        let path = sp.join("_manifest.json");
        let mut m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        m["lineage"] = serde_json::json!({
            "operation": "edit",
            "parent": {"id": m["id"].clone(), "location": "elsewhere"}
        });
        std::fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    }
    let tree = rewind(&["log", dir.path().to_str().unwrap()]);
    assert_eq!(tree.code, 0, "{}", tree.stderr);
    assert_eq!(tree.stdout.lines().count(), 2, "{}", tree.stdout);
    let dot = rewind(&["log", dir.path().to_str().unwrap(), "--dot"]);
    assert_eq!(dot.stdout.matches("->").count(), 2, "{}", dot.stdout);
    assert!(
        dot.stdout.contains("(not under this prefix)"),
        "{}",
        dot.stdout
    );
}
