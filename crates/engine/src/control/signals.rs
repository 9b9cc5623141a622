//! SIGTERM and SIGINT (Ctrl-C) on a managed job, as on a Flink job's stop: the first
//! signal stops the job with a savepoint into its savepoint dir, a second one cancels at
//! once. A job without a savepoint dir, or whose savepoint fails, says why on stderr and
//! is cancelled, so a signal always ends the job; the registry records the outcome.

use std::sync::Arc;

use tokio::signal::unix::{SignalKind, signal};

use super::server::{EndRequest, Shared, set_end, target_for};
use crate::{EngineError, Result};

/// Watches SIGTERM and SIGINT for the rest of the process: `handler` is called with
/// `"SIGTERM"` or `"SIGINT"` for each one, on a thread of its own (with its own runtime, so
/// that this works inside another runtime too). Returns once the signals are watched, so
/// that none arriving afterwards is missed; they no longer end the process by default.
pub fn watch_stop_signals(mut handler: impl FnMut(&'static str) + Send + 'static) -> Result<()> {
    let (ready, watching) = std::sync::mpsc::channel::<std::io::Result<()>>();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let watched = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .and_then(|runtime| {
                    let signals = runtime.block_on(async {
                        Ok::<_, std::io::Error>((
                            signal(SignalKind::terminate())?,
                            signal(SignalKind::interrupt())?,
                        ))
                    })?;
                    Ok((runtime, signals))
                });
            let (runtime, (mut term, mut int)) = match watched {
                Ok(w) => w,
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            };
            let _ = ready.send(Ok(()));
            runtime.block_on(async move {
                loop {
                    let name = tokio::select! {
                        Some(()) = term.recv() => "SIGTERM",
                        Some(()) = int.recv() => "SIGINT",
                        else => return,
                    };
                    handler(name);
                }
            })
        })
        .map_err(|e| EngineError::Internal(e.to_string()))?;
    watching
        .recv()
        .map_err(|_| EngineError::Internal("the signal thread ended".into()))?
        .map_err(|e| EngineError::Internal(format!("cannot watch signals: {e}")))
}

/// A managed job's answer to the signals: the first stops it with a savepoint, a second
/// cancels it, and once the job has ended a signal ends the process as by default.
pub(crate) fn watch(shared: Arc<Shared>) -> Result<()> {
    let mut first = true;
    watch_stop_signals(move |name| {
        if shared.ended.load(std::sync::atomic::Ordering::SeqCst) {
            std::process::exit(128 + if name == "SIGTERM" { 15 } else { 2 });
        }
        if first {
            first = false;
            let shared = shared.clone();
            // The stop waits for the savepoint; the signal thread keeps listening.
            let _ = std::thread::Builder::new()
                .name("signal-stop".into())
                .spawn(move || stop(&shared, name));
        } else {
            let job = &shared.id;
            tracing::info!(%job, signal = name, "{name} again: cancelling job {job} at once");
            cancel(&shared);
        }
    })
}

/// The first signal: stop with a savepoint, or cancel when that cannot be done.
fn stop(shared: &Shared, name: &str) {
    let id = &shared.id;
    if shared.savepoint_dir.is_none() {
        tracing::warn!(
            job = %id,
            signal = name,
            "{name}: job {id} has no savepoint dir (--savepoint-dir or REWIND_SAVEPOINT_DIR): \
             cancelling without a savepoint"
        );
        cancel(shared);
        return;
    }
    let target = match target_for(shared, None).and_then(|t| {
        super::check_writable(&shared.control, &t)?;
        Ok(t)
    }) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(
                job = %id,
                signal = name,
                "{name}: cannot take a savepoint: {e}; cancelling job {id}"
            );
            cancel(shared);
            return;
        }
    };
    tracing::info!(
        job = %id,
        signal = name,
        path = %target,
        "{name}: stopping job {id} with a savepoint into {target} (signal again to cancel at once)"
    );
    set_end(shared, EndRequest::Stop);
    match shared.control.stop(target.clone(), false) {
        Ok(m) => tracing::info!(
            job = %id,
            path = %target,
            "job {id} stopped with savepoint {} at {target}",
            m.id
        ),
        Err(e) => {
            tracing::error!(
                job = %id,
                path = %target,
                "the savepoint into {target} failed: {e}; cancelling job {id}"
            );
            cancel(shared);
        }
    }
}

/// Cancels the job, recorded as cancelled whatever was asked before.
fn cancel(shared: &Shared) {
    if let Ok(mut end) = shared.end.lock() {
        *end = Some(EndRequest::Cancel);
    }
    // An error means the job has already ended.
    let _ = shared.control.cancel();
}
