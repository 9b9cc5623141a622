//! Synthetic savepoints for demos, benchmarks and tests, written through the real writer.

use std::sync::Arc;

use arrow_array::{ArrayRef, BinaryArray, Int64Array, RecordBatch, StructArray};
use arrow_schema::{DataType, Field, Fields, Schema};
use futures::{StreamExt, TryStreamExt};
use rewind_format::{HashRange, Manifest, SplitEntry, hash_keys};

use crate::spec::columns;
use crate::{Error, Location, Result, SavepointInfo, SavepointWriter, StateSpec, WriterOptions};

/// What [`generate`] writes.
#[derive(Clone)]
pub struct GenerateOptions {
    /// Distinct keys per keyed state (keys are the integers `0..keys`).
    pub keys: u64,
    /// Parallelism of every operator.
    pub parallelism: u32,
    /// Number of keyed operators (each with one value state).
    pub operators: u32,
    /// Bytes of random payload per value; 0 makes the value a plain `int64`.
    pub value_bytes: usize,
    /// Seed of the values; the same seed gives the same logical content.
    pub seed: u64,
    /// Keys held in memory at once while sorting a shard by key hash.
    pub sort_budget: usize,
    /// Encoding options.
    pub writer: WriterOptions,
    /// Called with the number of rows of each finished shard.
    pub progress: Option<Arc<dyn Fn(u64) + Send + Sync>>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            keys: 1000,
            parallelism: 1,
            operators: 1,
            value_bytes: 0,
            seed: 0,
            sort_budget: 2_000_000,
            // New savepoints are written lean (format 1.1): ~5 bytes a key smaller.
            writer: WriterOptions {
                lean_keyed_shards: true,
                ..WriterOptions::default()
            },
            progress: None,
        }
    }
}

impl std::fmt::Debug for GenerateOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenerateOptions")
            .field("keys", &self.keys)
            .field("parallelism", &self.parallelism)
            .field("operators", &self.operators)
            .field("value_bytes", &self.value_bytes)
            .field("seed", &self.seed)
            .finish()
    }
}

/// SplitMix64: a tiny, fixed generator, so the same seed gives the same savepoint on every
/// platform and version.
pub(crate) fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Writes a synthetic savepoint of job `synthetic`: a source operator `source` with one
/// split per subtask, and keyed operators `op-0`, `op-1`, ... each with value state `state`
/// keyed by `int64`. Memory is bounded by `sort_budget` keys per concurrent shard.
pub async fn generate(location: Location, options: GenerateOptions) -> Result<Manifest> {
    if options.parallelism == 0 {
        return Err(Error::InvalidInput("parallelism must be at least 1".into()));
    }
    if options.keys > i64::MAX as u64 {
        return Err(Error::InvalidInput("at most 2^63-1 keys".into()));
    }
    let mut info = SavepointInfo::new("synthetic", "generate");
    info.lineage.parameters = Some(serde_json::json!({
        "keys": options.keys,
        "parallelism": options.parallelism,
        "operators": options.operators,
        "value_bytes": options.value_bytes,
        "seed": options.seed,
    }));
    let writer = Arc::new(
        SavepointWriter::create_with_options(location, info, options.writer.clone()).await?,
    );
    let p = options.parallelism;
    writer.add_operator("source", "Generator source", p)?;
    let per_split = options.keys / p as u64;
    let splits = (0..p)
        .map(|i| SplitEntry {
            id: format!("split-{i}"),
            position: serde_json::json!({ "offset": per_split * (i as u64 + 1) }),
            watermark: Some(
                1_700_000_000_000 + (splitmix64(options.seed ^ i as u64) % 60_000) as i64,
            ),
        })
        .collect();
    writer.set_source_splits("source", splits)?;
    let value_type = value_type(options.value_bytes);
    for op in 0..options.operators {
        let uid = format!("op-{op}");
        writer.add_operator(&uid, &format!("Keyed aggregate {op}"), p)?;
        writer.add_state(
            &uid,
            StateSpec::value("state", DataType::Int64, value_type.clone()),
        )?;
    }

    let jobs: Vec<(u32, u32)> = (0..options.operators)
        .flat_map(|op| (0..p).map(move |s| (op, s)))
        .collect();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    futures::stream::iter(jobs)
        .map(|(op, subtask)| {
            let writer = writer.clone();
            let options = options.clone();
            let value_type = value_type.clone();
            tokio::spawn(
                async move { write_shard(&writer, &options, &value_type, op, subtask).await },
            )
        })
        .buffer_unordered(workers)
        .map(|joined| joined.map_err(|e| Error::Internal(format!("generator task failed: {e}")))?)
        .try_collect::<Vec<()>>()
        .await?;
    let writer =
        Arc::into_inner(writer).ok_or_else(|| Error::Internal("writer still shared".into()))?;
    writer.commit().await
}

fn value_type(value_bytes: usize) -> DataType {
    if value_bytes == 0 {
        DataType::Int64
    } else {
        DataType::Struct(payload_fields())
    }
}

fn payload_fields() -> Fields {
    Fields::from(vec![
        Field::new("count", DataType::Int64, true),
        Field::new("payload", DataType::Binary, true),
    ])
}

/// Writes one shard: passes over all keys, keeping those of one slice of the subtask's
/// range at a time, so memory stays within the sort budget.
async fn write_shard(
    writer: &SavepointWriter,
    options: &GenerateOptions,
    value_type: &DataType,
    op: u32,
    subtask: u32,
) -> Result<()> {
    let range = HashRange::for_subtask(subtask, options.parallelism)
        .ok_or_else(|| Error::Internal("subtask range".into()))?;
    let uid = format!("op-{op}");
    let mut shard = writer.keyed_shard(&uid, "state", range)?;
    let expected = options.keys / options.parallelism as u64 + 1;
    let passes = expected.div_ceil(options.sort_budget.max(1) as u64).max(1);
    let width = (range.end() - range.start()) / passes;
    let mut rows = 0u64;
    for pass in 0..passes {
        let lo = range.start() + pass * width;
        let hi = if pass + 1 == passes {
            range.end()
        } else {
            lo + width - 1
        };
        let mut selected = select_keys(options.keys, lo, hi)?;
        selected.sort_unstable();
        rows += selected.len() as u64;
        for chunk in selected.chunks(options.writer.row_group_rows.max(1)) {
            let batch = batch_for(chunk, value_type, options, op)?;
            shard.write(&batch).await?;
        }
        tokio::task::yield_now().await;
    }
    shard.finish().await?;
    if let Some(progress) = &options.progress {
        progress(rows);
    }
    Ok(())
}

/// `(hash, key)` of every key in `0..keys` whose hash lies in `lo..=hi`.
fn select_keys(keys: u64, lo: u64, hi: u64) -> Result<Vec<(u64, i64)>> {
    const CHUNK: u64 = 64 * 1024;
    let mut out = Vec::new();
    let mut start = 0u64;
    while start < keys {
        let end = (start + CHUNK).min(keys);
        let chunk = Int64Array::from_iter_values((start as i64)..(end as i64));
        let hashes = hash_keys(&chunk).map_err(|e| Error::Internal(e.to_string()))?;
        for (i, h) in hashes.into_iter().enumerate() {
            if lo <= h && h <= hi {
                out.push((h, start as i64 + i as i64));
            }
        }
        start = end;
    }
    Ok(out)
}

fn batch_for(
    chunk: &[(u64, i64)],
    value_type: &DataType,
    options: &GenerateOptions,
    op: u32,
) -> Result<RecordBatch> {
    let keys = Int64Array::from_iter_values(chunk.iter().map(|&(_, k)| k));
    let salt = splitmix64(options.seed ^ ((op as u64) << 32));
    let counts = Int64Array::from_iter_values(
        chunk
            .iter()
            .map(|&(_, k)| (splitmix64(salt ^ k as u64) % 1000) as i64),
    );
    let value: ArrayRef = if options.value_bytes == 0 {
        Arc::new(counts)
    } else {
        let payloads: Vec<Vec<u8>> = chunk
            .iter()
            .map(|&(_, k)| {
                let mut state = splitmix64(salt ^ !(k as u64));
                (0..options.value_bytes)
                    .map(|_| {
                        state = splitmix64(state);
                        // Printable letters: payloads compress like real text, not noise.
                        b'a' + (state % 26) as u8
                    })
                    .collect()
            })
            .collect();
        let payload = BinaryArray::from_iter_values(payloads.iter());
        Arc::new(StructArray::new(
            payload_fields(),
            vec![Arc::new(counts) as ArrayRef, Arc::new(payload) as ArrayRef],
            None,
        ))
    };
    let schema = Schema::new(vec![
        Field::new(columns::KEY, DataType::Int64, false),
        Field::new(columns::VALUE, value_type.clone(), true),
    ]);
    RecordBatch::try_new(Arc::new(schema), vec![Arc::new(keys), value])
        .map_err(|e| Error::Internal(e.to_string()))
}
