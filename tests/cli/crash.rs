//! SIGKILL a running job in the middle of its checkpoints; restoring from the last
//! complete checkpoint gives exactly the output and state of an uninterrupted run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use rewind_tests::{repo_root, rewind};

pub fn keyed_count() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // Ask cargo where the fresh artifact is: `target/debug/examples/keyed-count` may be
        // a copy of another build of the example (`cargo test --workspace` builds it with
        // the workspace's features).
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "--message-format=json",
                "-p",
                "rewind-engine",
                "--example",
                "keyed-count",
            ])
            .current_dir(repo_root())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "keyed-count")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo names the keyed-count executable")
    })
}

/// `keyed-count` with the job registry of this test process.
pub fn keyed_count_command() -> Command {
    let mut command = Command::new(keyed_count());
    command.env("REWIND_HOME", rewind_tests::test_home());
    command
}

/// Every committed output line under `dir` (pending, uncommitted files excluded), sorted.
fn committed(dir: &Path) -> Vec<String> {
    let location = rewind_savepoint::Location::parse(dir.to_str().unwrap()).unwrap();
    let mut lines = rewind_engine::read_committed(&location).unwrap();
    lines.sort();
    lines
}

const APP: [&str; 8] = [
    "--keys", "200", "--events", "40000", "--seed", "4", "--splits", "3",
];

#[test]
fn sigkill_during_checkpoints_then_restore_is_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let status = keyed_count_command()
        .args(APP)
        .args(["--output", &d("expected")])
        .status()
        .unwrap();
    assert!(status.success());
    let expected = committed(&dir.path().join("expected"));
    assert_eq!(expected.len(), 40_000);

    // Incremental checkpoints: the default of 8 delta layers, then 1 and 2, so that many
    // checkpoints write a state whole again (compaction) and the kill meets those too.
    for (round, (after_ms, layers)) in [(350u64, "8"), (600, "1"), (900, "2")]
        .into_iter()
        .enumerate()
    {
        let (ck, out, end) = (
            d(&format!("ck{round}")),
            d(&format!("out{round}")),
            d(&format!("end{round}")),
        );
        let mut child = keyed_count_command()
            .args(APP)
            .args([
                "--rate",
                "6000",
                "--checkpoint-dir",
                &ck,
                "--checkpoint-interval",
                "40ms",
                "--retain-checkpoints",
                "3",
                "--max-delta-layers",
                layers,
                // Output staged as it accumulates, between checkpoints: a kill leaves
                // chunks that no checkpoint lists.
                "--sink-chunk-bytes",
                "1000",
                "--output",
                &out,
            ])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(after_ms));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: the job ended before the kill; slow it down"
        );

        // Everything with a manifest is a valid checkpoint; a half-written one has none.
        let log = rewind(&["log", &ck, "--json"]);
        assert_eq!(log.code, 0, "{}", log.stderr);
        let view: serde_json::Value = serde_json::from_str(&log.stdout).unwrap();
        let found = view["savepoints"].as_array().unwrap();
        assert!(
            !found.is_empty(),
            "round {round}: no checkpoint completed before the kill"
        );
        let mut layered = 0;
        for c in found {
            let path = Path::new(&ck).join(c["path"].as_str().unwrap());
            let run = rewind(&["validate", path.to_str().unwrap()]);
            assert_eq!(run.code, 0, "round {round}: {}", run.stdout);
            let manifest = std::fs::read_to_string(path.join("_manifest.json")).unwrap();
            layered += usize::from(manifest.contains("\"layer\""));
        }
        assert!(
            layered > 0 || found.len() < 2,
            "round {round}: no checkpoint was written as changes"
        );
        // The newest by checkpoint id (`chk-<id>`, zero-padded): `log` orders by creation
        // time, and a wall clock may step back.
        let newest = found
            .iter()
            .map(|c| c["path"].as_str().unwrap())
            .max()
            .unwrap();
        let latest = Path::new(&ck).join(newest);

        // Output staged for the checkpoint the kill interrupted is listed by no manifest.
        let parts_before = parts(Path::new(&out));
        let orphans_before = unlisted_chunks(Path::new(&out));
        eprintln!(
            "round {round}: {} staged chunks no checkpoint lists",
            orphans_before.len()
        );
        if round == 0 {
            // `rewind rm --orphans` on the sink folder removes exactly those (committed
            // parts and listed chunks stay); the restore below must still be exactly once.
            let run = rewind(&["rm", &out, "--orphans", "--min-age", "0s"]);
            assert_eq!(run.code, 0, "{}", run.stderr);
            assert_eq!(
                run.stdout
                    .matches("(staged output no checkpoint lists)")
                    .count(),
                orphans_before.len(),
                "{}",
                run.stdout
            );
            assert!(unlisted_chunks(Path::new(&out)).is_empty());
            assert_eq!(parts(Path::new(&out)), parts_before);
        }

        let status = keyed_count_command()
            .args(APP)
            .args([
                "--from-savepoint",
                latest.to_str().unwrap(),
                "--parallelism",
                "3",
                "--output",
                &out,
                "--savepoint-on-finish",
                &end,
            ])
            .status()
            .unwrap();
        assert!(status.success(), "round {round}");
        // The restored job removed what the crash left staged and no checkpoint lists.
        assert!(
            unlisted_chunks(Path::new(&out)).is_empty(),
            "round {round}: {} orphans before the restore, some left",
            orphans_before.len()
        );
        let got = committed(Path::new(&out));
        assert!(
            got == expected,
            "round {round}: {} committed lines, {} expected (duplicates or losses)",
            got.len(),
            expected.len()
        );
        let total: u64 = {
            let state = rewind(&[
                "state", &end, "counter", "count", "--format", "csv", "--limit", "1000",
            ]);
            state
                .stdout
                .lines()
                .skip(1)
                .map(|l| l.rsplit(',').next().unwrap().parse::<u64>().unwrap())
                .sum()
        };
        assert_eq!(total, 40_000, "round {round}: every event counted once");
    }
}

/// Checkpoints after part of the input ended (Flink's FLIP-147): with three source
/// subtasks and two splits, one subtask has nothing to read and ends at once, yet
/// checkpoints complete every 100 ms. SIGKILL in the middle, restore the newest at
/// parallelism 2: the output and the counts are exactly those of an uninterrupted run.
#[test]
fn sigkill_after_a_source_subtask_ended_then_restore_elsewhere_is_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let app = [
        "--keys", "200", "--events", "40000", "--seed", "9", "--splits", "2",
    ];
    let status = keyed_count_command()
        .args(app)
        .args(["--output", &d("expected")])
        .status()
        .unwrap();
    assert!(status.success());
    let expected = committed(&dir.path().join("expected"));
    let (ck, out, end) = (d("ck"), d("out"), d("end"));
    let mut child = keyed_count_command()
        .args(app)
        .args(["--parallelism", "3", "--rate", "5000"])
        .args(["--checkpoint-dir", &ck, "--checkpoint-interval", "100ms"])
        .args(["--retain-checkpoints", "0", "--output", &out])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap();
    assert!(!child.wait().unwrap().success(), "ended before the kill");
    let latest = rewind(&["log", &ck, "--latest", "--json"]);
    assert_eq!(latest.code, 0, "no checkpoint completed: {}", latest.stderr);
    let found = std::fs::read_dir(&ck).unwrap().count();
    assert!(found >= 5, "only {found} checkpoints in 1.5 s");
    let status = keyed_count_command()
        .args(app)
        .args(["--from-savepoint", &ck, "--parallelism", "2"])
        .args(["--output", &out, "--savepoint-on-finish", &end])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        committed(Path::new(&out)) == expected,
        "duplicates or losses"
    );
    let state = rewind(&[
        "state", &end, "counter", "count", "--format", "csv", "--limit", "1000",
    ]);
    let total: u64 = state
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, 40_000, "every event counted once");
}

/// Committed part files of a sink folder.
fn parts(out: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("part-"))
        .collect();
    names.sort();
    names
}

/// Staged chunks of a sink folder that no listing record of an existing checkpoint names
/// (read here from the files, independently of the engine's cleanup).
fn unlisted_chunks(out: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(out.join("_pending")) else {
        return Vec::new();
    };
    let names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut listed = std::collections::HashSet::new();
    for record in names.iter().filter(|n| n.starts_with("_listed-")) {
        let text = std::fs::read_to_string(out.join("_pending").join(record)).unwrap();
        let record: serde_json::Value = serde_json::from_str(&text).unwrap();
        let at = Path::new(record["location"].as_str().unwrap());
        if at.join("_manifest.json").exists() {
            for token in record["tokens"].as_array().unwrap() {
                listed.insert(format!("{}.jsonl", token.as_str().unwrap()));
            }
        }
    }
    names
        .into_iter()
        .filter(|n| n.ends_with(".jsonl") && !listed.contains(n))
        .collect()
}

/// `--output -` prints committed output on standard output: every event's new count once.
#[test]
fn keyed_count_prints_to_stdout() {
    let out = keyed_count_command()
        .args(["--keys", "7", "--events", "500", "--output", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut last: std::collections::BTreeMap<i64, i64> = Default::default();
    for line in text.lines() {
        let (key, count): (i64, i64) = serde_json::from_str(line).unwrap();
        let seen = last.entry(key).or_default();
        *seen = (*seen).max(count);
    }
    assert_eq!(
        text.lines().count(),
        500,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(last.values().sum::<i64>(), 500);
}

/// SIGKILL `rescale`, `edit` and `migrate` at points spread over their run, many times:
/// DEST is either complete and valid or has no manifest (and `rm --orphans` lists exactly
/// the files left), and SRC stays valid.
#[test]
fn sigkill_during_offline_commands_never_leaves_a_valid_looking_dest() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let src = src.to_str().unwrap();
    let made = rewind(&[
        "generate",
        src,
        "--keys",
        "200000",
        "--parallelism",
        "4",
        "--operators",
        "2",
        "--value-bytes",
        "8",
        "--seed",
        "5",
    ]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let commands: [(&str, Vec<&str>); 3] = [
        ("rescale", vec!["--parallelism", "3"]),
        ("edit", vec!["--rename-operator", "op-1=op-9"]),
        ("migrate", vec!["--rename-field", "op-0/state:count=total"]),
    ];
    let (mut killed_mid_write, mut complete, mut before_any) = (0, 0, 0);
    for (command, extra) in &commands {
        // How long the command takes, uninterrupted; the kills are spread over that time.
        let full = dir.path().join(format!("{command}-full"));
        let started = std::time::Instant::now();
        let run = rewind(&[&[*command, src, full.to_str().unwrap()], extra.as_slice()].concat());
        assert_eq!(run.code, 0, "{command}: {}", run.stderr);
        let took = started.elapsed();
        for step in 1..=6u32 {
            let dest = dir.path().join(format!("{command}-{step}"));
            let mut child = std::process::Command::new(rewind_tests::rewind_bin())
                .args([*command, src, dest.to_str().unwrap()])
                .args(extra)
                .env("REWIND_HOME", rewind_tests::test_home())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(took * step / 7);
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            let left = rewind_test_support::files_under(&dest);
            let dest = dest.to_str().unwrap();
            if left.iter().any(|f| f == "_manifest.json") {
                complete += 1;
                let run = rewind(&["validate", dest, "--deep"]);
                assert_eq!(run.code, 0, "{command} step {step}: {}", run.stdout);
            } else if left.is_empty() {
                before_any += 1;
            } else {
                killed_mid_write += 1;
                let run = rewind(&["validate", dest]);
                assert_eq!(run.code, 2, "{command} step {step}: {}", run.stdout);
                let dry = rewind(&["rm", dest, "--orphans", "--dry-run"]);
                assert_eq!(dry.code, 0, "{}", dry.stderr);
                let listed: Vec<String> = dry
                    .stdout
                    .lines()
                    .map(|l| {
                        l.trim_start_matches("would delete ")
                            .trim_end_matches(" (not in any manifest)")
                            .to_string()
                    })
                    .collect();
                let mut listed_sorted = listed.clone();
                listed_sorted.sort();
                assert_eq!(listed_sorted, left, "{command} step {step}");
                assert_eq!(rewind(&["rm", dest, "--orphans"]).code, 0);
                assert!(rewind_test_support::files_under(Path::new(dest)).is_empty());
            }
            let run = rewind(&["validate", src]);
            assert_eq!(run.code, 0, "{command} step {step}: SRC {}", run.stdout);
        }
    }
    eprintln!(
        "offline commands: 18 SIGKILLs, {killed_mid_write} mid-write (no manifest, leftovers \
         removed), {complete} complete and valid, {before_any} before any write"
    );
    assert!(killed_mid_write > 0, "no kill landed during a write");
}

/// A writer killed mid-upload on local disk leaves the store's staging file
/// (`<file>#<n>`), which object_store never lists: `rm --orphans` still lists and
/// removes it, and nothing else.
#[test]
fn rm_orphans_finds_staging_files_of_a_killed_upload() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("dest");
    std::fs::create_dir_all(dest.join("state/op-0/state")).unwrap();
    std::fs::write(dest.join("state/op-0/state/00000-ab.parquet#1"), b"PAR1").unwrap();
    std::fs::write(dest.join("state/op-0/state/00001-ab.parquet"), b"PAR1").unwrap();
    let dest = dest.to_str().unwrap();
    let dry = rewind(&["rm", dest, "--orphans", "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(
        dry.stdout,
        "would delete state/op-0/state/00001-ab.parquet (not in any manifest)\n\
         would delete state/op-0/state/00000-ab.parquet#1 (not in any manifest)\n"
    );
    assert_eq!(rewind(&["rm", dest, "--orphans"]).code, 0);
    assert!(rewind_test_support::files_under(Path::new(dest)).is_empty());
}
