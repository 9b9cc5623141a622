//! Writing, inspecting and validating savepoints against plain Parquet and plain reads.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, StructArray, UInt64Array};
use arrow_schema::{DataType, Field, Fields, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rewind_savepoint::format::{HashRange, hash_keys};
use rewind_savepoint::{
    GenerateOptions, Location, SavepointInfo, SavepointReader, SavepointWriter, StateSpec,
    ValidateOptions, WriterOptions, generate,
};

use crate::memory;
use crate::report::{Report, median};

#[derive(Clone, Copy)]
pub enum Value {
    Int64,
    Struct,
}

const BATCH_ROWS: usize = 64 * 1024;
const RUNS: usize = 3;

fn struct_fields() -> Fields {
    Fields::from(vec![
        Field::new("count", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
    ])
}

/// `n` keys sorted by key hash, in batches of (key: uint64, value), as a job's state
/// snapshot hands them to the writer.
fn sorted_batches(n: usize, value: Value) -> Result<Vec<RecordBatch>> {
    let keys = UInt64Array::from_iter_values(0..n as u64);
    let hashes = hash_keys(&keys)?;
    let mut order: Vec<(u64, u64)> = hashes.into_iter().zip(0..n as u64).collect();
    order.sort_unstable();
    let value_type = match value {
        Value::Int64 => DataType::Int64,
        Value::Struct => DataType::Struct(struct_fields()),
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("key", DataType::UInt64, false),
        Field::new("value", value_type, true),
    ]));
    let mut out = Vec::new();
    for chunk in order.chunks(BATCH_ROWS) {
        let keys = UInt64Array::from_iter_values(chunk.iter().map(|&(_, k)| k));
        let counts = Int64Array::from_iter_values(chunk.iter().map(|&(_, k)| (k % 1000) as i64));
        let value: ArrayRef = match value {
            Value::Int64 => Arc::new(counts),
            Value::Struct => Arc::new(StructArray::new(
                struct_fields(),
                vec![
                    Arc::new(counts) as ArrayRef,
                    Arc::new(StringArray::from_iter_values(
                        chunk.iter().map(|&(_, k)| format!("user-{}", k % 100_000)),
                    )),
                ],
                None,
            )),
        };
        out.push(RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(keys), value],
        )?);
    }
    Ok(out)
}

/// The same batches with the `key_hash` column in front, computed before timing.
fn with_hash_column(batches: &[RecordBatch]) -> Result<Vec<RecordBatch>> {
    batches
        .iter()
        .map(|b| {
            let hashes = UInt64Array::from(hash_keys(b.column(0).as_ref())?);
            let mut fields = vec![Field::new("key_hash", DataType::UInt64, false)];
            fields.extend(b.schema().fields().iter().map(|f| f.as_ref().clone()));
            let mut columns: Vec<ArrayRef> = vec![Arc::new(hashes)];
            columns.extend(b.columns().iter().cloned());
            Ok(RecordBatch::try_new(
                Arc::new(Schema::new(fields)),
                columns,
            )?)
        })
        .collect()
}

/// Seconds for arrow-rs's ArrowWriter to write `batches` to `path` and fsync it, with the
/// writer's own compression and row groups (and the `key_hash` encoding where there is one).
pub fn plain_write(batches: &[RecordBatch], path: &Path) -> Result<f64> {
    let started = Instant::now();
    let file = std::fs::File::create(path)?;
    let hash = parquet::schema::types::ColumnPath::from("key_hash");
    let properties = plain_properties()?
        .into_builder()
        .set_column_dictionary_enabled(hash.clone(), false)
        .set_column_encoding(hash, parquet::basic::Encoding::DELTA_BINARY_PACKED)
        .build();
    let mut w = ArrowWriter::try_new(file.try_clone()?, batches[0].schema(), Some(properties))?;
    for b in batches {
        w.write(b)?;
    }
    w.close()?;
    file.sync_all()?;
    Ok(started.elapsed().as_secs_f64())
}

fn plain_properties() -> Result<WriterProperties> {
    let options = WriterOptions::default();
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(options.zstd_level)?))
        .set_max_row_group_row_count(Some(options.row_group_rows))
        .build())
}

pub fn dir_size(path: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            let p = e.path();
            total += if p.is_dir() {
                dir_size(&p)
            } else {
                e.metadata().map_or(0, |m| m.len())
            };
        }
    }
    total
}

/// Compressed bytes per top-level column over every Parquet file under `path`, from the
/// files' footers: where a savepoint's bytes go.
pub fn column_bytes(path: &Path) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(path) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            for (column, bytes) in column_bytes(&p) {
                *out.entry(column).or_insert(0) += bytes;
            }
            continue;
        }
        let Ok(file) = std::fs::File::open(&p) else {
            continue;
        };
        let Ok(reader) = parquet::file::reader::SerializedFileReader::new(file) else {
            continue;
        };
        use parquet::file::reader::FileReader;
        for group in reader.metadata().row_groups() {
            for column in group.columns() {
                let name = column.column_path().parts()[0].clone();
                *out.entry(name).or_insert(0) += column.compressed_size() as u64;
            }
        }
    }
    out
}

/// SavepointWriter (hash column, order check, CRC, manifest, fsync) against arrow-rs's
/// ArrowWriter writing the same batches with the same settings to the same disk (fsynced).
pub async fn write(report: &mut Report, work: &Path, n: usize, value: Value) -> Result<()> {
    let label = match value {
        Value::Int64 => "uint64 -> int64",
        Value::Struct => "uint64 -> struct<count, name>",
    };
    eprintln!("write {n} keys ({label})");
    let batches = sorted_batches(n, value)?;
    let hashed = with_hash_column(&batches)?;
    let value_type = batches[0].schema().field(1).data_type().clone();
    let (mut ours, mut plain, mut our_bytes, mut plain_bytes, mut peak) =
        (vec![], vec![], 0, 0, 0.0f64);
    let (mut same_columns, mut lean, mut lean_bytes) = (vec![], vec![], 0);
    for run in 0..RUNS {
        let dir = work.join(format!("write-{n}-{run}"));
        let before = memory::current_mib();
        memory::reset_peak();
        let (secs, bytes) = write_savepoint(&dir.join("sp"), &batches, &value_type, false).await?;
        ours.push(secs);
        our_bytes = bytes;
        peak = peak.max(memory::peak_mib() - before);
        let (secs, bytes) = write_savepoint(&dir.join("lean"), &batches, &value_type, true).await?;
        lean.push(secs);
        lean_bytes = bytes;

        let file_path = dir.join("plain.parquet");
        plain.push(plain_write(&batches, &file_path)?);
        plain_bytes = std::fs::metadata(&file_path)?.len();

        same_columns.push(plain_write(&hashed, &dir.join("plain-with-hash.parquet"))?);
        std::fs::remove_dir_all(&dir)?;
    }
    let (ours, plain) = (median(ours), median(plain));
    report.add(
        &format!("write {}M keys lean, {label}", n / 1_000_000),
        median(lean),
        "the same savepoint, full shards (key_hash stored)",
        ours,
        "s",
        format!(
            "{:.2} vs {:.2} bytes/key ({:.2}x)",
            lean_bytes as f64 / n as f64,
            our_bytes as f64 / n as f64,
            lean_bytes as f64 / our_bytes.max(1) as f64
        ),
    );
    report.add(
        &format!("write {}M keys, {label}", n / 1_000_000),
        ours,
        "ArrowWriter, same 3 columns (key_hash precomputed)",
        median(same_columns),
        "s",
        "the library's own cost: hashing, order check, CRC, manifest".into(),
    );
    report.add(
        &format!("write {}M keys, {label}", n / 1_000_000),
        ours,
        "arrow-rs ArrowWriter, same batches",
        plain,
        "s",
        format!(
            "{:.1} vs {:.1} bytes/key; {:.1} M rows/s; peak RSS above input {:.0} MiB",
            our_bytes as f64 / n as f64,
            plain_bytes as f64 / n as f64,
            n as f64 / ours / 1e6,
            peak
        ),
    );
    Ok(())
}

/// Writes `batches` as a one-shard savepoint at `root` (lean or full keyed shards): seconds
/// and bytes on disk.
async fn write_savepoint(
    root: &Path,
    batches: &[RecordBatch],
    value_type: &DataType,
    lean: bool,
) -> Result<(f64, u64)> {
    let started = Instant::now();
    let location = Location::parse(root.to_str().unwrap_or_default())?;
    let options = WriterOptions {
        lean_keyed_shards: lean,
        ..WriterOptions::default()
    };
    let writer = SavepointWriter::create_with_options(
        location,
        SavepointInfo::new("bench", "bootstrap"),
        options,
    )
    .await?;
    writer.add_operator("op", "op", 1)?;
    writer.add_state(
        "op",
        StateSpec::value("state", DataType::UInt64, value_type.clone()),
    )?;
    let mut shard = writer.keyed_shard("op", "state", HashRange::FULL)?;
    for b in batches {
        shard.write(b).await?;
    }
    shard.finish().await?;
    writer.commit().await?;
    Ok((started.elapsed().as_secs_f64(), dir_size(root)))
}

async fn generated(work: &Path, name: &str, keys: u64) -> Result<(Location, f64, f64)> {
    let dir = work.join(name);
    let location = Location::parse(dir.to_str().unwrap_or_default())?;
    if SavepointReader::open(location.clone()).await.is_ok() {
        return Ok((location, 0.0, 0.0));
    }
    let before = memory::current_mib();
    memory::reset_peak();
    let started = Instant::now();
    generate(
        location.clone(),
        GenerateOptions {
            keys,
            parallelism: 4,
            ..Default::default()
        },
    )
    .await?;
    Ok((
        location,
        started.elapsed().as_secs_f64(),
        memory::peak_mib() - before,
    ))
}

/// Opening a savepoint reads only its manifest: time must not grow with state size.
pub async fn inspect(report: &mut Report, work: &Path, small: usize, big: usize) -> Result<()> {
    eprintln!("inspect {small} vs {big} keys");
    let (small_loc, _, _) = generated(work, "gen-small", small as u64).await?;
    let (big_loc, secs, peak) = generated(work, "gen-big", big as u64).await?;
    eprintln!("  generate {big} keys at parallelism 4: {secs:.2} s, peak RSS {peak:.0} MiB");
    let time = |loc: Location| async move {
        let mut samples = Vec::new();
        for _ in 0..50 {
            let started = Instant::now();
            let reader = SavepointReader::open(loc.clone()).await?;
            std::hint::black_box(reader.manifest().operators.len());
            samples.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        anyhow::Ok(median(samples))
    };
    let (s, b) = (time(small_loc).await?, time(big_loc).await?);
    report.add(
        &format!("open+parse manifest, {}M keys", big / 1_000_000),
        b,
        &format!("same, {}k keys", small / 1000),
        s,
        "ms",
        "median of 50".into(),
    );
    Ok(())
}

/// `validate` (size, CRC-32C, footer, schema, statistics of every shard) against reading
/// every file once.
pub async fn validate_bench(report: &mut Report, work: &Path, big: usize) -> Result<()> {
    eprintln!("validate {big} keys");
    let (loc, _, _) = generated(work, "gen-big", big as u64).await?;
    let root = work.join("gen-big");
    let (mut ours, mut plain, mut peak) = (vec![], vec![], 0.0f64);
    for _ in 0..RUNS {
        let before = memory::current_mib();
        memory::reset_peak();
        let started = Instant::now();
        let result = rewind_savepoint::validate(&loc, ValidateOptions::default()).await?;
        anyhow::ensure!(
            result.is_valid(),
            "generated savepoint is invalid: {:?}",
            result.problems
        );
        ours.push(started.elapsed().as_secs_f64());
        peak = peak.max(memory::peak_mib() - before);

        let started = Instant::now();
        read_tree(&root)?;
        plain.push(started.elapsed().as_secs_f64());
    }
    report.add(
        &format!("validate {}M keys", big / 1_000_000),
        median(ours),
        "read every file once",
        median(plain),
        "s",
        format!(
            "peak RSS {peak:.0} MiB; {} MiB on disk",
            dir_size(&root) / (1 << 20)
        ),
    );
    Ok(())
}

fn read_tree(path: &Path) -> Result<u64> {
    let mut total = 0;
    let mut buf = vec![0u8; 1 << 20];
    for e in std::fs::read_dir(path)?.flatten() {
        let p = e.path();
        if p.is_dir() {
            total += read_tree(&p)?;
        } else {
            let mut f = std::fs::File::open(&p)?;
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
        }
    }
    Ok(total)
}
