//! `rewind analyze` of a large savepoint against one plain read of all its state.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use futures::TryStreamExt;
use rewind_savepoint::{
    AnalyzeOptions, GenerateOptions, Location, ReadOptions, SavepointReader, analyze, generate,
};

use crate::report::{Report, median};

pub async fn analyze_vs_read(report: &mut Report, work: &Path, keys: u64) -> Result<()> {
    eprintln!("analyze: a savepoint of {keys} keys against reading it once");
    let at = Location::parse(work.join("analyze").to_str().unwrap_or_default())?;
    generate(
        at.clone(),
        GenerateOptions {
            keys,
            parallelism: 4,
            ..Default::default()
        },
    )
    .await?;
    let reader = SavepointReader::open(at).await?;
    let (mut ours, mut plain) = (vec![], vec![]);
    for _ in 0..3 {
        let started = Instant::now();
        let result = analyze(&reader, None, &AnalyzeOptions::default()).await?;
        ours.push(started.elapsed().as_secs_f64());
        let rows: u64 = result.states.iter().map(|s| s.rows).sum();
        anyhow::ensure!(rows == keys, "analyze saw {rows} rows");

        let started = Instant::now();
        let mut rows = 0usize;
        for op in &reader.manifest().operators {
            for st in &op.states {
                rows += reader
                    .read_state(&op.uid, &st.name, ReadOptions::default())
                    .await?
                    .map_ok(|b| b.num_rows())
                    .try_fold(0, |acc, n| async move { Ok(acc + n) })
                    .await?;
            }
        }
        anyhow::ensure!(rows as u64 == keys);
        plain.push(started.elapsed().as_secs_f64());
    }
    let (ours, plain) = (median(ours), median(plain));
    report.add(
        &format!("analyze {}M keys", keys / 1_000_000),
        ours,
        "read (decode) every state once",
        plain,
        "s",
        format!("analyze takes {:.1}x the plain read", ours / plain),
    );
    Ok(())
}
