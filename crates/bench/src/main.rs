//! `rewind-bench`: every figure beside a baseline measured in the same run, and the ratio.
//!
//! Run with `bash scripts/bench.sh` (release build). `--quick` runs the small sizes only.

mod diff;
mod engine;
mod memory;
mod object_storage;
mod report;
mod rescale;
mod savepoint_io;

use anyhow::Result;

use crate::report::Report;

fn main() -> Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes: &[usize] = if quick {
        &[1_000_000]
    } else {
        &[1_000_000, 10_000_000]
    };
    let work = tempfile::Builder::new()
        .prefix("rewind-bench-")
        .tempdir_in(bench_dir()?)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut report = Report::default();
    runtime.block_on(async {
        for &n in sizes {
            savepoint_io::write(&mut report, work.path(), n, savepoint_io::Value::Int64).await?;
            savepoint_io::write(&mut report, work.path(), n, savepoint_io::Value::Struct).await?;
        }
        let big = *sizes.last().unwrap_or(&1_000_000);
        savepoint_io::inspect(&mut report, work.path(), 10_000, big).await?;
        savepoint_io::validate_bench(&mut report, work.path(), big).await?;
        object_storage::s3_vs_local(&mut report, work.path()).await?;
        diff::diff_vs_read(&mut report, work.path(), big as u64).await?;
        engine::engine(&mut report, work.path(), quick)?;
        let rescale_keys = if quick { 5_000_000 } else { 50_000_000 };
        rescale::rescale_vs_copy(&mut report, work.path(), rescale_keys).await?;
        anyhow::Ok(())
    })?;
    report.print();
    Ok(())
}

/// Benchmarks write to real disk under target/, not to a tmpfs /tmp.
fn bench_dir() -> Result<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-tmp");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
