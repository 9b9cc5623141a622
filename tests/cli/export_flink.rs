//! `rewind export-flink`: imports of real Flink savepoints go back unchanged (at the same
//! and at another max parallelism), and bad requests are refused with one line, exit 2 and
//! nothing written. Restores by a real Flink are in tests/flink/check.sh.

use std::path::Path;

use rewind_tests::{fixture_copy, redact, rewind};

/// Every canonical sample: (fixture folder, savepoint directory).
const CANONICAL: [(&str, &str); 3] = [
    (
        "flink/java-hashmap-canonical-n100000",
        "savepoint-d4c30c-92ca55030761",
    ),
    (
        "flink/java-rocksdb-canonical-n100000",
        "savepoint-ac0c02-efa32d629dbf",
    ),
    ("flink/rich-state-A", "savepoint-46a48f-b5c105e0343a"),
];

fn ok(args: &[&str]) -> String {
    let run = rewind(args);
    assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    run.stdout
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn imports_round_trip_through_export_at_any_max_parallelism() {
    for (fixture, dir) in CANONICAL {
        let (_guard, copy) = fixture_copy(fixture);
        let work = tempfile::tempdir().unwrap();
        let first = work.path().join("first");
        ok(&["import-flink", s(&copy.join(dir)), s(&first)]);
        for (name, extra) in [
            ("same", vec![]),
            (
                "wide",
                vec!["--max-parallelism", "4096", "--parallelism", "5"],
            ),
            (
                "narrow",
                vec!["--max-parallelism", "32", "--parallelism", "3"],
            ),
            // Snappy, each key group its own framed stream: read back by the importer.
            ("compressed", vec!["--compress"]),
        ] {
            // Same directory name: an import names its job after it.
            let flink = work.path().join(name).join(dir);
            let mut args = vec!["export-flink", s(&first), s(&flink)];
            args.extend(extra.iter().copied());
            ok(&args);
            let again = work.path().join(format!("{name}-again"));
            ok(&["import-flink", s(&flink), s(&again)]);
            let diff = rewind(&["diff", s(&first), s(&again)]);
            assert_eq!(diff.code, 0, "{fixture} {name}: {}", diff.stdout);
            let json: serde_json::Value =
                serde_json::from_str(&ok(&["inspect", s(&flink), "--json"])).unwrap();
            let want = match name {
                "wide" => 4096,
                "narrow" => 32,
                _ => 128,
            };
            for op in json["operators"].as_array().unwrap() {
                assert_eq!(op["max_parallelism"], want, "{fixture} {name}");
            }
        }
    }
}

#[test]
fn export_reports_every_operator_and_where_serializers_came_from() {
    let (_guard, copy) = fixture_copy(CANONICAL[0].0);
    let work = tempfile::tempdir().unwrap();
    let imported = work.path().join("imported");
    ok(&["import-flink", s(&copy.join(CANONICAL[0].1)), s(&imported)]);
    // The import keeps what Flink needs in the manifest, format 1.1.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(imported.join("_manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["version"], "1.1");
    let counter = &manifest["operators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["uid"] == "counter")
        .unwrap();
    assert_eq!(
        counter["extensions"]["flink"]["operator_id"],
        "0da08f51eaa85fc298e176a139b3649a"
    );
    let out = work.path().join("flink");
    let stdout = ok(&[
        "export-flink",
        s(&imported),
        s(&out),
        "--operator",
        "counter=3",
    ]);
    insta::assert_snapshot!(redact(&redact(&stdout, &out), &imported));
    // Relocatable: every handle is relative to the directory.
    let inspect = ok(&["inspect", s(&out)]);
    assert!(inspect.contains("Absolute paths   none"), "{inspect}");
}

#[test]
fn bad_requests_are_one_line_exit_2_and_write_nothing() {
    let (_guard, copy) = fixture_copy(CANONICAL[0].0);
    let work = tempfile::tempdir().unwrap();
    let imported = work.path().join("imported");
    ok(&["import-flink", s(&copy.join(CANONICAL[0].1)), s(&imported)]);
    // A savepoint with unsigned counts, which Java has no type for.
    let csv = work.path().join("counts.csv");
    std::fs::write(&csv, "key,value\n1,2\n3,4\n").unwrap();
    let boot = work.path().join("boot");
    ok(&[
        "bootstrap",
        s(&boot),
        "--job",
        "j",
        "--state",
        &format!("counter/count={}", s(&csv)),
    ]);
    let unsigned = work.path().join("unsigned");
    ok(&[
        "migrate",
        s(&boot),
        s(&unsigned),
        "--cast",
        "counter/count:value=uint64",
    ]);
    let taken = work.path().join("taken");
    ok(&["export-flink", s(&imported), s(&taken)]);
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (
            vec![s(&unsigned)],
            "counter/count: value type UInt64 (Java has no unsigned integers: convert it first with `rewind migrate --cast`)",
            "unsigned",
        ),
        (
            vec![
                s(&imported),
                "--parallelism",
                "200",
                "--max-parallelism",
                "128",
            ],
            "max parallelism 128 is below the parallelism 200",
            "below",
        ),
        (
            vec![s(&imported), "--max-parallelism", "40000"],
            "--max-parallelism 40000 is outside Flink's 1 to 32768",
            "above",
        ),
        (
            vec![s(&imported), "--operator", "nope=2"],
            "--operator nope: no such operator",
            "operator",
        ),
        (
            vec![s(&imported), "--pojo", "counter/count"],
            "expected NAME=VALUE",
            "pojo",
        ),
    ];
    for (args, message, name) in cases {
        let dest = work.path().join(name);
        let mut all = vec!["export-flink", args[0], s(&dest)];
        all.extend(args[1..].iter().copied());
        let run = rewind(&all);
        assert_eq!(run.code, 2, "{name}: {}", run.stdout);
        assert!(run.stderr.contains(message), "{name}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{name}: {}", run.stderr);
        assert!(!dest.join("_metadata").exists(), "{name}");
    }
    // A destination that holds a savepoint, Flink's or Rewind's, is never written over.
    for dest in [&taken, &imported] {
        let before = std::fs::read(dest.join("_metadata")).ok();
        let run = rewind(&["export-flink", s(&imported), s(dest)]);
        assert_eq!(run.code, 2, "{}", run.stdout);
        assert!(
            run.stderr.contains("already holds a savepoint"),
            "{}",
            run.stderr
        );
        assert_eq!(std::fs::read(dest.join("_metadata")).ok(), before);
    }
}

/// The operator records of a manifest's `flink` extension, by uid.
fn flink_operators(sp: &Path) -> Vec<(String, String)> {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sp.join("_manifest.json")).unwrap()).unwrap();
    m["operators"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| {
            let rec = &o["extensions"]["flink"];
            rec.is_object().then(|| {
                (
                    o["uid"].as_str().unwrap().to_string(),
                    rec["rewind_uid"].as_str().unwrap().to_string(),
                )
            })
        })
        .collect()
}

#[test]
fn rescale_edit_and_migrate_carry_the_flink_extension() {
    let (_guard, copy) = fixture_copy("v1.1/flink-import");
    let sp = copy.join("savepoint");
    let work = tempfile::tempdir().unwrap();
    let before = flink_operators(&sp);
    assert_eq!(before.len(), 8, "{before:?}");
    let rescaled = work.path().join("rescaled");
    ok(&["rescale", s(&sp), s(&rescaled), "--parallelism", "3"]);
    let migrated = work.path().join("migrated");
    ok(&[
        "migrate",
        s(&rescaled),
        s(&migrated),
        "--to-format-version",
        "1.1",
    ]);
    let edited = work.path().join("edited");
    ok(&[
        "edit",
        s(&migrated),
        s(&edited),
        "--rename-operator",
        "profile=profile-v2",
    ]);
    for (dir, want) in [(&rescaled, &before), (&migrated, &before)] {
        assert_eq!(&flink_operators(dir), want, "{}", dir.display());
    }
    // A renamed operator keeps the record of its old uid, which export then ignores: its
    // Flink operator id comes from the new uid.
    let renamed = flink_operators(&edited);
    assert!(
        renamed.contains(&("profile-v2".into(), "profile".into())),
        "{renamed:?}"
    );
    let flink = work.path().join("flink");
    let out = ok(&["export-flink", s(&edited), s(&flink)]);
    let line = out.lines().find(|l| l.contains("profile-v2")).unwrap();
    assert!(!line.contains("3a6ebe42074adc76cfc3539a4ad436a8"), "{line}");
    // The rescaled savepoint goes to Flink and back unchanged.
    let exported = work
        .path()
        .join("rescaled-flink")
        .join("savepoint-46a48f-b5c105e0343a");
    ok(&["export-flink", s(&rescaled), s(&exported)]);
    let again = work.path().join("again");
    ok(&["import-flink", s(&exported), s(&again)]);
    let diff = rewind(&["diff", s(&rescaled), s(&again)]);
    assert_eq!(diff.code, 0, "{}", diff.stdout);
}

#[test]
fn flink_savepoints_are_read_wherever_a_savepoint_is() {
    let (_g1, hashmap) = fixture_copy(CANONICAL[0].0);
    let (_g2, rocksdb) = fixture_copy(CANONICAL[1].0);
    let a = hashmap.join(CANONICAL[0].1);
    let b = rocksdb.join(CANONICAL[1].1);
    // Nothing is written beside them.
    let files = |p: &Path| std::fs::read_dir(p).unwrap().count();
    let (before_a, before_b) = (files(&a), files(&b));
    let rows = ok(&["state", s(&a), "counter", "count", "--key", "42"]);
    assert!(rows.contains("| 42  | 10    |"), "{rows}");
    let diff = rewind(&["diff", s(&a), s(&b)]);
    assert!(
        diff.stdout.contains(
            "| counter/count                 | 0         | 0         | 0       | 100000 |"
        ),
        "{}",
        diff.stdout
    );
    let valid = ok(&["validate", "--deep", s(&a)]);
    assert!(valid.starts_with("Flink savepoint "), "{valid}");
    assert!(valid.contains("valid: savepoint"), "{valid}");
    // One command from a Flink savepoint to another at a new max parallelism.
    let work = tempfile::tempdir().unwrap();
    let wide = work.path().join("wide");
    ok(&["export-flink", s(&a), s(&wide), "--max-parallelism", "1024"]);
    let again = ok(&["state", s(&wide), "counter", "count", "--key", "42"]);
    assert_eq!(again, rows);
    let edited = work.path().join("edited");
    ok(&["edit", s(&a), s(&edited), "--remove-operator", "seq-source"]);
    assert!(ok(&["inspect", s(&edited)]).contains("Lineage     edit"));
    assert_eq!((files(&a), files(&b)), (before_a, before_b));
}

#[test]
fn pojo_keys_keep_their_key_groups_and_refuse_another_max_parallelism() {
    // A real Flink savepoint keyed by a POJO with its own hashCode (tests/flink/PojoKeyCheck).
    let (_guard, copy) = fixture_copy("flink/pojo-key");
    let sp = copy.join("savepoint-57aac4-e3be901eb7e6");
    let work = tempfile::tempdir().unwrap();
    let imported = work.path().join("imported");
    ok(&["import-flink", s(&sp), s(&imported)]);
    let groups = ok(&[
        "state",
        s(&imported),
        "by-region",
        "flink-key-groups",
        "--limit",
        "1",
    ]);
    assert!(groups.contains("{name: "), "{groups}");
    let flink = work
        .path()
        .join("same")
        .join("savepoint-57aac4-e3be901eb7e6");
    ok(&[
        "export-flink",
        s(&imported),
        s(&flink),
        "--parallelism",
        "3",
    ]);
    let again = work.path().join("again");
    ok(&["import-flink", s(&flink), s(&again)]);
    let diff = rewind(&["diff", s(&imported), s(&again)]);
    assert_eq!(diff.code, 0, "{}", diff.stdout);
    let wide = work.path().join("wide");
    let run = rewind(&[
        "export-flink",
        s(&imported),
        s(&wide),
        "--max-parallelism",
        "256",
    ]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.stderr.contains("by-region: keys are POJOs (their hashCode is the job's own code): their Flink key groups were kept for max parallelism 128"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1);
    assert!(!wide.join("_metadata").exists());
}

/// An incremental checkpoint exports as the state it holds: the Flink savepoint of a chain
/// of delta layers is byte for byte the one of the same checkpoint compacted first.
#[test]
fn an_incremental_checkpoint_exports_as_its_compacted_state() {
    let (_guard, copy) = fixture_copy("v1.1/incremental-chain");
    let chain = copy.join("savepoint");
    let compacted = copy.join("compacted");
    ok(&["compact", s(&chain), s(&compacted)]);
    let (from_chain, from_compacted) = (copy.join("flink-chain"), copy.join("flink-compacted"));
    ok(&["export-flink", s(&chain), s(&from_chain)]);
    ok(&["export-flink", s(&compacted), s(&from_compacted)]);
    let mut files: Vec<String> = std::fs::read_dir(&from_chain)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["_metadata", "counts-keyed-0", "counts-keyed-1"]);
    for file in files {
        assert_eq!(
            std::fs::read(from_chain.join(&file)).unwrap(),
            std::fs::read(from_compacted.join(&file)).unwrap(),
            "{file}"
        );
    }
}
