//! A Flink `_metadata` file from untrusted bytes: opened as a savepoint (magic number,
//! version, operators, state handles), an error or a description, never a panic and never
//! an allocation sized by a count in the input.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use rewind_savepoint::Location;

async fn run(data: &[u8]) {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let path = Path::from("sp/_metadata");
    if store
        .put(&path, PutPayload::from(data.to_vec()))
        .await
        .is_err()
    {
        return;
    }
    let location = Location::new(store, Path::from("sp"), "memory:///sp");
    if let Ok(sp) = rewind_flink::FlinkSavepoint::open(location).await {
        let _ = format!("{:?}", sp.metadata());
    }
}

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    runtime.block_on(run(data));
});
