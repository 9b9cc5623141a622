//! `rewind generate`: a synthetic savepoint through the real writer.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use rewind_savepoint::{GenerateOptions, generate};

use super::location;
use crate::cli::GenerateArgs;
use crate::output::{bytes, progress};

pub async fn run(args: GenerateArgs, out: &mut dyn Write) -> Result<u8> {
    let location = location(&args.dest)?;
    let bar = progress(args.keys * args.operators as u64, "rows");
    let tick = bar.clone();
    let options = GenerateOptions {
        keys: args.keys,
        parallelism: args.parallelism,
        operators: args.operators,
        value_bytes: args.value_bytes,
        seed: args.seed,
        progress: Some(Arc::new(move |n| tick.inc(n))),
        ..GenerateOptions::default()
    };
    let started = Instant::now();
    let manifest = generate(location, options).await?;
    bar.finish_and_clear();
    let shards = manifest.shards().count();
    let rows: u64 = manifest.shards().map(|(_, _, s)| s.rows).sum();
    let size: u64 = manifest.shards().map(|(_, _, s)| s.bytes).sum();
    writeln!(
        out,
        "wrote savepoint {} to {}: {} operators, {shards} shards, {rows} rows, {} in {:.2} s",
        manifest.id,
        args.dest,
        manifest.operators.len(),
        bytes(size),
        started.elapsed().as_secs_f64()
    )?;
    Ok(crate::EXIT_OK)
}
