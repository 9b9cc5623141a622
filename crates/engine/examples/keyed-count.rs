//! keyed-count: counts events per key from the deterministic generator and writes each
//! new count to a JSON-lines file sink. Used by the benchmarks and end-to-end tests.
//!
//! cargo run -p rewind-engine --example keyed-count -- --keys 1000 --events 100000 \
//!     --output /tmp/out --savepoint-on-finish /tmp/sp

use std::process::ExitCode;

use clap::Parser;
use rewind_engine::{
    Context, EngineOptions, FileSink, GeneratedEvent, GeneratorSource, JobBuilder,
    KeyedProcessFunction, StateDecl, StdoutSink, ValueState,
};
use rewind_savepoint::Location;

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

/// The count of each key in value state `count`, in `i64` like Flink's `Long` (and like
/// the integers a CSV file bootstraps); every event emits its key's new count.
struct Counter {
    count: ValueState<i64>,
}

impl KeyedProcessFunction for Counter {
    type Key = i64;
    type In = GeneratedEvent;
    type Out = (i64, i64);

    fn states(&self) -> Vec<StateDecl<i64>> {
        vec![self.count.decl()]
    }

    fn process(&self, _: GeneratedEvent, ctx: &mut Context<'_, i64, (i64, i64)>) {
        let count = self.count.get(ctx).copied().unwrap_or(0) + 1;
        self.count.set(ctx, count);
        let key = *ctx.key();
        ctx.emit((key, count));
    }
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
        .process(
            "Counter",
            Counter {
                count: ValueState::new("count"),
            },
        )
        .uid("counter");
    let job = if args.output == "-" {
        job.sink("output", StdoutSink::default())
    } else {
        job.sink("output", FileSink::new(Location::parse(&args.output)?)?)
    };
    rewind_engine::execute(job, &args.engine, &mut std::io::stdout())
}
