//! keyed-count: counts events per key from the deterministic generator and writes each
//! new count to a JSON-lines file sink. Used by the benchmarks and end-to-end tests.
//!
//! cargo run -p rewind-engine --example keyed-count -- --keys 1000 --events 100000 \
//!     --output /tmp/out --savepoint-on-finish /tmp/sp

use std::process::ExitCode;

use clap::Parser;
use rewind_engine::{
    EngineOptions, FileSink, GeneratedEvent, GeneratorSource, JobBuilder, StdoutSink,
};
use rewind_savepoint::Location;
use rewind_test_support::Count;

/// Count events per key; print nothing but errors.
#[derive(Debug, Parser)]
#[command(name = "keyed-count")]
struct Args {
    #[command(flatten)]
    engine: EngineOptions,
    /// Distinct keys.
    #[arg(long, default_value_t = 1000, help_heading = "keyed-count options")]
    keys: u64,
    /// Events to generate.
    #[arg(long, default_value_t = 100_000, help_heading = "keyed-count options")]
    events: u64,
    /// Seed of the key sequence.
    #[arg(long, default_value_t = 0, help_heading = "keyed-count options")]
    seed: u64,
    /// Source splits.
    #[arg(long, default_value_t = 4, help_heading = "keyed-count options")]
    splits: u32,
    /// At most this many events per second per split (default: as fast as possible).
    #[arg(long, help_heading = "keyed-count options")]
    rate: Option<u64>,
    /// Where committed output goes (a path or URL; `-` prints it to standard output).
    #[arg(long, help_heading = "keyed-count options")]
    output: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    rewind_engine::init_logging(0);
    match job(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyed-count: error: {e}");
            ExitCode::from(2)
        }
    }
}

fn job(args: Args) -> rewind_engine::Result<()> {
    let source = GeneratorSource {
        keys: args.keys,
        events: args.events,
        seed: args.seed,
        splits: args.splits,
        rate_per_split: args.rate,
    };
    let job = JobBuilder::new("keyed-count")
        .source("Generator", source)
        .uid("events")
        .key_by(|e: &GeneratedEvent| e.key)
        // i64 like Flink's Long, and like the integers a CSV file bootstraps.
        .process("Counter", Count::<i64>::emitting())
        .uid("counter");
    let job = if args.output == "-" {
        job.sink("output", StdoutSink::default())
    } else {
        job.sink("output", FileSink::new(Location::parse(&args.output)?)?)
    };
    rewind_engine::execute(job, &args.engine, &mut std::io::stdout())
}
