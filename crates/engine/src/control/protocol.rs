//! The control protocol: a client connects to the job's loopback address, sends one JSON
//! request line carrying the job's secret, and reads one JSON reply line.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::registry::{CheckpointRef, JobEntry};
use crate::{EngineError, Result};

/// Version of the request and reply layout.
pub(crate) const PROTOCOL_VERSION: u32 = 1;

/// The longest request a job reads.
pub(crate) const MAX_REQUEST: u64 = 64 * 1024;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Request {
    pub version: u32,
    /// Missing is the same as wrong: refused.
    #[serde(default)]
    pub secret: String,
    #[serde(flatten)]
    pub command: ControlCommand,
}

/// What a control request asks a running job to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum ControlCommand {
    /// Report how it is doing.
    Status,
    /// Take a savepoint into `target` (else under the job's `--savepoint-dir`), wait for
    /// it, and keep running.
    Savepoint {
        /// A path or URL; a local path must be absolute.
        target: Option<String>,
    },
    /// Take a savepoint and stop; with `drain`, every window and timer fires first.
    Stop {
        /// As for [`ControlCommand::Savepoint`].
        target: Option<String>,
        /// Advance event time to the end before the savepoint.
        drain: bool,
    },
    /// Stop at once, without a savepoint.
    Cancel,
}

/// A job's answer to a control request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum ControlReply {
    /// The answer to [`ControlCommand::Status`].
    Status(JobReport),
    /// The savepoint written (also for a stop).
    Savepoint {
        /// Where it is.
        location: String,
        /// Its savepoint id.
        id: String,
        /// Its checkpoint id.
        checkpoint_id: u64,
    },
    /// The request was taken (a cancel); the job ends shortly.
    Accepted,
    /// The request was refused or failed; the job goes on unless it says otherwise.
    Error {
        /// What went wrong.
        message: String,
    },
}

/// How a running job is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobReport {
    /// Job id.
    pub id: String,
    /// Job name.
    pub name: String,
    /// Records its sources read since it started.
    pub records_read: u64,
    /// Checkpoints and savepoints written since it started.
    pub checkpoints_written: u64,
    /// The last of those.
    pub last_checkpoint: Option<CheckpointRef>,
    /// Records dropped as too late for their windows.
    pub late_records_dropped: u64,
    /// Where savepoints go when a request names no target.
    pub savepoint_dir: Option<String>,
}

impl JobEntry {
    /// Sends `command` to the job and waits up to `timeout` for the answer; a refusal or
    /// failure the job reports is an error with its message.
    pub fn request(&self, command: ControlCommand, timeout: Duration) -> Result<ControlReply> {
        let unreachable = |e: std::io::Error| {
            EngineError::Control(format!(
                "job {} at {} does not answer: {e}",
                self.id, self.address
            ))
        };
        let address: SocketAddr = self.address.parse().map_err(|_| {
            EngineError::Control(format!(
                "job {}: bad control address {:?} in its registry entry",
                self.id, self.address
            ))
        })?;
        // The secret never leaves this machine, whatever the registry file says.
        if !address.ip().is_loopback() {
            return Err(EngineError::Control(format!(
                "job {}: control address {address} is not a loopback address",
                self.id
            )));
        }
        let mut stream =
            TcpStream::connect_timeout(&address, Duration::from_secs(2)).map_err(unreachable)?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(unreachable)?;
        let request = Request {
            version: PROTOCOL_VERSION,
            secret: self.secret.clone(),
            command,
        };
        let mut line = serde_json::to_vec(&request)
            .map_err(|e| EngineError::Internal(format!("control request: {e}")))?;
        line.push(b'\n');
        stream.write_all(&line).map_err(unreachable)?;
        let mut reply = String::new();
        BufReader::new(stream)
            .read_line(&mut reply)
            .map_err(unreachable)?;
        match serde_json::from_str::<ControlReply>(&reply) {
            Ok(ControlReply::Error { message }) => {
                Err(EngineError::Control(format!("job {}: {message}", self.id)))
            }
            Ok(reply) => Ok(reply),
            Err(_) if reply.is_empty() => Err(EngineError::Control(format!(
                "job {} closed the connection without an answer",
                self.id
            ))),
            Err(e) => Err(EngineError::Control(format!(
                "job {}: unreadable answer: {e}",
                self.id
            ))),
        }
    }
}
