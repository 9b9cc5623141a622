//! Every command on s3://, against the real S3 server scripts/test.sh starts (see
//! crates/savepoint/tests/library/storage.rs for how it is found).

use rewind_tests::rewind;

fn bucket() -> Option<String> {
    match std::env::var("REWIND_TEST_S3_URL") {
        Ok(b) => Some(b),
        Err(_) if std::env::var_os("REWIND_REQUIRE_S3").is_some() => {
            panic!("REWIND_REQUIRE_S3 is set but REWIND_TEST_S3_URL is not")
        }
        Err(_) => {
            eprintln!("S3 skipped (REWIND_TEST_S3_URL unset; scripts/test.sh sets it)");
            None
        }
    }
}

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{nanos:x}-{}", std::process::id())
}

#[test]
fn every_command_works_on_s3() {
    let Some(bucket) = bucket() else { return };
    let sp = format!("{bucket}/{}", unique("cli"));
    let run = rewind(&[
        "generate",
        &sp,
        "--keys",
        "5000",
        "--parallelism",
        "2",
        "--value-bytes",
        "4",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let inspect = rewind(&["inspect", &sp, "--json"]);
    assert_eq!(inspect.code, 0, "{}", inspect.stderr);
    let view: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    assert_eq!(view["operators"][1]["rows"], 5000);
    let state = rewind(&[
        "state", &sp, "op-0", "state", "--key", "17", "--format", "json",
    ]);
    assert_eq!(state.code, 0, "{}", state.stderr);
    assert!(state.stdout.contains("\"key\":17"), "{}", state.stdout);
    let validate = rewind(&["validate", &sp, "--deep"]);
    assert_eq!(validate.code, 0, "{}{}", validate.stdout, validate.stderr);
    let again = rewind(&["generate", &sp, "--keys", "10"]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
}

#[test]
fn wrong_credentials_and_missing_buckets_are_one_clear_line() {
    let Some(bucket) = bucket() else { return };
    let sp = format!("{bucket}/{}", unique("denied"));
    let output = std::process::Command::new(rewind_tests::rewind_bin())
        .args(["generate", &sp, "--keys", "100"])
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the secret key is wrong")
            || stderr.contains("permission denied: check the credentials"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // Nothing was written under the target.
    let inspect = rewind(&["inspect", &sp]);
    assert!(
        inspect
            .stderr
            .contains("not a savepoint (no _manifest.json and no files)"),
        "{}",
        inspect.stderr
    );

    let missing = rewind(&["inspect", "s3://no-such-bucket-rewind/sp"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing
            .stderr
            .ends_with("storage error: the bucket does not exist\n"),
        "{}",
        missing.stderr
    );
}

/// Timeouts and retries come from the environment; an unreachable endpoint fails after
/// the configured retries with one line, and a bad setting is named.
#[test]
fn network_settings_from_the_environment() {
    let run = |extra: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(rewind_tests::rewind_bin());
        cmd.args(["inspect", "s3://bucket/sp"])
            .env("AWS_ACCESS_KEY_ID", "k")
            .env("AWS_SECRET_ACCESS_KEY", "s")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_ENDPOINT", "http://127.0.0.1:1");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = run(&[("REWIND_STORE_RETRIES", "2")]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("after 2 retries"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let (code, stderr) = run(&[("REWIND_STORE_TIMEOUT", "soon")]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.starts_with("rewind: error: REWIND_STORE_TIMEOUT=soon:"),
        "{stderr}"
    );
}

/// The offline commands on s3://, and across stores: rescale from S3 to local disk and
/// back, diff across stores, edit, log and rm on S3.
#[test]
fn offline_commands_on_s3_and_across_stores() {
    let Some(bucket) = bucket() else { return };
    let prefix = format!("{bucket}/{}", unique("offline"));
    let sp = format!("{prefix}/base");
    assert_eq!(
        rewind(&["generate", &sp, "--keys", "3000", "--parallelism", "2"]).code,
        0
    );
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("local");
    let local = local.to_str().unwrap();
    let run = rewind(&["rescale", &sp, local, "--parallelism", "3"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let back = format!("{prefix}/back");
    let run = rewind(&["rescale", local, &back, "--parallelism", "2"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(rewind(&["validate", &back, "--deep"]).code, 0);
    let diff = rewind(&["diff", &sp, &back]);
    assert_eq!(diff.code, 0, "{}{}", diff.stdout, diff.stderr);
    let diff = rewind(&["diff", &sp, local]);
    assert_eq!(diff.code, 0, "{}{}", diff.stdout, diff.stderr);

    let edited = format!("{prefix}/edited");
    let run = rewind(&[
        "edit",
        &sp,
        &edited,
        "--set-position",
        "source/split-0={\"offset\":0}",
        "--drop-state",
        "op-0/state",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let log = rewind(&["log", &prefix, "--json"]);
    assert_eq!(log.code, 0, "{}", log.stderr);
    let view: serde_json::Value = serde_json::from_str(&log.stdout).unwrap();
    assert_eq!(
        view["savepoints"].as_array().unwrap().len(),
        3,
        "{}",
        log.stdout
    );

    let rm = rewind(&["rm", &edited]);
    assert_eq!(rm.code, 0, "{}", rm.stderr);
    let gone = rewind(&["inspect", &edited]);
    assert!(
        gone.stderr
            .contains("not a savepoint (no _manifest.json and no files)"),
        "{}",
        gone.stderr
    );
}

/// The engine checkpoints, saves, commits output and restores on s3://.
#[test]
fn engine_checkpoints_and_restores_on_s3() {
    let Some(bucket) = bucket() else { return };
    let prefix = format!("{bucket}/{}", unique("engine"));
    let app = ["--keys", "50", "--events", "20000", "--splits", "2"];
    let (ck, out, end) = (
        format!("{prefix}/checkpoints"),
        format!("{prefix}/out"),
        format!("{prefix}/end"),
    );
    let status = crate::crash::keyed_count_command()
        .args(app)
        .args([
            "--rate",
            "20000",
            "--checkpoint-dir",
            &ck,
            "--checkpoint-interval",
            "100ms",
            "--output",
            &out,
            "--savepoint-on-finish",
            &end,
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let log = rewind(&["log", &prefix, "--json"]);
    let view: serde_json::Value = serde_json::from_str(&log.stdout).unwrap();
    let kinds: Vec<&str> = view["savepoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"checkpoint") && kinds.contains(&"savepoint"),
        "{kinds:?}"
    );
    assert_eq!(rewind(&["validate", &end, "--deep"]).code, 0);
    // Restore from the S3 savepoint at another parallelism (no new events: state carries over).
    let again = format!("{prefix}/again");
    let status = crate::crash::keyed_count_command()
        .args(app)
        .args([
            "--from-savepoint",
            &end,
            "--parallelism",
            "3",
            "--output",
            &format!("{prefix}/out2"),
            "--savepoint-on-finish",
            &again,
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let diff = rewind(&["diff", &end, &again, "--state", "count"]);
    assert_eq!(diff.code, 0, "{}{}", diff.stdout, diff.stderr);
}

/// With no AWS credential source at all, an s3:// command says so in one line before any
/// request (it used to report the instance-metadata address's refusal after retries).
#[test]
fn no_credentials_at_all_is_one_line_before_any_request() {
    let mut command = std::process::Command::new(rewind_tests::rewind_bin());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    let output = command
        .env_remove("REWIND_AWS_INSTANCE_METADATA")
        .env("REWIND_HOME", rewind_tests::test_home())
        .args(["inspect", "s3://some-bucket/savepoints/sp-1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "rewind: error: s3://some-bucket/savepoints/sp-1: no AWS credentials found: set \
         AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_WEB_IDENTITY_TOKEN_FILE with \
         AWS_ROLE_ARN); on a cloud instance with a role set REWIND_AWS_INSTANCE_METADATA=1; \
         for a public bucket AWS_SKIP_SIGNATURE=true\n"
    );
}
