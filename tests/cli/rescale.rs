use rewind_tests::{fixture_copy, redact, rewind};

#[test]
fn dry_run_plans_and_writes_nothing() {
    let (_guard, copy) = fixture_copy("v1/two-operators");
    let sp = copy.join("savepoint");
    let dest = copy.join("rescaled");
    let run = rewind(&[
        "rescale",
        sp.to_str().unwrap(),
        dest.to_str().unwrap(),
        "--parallelism",
        "3",
        "--operator",
        "parser=2",
        "--dry-run",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!dest.exists());
    insta::assert_snapshot!(redact(&redact(&run.stdout, &dest), &sp));
}

#[test]
fn rescaled_fixture_reads_the_same() {
    let (_guard, copy) = fixture_copy("v1/struct-list-map");
    let sp = copy.join("savepoint");
    let dest = copy.join("rescaled");
    let run = rewind(&[
        "rescale",
        sp.to_str().unwrap(),
        dest.to_str().unwrap(),
        "--parallelism",
        "5",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let validate = rewind(&["validate", dest.to_str().unwrap(), "--deep"]);
    assert_eq!(validate.code, 0, "{}", validate.stdout);
    for state in [
        "profile",
        "recent_pages",
        "scores",
        "window_visits",
        "timers",
    ] {
        let rows = |p: &std::path::Path| {
            let out = rewind(&[
                "state",
                p.to_str().unwrap(),
                "profiles",
                state,
                "--format",
                "json",
            ]);
            assert_eq!(out.code, 0, "{}", out.stderr);
            let mut lines: Vec<String> = out.stdout.lines().map(String::from).collect();
            lines.sort();
            lines
        };
        assert_eq!(rows(&sp), rows(&dest), "{state}");
    }
    let inspect = rewind(&["inspect", dest.to_str().unwrap(), "--json"]);
    let view: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    assert_eq!(view["lineage"]["operation"], "rescale");
    assert_eq!(
        view["lineage"]["parent_id"],
        "0d0f8943-81da-40b5-b056-626857c4679c"
    );
    assert_eq!(view["operators"][0]["parallelism"], 5);
}

#[test]
fn impossible_requests_exit_2() {
    let (_guard, copy) = fixture_copy("v1/keyed-primitive");
    let sp = copy.join("savepoint");
    let sp = sp.to_str().unwrap();
    let run = rewind(&["rescale", sp, sp, "--parallelism", "3"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .ends_with("already exists (savepoints are never overwritten)\n"),
        "{}",
        run.stderr
    );
    let run = rewind(&["rescale", sp, "/tmp/never-written", "--operator", "count=2"]);
    assert_eq!(
        run.stderr,
        "rewind: error: unknown operator \"count\"; the savepoint has: counter\n"
    );
    let run = rewind(&["rescale", sp, "/tmp/never-written", "--operator", "counter"]);
    assert_eq!(run.code, 2);
}

/// What each subtask of `parallelism` gets on restore, as the engine reads it.
fn restored_lists(sp: &std::path::Path, state: &str, parallelism: u32) -> Vec<Vec<String>> {
    use arrow_array::cast::AsArray;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let location = rewind_savepoint::Location::parse(sp.to_str().unwrap()).unwrap();
        let reader = rewind_savepoint::SavepointReader::open(location)
            .await
            .unwrap();
        let mut lists = Vec::new();
        for t in 0..parallelism {
            let batch = reader
                .read_operator_list("source", state, t, parallelism)
                .await
                .unwrap();
            let column = arrow_cast::cast(batch.column(0), &arrow_schema::DataType::Utf8).unwrap();
            lists.push(
                column
                    .as_string::<i32>()
                    .iter()
                    .map(|v| v.unwrap_or("null").to_string())
                    .collect(),
            );
        }
        lists
    })
}

#[test]
fn operator_state_restores_the_same_after_an_offline_rescale() {
    let (_guard, copy) = fixture_copy("v1/operator-state-sources");
    let sp = copy.join("savepoint");
    for p in [1u32, 2, 4, 5] {
        let dest = copy.join(format!("p{p}"));
        let run = rewind(&[
            "rescale",
            sp.to_str().unwrap(),
            dest.to_str().unwrap(),
            "--parallelism",
            &p.to_string(),
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        // Restoring the rescaled savepoint at p gives what restoring the original at p gives.
        for state in ["pending_files", "seen_schemas", "config"] {
            assert_eq!(
                restored_lists(&dest, state, p),
                restored_lists(&sp, state, p),
                "{state} at parallelism {p}"
            );
        }
    }
}
