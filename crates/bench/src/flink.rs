//! Importing a canonical Flink savepoint against reading its files, and against writing
//! the rows it becomes as one plain Parquet file.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use futures::TryStreamExt;
use rewind_savepoint::{Location, ReadOptions, SavepointReader};

use crate::report::{Report, median};
use crate::savepoint_io::plain_write;

const RUNS: usize = 9;

/// The 100,000-key canonical sample: import (parse, decode, hash, sort, write Parquet) vs
/// a plain read of every file of the savepoint and vs arrow-rs's ArrowWriter writing the
/// imported rows (with their key hashes) to one fsynced file, all in MB/s of the Flink
/// savepoint's size.
pub async fn import_vs_read(report: &mut Report, work: &Path) -> Result<()> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/flink/java-hashmap-canonical-n100000/savepoint-d4c30c-92ca55030761");
    let bytes: u64 = std::fs::read_dir(&src)?
        .flatten()
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum();
    let mb = bytes as f64 / 1e6;
    let (mut import, mut read, mut write) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..RUNS {
        let started = Instant::now();
        let mut total = 0usize;
        for entry in std::fs::read_dir(&src)?.flatten() {
            total += tokio::fs::read(entry.path()).await?.len();
        }
        anyhow::ensure!(total as u64 == bytes);
        read.push(started.elapsed().as_secs_f64());

        let started = Instant::now();
        let sp =
            rewind_flink::FlinkSavepoint::open(Location::parse(&src.to_string_lossy())?).await?;
        let dest = Location::parse(&work.join(format!("flink-import-{i}")).to_string_lossy())?;
        rewind_flink::import(&sp, dest.clone(), &Default::default()).await?;
        import.push(started.elapsed().as_secs_f64());

        let rows: Vec<_> = SavepointReader::open(dest)
            .await?
            .read_state("counter", "count", ReadOptions::default())
            .await?
            .try_collect()
            .await?;
        write.push(plain_write(
            &rows,
            &work.join(format!("flink-plain-{i}.parquet")),
        )?);
    }
    let (import, read, write) = (median(import), median(read), median(write));
    report.add(
        "import-flink canonical, 100k keys (MB/s)",
        mb / import,
        "plain read of its files",
        mb / read,
        "MB/s",
        format!(
            "{mb:.1} MB savepoint; import takes {:.1}x the read",
            import / read
        ),
    );
    report.add(
        "import-flink canonical, 100k keys (MB/s)",
        mb / import,
        "ArrowWriter writing the imported rows",
        mb / write,
        "MB/s",
        format!(
            "import takes {:.1}x the plain Parquet write",
            import / write
        ),
    );
    Ok(())
}
