//! Flink savepoints: `rewind inspect` reads them without a JVM; damaged ones say what is
//! wrong.

use rewind_tests::{fixture_copy, redact, rewind};

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
