//! The reader and the writer of `_metadata` against real Flink files and each other.

use super::*;

/// Real Flink 2.3 `_metadata` files: canonical savepoints (heap and RocksDB, rich
/// state, a POJO key) and a RocksDB native savepoint.
const SAMPLES: [&[u8]; 5] = [
    include_bytes!(
        "../../../../fixtures/flink/java-hashmap-canonical-n100000/savepoint-d4c30c-92ca55030761/_metadata"
    ),
    include_bytes!(
        "../../../../fixtures/flink/java-rocksdb-native-n100000/savepoint-a4bacb-73dc64045ddf/_metadata"
    ),
    include_bytes!(
        "../../../../fixtures/flink/rich-state-A/savepoint-46a48f-b5c105e0343a/_metadata"
    ),
    include_bytes!(
        "../../../../fixtures/flink/java-rocksdb-canonical-n100000/savepoint-ac0c02-efa32d629dbf/_metadata"
    ),
    include_bytes!("../../../../fixtures/flink/pojo-key/savepoint-57aac4-e3be901eb7e6/_metadata"),
];

/// The native savepoint: RocksDB's files, which the writer refuses.
const NATIVE: usize = 1;

#[test]
fn samples_parse_completely() {
    for bytes in SAMPLES {
        let m = parse(bytes).unwrap();
        assert_eq!((m.version, m.checkpoint_id), (6, 1));
        assert!(m.operators.iter().all(|o| o.max_parallelism == 128));
    }
}

/// Every truncation and thousands of byte flips of real files: an error or a parse,
/// never a panic, and never an allocation sized by a damaged length.
#[test]
fn damaged_metadata_never_panics() {
    for bytes in SAMPLES {
        for len in 0..bytes.len() {
            let _ = parse(&bytes[..len]);
        }
        for damaged in crate::java::flipped(bytes, 0x9E37_79B9_7F4A_7C15, 3000) {
            let _ = parse(&damaged);
        }
    }
}

/// What the reader returns, the writer writes back byte for byte: one vocabulary.
#[test]
fn canonical_samples_write_back_identically() {
    for (i, bytes) in SAMPLES.iter().enumerate() {
        let m = parse(bytes).unwrap();
        if i == NATIVE {
            let e = write(&m).unwrap_err();
            assert!(
                e.contains("RocksDB and changelog keyed state handles cannot be written"),
                "{e}"
            );
            continue;
        }
        assert_eq!(write(&m).unwrap(), *bytes, "sample {i}");
    }
}

/// Version 4 (Flink 1.15-1.20) has no operator names or uids; the rest is version 6's.
#[test]
fn version_4_drops_names_and_uids() {
    let mut m = parse(SAMPLES[0]).unwrap();
    m.version = 4;
    let back = parse(&write(&m).unwrap()).unwrap();
    assert_eq!(back.version, 4);
    for (a, b) in back.operators.iter().zip(&m.operators) {
        assert_eq!((&a.name, &a.uid), (&None, &None));
        assert_eq!((&a.id, &a.subtasks), (&b.id, &b.subtasks));
    }
    assert_eq!(back.properties, m.properties);
}

#[test]
fn written_metadata_parses_back() {
    let keyed = KeyGroups {
        first: 64,
        offsets: vec![0; 64],
        delegate: StreamHandle::Relative {
            path: "keyed-1".into(),
            size: 99,
        },
    };
    let m = Metadata {
        version: 6,
        checkpoint_id: 7,
        master_states: Vec::new(),
        operators: vec![Operator {
            name: Some("counter".into()),
            uid: Some("counter".into()),
            id: "0da08f51eaa85fc298e176a139b3649a".into(),
            parallelism: 2,
            max_parallelism: 128,
            coordinator_state: Some(StreamHandle::Inline {
                name: "coordinator".into(),
                data: vec![1, 2, 3],
            }),
            fully_finished: false,
            subtasks: vec![Subtask {
                index: 1,
                finished: false,
                operator_state: Some(OperatorStateHandle {
                    states: vec![OperatorStateOffsets {
                        name: "SourceReaderState".into(),
                        distribution: Distribution::Union,
                        offsets: vec![10, 20],
                    }],
                    delegate: StreamHandle::Relative {
                        path: "op-1".into(),
                        size: 30,
                    },
                }),
                raw_operator_state: None,
                keyed_state: Some(KeyedHandle::Savepoint(keyed)),
                raw_keyed_state: None,
                input_channel_states: 0,
                output_channel_states: 0,
            }],
        }],
        format_type: None,
        properties: b"props".to_vec(),
    };
    let back = parse(&write(&m).unwrap()).unwrap();
    assert_eq!(back, m);
    assert_eq!(
        back.operators[0].subtasks[0]
            .keyed_state
            .as_ref()
            .unwrap()
            .key_groups(),
        (64, 127)
    );
}

#[test]
fn unwritable_handles_are_refused() {
    let mut m = parse(SAMPLES[0]).unwrap();
    m.version = 8;
    assert_eq!(
        write(&m).unwrap_err(),
        "cannot write Flink metadata version 8"
    );
    m.version = 6;
    let sub = m
        .operators
        .iter_mut()
        .flat_map(|o| o.subtasks.iter_mut())
        .find(|s| !s.finished)
        .unwrap();
    sub.input_channel_states = 1;
    assert!(
        write(&m)
            .unwrap_err()
            .ends_with("unaligned-checkpoint channel state cannot be written")
    );
}
