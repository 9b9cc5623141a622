//! Corrupt, truncated, too-new and hostile savepoints: each fails with one clear line and
//! the documented exit code, never a panic. Every folder in fixtures/corrupt has a case here.

use std::path::{Path, PathBuf};

use rewind_tests::{copy_dir, fixture_copy, fixtures_dir, redact, rewind};
use serde_json::Value;

/// What a corrupt fixture must produce.
struct Case {
    name: &'static str,
    /// Subcommand and extra arguments; the savepoint path is inserted after the subcommand.
    command: &'static [&'static str],
    code: i32,
    /// Exact stderr (for exit 2) with the savepoint path as [SAVEPOINT] and the first shard's
    /// file name as [SHARD]; or, for validate (exit 1), the `kind`s of the problems, comma-separated.
    expected: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "incomplete",
        command: &["inspect"],
        code: 2,
        expected: "rewind: error: [SAVEPOINT]: incomplete savepoint: 4 files, no _manifest.json\n",
    },
    Case {
        name: "invalid-json",
        command: &["inspect"],
        code: 2,
        expected: "rewind: error: [SAVEPOINT]/_manifest.json: invalid JSON at line 19, column 0: EOF while parsing a value\n",
    },
    Case {
        name: "not-a-savepoint",
        command: &["inspect"],
        code: 2,
        expected: "rewind: error: [SAVEPOINT]/_manifest.json: not a Rewind savepoint manifest: format is \"delta-table\", expected \"rewind-savepoint\"\n",
    },
    Case {
        name: "too-new-major",
        command: &["inspect"],
        code: 2,
        expected: "rewind: error: [SAVEPOINT]/_manifest.json: savepoint format version 2.0 is newer than this build supports (up to 1.0); upgrade rewind\n",
    },
    Case {
        name: "unknown-reader-feature",
        command: &["inspect"],
        code: 2,
        expected: "rewind: error: [SAVEPOINT]/_manifest.json: savepoint needs reader features this build does not support: deletion-vectors; upgrade rewind\n",
    },
    Case {
        name: "path-escape",
        command: &["validate"],
        code: 2,
        expected: "rewind: error: [SAVEPOINT]/_manifest.json: invalid path \"../../outside.parquet\": path segment escapes the savepoint root\n",
    },
    Case {
        name: "truncated-shard",
        command: &["state", "counter", "count"],
        code: 2,
        expected: "rewind: error: [SAVEPOINT]/[SHARD]: truncated: 300 bytes, the manifest says [BYTES]\n",
    },
    Case {
        name: "truncated-shard",
        command: &["validate"],
        code: 1,
        expected: "size",
    },
    Case {
        name: "missing-shard",
        command: &["state", "counter", "count"],
        code: 2,
        expected: "rewind: error: [SAVEPOINT]/[SHARD]: shard file is missing\n",
    },
    Case {
        name: "missing-shard",
        command: &["validate"],
        code: 1,
        expected: "missing",
    },
    Case {
        name: "not-parquet",
        command: &["state", "counter", "count"],
        code: 2,
        expected: "rewind: error: [SAVEPOINT]/[SHARD]: not a readable Parquet file: Parquet error: Invalid Parquet file. Corrupt footer\n",
    },
    Case {
        name: "not-parquet",
        command: &["validate"],
        code: 1,
        expected: "unreadable",
    },
    Case {
        name: "bit-flip",
        command: &["validate"],
        code: 1,
        expected: "checksum",
    },
    Case {
        name: "checksum-mismatch",
        command: &["validate"],
        code: 1,
        expected: "checksum",
    },
    Case {
        name: "row-count-mismatch",
        command: &["validate"],
        code: 1,
        expected: "row_count",
    },
    Case {
        name: "schema-mismatch",
        command: &["state", "counter", "count"],
        code: 2,
        expected: "rewind: error: [SAVEPOINT]/[SHARD]: column \"value\" has type uint64, the manifest says utf8\n",
    },
    Case {
        name: "schema-mismatch",
        command: &["validate"],
        code: 1,
        expected: "schema,schema",
    },
    Case {
        name: "coverage-gap",
        command: &["validate"],
        code: 1,
        expected: "coverage,hash_range",
    },
    Case {
        name: "unlisted-file",
        command: &["validate"],
        code: 1,
        expected: "unlisted",
    },
    // Found by the shard fuzz target: a dictionary-encoded page without its dictionary,
    // on which the Parquet decoder panics; the reader turns that into this shard's error.
    Case {
        name: "parquet-dictionary-page-missing",
        command: &["state", "counter", "count"],
        code: 2,
        expected: "rewind: error: [SAVEPOINT]/state/counter/count/00000-f0000000.parquet: the Parquet decoder failed on this file: Decoder for dict should have been set\n",
    },
    Case {
        name: "parquet-dictionary-page-missing",
        command: &["validate", "--deep"],
        code: 1,
        expected: "unreadable",
    },
    // Found by the flink_metadata fuzz target: a key-group range whose end overflows i32
    // (it panicked in debug builds and wrapped silently in release ones).
    Case {
        name: "flink-key-group-overflow",
        command: &["inspect"],
        code: 2,
        expected: "rewind: error: [SAVEPOINT]/_metadata: corrupt at byte 138: key-group range of 909129522 from 1631151414 is out of bounds\n",
    },
];

fn first_shard(manifest: &Value) -> (String, u64) {
    let shard = &manifest["operators"][0]["states"][0]["shards"][0];
    (
        shard["path"].as_str().unwrap().to_string(),
        shard["bytes"].as_u64().unwrap(),
    )
}

#[test]
fn every_corrupt_fixture_fails_as_recorded() {
    for case in CASES {
        let (_guard, copy) = fixture_copy(&format!("corrupt/{}", case.name));
        let sp = copy.join("savepoint");
        let sp_text = sp.to_str().unwrap();
        let mut args = vec![case.command[0], sp_text];
        args.extend(&case.command[1..]);
        if case.code == 1 {
            args.push("--json");
        }
        let run = rewind(&args);
        assert_eq!(
            run.code, case.code,
            "{} {:?}: {}{}",
            case.name, case.command, run.stdout, run.stderr
        );
        assert!(
            !run.stderr.contains("panicked"),
            "{}: {}",
            case.name,
            run.stderr
        );
        if case.code == 1 {
            let report: Value = serde_json::from_str(&run.stdout).unwrap();
            let kinds: Vec<&str> = report["problems"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["kind"].as_str().unwrap())
                .collect();
            assert_eq!(
                kinds.join(","),
                case.expected,
                "{}: {}",
                case.name,
                run.stdout
            );
        } else {
            let mut expected = case.expected.to_string();
            if let Ok(text) = std::fs::read_to_string(
                fixtures_dir().join("v1/keyed-primitive/savepoint/_manifest.json"),
            ) {
                let (path, bytes) = first_shard(&serde_json::from_str(&text).unwrap());
                expected = expected
                    .replace("[SHARD]", &path)
                    .replace("[BYTES]", &bytes.to_string());
            }
            assert_eq!(redact(&run.stderr, &sp), expected, "{}", case.name);
            assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
        }
    }
}

#[test]
fn every_corrupt_fixture_has_a_case() {
    let dir = fixtures_dir().join("corrupt");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in &names {
        assert!(
            CASES.iter().any(|c| c.name == name),
            "fixtures/corrupt/{name} has no test case"
        );
    }
    for case in CASES {
        assert!(
            names.iter().any(|n| n == case.name),
            "case {} has no fixture",
            case.name
        );
    }
}

#[test]
fn empty_folder_is_not_a_savepoint() {
    let dir = tempfile::tempdir().unwrap();
    let run = rewind(&["inspect", dir.path().to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert_eq!(
        redact(&run.stderr, dir.path()),
        "rewind: error: [SAVEPOINT]: not a savepoint (no _manifest.json and no files)\n"
    );
}

fn edit_manifest(sp: &Path, edit: impl FnOnce(&mut Value)) {
    let path = sp.join("_manifest.json");
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut manifest);
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
}

/// Derives each corrupt case from a valid savepoint. Existing cases are left alone.
pub async fn make_corrupt_fixtures(base: &Path) {
    let root = fixtures_dir().join("corrupt");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(base.join("_manifest.json")).unwrap()).unwrap();
    let (shard, _) = first_shard(&manifest);
    let names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
    for name in names {
        let sp: PathBuf = root.join(name).join("savepoint");
        if sp.exists() {
            continue;
        }
        copy_dir(base, &sp);
        let shard_file = sp.join(&shard);
        match name {
            "incomplete" => std::fs::remove_file(sp.join("_manifest.json")).unwrap(),
            "invalid-json" => {
                let text = std::fs::read_to_string(sp.join("_manifest.json")).unwrap();
                let cut: String = text.lines().take(18).collect::<Vec<_>>().join("\n");
                std::fs::write(sp.join("_manifest.json"), cut + "\n").unwrap();
            }
            "not-a-savepoint" => edit_manifest(&sp, |m| m["format"] = "delta-table".into()),
            "too-new-major" => edit_manifest(&sp, |m| m["version"] = "2.0".into()),
            "unknown-reader-feature" => edit_manifest(&sp, |m| {
                m["reader_features"] = serde_json::json!(["deletion-vectors"])
            }),
            "path-escape" => edit_manifest(&sp, |m| {
                m["operators"][0]["states"][0]["shards"][0]["path"] = "../../outside.parquet".into()
            }),
            "truncated-shard" => {
                let bytes = std::fs::read(&shard_file).unwrap();
                std::fs::write(&shard_file, &bytes[..300]).unwrap();
            }
            "missing-shard" => std::fs::remove_file(&shard_file).unwrap(),
            "not-parquet" => {
                let size = std::fs::metadata(&shard_file).unwrap().len() as usize;
                let text = "this is not parquet\n".repeat(size / 20 + 1);
                let text = &text.as_bytes()[..size];
                std::fs::write(&shard_file, text).unwrap();
                let crc = format!("{:08x}", crc32c(text));
                edit_manifest(&sp, |m| {
                    m["operators"][0]["states"][0]["shards"][0]["crc32c"] = crc.into()
                });
            }
            "bit-flip" => {
                let mut bytes = std::fs::read(&shard_file).unwrap();
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0x10;
                std::fs::write(&shard_file, bytes).unwrap();
            }
            "checksum-mismatch" => edit_manifest(&sp, |m| {
                m["operators"][0]["states"][0]["shards"][0]["crc32c"] = "00000000".into()
            }),
            "row-count-mismatch" => edit_manifest(&sp, |m| {
                let rows = m["operators"][0]["states"][0]["shards"][0]["rows"]
                    .as_u64()
                    .unwrap();
                m["operators"][0]["states"][0]["shards"][0]["rows"] = (rows + 1).into();
            }),
            "schema-mismatch" => edit_manifest(&sp, |m| {
                m["operators"][0]["states"][0]["value_type"] = "utf8".into()
            }),
            "coverage-gap" => edit_manifest(&sp, |m| {
                m["operators"][0]["states"][0]["shards"][1]["hash_range"]["start"] =
                    "9000000000000000".into()
            }),
            "unlisted-file" => {
                std::fs::write(sp.join("state/stray.parquet"), b"left by a crashed writer").unwrap()
            }
            other => panic!("no recipe for corrupt case {other}"),
        }
    }
}

/// CRC-32C (Castagnoli), bitwise: slow and independent of the crate the library uses.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
