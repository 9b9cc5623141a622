//! post-analytics v1: views and clicks per post and minute of event time.
//!
//! post-analytics-v1 --input EVENTS --output RESULTS [ENGINE OPTIONS]

use clap::Parser;
use rewind_post_analytics::{AppArgs, main_of, v1};

/// Count views and clicks per post in one-minute event-time windows.
#[derive(Debug, Parser)]
#[command(name = "post-analytics-v1", version)]
struct Args {
    #[command(flatten)]
    app: AppArgs,
}

fn main() -> std::process::ExitCode {
    main_of("post-analytics-v1", &Args::parse().app, v1::job)
}
