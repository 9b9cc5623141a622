//! The runtime a job's storage I/O runs on, owned by the job: `runtime::run` starts one,
//! hands it to the coordinator and restore, and enters it on every thread of the job, so
//! that sinks and sources (called through their traits) find it with [`block_on`]. It
//! stops when the job's last thread lets go of it.
//!
//! One runtime per job, not one per call: object-store clients keep pooled connections
//! that belong to the runtime that opened them, and a connection opened on a short-lived
//! runtime fails once that runtime is gone ("error sending request"). A job's components
//! share their stores, so they share one runtime.

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;

use tokio::runtime::{Handle, Runtime, RuntimeFlavor};

use crate::{EngineError, Result};

/// Worker threads of a job's I/O runtime: they only drive storage requests and encode
/// checkpoint shards (`coordinator/write.rs`); the futures themselves run on the calling
/// threads.
const IO_THREADS: usize = 2;

/// A job's I/O runtime.
pub(crate) struct Io {
    /// Always `Some` until dropped.
    runtime: Option<Runtime>,
}

thread_local! {
    /// The runtime of the job this thread belongs to, while it is entered.
    static CURRENT: RefCell<Option<Arc<Io>>> = const { RefCell::new(None) };
}

impl Io {
    /// Starts a runtime for one job.
    pub(crate) fn start() -> Result<Arc<Io>> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(IO_THREADS)
            .thread_name("rewind-io")
            .enable_all()
            .build()
            .map_err(|e| EngineError::Internal(format!("cannot start the I/O runtime: {e}")))?;
        Ok(Arc::new(Io {
            runtime: Some(runtime),
        }))
    }

    /// Runs `future` to completion on this runtime, on the calling thread; from inside
    /// another async runtime (where blocking is not allowed) on a helper thread.
    pub(crate) fn block_on<T: Send>(&self, future: impl Future<Output = T> + Send) -> Result<T> {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| EngineError::Internal("the I/O runtime has stopped".into()))?;
        if Handle::try_current().is_ok() {
            on_helper_thread(|| runtime.block_on(future))
        } else {
            Ok(runtime.block_on(future))
        }
    }

    /// Makes this runtime the one [`block_on`] uses on the calling thread until the
    /// returned guard is dropped.
    pub(crate) fn enter(self: &Arc<Self>) -> Entered {
        let previous = CURRENT.with(|c| c.replace(Some(self.clone())));
        Entered {
            previous,
            _not_send: std::marker::PhantomData,
        }
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        // Dropping a runtime waits for its threads, which an async context may not do.
        if let Some(runtime) = self.runtime.take() {
            if Handle::try_current().is_ok() {
                runtime.shutdown_background();
            }
        }
    }
}

/// While alive, the calling thread's [`block_on`] runs on a job's runtime.
pub(crate) struct Entered {
    previous: Option<Arc<Io>>,
    /// The guard belongs to the thread it entered.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| c.replace(previous));
    }
}

/// Runs `future` to completion for a sink, a source or a public function: on the runtime
/// of the job whose thread calls it; outside a job on the caller's multi-thread runtime
/// (on a helper thread) if there is one, else on a runtime made for this call.
pub(crate) fn block_on<T: Send>(future: impl Future<Output = T> + Send) -> Result<T> {
    if let Some(io) = CURRENT.with(|c| c.borrow().clone()) {
        return io.block_on(future);
    }
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            on_helper_thread(|| handle.block_on(future))
        }
        // A current-thread runtime is busy running the caller: it cannot drive this too.
        Ok(_) => on_helper_thread(|| for_this_call().map(|rt| rt.block_on(future)))?,
        Err(_) => Ok(for_this_call()?.block_on(future)),
    }
}

fn for_this_call() -> Result<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| EngineError::Internal(format!("cannot start an I/O runtime: {e}")))
}

fn on_helper_thread<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(f)
            .join()
            .map_err(|_| EngineError::Internal("storage I/O panicked".into()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread_name() -> Option<String> {
        std::thread::current().name().map(str::to_string)
    }

    #[test]
    fn a_job_runs_its_io_on_the_calling_thread() {
        let io = Io::start().unwrap();
        let caller = std::thread::current().id();
        let ran_on = io.block_on(async { std::thread::current().id() }).unwrap();
        assert_eq!(ran_on, caller);
        // Tasks it spawns run on the job's own I/O threads.
        let spawned = io
            .block_on(async { tokio::spawn(async { thread_name() }).await.unwrap() })
            .unwrap();
        assert_eq!(spawned.as_deref(), Some("rewind-io"));
    }

    #[test]
    fn an_entered_thread_uses_its_jobs_runtime_until_the_guard_drops() {
        let io = Io::start().unwrap();
        let spawned_on = || block_on(async { tokio::spawn(async { thread_name() }).await });
        {
            let _entered = io.enter();
            assert_eq!(spawned_on().unwrap().unwrap().as_deref(), Some("rewind-io"));
        }
        // Outside the job: a runtime made for the call, whose only thread is this one.
        assert_eq!(spawned_on().unwrap().unwrap(), thread_name());
    }

    #[test]
    fn inside_another_runtime_it_neither_blocks_it_nor_panics() {
        let outer = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let io = Io::start().unwrap();
        let (in_job, outside) = outer.block_on(async {
            let in_job = io.block_on(async { 1 }).unwrap();
            (in_job, block_on(async { 2 }).unwrap())
        });
        assert_eq!((in_job, outside), (1, 2));
        // Dropped inside the other runtime: shut down without waiting.
        outer.block_on(async move { drop(io) });
    }
}
