//! Savepoint write and read throughput on a local S3 server next to the local filesystem,
//! and the effect of upload concurrency. Runs when REWIND_TEST_S3_URL names a bucket
//! (scripts/bench.sh starts the same SeaweedFS server the tests use).

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use rewind_savepoint::{
    GenerateOptions, Location, ValidateOptions, WriterOptions, generate, validate,
};

use crate::report::{Report, median};

const KEYS: u64 = 1_000_000;
const VALUE_BYTES: usize = 64;

async fn write_once(location: Location, upload_concurrency: usize) -> Result<(f64, u64)> {
    let started = Instant::now();
    let options = GenerateOptions {
        keys: KEYS,
        parallelism: 4,
        value_bytes: VALUE_BYTES,
        writer: WriterOptions {
            upload_concurrency,
            ..WriterOptions::default()
        },
        ..Default::default()
    };
    let manifest = generate(location, options).await?;
    let bytes = manifest.shards().map(|(_, _, s)| s.bytes).sum();
    Ok((started.elapsed().as_secs_f64(), bytes))
}

async fn read_once(location: &Location) -> Result<f64> {
    let started = Instant::now();
    let report = validate(location, ValidateOptions::default()).await?;
    anyhow::ensure!(report.is_valid(), "{:?}", report.problems);
    Ok(started.elapsed().as_secs_f64())
}

pub async fn s3_vs_local(report: &mut Report, work: &Path) -> Result<()> {
    let Ok(bucket) = std::env::var("REWIND_TEST_S3_URL") else {
        eprintln!("object storage: skipped (REWIND_TEST_S3_URL unset; scripts/bench.sh sets it)");
        return Ok(());
    };
    eprintln!("object storage: {KEYS} keys x {VALUE_BYTES}-byte values, parallelism 4");
    let (mut local_w, mut s3_w, mut s3_w1, mut local_r, mut s3_r, mut size) =
        (vec![], vec![], vec![], vec![], vec![], 0);
    for run in 0..3 {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos();
        let local = Location::parse(
            work.join(format!("store-local-{run}"))
                .to_str()
                .unwrap_or_default(),
        )?;
        let s3 = Location::parse(&format!("{bucket}/bench-{stamp}-{run}"))?;
        let s3_serial = Location::parse(&format!("{bucket}/bench-serial-{stamp}-{run}"))?;
        let (t, bytes) = write_once(local.clone(), 8).await?;
        local_w.push(t);
        size = bytes;
        s3_w.push(write_once(s3.clone(), 8).await?.0);
        s3_w1.push(write_once(s3_serial, 1).await?.0);
        local_r.push(read_once(&local).await?);
        s3_r.push(read_once(&s3).await?);
    }
    let mib = size as f64 / (1 << 20) as f64;
    let (lw, sw, sw1, lr, sr) = (
        median(local_w),
        median(s3_w),
        median(s3_w1),
        median(local_r),
        median(s3_r),
    );
    report.add(
        "write to S3 (SeaweedFS on loopback)",
        sw,
        "same to local disk",
        lw,
        "s",
        format!("{mib:.0} MiB: {:.0} vs {:.0} MiB/s", mib / sw, mib / lw),
    );
    report.add(
        "write to S3, upload concurrency 8 per shard",
        sw,
        "upload concurrency 1",
        sw1,
        "s",
        "multipart parts in flight per shard".into(),
    );
    report.add(
        "validate (read all) on S3",
        sr,
        "same on local disk",
        lr,
        "s",
        format!("{:.0} vs {:.0} MiB/s", mib / sr, mib / lr),
    );
    Ok(())
}
