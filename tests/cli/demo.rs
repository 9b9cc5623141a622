//! `rewind demo` tells the whole walkthrough with real jobs and leaves valid savepoints.

use rewind_tests::{app_bin, rewind_at};

#[test]
fn demo_runs_the_walkthrough_end_to_end() {
    app_bin("rewind-post-analytics", "post-events");
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let demo = dir.path().join("demo");
    let run = rewind_at(
        &home,
        &["demo", demo.to_str().unwrap(), "--events", "20000"],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let text = run.stdout;
    // Every step is printed as the command that does it, in the walkthrough's order.
    let steps = [
        "$ post-events --out",
        "$ rewind run -d --checkpoint-dir",
        "$ rewind list",
        "$ rewind savepoint ",
        "$ rewind cancel ",
        "$ rewind run -s ",
        "$ rewind run -d -s ",
        "$ rewind stop ",
        "v2 (window restored from v1)",
        "$ rewind log ",
    ];
    let mut at = 0;
    for step in steps {
        let found = text[at..]
            .find(step)
            .unwrap_or_else(|| panic!("{step:?} missing:\n{text}"));
        at += found + step.len();
    }
    assert!(text.contains("running (20000 records read)"), "{text}");
    // Two savepoints, the second a child of the first; both valid.
    let savepoints: Vec<_> = std::fs::read_dir(demo.join("savepoints"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(savepoints.len(), 2, "{savepoints:?}");
    for sp in &savepoints {
        let valid = rewind_at(&home, &["validate", sp.to_str().unwrap()]);
        assert_eq!(valid.code, 0, "{}", valid.stdout);
    }
    // Nothing left running; the folder is never reused.
    let list: serde_json::Value =
        serde_json::from_str(&rewind_at(&home, &["list", "--json"]).stdout).unwrap();
    assert!(
        list["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["status"] != "running")
    );
    let again = rewind_at(&home, &["demo", demo.to_str().unwrap()]);
    assert_eq!(again.code, 2);
    assert!(
        again
            .stderr
            .contains("the demo needs a new or empty folder"),
        "{}",
        again.stderr
    );
}
