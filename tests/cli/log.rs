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

/// Writes an empty checkpoint with checkpoint id `id` at `dir`.
async fn checkpoint(dir: &std::path::Path, id: u64) {
    use rewind_savepoint::format::SavepointKind;
    use rewind_savepoint::{Location, SavepointInfo, SavepointWriter};
    let mut info = SavepointInfo::new("job", "engine");
    info.kind = SavepointKind::Checkpoint;
    info.checkpoint_id = id;
    let w = SavepointWriter::create(Location::parse(dir.to_str().unwrap()).unwrap(), info)
        .await
        .unwrap();
    w.add_operator("op", "op", 1).unwrap();
    w.commit().await.unwrap();
}

#[tokio::test]
async fn latest_is_the_highest_completed_checkpoint_id_not_the_newest_clock() {
    let dir = tempfile::tempdir().unwrap();
    // Checkpoint 12 commits first, then checkpoint 3 (a slow one, or a clock behind):
    // by wall-clock time 3 is newest, by checkpoint id 12 is.
    checkpoint(&dir.path().join("chk-12"), 12).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    checkpoint(&dir.path().join("chk-3"), 3).await;
    // Checkpoint 13 never completed: files, no manifest.
    std::fs::create_dir_all(dir.path().join("chk-13/state")).unwrap();
    std::fs::write(dir.path().join("chk-13/state/x.parquet"), b"partial").unwrap();
    let root = dir.path().to_str().unwrap();
    let run = rewind(&["log", root, "--latest"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), format!("{root}/chk-12"));
    let json = rewind(&["log", root, "--latest", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["latest"]["checkpoint_id"], 12);
    assert_eq!(v["latest"]["path"], "chk-12");

    let empty = tempfile::tempdir().unwrap();
    let none = rewind(&["log", empty.path().to_str().unwrap(), "--latest"]);
    assert_eq!(none.code, 2);
    assert!(
        none.stderr
            .contains("no completed savepoint or checkpoint under it"),
        "{}",
        none.stderr
    );
}
