//! `rewind-bench`: every figure beside a baseline measured in the same run, and the ratio.
//!
//! Run with `bash scripts/bench.sh` (release build). `--quick` runs the small sizes only.

mod analyze;
mod diff;
mod engine;
mod flink;
mod memory;
mod object_storage;
mod report;
mod rescale;
mod savepoint_io;
mod windows;

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
    // `--only NAME` runs one section: write, inspect, validate, s3, diff, engine, windows,
    // flink, rescale, analyze; or one part of engine for profiling: checkpoints (10M keys
    // with and without checkpoints, in 30M- and 90M-event runs, every 1 s and every 2 s;
    // the CPU a checkpoint costs against the most 0.9x allows), chain (restore from a
    // chain of delta layers).
    let args: Vec<String> = std::env::args().collect();
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let on = |name: &str| only.as_deref().is_none_or(|o| o == name);
    runtime.block_on(async {
        let big = *sizes.last().unwrap_or(&1_000_000);
        for &n in sizes {
            if on("write") {
                savepoint_io::write(&mut report, work.path(), n, savepoint_io::Value::Int64)
                    .await?;
                savepoint_io::write(&mut report, work.path(), n, savepoint_io::Value::Struct)
                    .await?;
            }
        }
        if on("inspect") {
            savepoint_io::inspect(&mut report, work.path(), 10_000, big).await?;
        }
        if on("validate") {
            savepoint_io::validate_bench(&mut report, work.path(), big).await?;
        }
        if on("s3") {
            object_storage::s3_vs_local(&mut report, work.path()).await?;
        }
        if on("analyze") {
            analyze::analyze_vs_read(&mut report, work.path(), big as u64).await?;
        }
        if on("diff") {
            diff::diff_vs_read(&mut report, work.path(), big as u64).await?;
        }
        if on("engine") {
            engine::engine(&mut report, work.path(), quick)?;
        }
        if only.as_deref() == Some("checkpoints") {
            engine::checkpoints(&mut report, work.path())?;
        }
        if only.as_deref() == Some("chain") {
            engine::chain(&mut report, work.path())?;
        }
        if on("windows") {
            windows::windows(&mut report, work.path(), quick)?;
        }
        if on("flink") {
            flink::import_vs_read(&mut report, work.path()).await?;
        }
        if on("rescale") {
            // 20M keys: the ~280 MB savepoint issue #19 names; 50M: ~0.7 GiB.
            // `--keys N` measures one size only.
            let one: Option<u64> = args
                .iter()
                .position(|a| a == "--keys")
                .and_then(|i| args.get(i + 1))
                .and_then(|k| k.parse().ok());
            let sizes: Vec<u64> = match one {
                Some(keys) => vec![keys],
                None if quick => vec![5_000_000],
                None => vec![20_000_000, 50_000_000],
            };
            for keys in sizes {
                rescale::rescale_vs_copy(&mut report, work.path(), keys).await?;
            }
        }
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
