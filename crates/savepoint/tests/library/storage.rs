//! One conformance suite run against every store: memory, local disk, and S3 (a real
//! S3-compatible server that scripts/test.sh starts on loopback; REWIND_TEST_S3_URL names
//! its bucket). Without that variable the S3 runs are skipped, unless REWIND_REQUIRE_S3 is
//! set (as the test script does), which makes a missing server a failure.

use std::sync::Arc;

use arrow_schema::DataType;
use futures::future::join_all;
use object_store::{ObjectStoreExt, PutPayload};
use rewind_savepoint::{
    Error, GenerateOptions, Location, ProblemKind, ReadOptions, SavepointInfo, SavepointReader,
    SavepointWriter, StateSpec, ValidateOptions, generate, list_files, validate,
};

use crate::common::*;

/// A fresh, unique location on each store under test.
pub(crate) fn stores(test: &str) -> Vec<(tempfile::TempDir, Location)> {
    let unique = format!("{test}-{}", uuid_like());
    let mut out = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let local = Location::parse(dir.path().join(&unique).to_str().unwrap()).unwrap();
    out.push((dir, local));
    out.push((
        tempfile::tempdir().unwrap(),
        Location::parse(&format!("memory://conformance/{unique}")).unwrap(),
    ));
    match std::env::var("REWIND_TEST_S3_URL") {
        Ok(bucket) => out.push((
            tempfile::tempdir().unwrap(),
            Location::parse(&format!("{bucket}/{unique}")).unwrap(),
        )),
        Err(_) if std::env::var_os("REWIND_REQUIRE_S3").is_some() => {
            panic!(
                "REWIND_REQUIRE_S3 is set but REWIND_TEST_S3_URL is not: no S3 server to test against"
            )
        }
        Err(_) => {
            eprintln!("{test}: S3 skipped (REWIND_TEST_S3_URL unset; scripts/test.sh sets it)")
        }
    }
    out
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos:x}-{}", std::process::id())
}

#[tokio::test]
async fn write_read_validate_on_every_store() {
    for (_guard, location) in stores("roundtrip") {
        let options = GenerateOptions {
            keys: 30_000,
            parallelism: 3,
            operators: 2,
            value_bytes: 8,
            ..Default::default()
        };
        let manifest = generate(location.clone(), options).await.unwrap();
        let reader = SavepointReader::open(location.clone()).await.unwrap();
        assert_eq!(reader.manifest(), &manifest, "{location}");
        let all = read_all(&reader, "op-1", "state", ReadOptions::default()).await;
        assert_eq!(all.num_rows(), 30_000, "{location}");
        let report = validate(
            &location,
            ValidateOptions {
                deep: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert!(report.is_valid(), "{location}: {:?}", report.problems);
        let files = list_files(&location).await.unwrap();
        assert_eq!(
            files.len(),
            1 + 6,
            "{location}: manifest + 2 operators x 3 shards: {files:?}"
        );
    }
}

#[tokio::test]
async fn racing_commits_have_exactly_one_winner() {
    for (_guard, location) in stores("race") {
        for round in 0..5 {
            let target = Location::new(
                location.store().clone(),
                location.child(&format!("round-{round}")),
                format!("{location}/round-{round}"),
            );
            let mut writers = Vec::new();
            for i in 0..8 {
                let w = SavepointWriter::create(
                    target.clone(),
                    SavepointInfo::new(&format!("writer-{i}"), "bootstrap"),
                )
                .await
                .unwrap();
                w.add_operator("counter", "Counter", 1).unwrap();
                w.add_state(
                    "counter",
                    StateSpec::value("count", DataType::Int64, DataType::UInt64),
                )
                .unwrap();
                w.write_keyed("counter", "count", vec![counts(&[i, i + 1])])
                    .await
                    .unwrap();
                writers.push(w);
            }
            let results = join_all(writers.into_iter().map(|w| w.commit())).await;
            let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
            assert_eq!(winners.len(), 1, "{target}: {results:?}");
            for r in &results {
                if let Err(e) = r {
                    assert!(matches!(e, Error::AlreadyExists { .. }), "{target}: {e}");
                }
            }
            // The savepoint is the winner's, whole: its shards, not a mix.
            let reader = SavepointReader::open(target.clone()).await.unwrap();
            assert_eq!(reader.manifest().id, winners[0].id);
            let report = validate(&target, ValidateOptions::default()).await.unwrap();
            assert!(
                report
                    .problems
                    .iter()
                    .all(|p| p.kind == ProblemKind::Unlisted),
                "{:?}",
                report.problems
            );
            assert_eq!(
                report.problems.len(),
                7,
                "the 7 losers' shards are unlisted leftovers"
            );
        }
    }
}

#[tokio::test]
async fn large_shards_go_through_multipart_upload() {
    for (_guard, location) in stores("multipart") {
        // One shard of about 25 MB: past the 10 MiB buffer, so the writer uploads in parts.
        let options = GenerateOptions {
            keys: 200_000,
            parallelism: 1,
            value_bytes: 200,
            ..Default::default()
        };
        let manifest = generate(location.clone(), options).await.unwrap();
        let shard = &manifest.operator("op-0").unwrap().states[0].shards[0];
        assert!(
            shard.bytes > 20 << 20,
            "{location}: shard of {} bytes is too small to need multipart",
            shard.bytes
        );
        let report = validate(&location, ValidateOptions::default())
            .await
            .unwrap();
        assert!(report.is_valid(), "{location}: {:?}", report.problems);
    }
}

/// The store operations later commands build on: listing, server-side copy, create-only
/// put and delete.
#[tokio::test]
async fn store_operations_behave_alike() {
    for (_guard, location) in stores("ops") {
        let store = location.store();
        let a = location.child("dir/a.bin");
        let b = location.child("dir/b.bin");
        store
            .put(&a, PutPayload::from_static(b"hello"))
            .await
            .unwrap();
        store.copy(&a, &b).await.unwrap();
        assert_eq!(
            store.get(&b).await.unwrap().bytes().await.unwrap().as_ref(),
            b"hello",
            "{location}"
        );
        let mut listed: Vec<String> = list_files(&location)
            .await
            .unwrap()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        listed.sort();
        assert_eq!(listed, ["dir/a.bin", "dir/b.bin"], "{location}");
        let create = object_store::PutOptions {
            mode: object_store::PutMode::Create,
            ..Default::default()
        };
        let again = store
            .put_opts(&a, PutPayload::from_static(b"other"), create)
            .await;
        assert!(
            matches!(again, Err(object_store::Error::AlreadyExists { .. })),
            "{location}: {again:?}"
        );
        store.delete(&a).await.unwrap();
        assert!(
            matches!(
                store.head(&a).await,
                Err(object_store::Error::NotFound { .. })
            ),
            "{location}"
        );
        let _: &Arc<dyn object_store::ObjectStore> = store;
    }
}
