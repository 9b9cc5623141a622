//! A Parquet shard from untrusted bytes, listed by a manifest with its true size and
//! checksum (so the bytes get past those checks to the Parquet reader): `validate --deep`
//! and a full read of the state end in a report or an error, never a panic.
#![no_main]

use std::sync::Arc;

use futures::TryStreamExt;
use libfuzzer_sys::fuzz_target;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use rewind_savepoint::{Location, ReadOptions, SavepointReader, ValidateOptions, validate};

const SHARD: &str = "state/counter/count/00000-f0000000.parquet";

fn manifest(bytes: usize, crc: u32) -> Vec<u8> {
    serde_json::json!({
        "format": "rewind-savepoint",
        "version": "1.0",
        "reader_features": [],
        "writer_features": [],
        "id": "f0000000-0000-4000-8000-000000000000",
        "kind": "savepoint",
        "created_at": "2026-11-27T00:00:00.000Z",
        "writer": {"name": "fuzz", "version": "0"},
        "job": {"name": "fuzz"},
        "checkpoint_id": 1,
        "lineage": {"operation": "fuzz"},
        "key_hash": "xxh3_64",
        "operators": [{
            "uid": "counter",
            "name": "counter",
            "parallelism": 1,
            "states": [{
                "name": "count",
                "kind": "value",
                "key_type": "int64",
                "value_type": "uint64",
                "shards": [{
                    "path": SHARD,
                    "hash_range": {"start": "0000000000000000", "end": "ffffffffffffffff"},
                    "rows": 0,
                    "bytes": bytes,
                    "crc32c": format!("{crc:08x}"),
                }]
            }]
        }]
    })
    .to_string()
    .into_bytes()
}

async fn run(data: &[u8]) {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let put = |path: String, bytes: Vec<u8>| {
        let store = store.clone();
        async move { store.put(&Path::from(path), PutPayload::from(bytes)).await }
    };
    if put(format!("sp/{SHARD}"), data.to_vec()).await.is_err()
        || put(
            "sp/_manifest.json".into(),
            manifest(data.len(), crc32c::crc32c(data)),
        )
        .await
        .is_err()
    {
        return;
    }
    let location = Location::new(store, Path::from("sp"), "memory:///sp");
    let deep = ValidateOptions {
        deep: true,
        ..Default::default()
    };
    let _ = validate(&location, deep).await;
    if let Ok(reader) = SavepointReader::open(location).await {
        if let Ok(rows) = reader
            .read_state("counter", "count", ReadOptions::default())
            .await
        {
            let _ = rows.try_collect::<Vec<_>>().await;
        }
    }
}

fuzz_target!(
    init: {
        // libFuzzer aborts on every panic; the reader catches the Parquet decoder's own
        // and reports them as a corrupt shard, so only the others are crashes.
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !rewind_savepoint::decoding_guarded() {
                abort(info);
            }
        }));
    },
    |data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    runtime.block_on(run(data));
    }
);
