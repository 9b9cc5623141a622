//! post-events: writes sample post events into a partitioned log, one new segment file
//! per partition each run.
//!
//! post-events --out EVENTS --events 100000 [--first 0] [--posts 500] [--partitions 4]

use clap::Parser;
use rewind_post_analytics::{EventSpec, write_events};
use rewind_savepoint::Location;

/// Write sample post events (views and clicks, organic and paid) into a partitioned log.
#[derive(Debug, Parser)]
#[command(name = "post-events", version)]
struct Args {
    /// The log directory (a path or URL).
    #[arg(long, value_name = "URL")]
    out: String,
    /// How many events to write.
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// Number of the first event: run again with `--first` past the last one to append
    /// the next events as new segments.
    #[arg(long, default_value_t = 0)]
    first: u64,
    /// Distinct posts.
    #[arg(long, default_value_t = 500)]
    posts: u32,
    /// Partitions.
    #[arg(long, default_value_t = 4)]
    partitions: u32,
    /// Seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Event time of event 0 (RFC 3339).
    #[arg(long, default_value = "2026-01-01T09:00:00Z")]
    start: humantime::Timestamp,
    /// Event time between events, ms.
    #[arg(long, default_value_t = 10)]
    step_ms: i64,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match generate(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("post-events: error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

fn generate(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.posts == 0 || args.partitions == 0 {
        return Err("--posts and --partitions must be at least 1".into());
    }
    let start = std::time::SystemTime::from(args.start)
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| "--start must be after 1970")?;
    let spec = EventSpec {
        seed: args.seed,
        posts: args.posts,
        partitions: args.partitions,
        start_ms: start.as_millis() as i64,
        step_ms: args.step_ms,
        ..EventSpec::default()
    };
    let out = Location::parse(&args.out)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let files = runtime.block_on(write_events(&out, &spec, args.first, args.events))?;
    let total: u64 = files.iter().map(|(_, n)| n).sum();
    println!(
        "wrote events {}..{} ({total}) into {} files under {out}",
        args.first,
        args.first + args.events,
        files.len()
    );
    Ok(())
}
