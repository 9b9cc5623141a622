use super::*;
use crate::{MAX_STRUCT_FIELDS, MAX_TYPE_LEN};

const EXAMPLE: &str = r#"{
  "format": "rewind-savepoint",
  "version": "1.0",
  "id": "5f0c1a52-0d7e-4a8e-9d55-0f7f6c1d2b3a",
  "kind": "savepoint",
  "created_at": "2026-11-24T12:00:00Z",
  "writer": {"name": "rewind", "version": "0.1.0"},
  "job": {"name": "keyed-count", "app_version": "1.2.0"},
  "checkpoint_id": 7,
  "lineage": {"operation": "engine"},
  "key_hash": "xxh3_64",
  "some_future_field": {"ignored": true},
  "operators": [
    {
      "uid": "source", "name": "Generator", "parallelism": 1,
      "source": {"splits": [{"id": "partition-0", "position": {"offset": 12}, "watermark": 1000}]},
      "states": [{
        "name": "buffer", "kind": "operator_list", "value_type": "int64", "redistribution": "split",
        "shards": [{"path": "state/source/buffer/0.parquet", "subtask": 0, "rows": 2, "bytes": 100, "crc32c": "0a0b0c0d"}]
      }]
    },
    {
      "uid": "counter", "name": "Counter", "parallelism": 2,
      "states": [{
        "name": "count", "kind": "value", "key_type": "int64", "value_type": "uint64",
        "shards": [
          {"path": "state/counter/count/0.parquet", "hash_range": {"start": "0000000000000000", "end": "7fffffffffffffff"}, "rows": 5, "bytes": 900, "crc32c": "00000001"},
          {"path": "state/counter/count/1.parquet", "hash_range": {"start": "8000000000000000", "end": "ffffffffffffffff"}, "rows": 6, "bytes": 901, "crc32c": "00000002"}
        ]
      }]
    }
  ]
}"#;

fn with(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
    edit(&mut v);
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn parses_the_example_and_round_trips() {
    let m = Manifest::from_json(EXAMPLE.as_bytes()).unwrap();
    assert_eq!(m.version, FormatVersion::V1_0);
    assert_eq!(m.operators.len(), 2);
    assert_eq!(
        m.operator("counter")
            .unwrap()
            .state("count")
            .unwrap()
            .rows(),
        11
    );
    assert!(m.problems().is_empty());
    let again = Manifest::from_json(&m.to_json()).unwrap();
    assert_eq!(again, m);
}

#[test]
fn json_errors_have_positions() {
    let err = Manifest::from_json(b"{\n  \"format\": ,\n}").unwrap_err();
    assert!(
        matches!(
            err,
            FormatError::Json {
                line: 2,
                column: 13,
                ..
            }
        ),
        "{err:?}"
    );
}

/// An error at the end of the input is at its last byte (spec: "Parsing order" 1).
#[test]
fn json_errors_at_the_end_are_at_the_last_byte() {
    for (input, line, column) in [
        (&b"{\"a\":"[..], 1, 5),
        (b"{\n  \"a\": 1,\n", 3, 0),
        (b"", 1, 0),
        (b"{\n  \"ab\"", 2, 6),
    ] {
        let err = Manifest::from_json(input).unwrap_err();
        let position = match &err {
            FormatError::Json { line, column, .. } => (*line, *column),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            position,
            (line, column),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn not_a_savepoint_before_too_new() {
    let err = Manifest::from_json(&with(|v| {
        v["format"] = "delta".into();
        v["version"] = "9.0".into();
    }))
    .unwrap_err();
    assert!(matches!(err, FormatError::NotASavepoint { .. }), "{err:?}");
    let err = Manifest::from_json(b"[1, 2]").unwrap_err();
    assert!(matches!(err, FormatError::NotASavepoint { .. }), "{err:?}");
}

#[test]
fn too_new_major_is_unsupported_even_if_the_rest_changed() {
    let err = Manifest::from_json(&with(|v| {
        v["version"] = "2.0".into();
        v["operators"] = "a new layout".into();
    }))
    .unwrap_err();
    assert_eq!(
        err,
        FormatError::Unsupported {
            version: FormatVersion { major: 2, minor: 0 },
            missing_features: vec![]
        }
    );
    assert!(err.to_string().contains("newer than this build"), "{err}");
}

#[test]
fn newer_minor_is_read() {
    let m = Manifest::from_json(&with(|v| v["version"] = "1.9".into())).unwrap();
    assert_eq!(m.version.minor, 9);
}

#[test]
fn unknown_reader_feature_is_named() {
    let err = Manifest::from_json(&with(|v| {
        v["reader_features"] = serde_json::json!(["row-filters"]);
    }))
    .unwrap_err();
    assert!(err.to_string().contains("row-filters"), "{err}");
    assert!(
        matches!(err, FormatError::Unsupported { ref missing_features, .. } if missing_features == &["row-filters"])
    );
}

#[test]
fn unknown_writer_feature_is_fine() {
    Manifest::from_json(&with(|v| v["writer_features"] = serde_json::json!(["x"]))).unwrap();
}

#[test]
fn escaping_path_is_refused() {
    let err = Manifest::from_json(&with(|v| {
        v["operators"][1]["states"][0]["shards"][0]["path"] = "../../etc/passwd".into();
    }))
    .unwrap_err();
    assert!(matches!(err, FormatError::InvalidPath { .. }), "{err:?}");
}

#[test]
fn rule_breaks_name_their_location() {
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|v| v["operators"][1]["uid"] = "source".into()),
            "duplicate uid",
        ),
        (
            Box::new(|v| v["operators"][1]["parallelism"] = 0.into()),
            "parallelism",
        ),
        (
            Box::new(|v| v["operators"][1]["states"][0]["key_type"] = "float64".into()),
            "cannot be hashed",
        ),
        (
            Box::new(|v| v["operators"][1]["states"][0]["value_type"] = "decimal".into()),
            "value_type",
        ),
        (
            Box::new(|v| v["operators"][1]["states"][0]["kind"] = "list".into()),
            "list<...>",
        ),
        (
            Box::new(|v| v["operators"][1]["states"][0]["kind"] = "map".into()),
            "user_key_type",
        ),
        (
            Box::new(|v| v["operators"][0]["states"][0]["shards"][0]["subtask"] = 1.into()),
            "not below parallelism",
        ),
        (
            Box::new(|v| v["operators"][1]["states"][0]["shards"][0]["crc32c"] = "xyz".into()),
            "crc32c",
        ),
        (
            Box::new(|v| {
                v["operators"][1]["states"][0]["shards"][1]["path"] =
                    "state/counter/count/0.parquet".into()
            }),
            "listed twice",
        ),
        (
            Box::new(|v| v["key_hash"] = "md5".into()),
            "unknown algorithm",
        ),
        (
            Box::new(|v| v["kind"] = "snapshot".into()),
            "unknown variant `snapshot`",
        ),
        (
            Box::new(|v| v["checkpoint_id"] = serde_json::json!(7.0)),
            "floating point",
        ),
        (
            Box::new(|v| {
                v["operators"][1]["states"][0]["shards"][0]["rows"] = serde_json::json!(5.0)
            }),
            "floating point",
        ),
        (Box::new(|v| v["id"] = "a/b".into()), "contains '/'"),
        (
            Box::new(|v| v["id"] = "x".repeat(MAX_ID_LEN + 1).into()),
            "longer than 128",
        ),
        (
            Box::new(|v| {
                v["operators"][1]["states"][0]["shards"][1]["path"] =
                    "state/counter/count/0.PARQUET".into()
            }),
            "only in letter case",
        ),
        (
            Box::new(|v| {
                let fields: Vec<String> = (0..=MAX_STRUCT_FIELDS)
                    .map(|i| format!("f{i}: int8"))
                    .collect();
                v["operators"][1]["states"][0]["value_type"] =
                    format!("struct<{}>", fields.join(", ")).into();
            }),
            "at most 4096 fields",
        ),
        (
            Box::new(|v| {
                v["operators"][1]["states"][0]["value_type"] =
                    format!("struct<a: int8{}>", " ".repeat(MAX_TYPE_LEN)).into();
            }),
            "longer than 65536 bytes",
        ),
        (
            Box::new(|v| {
                let shard = v["operators"][0]["states"][0].clone();
                let states: Vec<serde_json::Value> = (0..=MAX_STATES)
                    .map(|i| {
                        let mut s = shard.clone();
                        s["name"] = format!("s{i}").into();
                        s["shards"] = serde_json::json!([]);
                        s
                    })
                    .collect();
                v["operators"][0]["states"] = states.into();
            }),
            "1001 states, more than the 1000",
        ),
    ];
    for (edit, expected) in cases {
        let err = Manifest::from_json(&with(edit)).unwrap_err();
        assert!(matches!(err, FormatError::Invalid { .. }), "{err:?}");
        assert!(
            err.to_string().contains(expected),
            "{err} should mention {expected}"
        );
    }
}

#[test]
fn missing_field_gives_line() {
    let err = Manifest::from_json(&with(|v| {
        v.as_object_mut().unwrap().remove("created_at");
    }))
    .unwrap_err();
    assert!(err.to_string().contains("created_at"), "{err}");
}

#[test]
fn coverage_gaps_are_problems() {
    let bytes = with(|v| {
        v["operators"][1]["states"][0]["shards"][1]["hash_range"]["start"] =
            "9000000000000000".into();
    });
    let m = Manifest::from_json(&bytes).unwrap();
    let problems = m.problems();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].operator, "counter");
    assert!(
        problems[0]
            .message
            .contains("8000000000000000..=8fffffffffffffff"),
        "{:?}",
        problems[0]
    );
}

#[test]
fn duplicate_members_are_invalid_json() {
    let text = EXAMPLE.replace(
        r#""key_hash": "xxh3_64","#,
        r#""key_hash": "xxh3_64", "reader_features": ["x"], "reader_features": [],"#,
    );
    let err = Manifest::from_json(text.as_bytes()).unwrap_err();
    let FormatError::Json { line, message, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*line, 11);
    assert_eq!(message, "duplicate member \"reader_features\"");
    // Nested objects too, and before "not a savepoint".
    let err = Manifest::from_json(br#"{"format": "x", "a": {"b": 1, "b": 2}}"#).unwrap_err();
    assert!(matches!(err, FormatError::Json { line: 1, .. }), "{err:?}");
}

#[test]
fn a_byte_order_mark_is_invalid_json() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(EXAMPLE.as_bytes());
    let err = Manifest::from_json(&bytes).unwrap_err();
    assert!(
        matches!(&err, FormatError::Json { line: 1, column: 1, message } if message.contains("byte-order mark")),
        "{err:?}"
    );
}

#[test]
fn invalid_utf8_is_invalid_json() {
    let text = EXAMPLE.replace("Generator", "Gen\u{fffd}rator");
    let bytes = text.as_bytes().to_vec();
    let at = bytes
        .windows(3)
        .position(|w| w == "\u{fffd}".as_bytes())
        .unwrap();
    let mut bytes = bytes;
    bytes.splice(at..at + 3, [0xff]);
    let err = Manifest::from_json(&bytes).unwrap_err();
    assert!(matches!(err, FormatError::Json { line: 15, .. }), "{err:?}");
}

#[test]
fn an_oversized_manifest_is_refused_before_parsing() {
    let mut bytes = EXAMPLE.as_bytes().to_vec();
    bytes.resize(MAX_MANIFEST_BYTES + 1, b' ');
    let err = Manifest::from_json(&bytes).unwrap_err();
    assert!(err.to_string().contains("more than the"), "{err}");
}

#[test]
fn unknown_members_inside_hash_range_are_ignored() {
    let m = Manifest::from_json(&with(|v| {
        v["operators"][1]["states"][0]["shards"][0]["hash_range"]["exclusive"] = true.into();
    }))
    .unwrap();
    assert!(m.problems().is_empty());
}

#[test]
fn version_leading_zeros_read_as_numbers() {
    let m = Manifest::from_json(&with(|v| v["version"] = "01.00".into())).unwrap();
    assert_eq!(m.version, FormatVersion::V1_0);
}

#[test]
fn lean_shards_are_read_by_this_build_and_refused_by_a_1_0_reader() {
    let lean = with(|v| {
        v["version"] = "1.1".into();
        v["reader_features"] = serde_json::json!([crate::LEAN_KEYED_SHARDS]);
    });
    let m = Manifest::from_json(&lean).unwrap();
    assert_eq!(
        m.reader_features,
        vec![crate::LEAN_KEYED_SHARDS.to_string()]
    );
    // A 1.0 reader implements no reader feature: it refuses, naming the one it lacks.
    let err = Manifest::from_json_supporting(&lean, &[]).unwrap_err();
    assert_eq!(
        err,
        FormatError::Unsupported {
            version: FormatVersion::V1_1,
            missing_features: vec!["lean_keyed_shards".into()],
        }
    );
    assert!(err.to_string().contains("lean_keyed_shards"), "{err}");
}

/// The example as an incremental checkpoint: its count state's base in a sibling folder
/// and `deltas` (path, start, end) as layer 1.
fn incremental(deltas: &[(&str, &str, &str)]) -> Vec<u8> {
    with(|v| {
        v["version"] = "1.1".into();
        v["reader_features"] = serde_json::json!(["incremental_checkpoints"]);
        let shards = v["operators"][1]["states"][0]["shards"]
            .as_array_mut()
            .unwrap();
        for s in shards.iter_mut() {
            s["sibling"] = "chk-0000000006".into();
        }
        for (path, start, end) in deltas {
            shards.push(serde_json::json!({
                "path": path, "layer": 1, "rows": 1, "bytes": 10, "crc32c": "00000003",
                "hash_range": {"start": start, "end": end}
            }));
        }
    })
}

#[test]
fn incremental_checkpoints_need_their_feature_and_keep_layers_apart() {
    let ok = incremental(&[(
        "state/counter/count/d0.parquet",
        "0000000000000000",
        "00000000000000ff",
    )]);
    let m = Manifest::from_json(&ok).unwrap();
    // A delta layer may leave gaps; the base still tiles the hash space.
    assert!(m.problems().is_empty(), "{:?}", m.problems());
    let shard = &m.operator("counter").unwrap().states[0].shards[0];
    assert_eq!(
        shard.file_key(),
        "chk-0000000006/state/counter/count/0.parquet"
    );
    assert_eq!(Manifest::from_json(&m.to_json()).unwrap(), m);

    // The same path in the sibling and in this folder are two files.
    let twin = incremental(&[(
        "state/counter/count/0.parquet",
        "0000000000000000",
        "00000000000000ff",
    )]);
    assert!(Manifest::from_json(&twin).is_ok());

    // Without the feature, a sibling or a layer is refused, naming the feature.
    let mut plain: serde_json::Value = serde_json::from_slice(&ok).unwrap();
    plain["reader_features"] = serde_json::json!([]);
    let e = Manifest::from_json(&serde_json::to_vec(&plain).unwrap()).unwrap_err();
    assert!(e.to_string().contains("incremental_checkpoints"), "{e}");
    // A 1.0 reader (no features) refuses the savepoint by the feature it lacks.
    let e = Manifest::from_json_supporting(&ok, &[]).unwrap_err();
    assert!(
        matches!(&e, FormatError::Unsupported { missing_features, .. } if missing_features == &["incremental_checkpoints"]),
        "{e}"
    );

    // Two shards of one delta layer may not overlap.
    let overlap = incremental(&[
        (
            "state/counter/count/d0.parquet",
            "0000000000000000",
            "00000000000000ff",
        ),
        (
            "state/counter/count/d1.parquet",
            "0000000000000080",
            "0000000000000fff",
        ),
    ]);
    let problems = Manifest::from_json(&overlap).unwrap().problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].message.contains("of layer 1"), "{problems:?}");

    // A sibling is one folder name; operator lists have no layers.
    for bad in [
        with(|v| {
            v["version"] = "1.1".into();
            v["reader_features"] = serde_json::json!(["incremental_checkpoints"]);
            v["operators"][1]["states"][0]["shards"][0]["sibling"] = "a/b".into();
        }),
        with(|v| {
            v["version"] = "1.1".into();
            v["reader_features"] = serde_json::json!(["incremental_checkpoints"]);
            v["operators"][1]["states"][0]["shards"][0]["sibling"] = "..".into();
        }),
        with(|v| {
            v["version"] = "1.1".into();
            v["reader_features"] = serde_json::json!(["incremental_checkpoints"]);
            v["operators"][0]["states"][0]["shards"][0]["layer"] = 1.into();
        }),
    ] {
        assert!(Manifest::from_json(&bad).is_err());
    }
}
