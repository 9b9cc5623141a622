//! The engine's error type.

/// What can go wrong building, running or restoring a job.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The job definition is not valid (e.g. a stateful operator without a uid).
    #[error("invalid job: {0}")]
    InvalidJob(String),
    /// The savepoint cannot be restored into this job.
    #[error("cannot restore: {0}")]
    Restore(String),
    /// Reading or writing savepoints failed.
    #[error(transparent)]
    Savepoint(#[from] rewind_savepoint::Error),
    /// A checkpoint failed; the job goes on and the next checkpoint is tried.
    #[error("checkpoint {id} failed: {message}")]
    Checkpoint {
        /// Checkpoint id.
        id: u64,
        /// Why.
        message: String,
    },
    /// An operator, source or sink failed.
    #[error("{operator}: {message}")]
    Operator {
        /// The operator's uid or name.
        operator: String,
        /// What failed.
        message: String,
    },
    /// The job registry or a job's control endpoint: no such job, a job that is not
    /// running, a refused or failed request.
    #[error("{0}")]
    Control(String),
    /// Writing an application's output (a restore plan) failed.
    #[error("cannot write the output: {0}")]
    Output(std::io::Error),
    /// A bug in the engine.
    #[error("internal engine error: {0}")]
    Internal(String),
}

/// Result alias of the engine.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
