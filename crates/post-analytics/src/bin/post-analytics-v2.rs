//! post-analytics v2: as v1, with views and clicks split into organic and paid. Starts
//! from v1's savepoints (same uids).
//!
//! post-analytics-v2 --input EVENTS --output RESULTS --from-savepoint SP [ENGINE OPTIONS]

use clap::Parser;
use rewind_post_analytics::{AppArgs, main_of, v2};

/// Count views and clicks per post in one-minute event-time windows, organic and paid apart.
#[derive(Debug, Parser)]
#[command(name = "post-analytics-v2", version)]
struct Args {
    #[command(flatten)]
    app: AppArgs,
}

fn main() -> std::process::ExitCode {
    main_of("post-analytics-v2", &Args::parse().app, v2::job)
}
