//! Offline rescale of a large savepoint against `cp -r` of the same savepoint.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use rewind_savepoint::{GenerateOptions, Location, RescaleOptions, SavepointReader, rescale};

use crate::memory;
use crate::report::{Report, median};

pub async fn rescale_vs_copy(report: &mut Report, work: &Path, keys: u64) -> Result<()> {
    let src_dir = work.join(format!("rescale-src-{keys}"));
    let src = Location::parse(src_dir.to_str().unwrap_or_default())?;
    eprintln!("rescale: generating {keys} keys with 16-byte payloads at parallelism 4");
    let started = Instant::now();
    generate_source(&src, keys).await?;
    let size = crate::savepoint_io::dir_size(&src_dir);
    eprintln!(
        "  {:.0} MiB in {:.1} s",
        size as f64 / (1 << 20) as f64,
        started.elapsed().as_secs_f64()
    );
    for to in [3u32, 8] {
        let (mut copies, mut ours, mut peak, mut last) = (vec![], vec![], 0.0f64, None);
        for run in 0..3 {
            // Flush earlier writes first, so neither side pays for the other's writeback.
            std::process::Command::new("sync").status()?;
            let copy_dir = work.join(format!("rescale-cp-{to}-{run}"));
            let started = Instant::now();
            // Rewind fsyncs what it writes, so the copy is synced too before the clock stops.
            let status = std::process::Command::new("sh")
                .arg("-c")
                .arg("cp -r \"$0\" \"$1\" && find \"$1\" -type f -exec sync {} +")
                .arg(&src_dir)
                .arg(&copy_dir)
                .status()?;
            anyhow::ensure!(status.success(), "cp -r failed");
            copies.push(started.elapsed().as_secs_f64());
            std::fs::remove_dir_all(&copy_dir)?;

            std::process::Command::new("sync").status()?;
            let reader = SavepointReader::open(src.clone()).await?;
            let dest_dir = work.join(format!("rescale-{to}-{run}"));
            let dest = Location::parse(dest_dir.to_str().unwrap_or_default())?;
            let before = memory::current_mib();
            memory::reset_peak();
            let started = Instant::now();
            let options = RescaleOptions {
                parallelism: Some(to),
                ..Default::default()
            };
            let (_, stats) = rescale(&reader, dest, &options, None).await?;
            ours.push(started.elapsed().as_secs_f64());
            peak = peak.max(memory::peak_mib() - before);
            last = Some(stats);
            std::fs::remove_dir_all(&dest_dir)?;
        }
        let stats = last.unwrap_or_default();
        let total = (stats.bytes_copied + stats.bytes_spliced + stats.bytes_reencoded).max(1);
        report.add(
            &format!("rescale 4 -> {to}, {:.1} GiB", size as f64 / (1u64 << 30) as f64),
            median(ours),
            "cp -r + fsync of the same savepoint",
            median(copies),
            "s",
            format!(
                "{:.1}% of bytes copied without decoding ({:.1}% whole files); peak RSS {peak:.0} MiB",
                100.0 * (stats.bytes_copied + stats.bytes_spliced) as f64 / total as f64,
                100.0 * stats.bytes_copied as f64 / total as f64
            ),
        );
    }
    std::fs::remove_dir_all(&src_dir)?;
    Ok(())
}

async fn generate_source(src: &Location, keys: u64) -> Result<()> {
    let options = GenerateOptions {
        keys,
        parallelism: 4,
        value_bytes: 16,
        ..Default::default()
    };
    rewind_savepoint::generate(src.clone(), options).await?;
    Ok(())
}
