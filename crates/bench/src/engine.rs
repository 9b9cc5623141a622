//! The engine: keyed-count throughput with and without checkpoints, the synchronous pause,
//! and savepoint and restore times at 1M and 10M keys.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use rewind_engine::{GeneratedEvent, GeneratorSource, Job, RunOptions, Sink, run};
use rewind_savepoint::Location;
use rewind_test_support::{Count, keyed_count_with};

use crate::report::{Report, median};

/// Discards output (the benchmark measures state, not output).
pub(crate) struct Discard;
impl Sink for Discard {
    fn stage(&self, _: u32, _: u64, _: &[u8]) -> rewind_engine::Result<String> {
        Ok(String::new())
    }
    fn commit(&self, _: u64, _: &str) -> rewind_engine::Result<()> {
        Ok(())
    }
}

pub(crate) fn job(keys: u64, events: u64, parallelism: u32) -> Job {
    counting_job(keys, events, parallelism, |e| e.key)
}

/// A count keyed by `key`; keying by the event's sequence number gives every event its own
/// key, so the state holds exactly `events` keys.
fn counting_job(keys: u64, events: u64, parallelism: u32, key: fn(&GeneratedEvent) -> i64) -> Job {
    let source = GeneratorSource {
        keys,
        events,
        seed: 7,
        splits: 2,
        rate_per_split: None,
    };
    keyed_count_with(source, parallelism, Count::<u64>::silent(), key, Discard)
}

pub(crate) fn at(work: &Path, name: &str) -> Result<Location> {
    Ok(Location::parse(
        work.join(name).to_str().unwrap_or_default(),
    )?)
}

pub fn engine(report: &mut Report, work: &Path, quick: bool) -> Result<()> {
    let events = if quick { 2_000_000 } else { 10_000_000 };
    let keys = 1_000_000;
    eprintln!("engine: keyed count, {keys} keys, {events} events, parallelism 2");

    // Baseline: the same counting in one plain HashMap loop on one thread.
    let source = GeneratorSource {
        keys,
        events,
        seed: 7,
        splits: 2,
        rate_per_split: None,
    };
    let started = Instant::now();
    let mut plain: HashMap<i64, u64> = HashMap::new();
    for seq in 0..events {
        *plain.entry(source.key_of(seq)).or_insert(0) += 1;
    }
    let plain_secs = started.elapsed().as_secs_f64();
    std::hint::black_box(plain.len());

    let no_ckpt = checkpoint_cost(report, work, keys, events, "", EVERY_SECOND)?.no_ckpt_secs;
    report.add(
        "engine keyed count, no checkpoints",
        events as f64 / no_ckpt / 1e6,
        "one-thread HashMap count",
        events as f64 / plain_secs / 1e6,
        "M events/s",
        "parallelism 2 on 2 cores; Flink 2.3 on the same job: 0.9-2.0 M events/s".into(),
    );
    if !quick {
        // A large state updated everywhere between checkpoints: every write after a
        // checkpoint may first copy its bucket of the state (copy-on-write).
        checkpoint_cost(
            report,
            work,
            10_000_000,
            30_000_000,
            ", 10M keys",
            EVERY_SECOND,
        )?;
    }

    for keys in if quick {
        vec![1_000_000u64]
    } else {
        vec![1_000_000, 10_000_000]
    } {
        let started = Instant::now();
        let (sp, stats) = count_savepoint(work, &format!("engine-sp-{keys}"), keys)?;
        let total = started.elapsed().as_secs_f64();
        let bytes = crate::savepoint_io::dir_size(&work.join(format!("engine-sp-{keys}")));
        let columns: Vec<String> =
            crate::savepoint_io::column_bytes(&work.join(format!("engine-sp-{keys}")))
                .into_iter()
                .map(|(c, b)| format!("{c} {:.2}", b as f64 / keys as f64))
                .collect();
        let restore_secs = restore_secs(&sp, keys)?;
        if keys == 10_000_000 || quick {
            delta_bytes(report, work, sp, keys)?;
        }
        report.add(
            &format!("engine savepoint of {}M keys", keys / 1_000_000),
            stats.last_write.as_secs_f64(),
            "whole job (generate, count, savepoint)",
            total,
            "s",
            format!(
                "{:.1} MB ({:.1} B/key: {}); synchronous pause {:.3} ms; restore at parallelism 4: {restore_secs:.2} s",
                bytes as f64 / 1e6,
                bytes as f64 / keys as f64,
                columns.join(", "),
                stats.max_sync_pause.as_secs_f64() * 1e3
            ),
        );
    }
    Ok(())
}

/// Every event its own key: a savepoint of the keyed count holding `keys` entries,
/// written to `work/name` when the input ends.
fn count_savepoint(
    work: &Path,
    name: &str,
    keys: u64,
) -> Result<(Location, rewind_engine::JobStats)> {
    std::fs::remove_dir_all(work.join(name)).ok();
    let sp = at(work, name)?;
    let options = RunOptions {
        savepoint_on_finish: Some(sp.clone()),
        ..Default::default()
    };
    let by_seq = |e: &GeneratedEvent| e.seq as i64;
    let (_, stats) = run(counting_job(keys, keys, 2, by_seq), options)?.wait_with_stats()?;
    Ok((sp, stats))
}

/// Seconds a restore at parallelism 4 from `from` takes: a job with no new events, timed
/// until it has loaded the state.
fn restore_secs(from: &Location, keys: u64) -> Result<f64> {
    let options = RunOptions {
        from_savepoint: Some(from.clone()),
        ..Default::default()
    };
    let by_seq = |e: &GeneratedEvent| e.seq as i64;
    let started = Instant::now();
    let handle = run(counting_job(keys, 0, 4, by_seq), options)?;
    let secs = started.elapsed().as_secs_f64();
    handle.wait()?;
    Ok(secs)
}

/// The engine section's checkpoint figures at 10M keys alone.
pub fn checkpoints(report: &mut Report, work: &Path) -> Result<()> {
    checkpoint_cost(
        report,
        work,
        10_000_000,
        30_000_000,
        ", 10M keys",
        EVERY_SECOND,
    )?;
    // Three times as long: the state is complete for most of the run and the final
    // checkpoint weighs less, so this is the steady state's cost (~90 s more).
    let cost = checkpoint_cost(
        report,
        work,
        10_000_000,
        90_000_000,
        ", 10M keys, 90M events",
        EVERY_SECOND,
    )?;
    checkpoint_budget(report, &cost)?;
    // Half as often: where this machine keeps 0.9x at 10M keys.
    let every_two_seconds = Schedule {
        interval: Duration::from_secs(2),
        whole_too: false,
    };
    checkpoint_cost(
        report,
        work,
        10_000_000,
        90_000_000,
        ", 10M keys, 90M events",
        every_two_seconds,
    )
    .map(|_| ())
}

/// How often the checkpointed runs of [`checkpoint_cost`] checkpoint, and whether they
/// also run with every checkpoint whole.
#[derive(Clone, Copy)]
struct Schedule {
    interval: Duration,
    whole_too: bool,
}

const EVERY_SECOND: Schedule = Schedule {
    interval: Duration::from_secs(1),
    whole_too: true,
};

/// What a checkpoint may cost for the job to keep 0.9x of its speed without checkpoints,
/// against what one costs and against the least any Parquet writer of its rows costs.
///
/// Both cores are busy counting, so every CPU-second a checkpoint takes is a CPU-second
/// the job waits: at 0.9x the job may use a ninth more CPU than without checkpoints,
/// shared by its checkpoints.
fn checkpoint_budget(report: &mut Report, cost: &CheckpointCost) -> Result<()> {
    let runs = &cost.incremental;
    let checkpoints = median(runs.iter().map(|r| r.checkpoints as f64).collect());
    let budget = median(cost.no_ckpt_cpu.clone()) / 9.0 / checkpoints.max(1.0);
    let per_checkpoint: Vec<f64> = runs
        .iter()
        .zip(&cost.no_ckpt_cpu)
        .map(|(r, base)| (r.cpu - base) / (r.checkpoints.max(1) as f64))
        .collect();
    report.add(
        "engine CPU per checkpoint, 10M keys, 90M events, every 1 s",
        median(per_checkpoint.clone()),
        "the most for 0.9x",
        budget,
        "CPU-s",
        format!(
            "(CPU with incremental checkpoints - without) / checkpoints, per round: {}; the most: a ninth of the CPU without checkpoints / {checkpoints} checkpoints",
            per_checkpoint
                .iter()
                .map(|c| format!("{c:.3}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    let rows = median(runs.iter().flat_map(|r| r.rows.clone()).collect()) as usize;
    let floor = median(
        (0..3)
            .map(|_| cheapest_parquet_secs(rows))
            .collect::<Result<_>>()?,
    );
    report.add(
        "ArrowWriter of a checkpoint's rows, cheapest settings",
        floor,
        "the most for 0.9x",
        budget,
        "s",
        format!(
            "{rows} rows (the median checkpoint's), u64 key and i64 count from ready arrays on one thread, PLAIN, no dictionary, no compression, no statistics; median of 3. Not counted: walking the state's tables and putting rows in key-hash order"
        ),
    );
    Ok(())
}

/// Seconds arrow-rs's ArrowWriter takes for `rows` rows of (u64 key, i64 count) in
/// batches of 16K, from arrays built beforehand, with its cheapest settings: the least a
/// checkpoint of these rows can cost in Parquet with this writer.
fn cheapest_parquet_secs(rows: usize) -> Result<f64> {
    use arrow_array::{ArrayRef, Int64Array, RecordBatch, UInt64Array};
    use arrow_schema::{DataType, Field, Schema};
    use parquet::file::properties::{EnabledStatistics, WriterProperties};
    let schema = std::sync::Arc::new(Schema::new(vec![
        Field::new("key", DataType::UInt64, false),
        Field::new("value", DataType::Int64, true),
    ]));
    // Keys in a scrambled order, small counts: as a count's shard holds them.
    let batches: Vec<RecordBatch> = (0..rows)
        .step_by(16_384)
        .map(|start| {
            let n = (rows - start).min(16_384) as u64;
            let keys = (start as u64..start as u64 + n)
                .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40);
            let counts = (start as i64..start as i64 + n as i64).map(|i| i % 17 + 1);
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    std::sync::Arc::new(UInt64Array::from_iter_values(keys)) as ArrayRef,
                    std::sync::Arc::new(Int64Array::from_iter_values(counts)) as ArrayRef,
                ],
            )
        })
        .collect::<std::result::Result<_, _>>()?;
    let properties = WriterProperties::builder()
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::None)
        .set_max_row_group_row_count(Some(128 * 1024))
        .build();
    let started = Instant::now();
    let mut writer = parquet::arrow::ArrowWriter::try_new(Vec::new(), schema, Some(properties))?;
    for batch in &batches {
        writer.write(batch)?;
    }
    std::hint::black_box(writer.into_inner()?.len());
    Ok(started.elapsed().as_secs_f64())
}

/// CPU seconds this process has used so far, user and system, over all its threads (those
/// that ended too): `/proc/self/stat` in USER_HZ ticks, 100 a second on Linux.
fn cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the command name (which may hold spaces) in parentheses: utime and
    // stime are the 14th and 15th of the line.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => f64::NAN,
    }
}

/// The engine section's figures for a chain of delta layers over 10M keys alone.
pub fn chain(report: &mut Report, work: &Path) -> Result<()> {
    let keys = 10_000_000;
    let (sp, _) = count_savepoint(work, "engine-chain-sp", keys)?;
    delta_bytes(report, work, sp, keys)?;
    std::fs::remove_dir_all(work.join("engine-chain-sp")).ok();
    Ok(())
}

/// The runs [`checkpoint_cost`] measured.
struct CheckpointCost {
    /// Median seconds without checkpoints.
    no_ckpt_secs: f64,
    /// CPU seconds of each round's run without checkpoints.
    no_ckpt_cpu: Vec<f64>,
    /// Each round's run with incremental checkpoints.
    incremental: Vec<CheckpointedRun>,
}

/// Runs the keyed count of `events` over `keys` possible keys without and with
/// checkpoints on `schedule`, in three rounds (this machine's speed moves from minute to
/// minute, so each round runs its jobs back to back); reports the medians and the median
/// of the rounds' ratios.
fn checkpoint_cost(
    report: &mut Report,
    work: &Path,
    keys: u64,
    events: u64,
    label: &str,
    schedule: Schedule,
) -> Result<CheckpointCost> {
    const ROUNDS: usize = 3;
    let mut no_ckpt = Vec::new();
    let mut no_ckpt_cpu = Vec::new();
    // Incremental checkpoints (the default), then every checkpoint whole.
    let all_kinds = [(None, "incremental"), (Some(0), "whole")];
    let kinds = &all_kinds[..if schedule.whole_too { 2 } else { 1 }];
    let mut with_ckpt: Vec<Vec<CheckpointedRun>> = vec![Vec::new(); kinds.len()];
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let cpu = cpu_secs();
        run(job(keys, events, 2), RunOptions::default())?.wait()?;
        no_ckpt.push(started.elapsed().as_secs_f64());
        no_ckpt_cpu.push(cpu_secs() - cpu);
        for (k, (layers, how)) in kinds.iter().enumerate() {
            let dir = format!("engine-checkpoints-{keys}-{how}");
            let options = RunOptions {
                checkpoint_dir: Some(at(work, &dir)?),
                checkpoint_interval: Some(schedule.interval),
                retain_checkpoints: 0,
                max_delta_layers: *layers,
                ..Default::default()
            };
            let started = Instant::now();
            let cpu = cpu_secs();
            let (_, stats) = run(job(keys, events, 2), options)?.wait_with_stats()?;
            let secs = started.elapsed().as_secs_f64();
            let cpu = cpu_secs() - cpu;
            let (written, rows) = written_per_checkpoint(&work.join(&dir)).into_iter().unzip();
            with_ckpt[k].push(CheckpointedRun {
                secs,
                cpu,
                checkpoints: stats.checkpoints_written,
                written,
                rows,
                pause: stats.max_sync_pause,
                pause_running: stats.max_sync_pause_running,
            });
            std::fs::remove_dir_all(work.join(&dir)).ok();
        }
    }
    let no_ckpt_secs = median(no_ckpt.clone());
    let throughput =
        |secs: &[f64]| -> Vec<f64> { secs.iter().map(|s| events as f64 / s / 1e6).collect() };
    for (k, (_, how)) in kinds.iter().enumerate() {
        let runs = &with_ckpt[k];
        let secs: Vec<f64> = runs.iter().map(|r| r.secs).collect();
        let last = runs.last().cloned().unwrap_or_default();
        report.add_rounds(
            &format!(
                "engine keyed count{label}, {how} checkpoint every {} s",
                schedule.interval.as_secs_f64()
            ),
            &throughput(&secs),
            "no checkpoints",
            &throughput(&no_ckpt),
            "M events/s",
            format!(
                "last round: {} checkpoints writing {} MB each (median); max synchronous pause {:.3} ms ({:.3} ms of it running)",
                last.checkpoints,
                median(last.written.clone()) / 1e6,
                last.pause.as_secs_f64() * 1e3,
                last.pause_running.as_secs_f64() * 1e3
            ),
        );
    }
    Ok(CheckpointCost {
        no_ckpt_secs,
        no_ckpt_cpu,
        incremental: with_ckpt.swap_remove(0),
    })
}

/// One run of the keyed count with checkpoints.
#[derive(Clone, Default)]
struct CheckpointedRun {
    secs: f64,
    /// CPU seconds the run took (all threads).
    cpu: f64,
    checkpoints: u64,
    /// Bytes and rows each checkpoint wrote itself.
    written: Vec<f64>,
    rows: Vec<f64>,
    pause: Duration,
    pause_running: Duration,
}

/// Bytes and rows each checkpoint under `dir` wrote itself (not the files it lists of
/// earlier checkpoints), in checkpoint order.
fn written_per_checkpoint(dir: &Path) -> Vec<(f64, f64)> {
    let mut found: Vec<(u64, (f64, f64))> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let bytes = std::fs::read(e.path().join("_manifest.json")).ok()?;
            let m = rewind_savepoint::format::Manifest::from_json(&bytes).ok()?;
            let own = || m.shards().filter(|(_, _, s)| s.sibling.is_none());
            let bytes: u64 = own().map(|(_, _, s)| s.bytes).sum();
            let rows: u64 = own().map(|(_, _, s)| s.rows).sum();
            Some((m.checkpoint_id, (bytes as f64, rows as f64)))
        })
        .collect();
    found.sort_by_key(|(id, _)| *id);
    found.into_iter().map(|(_, written)| written).collect()
}

/// A state of `keys` keys (restored from the savepoint at `sp`) of which 1% change between
/// checkpoints: the bytes each incremental checkpoint writes against the first, whole one;
/// then a restore at parallelism 4 from the checkpoint with the longest chain of delta
/// layers against a restore from the same state compacted into one savepoint.
fn delta_bytes(report: &mut Report, work: &Path, sp: Location, keys: u64) -> Result<()> {
    const LAYERS: usize = 10;
    let changing = keys / 100;
    let dir = format!("engine-delta-checkpoints-{keys}");
    std::fs::remove_dir_all(work.join(&dir)).ok();
    let options = RunOptions {
        from_savepoint: Some(sp),
        checkpoint_dir: Some(at(work, &dir)?),
        // Short enough for a chain of LAYERS deltas within the run, long enough that the
        // 1% of keys (about 3 M events a second over them) all change between checkpoints.
        checkpoint_interval: Some(Duration::from_millis(300)),
        retain_checkpoints: 0,
        max_delta_layers: Some(LAYERS),
        ..Default::default()
    };
    // Long enough for more than LAYERS checkpoints at this machine's fastest (~5 s).
    run(job(changing, 60_000_000, 2), options)?.wait()?;
    let (written, _): (Vec<f64>, Vec<f64>) =
        written_per_checkpoint(&work.join(&dir)).into_iter().unzip();
    let (first, rest) = written.split_first().unwrap_or((&0.0, &[]));
    report.add(
        &format!(
            "engine incremental checkpoint of {}M keys, 1% changed",
            keys / 1_000_000
        ),
        median(rest.to_vec()) / 1e6,
        "the first checkpoint (whole)",
        first / 1e6,
        "MB",
        format!(
            "{} checkpoints after the whole one: {}",
            rest.len(),
            rest.iter()
                .map(|b| format!("{:.2}", b / 1e6))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    restore_from_chain(report, work, &dir, keys)?;
    std::fs::remove_dir_all(work.join(&dir)).ok();
    Ok(())
}

/// Restores at parallelism 4 from the checkpoint under `dir` with the most delta layers,
/// and from the same state compacted; six runs each, in turn.
fn restore_from_chain(report: &mut Report, work: &Path, dir: &str, keys: u64) -> Result<()> {
    let Some((folder, layers)) = longest_chain(&work.join(dir)) else {
        anyhow::bail!("no checkpoint under {dir}");
    };
    let chain = at(work, &format!("{dir}/{folder}"))?;
    let compacted = at(work, "engine-chain-compacted")?;
    std::fs::remove_dir_all(work.join("engine-chain-compacted")).ok();
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(async {
            let reader = rewind_savepoint::SavepointReader::open(chain.clone()).await?;
            rewind_savepoint::compact(&reader, compacted.clone(), None).await?;
            anyhow::Ok(())
        })
    })?;
    let restore = |from: &Location| restore_secs(from, keys);
    let (mut from_chain, mut from_whole) = (Vec::new(), Vec::new());
    // Each restore follows the other as often as it precedes it: the one that runs
    // second reuses memory the first just freed.
    for round in 0..6 {
        if round % 2 == 0 {
            from_chain.push(restore(&chain)?);
            from_whole.push(restore(&compacted)?);
        } else {
            from_whole.push(restore(&compacted)?);
            from_chain.push(restore(&chain)?);
        }
    }
    report.add(
        &format!(
            "engine restore at p4 of {}M keys, {layers} delta layers",
            keys / 1_000_000
        ),
        median(from_chain.clone()),
        "the same state compacted",
        median(from_whole.clone()),
        "s",
        format!("median of 6 each, in turn, each first half the time; {folder}"),
    );
    std::fs::remove_dir_all(work.join("engine-chain-compacted")).ok();
    Ok(())
}

/// The checkpoint folder under `dir` whose shards reach the highest delta layer.
fn longest_chain(dir: &Path) -> Option<(String, u32)> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let bytes = std::fs::read(e.path().join("_manifest.json")).ok()?;
            let m = rewind_savepoint::format::Manifest::from_json(&bytes).ok()?;
            let layers = m.shards().map(|(_, _, s)| s.layer).max()?;
            Some((e.file_name().to_string_lossy().into_owned(), layers))
        })
        .max_by_key(|(folder, layers)| (*layers, folder.clone()))
}
