//! Corrupt, truncated, too-new and hostile savepoints: each fails with one clear line and
//! the documented exit code, never a panic. Every folder in fixtures/corrupt has a case here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, UInt64Type};
use arrow_array::{Int64Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

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
        expected: "rewind: error: [SAVEPOINT]/_manifest.json: savepoint format version 2.0 is newer than this build supports (up to 1.1); upgrade rewind\n",
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
    // on which the Parquet decoder panics. The file also lacks ARROW:schema, which readers
    // now refuse first (the panic guard itself is tested in parquet_io.rs on this file).
    Case {
        name: "parquet-dictionary-page-missing",
        command: &["state", "counter", "count"],
        code: 2,
        expected: "rewind: error: [SAVEPOINT]/state/counter/count/00000-f0000000.parquet: no ARROW:schema in the Parquet footer; the spec requires the Arrow schema there\n",
    },
    Case {
        name: "parquet-dictionary-page-missing",
        command: &["validate", "--deep"],
        code: 1,
        expected: "schema",
    },
    // Found by the flink_metadata fuzz target: a key-group range whose end overflows i32
    // (it panicked in debug builds and wrapped silently in release ones).
    Case {
        name: "flink-key-group-overflow",
        command: &["inspect"],
        code: 2,
        expected: "rewind: error: [SAVEPOINT]/_metadata: corrupt at byte 138: key-group range of 909129522 from 1631151414 is out of bounds\n",
    },
    // Spec decisions of format 1.0 (spec/CHANGELOG.md, "1.0 clarifications"): each
    // refusal has its fixture.
    Case {
        name: "duplicate-member",
        command: &["inspect"],
        code: 2,
        expected: "rewind: error: [SAVEPOINT]/_manifest.json: invalid JSON at line 4, column 42: duplicate member \"reader_features\"\n",
    },
    Case {
        name: "byte-order-mark",
        command: &["inspect"],
        code: 2,
        expected: "rewind: error: [SAVEPOINT]/_manifest.json: invalid JSON at line 1, column 1: the manifest starts with a byte-order mark (UTF-8 without one is required)\n",
    },
    Case {
        name: "non-integral-number",
        command: &["inspect"],
        code: 2,
        expected: "rewind: error: [SAVEPOINT]/_manifest.json: invalid manifest: line 41, column 26: invalid type: floating point `28.0`, expected u64\n",
    },
    Case {
        name: "unknown-kind",
        command: &["inspect"],
        code: 2,
        expected: "rewind: error: [SAVEPOINT]/_manifest.json: invalid manifest: line 12, column 20: unknown variant `snapshot`, expected `savepoint` or `checkpoint`\n",
    },
    Case {
        name: "id-with-slash",
        command: &["inspect"],
        code: 2,
        expected: "rewind: error: [SAVEPOINT]/_manifest.json: invalid manifest: id: savepoint id \"../cc3860ee\" contains '.'; allowed are A-Z a-z 0-9 _ -\n",
    },
    Case {
        name: "path-reserved-name",
        command: &["validate"],
        code: 2,
        expected: "rewind: error: [SAVEPOINT]/_manifest.json: invalid path \"state/counter/count/CON.parquet\": path segment is a name Windows reserves or ends in '.'\n",
    },
    Case {
        name: "path-case-collision",
        command: &["validate"],
        code: 2,
        expected: "rewind: error: [SAVEPOINT]/_manifest.json: invalid manifest: operators[0].states[0].shards[1]: path \"state/counter/count/00000-CC3860EE.parquet\" differs from another shard's only in letter case\n",
    },
    Case {
        name: "struct-too-wide",
        command: &["inspect"],
        code: 2,
        expected: "rewind: error: [SAVEPOINT]/_manifest.json: invalid manifest: operators[0].states[1]: value_type: unsupported type \"struct<f0: int8, f1: int8, f2: int8, f3: int8, f4: int8, f5:...\": a struct has at most 4096 fields at byte 52150\n",
    },
    Case {
        name: "no-arrow-schema",
        command: &["state", "counter", "count"],
        code: 2,
        expected: "rewind: error: [SAVEPOINT]/[SHARD]: no ARROW:schema in the Parquet footer; the spec requires the Arrow schema there\n",
    },
    Case {
        name: "no-arrow-schema",
        command: &["validate"],
        code: 1,
        expected: "schema",
    },
    Case {
        name: "null-key",
        command: &["state", "counter", "count"],
        code: 2,
        expected: "rewind: error: [SAVEPOINT]/[SHARD]: column \"key\" holds a null at row 28; the spec forbids nulls there\n",
    },
    Case {
        name: "null-key",
        command: &["validate"],
        code: 1,
        expected: "column_value",
    },
    Case {
        name: "timer-domain-legacy",
        command: &["validate"],
        code: 1,
        expected: "column_value",
    },
    Case {
        name: "lean-without-feature",
        command: &["state", "counter", "count"],
        code: 2,
        expected: "rewind: error: [SAVEPOINT]/[SHARD]: columns [\"key\", \"value\"], the manifest's state \"count\" needs [\"key_hash\", \"key\", \"value\"] (a lean shard, but the manifest does not list the reader feature \"lean_keyed_shards\")\n",
    },
    Case {
        name: "lean-without-feature",
        command: &["validate"],
        code: 1,
        expected: "schema,schema,schema,schema",
    },
    Case {
        name: "lean-ranges-missing",
        command: &["state", "counter", "count", "--key", "1"],
        code: 2,
        expected: "rewind: error: [SAVEPOINT]/[SHARD]: a keyed shard without key_hash needs rewind.key_hash_ranges in its footer\n",
    },
    Case {
        name: "lean-ranges-missing",
        command: &["validate"],
        code: 1,
        expected: "hash_range",
    },
    Case {
        name: "lean-range-wrong",
        command: &["validate", "--deep"],
        code: 1,
        expected: "hash_range",
    },
    Case {
        name: "incremental-without-feature",
        command: &["inspect"],
        code: 2,
        expected: "rewind: error: [SAVEPOINT]/_manifest.json: invalid manifest: operators[0].states[0].shards[0]: a shard with a sibling or a layer needs the reader feature \"incremental_checkpoints\"\n",
    },
    Case {
        name: "incremental-shared-missing",
        command: &["validate"],
        code: 1,
        expected: "missing",
    },
    Case {
        name: "lineage-without-parent",
        command: &["validate"],
        code: 1,
        expected: "lineage",
    },
    Case {
        name: "shard-is-directory",
        command: &["state", "counter", "count"],
        code: 2,
        expected: "rewind: error: [SAVEPOINT]/[SHARD]: shard file is missing\n",
    },
    Case {
        name: "shard-is-directory",
        command: &["validate"],
        code: 1,
        expected: "missing,unlisted",
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
            // The first shard as the fixture's own manifest names it (the lean cases are
            // derived from a migrated copy), else as the base savepoint's does.
            let own = std::fs::read_to_string(sp.join("_manifest.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .filter(|m| m["operators"][0]["states"][0]["shards"][0]["path"].is_string());
            let base = || {
                std::fs::read_to_string(
                    fixtures_dir().join("v1/keyed-primitive/savepoint/_manifest.json"),
                )
                .ok()
                .map(|t| serde_json::from_str::<Value>(&t).unwrap())
            };
            if let Some(manifest) = own.or_else(base) {
                let (path, bytes) = first_shard(&manifest);
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

/// Derives each corrupt case from a valid savepoint (the `lean-*` cases from it migrated to
/// format 1.1, lean). Existing cases are left alone.
pub async fn make_corrupt_fixtures(base: &Path) {
    let root = fixtures_dir().join("corrupt");
    let lean_dir = tempfile::tempdir().unwrap();
    let lean_base = lean_dir.path().join("lean");
    let run = rewind(&[
        "migrate",
        base.to_str().unwrap(),
        lean_base.to_str().unwrap(),
        "--to-format-version",
        "1.1",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(base.join("_manifest.json")).unwrap()).unwrap();
    let (shard, _) = first_shard(&manifest);
    let names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
    for name in names {
        let sp: PathBuf = root.join(name).join("savepoint");
        if sp.exists() {
            continue;
        }
        if name.starts_with("incremental-") {
            // The golden chain, all three checkpoints: the last lists the others' files.
            let chain = fixtures_dir().join("v1.1/incremental-chain");
            for folder in ["chk-0000000001", "chk-0000000002", "savepoint"] {
                copy_dir(&chain.join(folder), &root.join(name).join(folder));
            }
            match name {
                "incremental-without-feature" => edit_manifest(&sp, |m| {
                    m["reader_features"] = serde_json::json!(["lean_keyed_shards"])
                }),
                _ => {
                    let manifest: Value =
                        serde_json::from_slice(&std::fs::read(sp.join("_manifest.json")).unwrap())
                            .unwrap();
                    let (path, _) = first_shard(&manifest);
                    std::fs::remove_file(root.join(name).join("chk-0000000001").join(path))
                        .unwrap();
                }
            }
            continue;
        }
        let lean = name.starts_with("lean-");
        copy_dir(if lean { &lean_base } else { base }, &sp);
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
            "duplicate-member" => edit_text(&sp, |t| {
                t.replacen(
                    "\"reader_features\": [],",
                    "\"reader_features\": [], \"reader_features\": [\"x\"],",
                    1,
                )
            }),
            "byte-order-mark" => edit_text(&sp, |t| format!("\u{feff}{t}")),
            "non-integral-number" => {
                edit_text(&sp, |t| t.replacen("\"rows\": 28,", "\"rows\": 28.0,", 1))
            }
            "unknown-kind" => edit_manifest(&sp, |m| m["kind"] = "snapshot".into()),
            "id-with-slash" => edit_manifest(&sp, |m| m["id"] = "../cc3860ee".into()),
            "path-reserved-name" => edit_manifest(&sp, |m| {
                m["operators"][0]["states"][0]["shards"][0]["path"] =
                    "state/counter/count/CON.parquet".into()
            }),
            "path-case-collision" => edit_manifest(&sp, |m| {
                m["operators"][0]["states"][0]["shards"][1]["path"] =
                    shard.replace("cc3860ee", "CC3860EE").into()
            }),
            "struct-too-wide" => edit_manifest(&sp, |m| {
                let fields: Vec<String> = (0..=4096).map(|i| format!("f{i}: int8")).collect();
                m["operators"][0]["states"][1]["value_type"] =
                    format!("struct<{}>", fields.join(", ")).into();
            }),
            "no-arrow-schema" => rewrite_shard(&sp, 0, 0, |batch| (batch, false)),
            "null-key" => rewrite_shard(&sp, 0, 0, |batch| (with_null_key(&batch), true)),
            "timer-domain-legacy" => add_legacy_timers(&sp),
            "lean-without-feature" => edit_manifest(&sp, |m| {
                m["reader_features"] = serde_json::json!([]);
            }),
            "lean-ranges-missing" => rewrite_shard(&sp, 0, 0, |batch| (batch, true)),
            "lean-range-wrong" => rewrite_lean_ranges(&sp, "0000000000000000-0000000000000000"),
            "lineage-without-parent" => edit_manifest(&sp, |m| {
                m["lineage"] = serde_json::json!({"operation": "rescale"})
            }),
            "shard-is-directory" => {
                std::fs::remove_file(&shard_file).unwrap();
                std::fs::create_dir(&shard_file).unwrap();
                std::fs::write(
                    shard_file.join("README"),
                    "a directory where a shard should be\n",
                )
                .unwrap();
            }
            other => panic!("no recipe for corrupt case {other}"),
        }
    }
}

/// Rewrites the first shard of a lean savepoint with the Parquet writer, its rows
/// unchanged and `rewind.key_hash_ranges` set to `ranges` (inside the shard's range, so
/// only a deep validation finds the rows outside it); fixes up bytes and CRC-32C.
fn rewrite_lean_ranges(sp: &Path, ranges: &str) {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(sp.join("_manifest.json")).unwrap()).unwrap();
    let (shard, _) = first_shard(&manifest);
    let path = sp.join(shard);
    let file = std::fs::File::open(&path).unwrap();
    let batches: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect();
    let batch = arrow_select_concat(&batches);
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
        .set_key_value_metadata(Some(vec![parquet::file::metadata::KeyValue::new(
            "rewind.key_hash_ranges".to_string(),
            ranges.to_string(),
        )]))
        .build();
    let file = std::fs::File::create(&path).unwrap();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let crc = format!("{:08x}", crc32c(&bytes));
    edit_manifest(sp, |m| {
        let entry = &mut m["operators"][0]["states"][0]["shards"][0];
        entry["bytes"] = bytes.len().into();
        entry["crc32c"] = crc.into();
    });
}

fn edit_text(sp: &Path, edit: impl FnOnce(&str) -> String) {
    let path = sp.join("_manifest.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, edit(&text)).unwrap();
}

/// Rewrites shard `shard` of state `state` of operator 0 with Parquet's own writer (not
/// Rewind's, which refuses to write what these cases need): the rows `change` returns,
/// with or without the `ARROW:schema` footer entry; fixes up rows, bytes and CRC-32C.
fn rewrite_shard(
    sp: &Path,
    state: usize,
    shard: usize,
    change: impl FnOnce(RecordBatch) -> (RecordBatch, bool),
) {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(sp.join("_manifest.json")).unwrap()).unwrap();
    let path = sp.join(
        manifest["operators"][0]["states"][state]["shards"][shard]["path"]
            .as_str()
            .unwrap(),
    );
    let file = std::fs::File::open(&path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    let batch = arrow_select_concat(&batches);
    let (batch, arrow_schema) = change(batch);
    write_parquet(&path, &batch, arrow_schema);
    let bytes = std::fs::read(&path).unwrap();
    let crc = format!("{:08x}", crc32c(&bytes));
    edit_manifest(sp, |m| {
        let entry = &mut m["operators"][0]["states"][state]["shards"][shard];
        entry["rows"] = batch.num_rows().into();
        entry["bytes"] = bytes.len().into();
        entry["crc32c"] = crc.into();
    });
}

fn arrow_select_concat(batches: &[RecordBatch]) -> RecordBatch {
    let schema = batches[0].schema();
    let columns = (0..schema.fields().len())
        .map(|c| {
            let parts: Vec<&dyn arrow_array::Array> =
                batches.iter().map(|b| b.column(c).as_ref()).collect();
            arrow_select::concat::concat(&parts).unwrap()
        })
        .collect();
    RecordBatch::try_new(schema, columns).unwrap()
}

fn write_parquet(path: &Path, batch: &RecordBatch, arrow_schema: bool) {
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
        .build();
    let options = parquet::arrow::arrow_writer::ArrowWriterOptions::new()
        .with_properties(props)
        .with_skip_arrow_metadata(!arrow_schema);
    let file = std::fs::File::create(path).unwrap();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new_with_options(file, batch.schema(), options).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
}

/// The batch with one more row at its end: a null key with the last row's hash (so the
/// order and range still hold and only the null is wrong).
fn with_null_key(batch: &RecordBatch) -> RecordBatch {
    let n = batch.num_rows();
    let hashes = batch.column(0).as_primitive::<UInt64Type>();
    let keys = batch.column(1).as_primitive::<Int64Type>();
    let values = batch.column(2).as_primitive::<UInt64Type>();
    let hash: UInt64Array = hashes.iter().chain([Some(hashes.value(n - 1))]).collect();
    let key: Int64Array = keys.iter().chain([None]).collect();
    let value: UInt64Array = values.iter().chain([Some(1)]).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("key_hash", DataType::UInt64, false),
        Field::new("key", DataType::Int64, true),
        Field::new("value", DataType::UInt64, true),
    ]));
    RecordBatch::try_new(schema, vec![Arc::new(hash), Arc::new(key), Arc::new(value)]).unwrap()
}

/// A timers state whose one shard (whole hash space) holds the domains `event` and
/// `processing`, as `rewind import-flink` 0.1.0 wrote them.
fn add_legacy_timers(sp: &Path) {
    let keys = [7i64, -3, 42];
    let mut rows: Vec<(u64, i64)> = keys
        .iter()
        .map(|&k| {
            (
                rewind_format::hash_keys(&Int64Array::from(vec![k])).unwrap()[0],
                k,
            )
        })
        .collect();
    rows.sort_unstable();
    let schema = Arc::new(Schema::new(vec![
        Field::new("key_hash", DataType::UInt64, false),
        Field::new("key", DataType::Int64, false),
        Field::new("domain", DataType::Utf8, false),
        Field::new("timestamp", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(StringArray::from(vec!["event", "processing", "event"])),
            Arc::new(Int64Array::from(vec![1000, 2000, 3000])),
        ],
    )
    .unwrap();
    let rel = "state/counter/timers/00004-cc3860ee.parquet";
    std::fs::create_dir_all(sp.join("state/counter/timers")).unwrap();
    write_parquet(&sp.join(rel), &batch, true);
    let bytes = std::fs::read(sp.join(rel)).unwrap();
    let crc = format!("{:08x}", crc32c(&bytes));
    edit_manifest(sp, |m| {
        m["operators"][0]["states"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "name": "timers",
                "kind": "timers",
                "key_type": "int64",
                "shards": [{
                    "path": rel,
                    "hash_range": {"start": "0000000000000000", "end": "ffffffffffffffff"},
                    "rows": 3,
                    "bytes": bytes.len(),
                    "crc32c": crc,
                }],
            }))
    });
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
