//! The post-analytics example from the savepoint walkthrough, as real Rewind applications.
//!
//! A social network logs an event each time a post is viewed or clicked, organically or
//! as a paid (promoted) impression. The events land in a partitioned log (one JSON-lines
//! file per partition and segment, see [`write_events`]). Two versions of one job read it:
//!
//! - **post-analytics-v1** counts views and clicks per post in one-minute event-time
//!   windows ([`v1::Counts`]).
//! - **post-analytics-v2** also splits them into organic and paid ([`v2::Counts`]). It keeps
//!   v1's uids, so it starts from v1's savepoint: its accumulator adds fields to v1's, and
//!   windows that were open at the savepoint carry `"split_complete": false` (their paid
//!   part before the upgrade is unknown).
//!
//! Both take `--input URL --output URL` and the engine's standard options.

#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod events;
pub mod v1;
pub mod v2;

use std::time::Duration;

use clap::Args;
use rewind_engine::{DataStream, EngineOptions, FileSink, Job, JobBuilder, LogSource, StdoutSink};
use rewind_savepoint::Location;

pub use events::{Action, EventSpec, PostEvent, write_events};

/// The source's uid: the same in every version, so positions carry over.
pub const SOURCE_UID: &str = "post-events";
/// The window operator's uid: the same in every version, so window state carries over.
pub const STATS_UID: &str = "post-stats";
/// The sink's uid (its output not yet committed at a savepoint is in the savepoint).
pub const SINK_UID: &str = "post-stats-out";
/// Window length.
pub const WINDOW: Duration = Duration::from_secs(60);
/// How far out of order events may arrive (the generator stays within it).
pub const MAX_OUT_OF_ORDERNESS: Duration = Duration::from_secs(5);
/// A partition without new events for this long no longer holds event time back.
pub const IDLE_TIMEOUT: Duration = Duration::from_millis(500);

/// The options of both applications.
#[derive(Debug, Clone, Args)]
pub struct AppArgs {
    /// The partitioned event log (a path or URL), as `post-events` writes it.
    #[arg(long, value_name = "URL", help_heading = "Application options")]
    pub input: String,
    /// Where committed results go, as JSON lines (a path or URL; `-` prints them).
    #[arg(long, value_name = "URL", help_heading = "Application options")]
    pub output: String,
    /// Stop at the end of the log instead of waiting for new events.
    #[arg(long, help_heading = "Application options")]
    pub bounded: bool,
    /// The engine's options.
    #[command(flatten)]
    pub engine: EngineOptions,
}

/// The event stream of a job named `name`: the log, event time from each event's `ts`.
pub fn post_events(name: &str, args: &AppArgs) -> rewind_engine::Result<DataStream<PostEvent>> {
    let mut log = LogSource::open(Location::parse(&args.input)?)?;
    if !args.bounded {
        log = log.follow(Duration::from_millis(50));
    }
    Ok(JobBuilder::new(name)
        .source("post events", log)
        .uid(SOURCE_UID)
        .assign_timestamps(|e: &PostEvent| e.ts, MAX_OUT_OF_ORDERNESS)
        .idle_timeout(IDLE_TIMEOUT))
}

/// Ends `stream` in the output `args` names.
pub fn sink<T: serde::Serialize + Send + 'static>(
    stream: DataStream<T>,
    args: &AppArgs,
) -> rewind_engine::Result<Job> {
    Ok(if args.output == "-" {
        stream.sink(SINK_UID, StdoutSink::default())
    } else {
        stream.sink(SINK_UID, FileSink::new(Location::parse(&args.output)?)?)
    })
}

/// Runs an application's `main`: the job runs under the engine's options (registered,
/// controllable), the engine's messages go to stderr (`RUST_LOG` filters them), a dry
/// run's plan to stdout; errors go to stderr as one line, exit code 2.
pub fn main_of(
    name: &str,
    args: &AppArgs,
    job: impl FnOnce(&AppArgs) -> rewind_engine::Result<Job>,
) -> std::process::ExitCode {
    rewind_engine::init_logging(0);
    let mut stdout = std::io::stdout();
    match job(args).and_then(|job| rewind_engine::execute(job, &args.engine, &mut stdout)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
