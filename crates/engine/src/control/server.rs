//! The control endpoint a managed job runs: a TCP listener on loopback; each connection
//! carries one request, answered on its own thread, so a status request never waits
//! behind a savepoint.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rewind_savepoint::Location;

use super::protocol::{
    ControlCommand, ControlReply, JobReport, MAX_REQUEST, PROTOCOL_VERSION, Request,
};
use super::registry::CheckpointRef;
use crate::{EngineError, JobControl, Result};

/// How the job was asked to end, which decides the status it ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndRequest {
    Stop,
    Cancel,
}

/// What request handlers share.
pub(crate) struct Shared {
    pub id: String,
    pub name: String,
    pub secret: String,
    pub control: JobControl,
    pub savepoint_dir: Option<Location>,
    pub end: Mutex<Option<EndRequest>>,
    /// Set once the job has ended (signals then end the process as by default).
    pub ended: AtomicBool,
}

pub(crate) struct Server {
    address: String,
    closed: Arc<AtomicBool>,
}

impl Server {
    /// Listens on an ephemeral loopback port.
    pub(crate) fn start(shared: Arc<Shared>) -> Result<Server> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .map_err(|e| EngineError::Control(format!("cannot listen on loopback: {e}")))?;
        let address = listener
            .local_addr()
            .map_err(|e| EngineError::Control(format!("cannot listen on loopback: {e}")))?
            .to_string();
        let closed = Arc::new(AtomicBool::new(false));
        let stop = closed.clone();
        std::thread::Builder::new()
            .name("control".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let shared = shared.clone();
                    let _ = std::thread::Builder::new()
                        .name("control-request".into())
                        .spawn(move || serve(stream, &shared));
                }
            })
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        Ok(Server { address, closed })
    }

    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// Stops accepting requests.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.address);
    }
}

fn serve(stream: TcpStream, shared: &Shared) {
    // A client that connects and says nothing does not hold a thread for long.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut line = String::new();
    let read = BufReader::new(stream.take(MAX_REQUEST)).read_line(&mut line);
    let reply = match read {
        Ok(_) if !line.ends_with('\n') => error("request too long or not ended by a newline"),
        Ok(_) => match serde_json::from_str::<Request>(&line) {
            Ok(request) => answer(request, shared),
            Err(e) => error(&format!("bad request: {e}")),
        },
        Err(e) => error(&format!("cannot read the request: {e}")),
    };
    if let Ok(mut bytes) = serde_json::to_vec(&reply) {
        bytes.push(b'\n');
        let _ = out.write_all(&bytes);
    }
}

fn error(message: &str) -> ControlReply {
    ControlReply::Error {
        message: message.to_string(),
    }
}

fn answer(request: Request, shared: &Shared) -> ControlReply {
    if !same_secret(request.secret.as_bytes(), shared.secret.as_bytes()) {
        return error("refused: wrong or missing secret");
    }
    if request.version != PROTOCOL_VERSION {
        return error(&format!(
            "unsupported control protocol version {} (this job speaks {PROTOCOL_VERSION})",
            request.version
        ));
    }
    let result = match request.command {
        ControlCommand::Status => Ok(ControlReply::Status(report(shared))),
        ControlCommand::Savepoint { target } => target_for(shared, target).and_then(|t| {
            let location = t.to_string();
            let manifest = shared.control.savepoint(t)?;
            Ok(savepoint_reply(manifest, location))
        }),
        ControlCommand::Stop { target, drain } => target_for(shared, target).and_then(|t| {
            super::check_writable(&shared.control, &t)?;
            set_end(shared, EndRequest::Stop);
            let location = t.to_string();
            let manifest = shared.control.stop(t, drain)?;
            Ok(savepoint_reply(manifest, location))
        }),
        ControlCommand::Cancel => {
            set_end(shared, EndRequest::Cancel);
            shared.control.cancel().map(|_| ControlReply::Accepted)
        }
    };
    result.unwrap_or_else(|e| error(&e.to_string()))
}

pub(crate) fn set_end(shared: &Shared, end: EndRequest) {
    if let Ok(mut slot) = shared.end.lock() {
        slot.get_or_insert(end);
    }
}

fn savepoint_reply(m: rewind_savepoint::format::Manifest, location: String) -> ControlReply {
    ControlReply::Savepoint {
        location,
        id: m.id,
        checkpoint_id: m.checkpoint_id,
    }
}

/// Where a savepoint goes: the request's target, or a fresh folder under the job's
/// savepoint directory named like Flink's (`savepoint-<job id prefix>-<random>`).
pub(crate) fn target_for(shared: &Shared, target: Option<String>) -> Result<Location> {
    match target {
        Some(t) => Ok(Location::parse(&t)?),
        None => {
            let dir = shared.savepoint_dir.as_ref().ok_or_else(|| {
                EngineError::Control(
                    "no target given and the job has no --savepoint-dir \
                     (nor REWIND_SAVEPOINT_DIR)"
                        .into(),
                )
            })?;
            let random = uuid::Uuid::new_v4().simple().to_string();
            let prefix: String = shared.id.chars().take(6).collect();
            let name = format!("savepoint-{prefix}-{}", &random[..12]);
            Ok(Location::new(
                dir.store().clone(),
                dir.child(&name),
                dir.describe(&name),
            ))
        }
    }
}

fn report(shared: &Shared) -> JobReport {
    let stats = shared.control.stats();
    JobReport {
        id: shared.id.clone(),
        name: shared.name.clone(),
        records_read: stats.records_read,
        checkpoints_written: stats.checkpoints_written,
        last_checkpoint: stats.last_checkpoint.as_ref().map(CheckpointRef::from),
        late_records_dropped: stats.late_records_dropped,
        savepoint_dir: shared.savepoint_dir.as_ref().map(|d| d.to_string()),
    }
}

/// Compares secrets in time independent of where they differ.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secrets_must_match_exactly() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abd", b"abc"));
        assert!(!same_secret(b"ab", b"abc"));
        assert!(!same_secret(b"", b"abc"));
    }
}
