//! `rewind compact`: a self-contained savepoint from an incremental checkpoint.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;

use super::{location, open_savepoint};
use crate::cli::CompactArgs;
use crate::output::{bytes, progress};

pub async fn run(args: CompactArgs, out: &mut dyn Write) -> Result<u8> {
    let source = open_savepoint(&args.src).await?;
    let total: u64 = source.manifest().shards().map(|(_, _, s)| s.bytes).sum();
    let bar = progress(total, "bytes");
    let tick = bar.clone();
    let started = Instant::now();
    let (manifest, stats) = rewind_savepoint::compact(
        &source,
        location(&args.dest)?,
        Some(Arc::new(move |n| tick.inc(n))),
    )
    .await?;
    bar.finish_and_clear();
    writeln!(
        out,
        "wrote savepoint {} to {} in {:.2} s: {} shards; {} copied, {} of delta layers merged",
        manifest.id,
        args.dest,
        started.elapsed().as_secs_f64(),
        stats.shards_written,
        bytes(stats.bytes_copied),
        bytes(stats.bytes_reencoded)
    )?;
    Ok(crate::EXIT_OK)
}
