//! Flink savepoints: `rewind inspect` reads them without a JVM; damaged ones say what is
//! wrong.

use rewind_tests::{fixture_copy, redact, rewind, state_rows};

const HASHMAP: &str = "flink/java-hashmap-canonical-n100000";
const HASHMAP_SP: &str = "savepoint-d4c30c-92ca55030761";

#[test]
fn inspect_shows_operators_handles_and_relocatability() {
    let (_guard, copy) = fixture_copy(HASHMAP);
    let sp = copy.join(HASHMAP_SP);
    let run = rewind(&["inspect", sp.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!(redact(&run.stdout, &sp));
    // The `_metadata` file itself names the savepoint too.
    let direct = rewind(&["inspect", sp.join("_metadata").to_str().unwrap(), "--json"]);
    assert_eq!(direct.code, 0, "{}", direct.stderr);
    let json: serde_json::Value = serde_json::from_str(&direct.stdout).unwrap();
    assert_eq!(json["kind"], "flink-savepoint");
    assert_eq!(json["metadata_version"], 6);
    assert_eq!(json["format"], "CANONICAL");
    let counter = json["operators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["uid"] == "counter")
        .unwrap();
    assert_eq!(counter["max_parallelism"], 128);
    let keyed = &counter["subtasks"][1]["keyed"];
    assert_eq!(
        (
            keyed["first_key_group"].as_i64(),
            keyed["last_key_group"].as_i64()
        ),
        (Some(64), Some(127))
    );
    assert_eq!(keyed["offsets"].as_array().unwrap().len(), 64);
    assert_eq!(
        keyed["offsets"][0], 1040,
        "data starts after the 1040-byte header"
    );
}

#[test]
fn native_and_rich_savepoints_are_described() {
    let (_guard, copy) = fixture_copy("flink/java-rocksdb-native-n100000");
    let sp = copy.join("savepoint-a4bacb-73dc64045ddf");
    let run = rewind(&["inspect", sp.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("format NATIVE"), "{}", run.stdout);
    assert!(
        run.stdout.contains("keyed, native (RocksDB files)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("000014.sst"), "{}", run.stdout);

    let (_guard, copy) = fixture_copy("flink/rich-state-A");
    let sp = copy.join("savepoint-46a48f-b5c105e0343a");
    let run = rewind(&["inspect", sp.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("| sessions    | 0       | keyed, canonical savepoint       | 0-63 (3 with data)    | inline (1333 bytes)"), "{}", run.stdout);
    assert!(
        run.stdout.contains("finished"),
        "fully finished source: {}",
        run.stdout
    );
}

#[test]
fn damaged_metadata_gives_one_line_and_exit_2() {
    let (_guard, copy) = fixture_copy(HASHMAP);
    let sp = copy.join(HASHMAP_SP);
    let metadata = sp.join("_metadata");
    let original = std::fs::read(&metadata).unwrap();
    let described = metadata.display().to_string();
    let cases: Vec<(Vec<u8>, String)> = vec![
        (
            [&original[..4], &[0, 0, 0, 2], &original[8..]].concat(),
            format!(
                "rewind: error: {described}: unsupported Flink metadata version 2 (this build reads 3 to 7)\n"
            ),
        ),
        (
            [&original[..4], &[0, 0, 0, 99], &original[8..]].concat(),
            format!(
                "rewind: error: {described}: unsupported Flink metadata version 99 (this build reads 3 to 7)\n"
            ),
        ),
        (
            original[..300].to_vec(),
            format!("rewind: error: {described}: corrupt at byte "),
        ),
    ];
    for (bytes, expected) in cases {
        std::fs::write(&metadata, &bytes).unwrap();
        let run = rewind(&["inspect", sp.to_str().unwrap()]);
        assert_eq!(run.code, 2, "{}", run.stdout);
        assert!(
            run.stderr.starts_with(&expected),
            "{}\nexpected {expected}",
            run.stderr
        );
        assert_eq!(run.stderr.lines().count(), 1);
    }
    // A file the metadata names, gone: listed.
    std::fs::write(&metadata, &original).unwrap();
    std::fs::remove_file(sp.join("2eca17de-db5d-456d-a3e4-6879f9b3739d")).unwrap();
    let run = rewind(&["inspect", sp.to_str().unwrap()]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout
            .contains("Missing files    2eca17de-db5d-456d-a3e4-6879f9b3739d"),
        "{}",
        run.stdout
    );
}

#[test]
fn canonical_counter_savepoints_import_exactly() {
    let mut imported = Vec::new();
    for (case, sp) in [
        (HASHMAP, HASHMAP_SP),
        (
            "flink/java-rocksdb-canonical-n100000",
            "savepoint-ac0c02-efa32d629dbf",
        ),
    ] {
        let (guard, copy) = fixture_copy(case);
        let dest = copy.join("imported");
        let run = rewind(&[
            "import-flink",
            copy.join(sp).to_str().unwrap(),
            dest.to_str().unwrap(),
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            run.stdout
                .contains("| counter     | count              | value  | 100000 |"),
            "{}",
            run.stdout
        );
        let dest_s = dest.to_str().unwrap();
        assert_eq!(rewind(&["validate", dest_s, "--deep"]).code, 0);
        // Every key 0..99999 exactly once, every count 10.
        let rows = state_rows(dest_s, "counter", "count");
        let mut keys: Vec<i64> = rows.iter().map(|r| r["key"].as_i64().unwrap()).collect();
        keys.sort_unstable();
        assert_eq!(keys, (0..100_000).collect::<Vec<i64>>());
        assert!(rows.iter().all(|r| r["value"] == 10));
        let inspect: serde_json::Value =
            serde_json::from_str(&rewind(&["inspect", dest_s, "--json"]).stdout).unwrap();
        assert_eq!(inspect["lineage"]["operation"], "import");
        imported.push((guard, dest));
    }
    // Both backends' canonical savepoints hold the same state; every command works on it.
    let (a, b) = (
        imported[0].1.to_str().unwrap(),
        imported[1].1.to_str().unwrap(),
    );
    // (Only the job names differ: each comes from its savepoint's folder name.)
    let diff = rewind(&["diff", a, b]);
    assert_eq!(diff.code, 1);
    assert!(diff.stdout.contains("| job changed |"), "{}", diff.stdout);
    assert!(
        diff.stdout.contains(
            "| counter/count                 | 0         | 0         | 0       | 100000 |"
        ),
        "{}",
        diff.stdout
    );
    let rescaled = imported[0].1.with_file_name("rescaled");
    let rescaled = rescaled.to_str().unwrap();
    assert_eq!(
        rewind(&["rescale", a, rescaled, "--parallelism", "5"]).code,
        0
    );
    assert_eq!(rewind(&["validate", rescaled, "--deep"]).code, 0);
    assert_eq!(rewind(&["diff", a, rescaled]).code, 0);
    let edited = imported[0].1.with_file_name("edited");
    let edited = edited.to_str().unwrap();
    let run = rewind(&["edit", a, edited, "--rename-operator", "counter=counter-v2"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(state_rows(edited, "counter-v2", "count").len(), 100_000);
}

#[test]
fn rich_state_imports_every_key_and_window() {
    let (_guard, copy) = fixture_copy("flink/rich-state-A");
    let dest = copy.join("imported");
    let dest_s = dest.to_str().unwrap();
    let run = rewind(&[
        "import-flink",
        copy.join("savepoint-46a48f-b5c105e0343a").to_str().unwrap(),
        dest_s,
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(rewind(&["validate", dest_s, "--deep"]).code, 0);
    let expected: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&std::fs::read(copy.join("expected_profile.json")).unwrap())
            .unwrap();
    assert_eq!(expected.len(), 1000);
    let by_key = |state: &str| -> std::collections::BTreeMap<String, Vec<serde_json::Value>> {
        let mut out: std::collections::BTreeMap<String, Vec<serde_json::Value>> =
            Default::default();
        for r in state_rows(dest_s, "profile", state) {
            out.entry(r["key"].as_str().unwrap().to_string())
                .or_default()
                .push(r);
        }
        out
    };
    let (clicks, stats, recent, by_kind) = (
        by_key("clicks"),
        by_key("stats"),
        by_key("recent"),
        by_key("by_kind"),
    );
    for map in [&clicks, &stats, &recent] {
        assert_eq!(map.len(), 1000);
    }
    for (key, want) in &expected {
        assert_eq!(clicks[key][0]["value"], want["clicks"], "{key}");
        assert_eq!(recent[key][0]["value"], want["recent"], "{key}");
        let s = &stats[key][0]["value"];
        assert_eq!(s["total"], want["stats"]["total"], "{key}");
        assert_eq!(s["last"], want["stats"]["last"], "{key}");
        assert_eq!(s["avg"].as_f64(), want["stats"]["avg"].as_f64(), "{key}");
        let kinds: serde_json::Map<String, serde_json::Value> = by_kind[key]
            .iter()
            .map(|r| {
                (
                    r["user_key"].as_str().unwrap().to_string(),
                    r["value"].clone(),
                )
            })
            .collect();
        assert_eq!(serde_json::Value::Object(kinds), want["by_kind"], "{key}");
    }
    // Open windows and their timers, namespaced by the window.
    let sessions: serde_json::Value =
        serde_json::from_slice(&std::fs::read(copy.join("expected_sessions.json")).unwrap())
            .unwrap();
    let mut want: Vec<(i64, i64, i64, i64)> = sessions["open_windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w[0].as_i64().unwrap(),
                w[1].as_i64().unwrap(),
                w[2].as_i64().unwrap(),
                w[3].as_i64().unwrap(),
            )
        })
        .collect();
    want.sort_unstable();
    let mut windows: Vec<(i64, i64, i64, i64)> = state_rows(dest_s, "sessions", "window-contents")
        .iter()
        .map(|r| {
            (
                r["key"].as_i64().unwrap(),
                r["namespace"]["start"].as_i64().unwrap(),
                r["namespace"]["end"].as_i64().unwrap(),
                r["value"].as_i64().unwrap(),
            )
        })
        .collect();
    windows.sort_unstable();
    assert_eq!(windows, want);
    let timers = state_rows(dest_s, "sessions", "timers-window-timers");
    assert_eq!(timers.len(), 5);
    for t in &timers {
        assert_eq!(
            (t["domain"].as_str(), t["timestamp"].as_i64()),
            (Some("event_time"), Some(10349))
        );
    }
}

#[test]
fn native_savepoints_and_unknown_serializers_are_refused_clearly() {
    let (_guard, copy) = fixture_copy("flink/java-rocksdb-native-n100000");
    let sp = copy.join("savepoint-a4bacb-73dc64045ddf");
    let dest = copy.join("imported");
    let run = rewind(&["import-flink", sp.to_str().unwrap(), dest.to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        format!(
            "rewind: error: {}: a native savepoint (RocksDB's own files): only canonical \
             savepoints can be imported; take one with `flink savepoint --type canonical`\n",
            sp.display()
        )
    );
    assert!(!dest.join("_manifest.json").exists());

    // A state whose serializer this build does not know: named, exit 2, nothing written.
    let (_guard, copy) = fixture_copy(HASHMAP);
    let sp = copy.join(HASHMAP_SP);
    let file = sp.join("2eca17de-db5d-456d-a3e4-6879f9b3739d");
    let mut bytes = std::fs::read(&file).unwrap();
    let from = b"LongSerializer$LongSerializerSnapshot";
    let to = b"LungSerializer$LungSerializerSnapshot";
    let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
    bytes[at..at + from.len()].copy_from_slice(to);
    std::fs::write(&file, bytes).unwrap();
    let run = rewind(&["import-flink", sp.to_str().unwrap(), dest.to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("unknown serializer snapshot class org.apache.flink.api.common.typeutils.base.LungSerializer$LungSerializerSnapshot"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1);
}

/// Flink 1.20.5's savepoint of the upgrade job (`../shared/flink-samples/flink-1.20`):
/// `_metadata` version 4, which records operator ids only. Its `profile` and `opaque`
/// states are Kryo-serialized.
const F120: &str = "flink/f120-hashmap";

/// `import-flink --skip-undecodable` of the 1.20 sample with `--uid` for each of `uids`.
fn import_f120(copy: &std::path::Path, uids: &[&str]) -> rewind_tests::Run {
    let sp = copy.join("savepoint");
    let dest = copy.join("imported");
    let mut args = vec![
        "import-flink",
        sp.to_str().unwrap(),
        dest.to_str().unwrap(),
        "--skip-undecodable",
    ];
    for uid in uids {
        args.extend(["--uid", uid]);
    }
    rewind(&args)
}

#[test]
fn flink_1x_operators_are_named_by_the_uids_whose_hash_is_their_id() {
    let (_guard, copy) = fixture_copy(F120);
    let dest = copy.join("imported");
    let run = import_f120(&copy, &["count", "collections"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // `count` and `collections` by their uids; an operator no uid was given for keeps
    // its id (the window operator).
    assert!(run.stdout.contains("| count "), "{}", run.stdout);
    assert!(run.stdout.contains("| collections "), "{}", run.stdout);
    assert!(
        run.stdout.contains("| 3a6ebe42074adc76cfc3539a4ad436a8 "),
        "{}",
        run.stdout
    );
    let mut expected: Vec<(String, i64)> = Vec::new();
    for subtask in 0..2 {
        let lines =
            std::fs::read_to_string(copy.join(format!("expected/count-{subtask}.jsonl"))).unwrap();
        for line in lines.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            expected.push((
                v["key"].as_str().unwrap().into(),
                v["count"].as_i64().unwrap(),
            ));
        }
    }
    expected.sort();
    let mut got: Vec<(String, i64)> = state_rows(dest.to_str().unwrap(), "count", "count")
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().into(),
                r["value"].as_i64().unwrap(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got.len(), 2999);
    assert_eq!(got, expected);
    // The uid is kept for the export: Flink 2.x's `_metadata` records it.
    let inspect = rewind(&["inspect", dest.to_str().unwrap(), "--json"]);
    assert_eq!(inspect.code, 0, "{}", inspect.stderr);
    assert!(
        inspect.stdout.contains("\"uid\": \"count\""),
        "{}",
        inspect.stdout
    );
    let exported = copy.join("exported");
    let run = rewind(&[
        "export-flink",
        dest.to_str().unwrap(),
        exported.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = rewind(&["inspect", exported.to_str().unwrap(), "--json"]);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let count = json["operators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["uid"] == "count")
        .unwrap();
    assert_eq!(count["id"], "b71731f1c0df9c3076c4a455334d0ad6");
}

#[test]
fn a_uid_that_names_no_operator_is_refused() {
    let (_guard, copy) = fixture_copy(F120);
    let sp = copy.join("savepoint");
    let dest = copy.join("imported");
    let run = import_f120(&copy, &["counter"]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr.replace(sp.to_str().unwrap(), "[SP]"),
        "rewind: error: [SP]: --uid counter: no operator records this uid or has its id (Flink's hash of the uid)\n"
    );
    assert!(!dest.exists(), "nothing written");
}
