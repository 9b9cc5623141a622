//! The standard options every Rewind application understands, and `rewind run` passes on.

use std::time::Duration;

use rewind_savepoint::Location;

/// How often a job with a checkpoint directory checkpoints unless told otherwise.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);

/// Engine options; an application puts them in its own clap parser with
/// `#[command(flatten)]` (feature `cli`), so `--help` lists them before the application's
/// own options.
#[derive(Debug, Clone, Default)]
#[cfg_attr(
    feature = "cli",
    derive(clap::Args),
    command(next_help_heading = "Engine options")
)]
pub struct EngineOptions {
    /// Restore from this savepoint or checkpoint (a path or URL).
    #[cfg_attr(feature = "cli", arg(long, value_name = "URL"))]
    pub from_savepoint: Option<String>,
    /// Drop state of operators the job no longer has instead of refusing to start.
    #[cfg_attr(feature = "cli", arg(long))]
    pub allow_non_restored_state: bool,
    /// Parallelism of every operator that does not set its own.
    #[cfg_attr(feature = "cli", arg(long, value_name = "N"))]
    pub parallelism: Option<u32>,
    /// Where periodic checkpoints go (a path or URL); numbered on after any already there.
    #[cfg_attr(feature = "cli", arg(long, value_name = "URL"))]
    pub checkpoint_dir: Option<String>,
    /// How often to checkpoint, e.g. 10s or 500ms [default with --checkpoint-dir: 10s].
    #[cfg_attr(feature = "cli", arg(long, value_name = "DURATION", value_parser = humantime::parse_duration))]
    pub checkpoint_interval: Option<Duration>,
    /// How many checkpoints to keep (older ones are deleted).
    #[cfg_attr(feature = "cli", arg(long, value_name = "N", default_value_t = 3))]
    pub retain_checkpoints: usize,
    /// When the input ends, write a final savepoint here (a path or URL).
    #[cfg_attr(feature = "cli", arg(long, value_name = "URL"))]
    pub savepoint_on_finish: Option<String>,
    /// Print the restore plan (which operator gets which state) and exit.
    #[cfg_attr(feature = "cli", arg(long))]
    pub dry_run: bool,
    /// Where savepoints go when `rewind savepoint` or `rewind stop` names no target.
    #[cfg_attr(
        feature = "cli",
        arg(long, value_name = "URL", env = "REWIND_SAVEPOINT_DIR")
    )]
    pub savepoint_dir: Option<String>,
    /// The job's id in the job registry (`rewind run` sets it; default: a new random id).
    #[cfg_attr(feature = "cli", arg(long, value_name = "ID"))]
    pub job_id: Option<String>,
    /// Each sink subtask stages its output in chunks of about this many bytes as it is
    /// produced, the rest at checkpoints [default: 4 MiB].
    #[cfg_attr(feature = "cli", arg(long, value_name = "BYTES"))]
    pub sink_chunk_bytes: Option<usize>,
    /// Incremental checkpoints: a checkpoint writes only the keys changed and removed since
    /// the one before, as a delta layer over that checkpoint's files; after this many
    /// layers, or once the layers hold half as many rows as the base, a state is written
    /// whole again. 0 writes every checkpoint whole. Savepoints are always whole
    /// [default: 8].
    #[cfg_attr(feature = "cli", arg(long, value_name = "N"))]
    pub max_delta_layers: Option<usize>,
}

impl EngineOptions {
    /// The run options these flags describe.
    pub fn run_options(&self) -> crate::Result<RunOptions> {
        let parse = |s: &Option<String>| s.as_deref().map(Location::parse).transpose();
        Ok(RunOptions {
            from_savepoint: parse(&self.from_savepoint)?,
            allow_non_restored_state: self.allow_non_restored_state,
            parallelism: self.parallelism,
            checkpoint_dir: parse(&self.checkpoint_dir)?,
            checkpoint_interval: self.checkpoint_interval.or(self
                .checkpoint_dir
                .is_some()
                .then_some(DEFAULT_CHECKPOINT_INTERVAL)),
            retain_checkpoints: self.retain_checkpoints,
            savepoint_on_finish: parse(&self.savepoint_on_finish)?,
            sink_chunk_bytes: self.sink_chunk_bytes,
            max_delta_layers: self.max_delta_layers,
        })
    }
}

/// How to run a job: the standard options of every Rewind application.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Restore from this savepoint or checkpoint.
    pub from_savepoint: Option<Location>,
    /// Allow state in the savepoint that no operator of the job takes.
    pub allow_non_restored_state: bool,
    /// Parallelism of every stage that does not set its own.
    pub parallelism: Option<u32>,
    /// Where periodic checkpoints go (`chk-<id>` under it). A run numbers its checkpoints
    /// after the one it was restored from and after every checkpoint folder already here,
    /// so a run rolled back to an older checkpoint (or a new job) in a used directory has
    /// the newest checkpoints there from its first. A checkpoint that fails before its
    /// manifest is written has the files it wrote deleted.
    pub checkpoint_dir: Option<Location>,
    /// How often to checkpoint (needs `checkpoint_dir`).
    pub checkpoint_interval: Option<Duration>,
    /// Checkpoints to keep (older ones are deleted); 0 keeps all.
    pub retain_checkpoints: usize,
    /// A bounded job writes a final savepoint here when its input ends.
    pub savepoint_on_finish: Option<Location>,
    /// Each sink subtask stages its output in chunks of about this many bytes as it is
    /// produced (default [`DEFAULT_SINK_CHUNK_BYTES`]); the rest is staged at checkpoints.
    pub sink_chunk_bytes: Option<usize>,
    /// Delta layers a checkpoint's keyed state may have over its last whole write (format
    /// 1.1 incremental checkpoints; default [`DEFAULT_MAX_DELTA_LAYERS`]); 0 writes every
    /// checkpoint whole. Savepoints are always whole.
    pub max_delta_layers: Option<usize>,
}

/// Delta layers over a state's base before a checkpoint writes it whole again: each is a
/// stream a restore merges.
pub const DEFAULT_MAX_DELTA_LAYERS: usize = 8;

/// Sink output a subtask buffers before staging it.
pub const DEFAULT_SINK_CHUNK_BYTES: usize = 4 << 20;
