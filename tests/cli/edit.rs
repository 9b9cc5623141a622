use rewind_tests::{fixture_copy, rewind};

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn edits_in_one_command_are_exactly_what_diff_reports() {
    let (_guard, copy) = fixture_copy("v1/keyed-primitive");
    let sp = copy.join("savepoint");
    let dest = copy.join("edited");
    let up = write(&copy, "up.csv", "key,value\n3,1000\n77,1\n");
    let del = write(&copy, "del.jsonl", "{\"key\": -10}\n{\"key\": 5}\n");
    let (sp, dest) = (sp.to_str().unwrap(), dest.to_str().unwrap());
    let run = rewind(&[
        "edit",
        sp,
        dest,
        "--upsert",
        &format!("counter/count={up}"),
        "--delete-keys",
        &format!("counter/count={del}"),
        "--drop-state",
        "counter/label",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(rewind(&["validate", dest, "--deep"]).code, 0);
    let diff = rewind(&["diff", sp, dest]);
    assert_eq!(diff.code, 1);
    insta::assert_snapshot!(diff.stdout);
    let inspect: serde_json::Value =
        serde_json::from_str(&rewind(&["inspect", dest, "--json"]).stdout).unwrap();
    assert_eq!(inspect["lineage"]["operation"], "edit");
    assert_eq!(
        inspect["lineage"]["parent_id"],
        "cc3860ee-8862-4723-9526-173cb4a40635"
    );
}

#[test]
fn bad_edits_write_nothing() {
    let (_guard, copy) = fixture_copy("v1/keyed-primitive");
    let sp = copy.join("savepoint");
    let dest = copy.join("edited");
    let wrong = write(&copy, "wrong.csv", "key,value\nabc,1\n");
    let (sp_s, dest_s) = (sp.to_str().unwrap(), dest.to_str().unwrap());
    for (args, message) in [
        (
            vec![
                "--rename-operator",
                "counter=counter",
                "--remove-operator",
                "x",
            ],
            "that uid exists already",
        ),
        (
            vec!["--remove-operator", "nope"],
            "unknown operator \"nope\"",
        ),
        (
            vec!["--upsert", &format!("counter/count={wrong}")],
            "Error while parsing value 'abc' as type 'Int64'",
        ),
        (vec!["--frobnicate", "x"], "unknown edit \"--frobnicate\""),
        (
            vec!["--set-position", "counter/p0"],
            "is not UID/SPLIT=JSON",
        ),
    ] {
        let mut all = vec!["edit", sp_s, dest_s];
        all.extend(args.iter().map(|s| &**s));
        let run = rewind(&all);
        assert_eq!(run.code, 2, "{args:?}");
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(!dest.exists(), "{args:?} wrote something");
    }
}

#[test]
fn bootstrap_from_csv_and_parquet_then_log_and_rm() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(
        dir.path(),
        "counts.csv",
        "key,value\nalice,3\nbob,4\ncarol,5\n",
    );
    let boot = dir.path().join("boot");
    let run = rewind(&[
        "bootstrap",
        boot.to_str().unwrap(),
        "--job",
        "new-job",
        "--app-version",
        "2.0",
        "--parallelism",
        "2",
        "--state",
        &format!("counter/count={csv}"),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        rewind(&["validate", boot.to_str().unwrap(), "--deep"]).code,
        0
    );
    let rows = rewind(&[
        "state",
        boot.to_str().unwrap(),
        "counter",
        "count",
        "--key",
        "bob",
        "--format",
        "csv",
    ]);
    assert!(rows.stdout.ends_with("\nbob,4\n"), "{}", rows.stdout);

    // A Parquet shard of the bootstrapped savepoint is itself a valid input file.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(boot.join("_manifest.json")).unwrap()).unwrap();
    let shard = boot.join(
        manifest["operators"][0]["states"][0]["shards"][0]["path"]
            .as_str()
            .unwrap(),
    );
    let parquet = dir.path().join("part.parquet");
    std::fs::copy(&shard, &parquet).unwrap();
    let from_parquet = dir.path().join("from-parquet");
    let run = rewind(&[
        "bootstrap",
        from_parquet.to_str().unwrap(),
        "--job",
        "j",
        "--state",
        &format!("op/s={}", parquet.display()),
    ]);
    assert_eq!(
        run.code, 2,
        "key_hash is not a state file column: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("unexpected column \"key_hash\""),
        "{}",
        run.stderr
    );

    let rescaled = dir.path().join("rescaled");
    assert_eq!(
        rewind(&[
            "rescale",
            boot.to_str().unwrap(),
            rescaled.to_str().unwrap(),
            "--parallelism",
            "3"
        ])
        .code,
        0
    );
    let log = rewind(&["log", dir.path().to_str().unwrap(), "--json"]);
    let view: serde_json::Value = serde_json::from_str(&log.stdout).unwrap();
    let entries = view["savepoints"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1]["parent_id"], entries[0]["id"]);
    assert_eq!(entries[1]["operation"], "rescale");
    let tree = rewind(&["log", dir.path().to_str().unwrap()]);
    assert!(
        tree.stdout.contains("└── rescaled  savepoint"),
        "{}",
        tree.stdout
    );
    let dot = rewind(&["log", dir.path().to_str().unwrap(), "--dot"]);
    assert!(
        dot.stdout.starts_with("digraph lineage {") && dot.stdout.contains("[label=\"rescale\"]"),
        "{}",
        dot.stdout
    );

    std::fs::write(rescaled.join("state/leftover.parquet"), b"x").unwrap();
    let rm = rewind(&["rm", rescaled.to_str().unwrap()]);
    assert_eq!(rm.code, 0, "{}", rm.stderr);
    assert!(
        rm.stdout.lines().next().unwrap() == "delete _manifest.json",
        "manifest first: {}",
        rm.stdout
    );
    assert!(
        rescaled.join("state/leftover.parquet").exists(),
        "orphans only with --orphans"
    );
    let incomplete = rewind(&["rm", rescaled.to_str().unwrap()]);
    assert_eq!(incomplete.code, 2);
    assert!(
        incomplete.stderr.contains("incomplete savepoint: 1 files"),
        "{}",
        incomplete.stderr
    );
    let orphans = rewind(&["rm", rescaled.to_str().unwrap(), "--orphans"]);
    assert_eq!(orphans.code, 0, "{}", orphans.stderr);
    assert_eq!(
        orphans.stdout,
        "delete state/leftover.parquet (not in any manifest)\nremoved 1 files\n"
    );
    let not_sp = rewind(&["rm", dir.path().join("nothing").to_str().unwrap()]);
    assert_eq!(not_sp.code, 2);
}
