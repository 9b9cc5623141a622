//! `rewind rescale`: a copy with new parallelism, at about the cost of copying files.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use rewind_savepoint::{RescaleOptions, ShardAction, plan_rescale, rescale};

use super::{location, open_savepoint};
use crate::cli::RescaleArgs;
use crate::output::{bytes, progress, table};

pub async fn run(args: RescaleArgs, out: &mut dyn Write) -> Result<u8> {
    let source = open_savepoint(&args.src).await?;
    let options = RescaleOptions {
        parallelism: args.parallelism,
        operators: args.operators.iter().cloned().collect(),
    };
    let plan = plan_rescale(source.manifest(), &options)?;
    if args.dry_run {
        let mut t = table(&[
            "operator",
            "parallelism",
            "state",
            "copied whole",
            "re-cut",
            "re-dealt",
        ]);
        for op in &plan.operators {
            for st in &op.states {
                let (mut copy, mut redeal) = ((0, 0u64), (0, 0u64));
                // A source shard that straddles a new boundary feeds two new shards: count
                // it once.
                let mut read: std::collections::BTreeMap<String, u64> = Default::default();
                let mut recut = 0;
                for a in &st.actions {
                    match a {
                        ShardAction::Copy { .. } => copy = (copy.0 + 1, copy.1 + a.bytes()),
                        ShardAction::Recut { sources, .. } | ShardAction::Merge { sources, .. } => {
                            recut += 1;
                            read.extend(sources.iter().map(|s| (s.file_key(), s.bytes)));
                        }
                        ShardAction::Redeal { shards, .. } => {
                            redeal = (redeal.0 + shards.len(), redeal.1 + a.bytes())
                        }
                    }
                }
                t.add_row(vec![
                    op.uid.clone(),
                    format!("{} -> {}", op.from, op.to),
                    st.name.clone(),
                    format!("{} shards, {}", copy.0, bytes(copy.1)),
                    format!(
                        "{} shards into {recut}, {}",
                        read.len(),
                        bytes(read.values().sum())
                    ),
                    format!("{} shards, {}", redeal.0, bytes(redeal.1)),
                ]);
            }
        }
        writeln!(
            out,
            "dry run: nothing written. Rescale of {} to {}:",
            args.src, args.dest
        )?;
        writeln!(out, "{t}")?;
        return Ok(crate::EXIT_OK);
    }
    let total: u64 = source.manifest().shards().map(|(_, _, s)| s.bytes).sum();
    let bar = progress(total, "bytes");
    let tick = bar.clone();
    let started = Instant::now();
    let (manifest, stats) = rescale(
        &source,
        location(&args.dest)?,
        &options,
        Some(Arc::new(move |n| tick.inc(n))),
    )
    .await?;
    bar.finish_and_clear();
    writeln!(
        out,
        "wrote savepoint {} to {} in {:.2} s: {} shards; {} copied whole, {} of row groups copied without decoding, {} re-encoded",
        manifest.id,
        args.dest,
        started.elapsed().as_secs_f64(),
        stats.shards_written,
        bytes(stats.bytes_copied),
        bytes(stats.bytes_spliced),
        bytes(stats.bytes_reencoded)
    )?;
    Ok(crate::EXIT_OK)
}
