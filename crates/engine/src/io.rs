//! One runtime for all of the engine's storage I/O. Object-store clients keep pooled
//! connections that belong to the runtime that opened them; a connection opened on a
//! short-lived runtime fails once that runtime is gone ("error sending request"), so
//! every read and write, from every thread, runs here.

use std::future::Future;
use std::sync::OnceLock;

use crate::{EngineError, Result};

fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static IO: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    IO.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rewind-io")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| EngineError::Internal(format!("cannot start the I/O runtime: {e}")))
}

/// Runs `future` to completion on the I/O runtime, from any thread (also from inside
/// another async runtime: the wait happens on a helper thread).
pub(crate) fn block_on<T: Send>(future: impl Future<Output = T> + Send) -> Result<T> {
    let rt = runtime()?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| rt.block_on(future))
            .join()
            .map_err(|_| EngineError::Internal("storage I/O panicked".into()))
    })
}
