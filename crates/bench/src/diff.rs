//! Diff of two large savepoints that differ in 1% of keys, against reading both once.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use futures::TryStreamExt;
use rewind_savepoint::{
    DiffOptions, GenerateOptions, Location, ReadOptions, RescaleOptions, SavepointInfo,
    SavepointReader, SavepointWriter, StateSpec, diff, generate, rescale,
};

use crate::report::{Report, median};

pub async fn diff_vs_read(report: &mut Report, work: &Path, keys: u64) -> Result<()> {
    eprintln!("diff: two savepoints of {keys} keys differing in 1% of values");
    let at = |name: &str| Location::parse(work.join(name).to_str().unwrap_or_default());
    let (a, b, same) = (at("diff-a")?, at("diff-b")?, at("diff-same")?);
    generate(
        a.clone(),
        GenerateOptions {
            keys,
            parallelism: 4,
            ..Default::default()
        },
    )
    .await?;
    let ra = SavepointReader::open(a.clone()).await?;
    change_one_percent(&ra, b.clone()).await?;
    let rb = SavepointReader::open(b.clone()).await?;
    // Same shards, another manifest: what a diff of "only the manifest changed" sees.
    rescale(
        &ra,
        same.clone(),
        &RescaleOptions {
            parallelism: Some(4),
            ..Default::default()
        },
        None,
    )
    .await?;
    let rsame = SavepointReader::open(same).await?;

    let (mut ours, mut plain, mut instant) = (vec![], vec![], vec![]);
    for _ in 0..3 {
        let started = Instant::now();
        let result = diff(&ra, &rb, &DiffOptions::default()).await?;
        ours.push(started.elapsed().as_secs_f64());
        let changed: u64 = result.states.iter().map(|s| s.changed).sum();
        anyhow::ensure!(
            changed == keys.div_ceil(100),
            "diff found {changed} changed keys"
        );

        let started = Instant::now();
        for r in [&ra, &rb] {
            let rows: usize = r
                .read_state("op-0", "state", ReadOptions::default())
                .await?
                .map_ok(|b| b.num_rows())
                .try_fold(0, |acc, n| async move { Ok(acc + n) })
                .await?;
            anyhow::ensure!(rows as u64 == keys);
        }
        plain.push(started.elapsed().as_secs_f64());

        let started = Instant::now();
        let result = diff(&ra, &rsame, &DiffOptions::default()).await?;
        instant.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(result.is_identical());
    }
    report.add(
        &format!("diff {}M keys, 1% changed", keys / 1_000_000),
        median(ours.clone()),
        "read (decode) both savepoints once",
        median(plain),
        "s",
        "streaming merge by key hash".into(),
    );
    let instant = median(instant);
    report.add(
        &format!(
            "diff {}M keys, same shards, other manifest",
            keys / 1_000_000
        ),
        instant,
        "diff with 1% changed",
        median(ours.clone()) * 1000.0,
        "ms",
        "identical shards are skipped unread".into(),
    );
    Ok(())
}

/// Writes B: A's rows with the value of every key divisible by 100 incremented.
async fn change_one_percent(a: &SavepointReader, b: Location) -> Result<()> {
    let writer = SavepointWriter::create(b, SavepointInfo::new("synthetic", "edit")).await?;
    for op in &a.manifest().operators {
        writer.add_operator(&op.uid, &op.name, op.parallelism)?;
        if let Some(s) = &op.source {
            writer.set_source_splits(&op.uid, s.splits.clone())?;
        }
        for st in &op.states {
            writer.add_state(&op.uid, StateSpec::from_entry(st)?)?;
            for shard in &st.shards {
                let range = shard
                    .hash_range
                    .ok_or_else(|| anyhow::anyhow!("keyed shard without range"))?;
                let mut out = writer.keyed_shard(&op.uid, &st.name, range)?;
                let options = ReadOptions {
                    hash_range: Some(range),
                    ..Default::default()
                };
                let mut stream = a.read_state(&op.uid, &st.name, options).await?;
                while let Some(batch) = stream.try_next().await? {
                    let keys = batch.column(1).as_primitive::<Int64Type>();
                    let values = batch.column(2).as_primitive::<Int64Type>();
                    let changed: Int64Array = keys
                        .values()
                        .iter()
                        .zip(values.values())
                        .map(|(k, v)| if k % 100 == 0 { v + 1 } else { *v })
                        .collect();
                    let input = RecordBatch::try_new(
                        Arc::new(arrow_schema::Schema::new(vec![
                            batch.schema().field(1).clone(),
                            batch.schema().field(2).clone(),
                        ])),
                        vec![batch.column(1).clone(), Arc::new(changed) as ArrayRef],
                    )?;
                    out.write(&input).await?;
                }
                out.finish().await?;
            }
        }
    }
    writer.commit().await?;
    Ok(())
}
