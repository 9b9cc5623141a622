//! Every golden savepoint in fixtures/v1, fixtures/v1-edge and fixtures/v1.1 reads exactly
//! as recorded when it was written.

use std::path::PathBuf;

use rewind_tests::{fixture_copy, fixtures_dir, rewind};

/// The folders of golden savepoints: format 1.0's first fixtures, those written later for
/// what they never showed, and format 1.1's (fixtures/README.md).
const FOLDERS: [&str; 3] = ["v1", "v1-edge", "v1.1"];

/// Every case as `folder/case`.
fn cases() -> Vec<String> {
    let mut names = Vec::new();
    for folder in FOLDERS {
        let mut found: Vec<String> = std::fs::read_dir(fixtures_dir().join(folder))
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| format!("{folder}/{}", e.file_name().to_string_lossy()))
            .collect();
        found.sort();
        names.extend(found);
    }
    names
}

fn expected(case: &str, file: &str) -> String {
    let path: PathBuf = fixtures_dir().join(case).join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Rows as recorded in fixtures/v1, before `rewind state` wrote nulls: every member whose
/// value is null dropped, at any depth.
fn without_nulls(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(members) => members
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k, without_nulls(v)))
            .collect(),
        serde_json::Value::Array(items) => items.into_iter().map(without_nulls).collect(),
        other => other,
    }
}

/// Whether JSON-lines output equals the recorded rows: exactly, or for fixtures/v1, up to
/// the nulls its recording left out.
fn same_rows(case: &str, now: &str, recorded: &str) -> bool {
    if !case.starts_with("v1/") {
        return now == recorded;
    }
    let parse = |text: &str| -> Vec<serde_json::Value> {
        text.lines()
            .map(|l| without_nulls(serde_json::from_str(l).unwrap()))
            .collect()
    };
    parse(now) == parse(recorded)
}

#[test]
fn there_are_golden_fixtures() {
    let names = cases();
    assert!(names.len() >= 7, "{names:?}");
    let catalogue = std::fs::read_to_string(fixtures_dir().join("README.md")).unwrap();
    for name in &names {
        let name = name.rsplit('/').next().unwrap();
        assert!(
            catalogue.contains(&format!("`{name}`")),
            "fixtures/README.md does not list {name}"
        );
    }
}

#[test]
fn inspect_matches_the_recorded_output() {
    for case in cases() {
        let (_guard, copy) = fixture_copy(&case);
        let sp = copy.join("savepoint");
        let json = rewind(&["inspect", sp.to_str().unwrap(), "--json"]);
        assert_eq!(json.code, 0, "{case}: {}", json.stderr);
        // fixtures/v1's recorded output predates the feature lists (added to the wire
        // format later): format 1.0 savepoints use no features, and every recorded field
        // reads as it did.
        let mut now: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
        let object = now.as_object_mut().unwrap();
        let mut recorded: serde_json::Value =
            serde_json::from_str(&expected(&case, "inspect.json")).unwrap();
        let recorded_object = recorded.as_object_mut().unwrap();
        for added in ["reader_features", "writer_features"] {
            let was = recorded_object
                .remove(added)
                .unwrap_or_else(|| serde_json::json!([]));
            assert_eq!(object.remove(added), Some(was), "{case}: {added}");
        }
        assert_eq!(now, recorded, "{case}: inspect --json");
    }
}

#[test]
fn every_state_reads_as_recorded() {
    for case in cases() {
        let (_guard, copy) = fixture_copy(&case);
        let sp = copy.join("savepoint");
        let view: serde_json::Value =
            serde_json::from_str(&expected(&case, "inspect.json")).unwrap();
        for op in view["operators"].as_array().unwrap() {
            for st in op["states"].as_array().unwrap() {
                let (uid, name) = (op["uid"].as_str().unwrap(), st["name"].as_str().unwrap());
                let rows = rewind(&[
                    "state",
                    sp.to_str().unwrap(),
                    uid,
                    name,
                    "--format",
                    "json",
                    "--with-hash",
                ]);
                assert_eq!(rows.code, 0, "{case} {uid}/{name}: {}", rows.stderr);
                let recorded = expected(&case, &format!("state-{uid}-{name}.jsonl"));
                assert!(
                    same_rows(&case, &rows.stdout, &recorded),
                    "{case} {uid}/{name}:\n{}\nrecorded:\n{recorded}",
                    rows.stdout
                );
                // Files' rows are the state's rows, except where delta layers update and
                // delete rows of the layers below.
                if st["delta_layers"].is_null() {
                    assert_eq!(
                        rows.stdout.lines().count() as u64,
                        st["rows"].as_u64().unwrap()
                    );
                }
            }
        }
    }
}

#[test]
fn every_fixture_validates_deeply() {
    for case in cases() {
        let (_guard, copy) = fixture_copy(&case);
        let run = rewind(&[
            "validate",
            copy.join("savepoint").to_str().unwrap(),
            "--deep",
        ]);
        assert_eq!(run.code, 0, "{case}: {}{}", run.stdout, run.stderr);
    }
}

/// The compatibility matrix: every fixture of every format version is diffed against
/// itself, rescaled, migrated up to 1.1 (lean shards) and down to 1.0 (full shards, no
/// extensions) by this build, and each result validates and compares equal to the original.
#[test]
fn every_fixture_diffs_rescales_and_migrates() {
    for case in cases() {
        let (_guard, copy) = fixture_copy(&case);
        let sp = copy.join("savepoint");
        let sp = sp.to_str().unwrap();
        let same = rewind(&["diff", sp, sp]);
        assert_eq!(same.code, 0, "{case}: {}", same.stdout);
        let inspect: serde_json::Value =
            serde_json::from_str(&rewind(&["inspect", sp, "--json"]).stdout).unwrap();
        let parallelism = inspect["operators"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["parallelism"].as_u64().unwrap())
            .max()
            .unwrap();
        let rescaled = copy.join("rescaled");
        let migrated = copy.join("migrated");
        let down = copy.join("down");
        // An incremental checkpoint is compacted into a self-contained savepoint (equal
        // row for row) before it migrates: format 1.0 cannot hold its layers.
        let compacted = copy.join("compacted");
        let incremental = inspect["reader_features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "incremental_checkpoints");
        let sp_owned;
        let from = if incremental {
            let run = rewind(&["compact", sp, compacted.to_str().unwrap()]);
            assert_eq!(run.code, 0, "{case} compact: {}", run.stderr);
            let valid = rewind(&["validate", compacted.to_str().unwrap(), "--deep"]);
            assert_eq!(valid.code, 0, "{case} compact: {}", valid.stdout);
            let diff = rewind(&["diff", sp, compacted.to_str().unwrap()]);
            assert_eq!(diff.code, 0, "{case} compact: {}", diff.stdout);
            sp_owned = compacted.to_str().unwrap().to_string();
            sp_owned.as_str()
        } else {
            sp
        };
        let runs = [
            (
                rescaled.to_str().unwrap(),
                vec!["rescale", sp, rescaled.to_str().unwrap(), "--parallelism"],
            ),
            (
                migrated.to_str().unwrap(),
                vec![
                    "migrate",
                    from,
                    migrated.to_str().unwrap(),
                    "--to-format-version",
                    // The newest this build writes: 1.0 savepoints go up (lean), 1.1
                    // stay.
                    "1.1",
                ],
            ),
            (
                // The way down, for readers of 1.0: full shards, no extensions.
                down.to_str().unwrap(),
                vec![
                    "migrate",
                    from,
                    down.to_str().unwrap(),
                    "--to-format-version",
                    "1.0",
                ],
            ),
        ];
        let next = (parallelism + 1).to_string();
        for (dest, mut args) in runs {
            if args[0] == "rescale" {
                args.push(&next);
            }
            let run = rewind(&args);
            assert_eq!(run.code, 0, "{case} {}: {}", args[0], run.stderr);
            let valid = rewind(&["validate", dest, "--deep"]);
            assert_eq!(valid.code, 0, "{case} {}: {}", args[0], valid.stdout);
            let diff = rewind(&["diff", sp, dest]);
            assert_eq!(diff.code, 0, "{case} {}: {}", args[0], diff.stdout);
        }
        // What each migration wrote is what readers of that version read.
        let manifest = |p: &std::path::Path| -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(p.join("_manifest.json")).unwrap()).unwrap()
        };
        let (up, down) = (manifest(&migrated), manifest(&down));
        let keyed = up.to_string().contains("\"key_type\"");
        let lean = if keyed {
            vec!["lean_keyed_shards"]
        } else {
            vec![]
        };
        assert_eq!(up["version"], "1.1", "{case}");
        assert_eq!(up["reader_features"], serde_json::json!(lean), "{case}");
        assert_eq!(down["version"], "1.0", "{case}");
        assert_eq!(down["reader_features"], serde_json::json!([]), "{case}");
        assert!(!down.to_string().contains("\"extensions\""), "{case}");
    }
}
