//! `rewind migrate`: each option round-trips through `diff`; refusals say what is wrong.

use rewind_tests::{fixture_copy, rewind, state_rows};

fn by_key(rows: Vec<serde_json::Value>) -> std::collections::BTreeMap<String, serde_json::Value> {
    rows.into_iter()
        .map(|r| (r["key"].to_string(), r["value"].clone()))
        .collect()
}

#[test]
fn rename_cast_and_default_round_trip_through_diff() {
    let (_guard, copy) = fixture_copy("v1/struct-list-map");
    let src = copy.join("savepoint");
    let dest = copy.join("migrated");
    let (src, dest) = (src.to_str().unwrap(), dest.to_str().unwrap());
    let run = rewind(&[
        "migrate",
        src,
        dest,
        "--rename-field",
        "profiles/profile:visits=visit_count",
        "--cast",
        "profiles/profile:visit_count=int32",
        "--default",
        "profiles/profile:tier=\"free\"",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(
            "  to   struct<name: utf8, visit_count: int32, last_seen: timestamp[ms], tier: utf8>"
        ),
        "{}",
        run.stdout
    );
    assert_eq!(rewind(&["validate", dest, "--deep"]).code, 0);

    // diff names exactly the three changes; every other state is byte-identical.
    let diff = rewind(&["diff", src, dest]);
    assert_eq!(diff.code, 1);
    for line in [
        "profile.value.tier: - -> utf8",
        "profile.value.visit_count: - -> int32",
        "profile.value.visits: int64 -> -",
    ] {
        assert!(diff.stdout.contains(line), "{line}\n{}", diff.stdout);
    }
    assert_eq!(
        diff.stdout.matches("schema changed").count(),
        3,
        "{}",
        diff.stdout
    );

    let (before, after) = (
        by_key(state_rows(src, "profiles", "profile")),
        by_key(state_rows(dest, "profiles", "profile")),
    );
    assert_eq!(before.len(), 6);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    for (key, old) in &before {
        let new = &after[key];
        assert_eq!(new["visit_count"], old["visits"], "{key}");
        assert_eq!(new["name"], old["name"]);
        assert_eq!(new["last_seen"], old["last_seen"]);
        assert_eq!(new["tier"], "free");
    }
    let inspect: serde_json::Value =
        serde_json::from_str(&rewind(&["inspect", dest, "--json"]).stdout).unwrap();
    assert_eq!(inspect["lineage"]["operation"], "migrate");
    assert_eq!(inspect["lineage"]["parent_location"], src);
}

#[test]
fn a_target_schema_matches_fields_by_name() {
    let (_guard, copy) = fixture_copy("v1/struct-list-map");
    let src = copy.join("savepoint");
    let dest = copy.join("migrated");
    let schema = copy.join("schema.json");
    std::fs::write(
        &schema,
        r#"{"value": "struct<visits: int32, name: utf8, note: utf8>"}"#,
    )
    .unwrap();
    let (src, dest) = (src.to_str().unwrap(), dest.to_str().unwrap());
    let arg = format!("profiles/profile={}", schema.display());
    let run = rewind(&["migrate", src, dest, "--schema", &arg]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (before, after) = (
        by_key(state_rows(src, "profiles", "profile")),
        by_key(state_rows(dest, "profiles", "profile")),
    );
    for (key, old) in &before {
        let new = after[key].as_object().unwrap();
        assert_eq!(new["visits"], old["visits"]);
        assert_eq!(new["name"], old["name"]);
        // The dropped field is gone; the added one is there, null.
        assert!(
            new.get("last_seen").is_none() && new["note"].is_null(),
            "{new:?}"
        );
    }
    let inspect: serde_json::Value =
        serde_json::from_str(&rewind(&["inspect", dest, "--json"]).stdout).unwrap();
    let profile = &inspect["operators"][0]["states"][0];
    assert_eq!(profile["name"], "profile");
    assert_eq!(
        profile["value_type"],
        "struct<visits: int32, name: utf8, note: utf8>"
    );
}

#[test]
fn dry_run_reports_rows_and_writes_nothing() {
    let (_guard, copy) = fixture_copy("v1/keyed-primitive");
    let src = copy.join("savepoint");
    let dest = copy.join("never");
    let run = rewind(&[
        "migrate",
        src.to_str().unwrap(),
        dest.to_str().unwrap(),
        "--dry-run",
        "--cast",
        "counter/count:value=int64",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "format 1.0 -> 1.0; 2 shards would change, 2 copied\n\
         counter/count (50 rows)\n  from uint64\n  to   int64\n\
         \x20 cast counter/count:value=int64: 50 rows\ndry run: nothing written\n"
    );
    assert!(!dest.exists());
}

#[test]
fn a_value_that_does_not_fit_names_its_key_unless_lossy() {
    let (_guard, copy) = fixture_copy("v1/keyed-primitive");
    let src = copy.join("savepoint");
    let (src, dest) = (src.to_str().unwrap(), copy.join("narrow"));
    let run = rewind(&[
        "migrate",
        src,
        dest.to_str().unwrap(),
        "--cast",
        "counter/count:value=int8",
    ]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "rewind: error: counter/count: field value: the value 324 of key 18 does not fit int8 \
         (a lossy migration makes it null)\n"
    );
    assert!(!dest.join("_manifest.json").exists());

    let lossy = copy.join("lossy");
    let lossy = lossy.to_str().unwrap();
    let run = rewind(&[
        "migrate",
        src,
        lossy,
        "--cast",
        "counter/count:value=int8",
        "--lossy",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let before = by_key(state_rows(src, "counter", "count"));
    let after = by_key(state_rows(lossy, "counter", "count"));
    for (key, old) in &before {
        let old = old.as_u64().unwrap();
        let expected = if old <= 127 {
            serde_json::json!(old)
        } else {
            serde_json::Value::Null
        };
        assert_eq!(after[key], expected, "{key}");
    }
}

#[test]
fn refusals_say_what_is_wrong() {
    let (_guard, copy) = fixture_copy("v1/struct-list-map");
    let src = copy.join("savepoint");
    let src = src.to_str().unwrap();
    let dest = copy.join("d");
    let dest = dest.to_str().unwrap();
    let schema = copy.join("required.json");
    std::fs::write(
        &schema,
        r#"{"key": "int64", "value": "struct<name: utf8>"}"#,
    )
    .unwrap();
    let schema_arg = format!("profiles/profile={}", schema.display());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--cast", "profiles/nope:value=int32"],
            "operator \"profiles\" has no state \"nope\"; it has: profile, recent_pages, scores, window_visits, timers",
        ),
        (
            vec!["--cast", "profiles/timers:value=int32"],
            "profiles/timers: timers state has no values to migrate",
        ),
        (
            vec!["--rename-field", "profiles/profile:age=years"],
            "rename-field profiles/profile:age=years: no field age",
        ),
        (
            vec!["--cast", "profiles/profile:name=list<int64>"],
            "field name: utf8 cannot be converted to list<int64>: convert plain values",
        ),
        (
            vec!["--schema", &schema_arg],
            "keys never change type in a migration",
        ),
        (
            vec!["--to-format-version", "2.0"],
            "this build writes format versions 1.0 to 1.1, not 2.0",
        ),
        (
            vec!["--to-format-version", "0.9"],
            "this build writes format versions 1.0 to 1.1, not 0.9",
        ),
        (vec![], "nothing to do"),
    ];
    for (args, message) in cases {
        let mut all = vec!["migrate", src, dest];
        all.extend(args.iter().copied());
        let run = rewind(&all);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stdout);
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(!copy.join("d").join("_manifest.json").exists());
    }
}

#[test]
fn a_format_version_migration_copies_everything() {
    let (_guard, copy) = fixture_copy("v1/two-operators");
    let src = copy.join("savepoint");
    let dest = copy.join("current");
    let (src, dest) = (src.to_str().unwrap(), dest.to_str().unwrap());
    let run = rewind(&["migrate", src, dest, "--to-format-version", "1.0"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("format 1.0 -> 1.0; 0 shards changed"),
        "{}",
        run.stdout
    );
    assert_eq!(rewind(&["validate", dest, "--deep"]).code, 0);
    assert_eq!(rewind(&["diff", src, dest]).code, 0);
}

/// The upgrade path of format 1.1 and the way down: up re-encodes every keyed shard lean
/// (no stored key hash), down writes full shards and leaves extensions out, and the rows
/// never change.
#[test]
fn format_versions_go_up_to_lean_shards_and_down_for_old_readers() {
    let (_guard, copy) = fixture_copy("v1/two-operators");
    let src = copy.join("savepoint");
    let (up, down) = (copy.join("up"), copy.join("down"));
    let (src, up, down) = (
        src.to_str().unwrap(),
        up.to_str().unwrap(),
        down.to_str().unwrap(),
    );
    let run = rewind(&["migrate", src, up, "--to-format-version", "1.1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().take(2).collect();
    assert_eq!(
        lines,
        [
            "format 1.0 -> 1.1; 5 shards changed, 0 copied",
            "5 keyed shards re-encoded lean (no stored key_hash)"
        ],
        "{}",
        run.stdout
    );
    let run = rewind(&["migrate", up, down, "--to-format-version", "1.0"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("5 keyed shards re-encoded full (key_hash stored, for 1.0 readers)"),
        "{}",
        run.stdout
    );
    for dest in [up, down] {
        assert_eq!(rewind(&["validate", dest, "--deep"]).code, 0, "{dest}");
        assert_eq!(rewind(&["diff", src, dest]).code, 0, "{dest}");
    }
    let inspect = rewind(&["inspect", up]).stdout;
    assert!(inspect.contains("lean_keyed_shards"), "{inspect}");

    // An import keeps Flink's serializers in extensions, which 1.0 cannot hold.
    let (_guard, imported) = fixture_copy("v1.1/flink-import");
    let imported = imported.join("savepoint");
    let old = copy.join("for-old-readers");
    let run = rewind(&[
        "migrate",
        imported.to_str().unwrap(),
        old.to_str().unwrap(),
        "--to-format-version",
        "1.0",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(
            "extensions left out: format 1.0 has none (export-flink will generate Flink serializers)"
        ),
        "{}",
        run.stdout
    );
    let manifest = std::fs::read_to_string(old.join("_manifest.json")).unwrap();
    assert!(manifest.contains("\"version\": \"1.0\""), "{manifest}");
    assert!(!manifest.contains("\"extensions\""), "{manifest}");
}

/// Savepoints imported by `rewind import-flink` 0.1.0 hold the timer domains `event` and
/// `processing`, which the spec does not allow: `validate` names them, a dry run counts
/// them, and a migration rewrites exactly those timers and copies everything else.
#[test]
fn legacy_timer_domains_are_repaired() {
    let (_guard, copy) = fixture_copy("corrupt/timer-domain-legacy");
    let src = copy.join("savepoint");
    let dest = copy.join("repaired");
    let (src, dest) = (src.to_str().unwrap(), dest.to_str().unwrap());
    let found = rewind(&["validate", src, "--json"]);
    assert_eq!(found.code, 1);
    assert!(
        found.stdout.contains("timer domain \\\"event\\\" at row"),
        "{}",
        found.stdout
    );

    let plan = rewind(&["migrate", src, "--to-format-version", "1.0", "--dry-run"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(
        plan.stdout.contains(
            "would repair 3 timer domains (event/processing -> event_time/processing_time)"
        ),
        "{}",
        plan.stdout
    );
    let run = rewind(&["migrate", src, dest, "--to-format-version", "1.0"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("format 1.0 -> 1.0; 1 shards changed, 4 copied\n"),
        "{}",
        run.stdout
    );
    assert_eq!(rewind(&["validate", dest, "--deep"]).code, 0);
    let mut timers: Vec<(i64, String, i64)> = state_rows(dest, "counter", "timers")
        .iter()
        .map(|r| {
            (
                r["key"].as_i64().unwrap(),
                r["domain"].as_str().unwrap().to_string(),
                r["timestamp"].as_i64().unwrap(),
            )
        })
        .collect();
    timers.sort();
    assert_eq!(
        timers,
        vec![
            (-3, "event_time".to_string(), 1000),
            (7, "processing_time".to_string(), 2000),
            (42, "event_time".to_string(), 3000),
        ]
    );
    // Only the timers changed.
    let diff = rewind(&["diff", src, dest, "--state", "count"]);
    assert_eq!(diff.code, 0, "{}", diff.stdout);
}
