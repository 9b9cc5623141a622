//! Cutting a keyed shard at new subtask boundaries: whole row groups are copied as encoded
//! bytes, only row groups that straddle a boundary are decoded, filtered and re-encoded.

use std::io::Write;
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::{BooleanArray, RecordBatch};
use arrow_schema::SchemaRef;
use bytes::Bytes;
use object_store::ObjectStoreExt;
use parquet::arrow::ArrowSchemaConverter;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::arrow_writer::{ArrowRowGroupWriterFactory, compute_leaves};
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::arrow::async_writer::AsyncFileWriter;
use parquet::column::writer::ColumnCloseResult;
use parquet::file::metadata::{KeyValue, ParquetMetaData, RowGroupMetaData};
use parquet::file::reader::{ChunkReader, Length};
use parquet::file::writer::SerializedFileWriter;
use rewind_format::{HashRange, ShardEntry};

use crate::parquet_io::{ChecksumWriter, ObjectReader, guarded, parquet_error};
use crate::shard_writer::shard_properties;
use crate::spec::{StateSpec, columns};
use crate::{Error, Location, Result, SavepointWriter};

pub(crate) struct SplitOutcome {
    pub entries: Vec<ShardEntry>,
    /// Source bytes of row groups copied without decoding.
    pub spliced: u64,
    /// Source bytes of row groups decoded and re-encoded.
    pub reencoded: u64,
}

/// Splits `shard` into one new shard per range of `pieces` (contiguous, covering its range).
pub(crate) async fn split_shard(
    from: &Location,
    writer: &SavepointWriter,
    uid: &str,
    spec: &StateSpec,
    shard: &ShardEntry,
    pieces: &[HashRange],
) -> Result<SplitOutcome> {
    let described = from.describe(&shard.path);
    let corrupt = |e: &dyn std::fmt::Display| Error::corrupt(&described, e.to_string());
    let mut source = ObjectReader::open(from, &shard.path, shard.bytes)?;
    let metadata: Arc<ParquetMetaData> =
        source.get_metadata(None).await.map_err(|e| corrupt(&e))?;
    let arrow = ArrowReaderMetadata::try_new(metadata.clone(), ArrowReaderOptions::new())
        .map_err(|e| corrupt(&e))?;
    let schema = arrow.schema().clone();
    let (mins, maxes) = hash_bounds(&metadata, &schema).map_err(|e| corrupt(&e))?;

    // Carry the source's footer metadata (ARROW:schema above all) so readers see the same
    // Arrow types; the rewind.* keys are replaced with this savepoint's.
    let savepoint_id = writer.id()?;
    let mut properties = shard_properties(writer.options(), &savepoint_id, uid, spec);
    let carried: Vec<KeyValue> = metadata
        .file_metadata()
        .key_value_metadata()
        .map(|kvs| {
            kvs.iter()
                .filter(|kv| !kv.key.starts_with("rewind."))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let mut kvs = properties.key_value_metadata().cloned().unwrap_or_default();
    kvs.extend(carried);
    properties = properties
        .into_builder()
        .set_key_value_metadata(Some(kvs))
        .build();
    let properties = Arc::new(properties);

    let mut outputs = Vec::with_capacity(pieces.len());
    for range in pieces {
        let path = writer.shard_path(uid, spec.name())?;
        outputs.push(PieceWriter::new(
            writer.location(),
            path,
            *range,
            &schema,
            properties.clone(),
        )?);
    }

    let (mut spliced, mut reencoded) = (0u64, 0u64);
    for (index, group) in metadata.row_groups().iter().enumerate() {
        let (lo, hi) = (mins[index], maxes[index]);
        let targets: Vec<usize> = (0..outputs.len())
            .filter(|&i| pieces[i].intersects(&HashRange::new(lo, hi).unwrap_or(HashRange::FULL)))
            .collect();
        let bytes = fetch_row_group(from, &shard.path, group).await?;
        let size = group.compressed_size() as u64;
        if let [only] = targets[..] {
            outputs[only]
                .append_row_group(&bytes, group)
                .map_err(|e| corrupt(&e))?;
            spliced += size;
        } else {
            let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, arrow.clone())
                .with_row_groups(vec![index])
                .with_batch_size(group.num_rows().max(1) as usize);
            guarded(&described, || {
                for batch in builder.build().map_err(|e| corrupt(&e))? {
                    let batch = batch.map_err(|e| corrupt(&e))?;
                    for &t in &targets {
                        let part = filter_range(&batch, pieces[t]).map_err(|e| corrupt(&e))?;
                        if part.num_rows() > 0 {
                            outputs[t].append_batch(&part).map_err(|e| corrupt(&e))?;
                        }
                    }
                }
                Ok(())
            })?;
            reencoded += size;
        }
        for out in &mut outputs {
            out.drain().await?;
        }
    }
    let mut entries = Vec::with_capacity(outputs.len());
    for out in outputs {
        entries.push(out.finish().await?);
    }
    Ok(SplitOutcome {
        entries,
        spliced,
        reencoded,
    })
}

/// Min and max key hash of every row group; a row group without statistics counts as
/// spanning the whole space (so it is decoded, never copied into the wrong piece).
fn hash_bounds(
    metadata: &ParquetMetaData,
    schema: &SchemaRef,
) -> Result<(Vec<u64>, Vec<u64>), String> {
    let bounds = crate::stats::row_group_hash_bounds(metadata, schema)?;
    Ok(bounds.iter().map(|b| b.unwrap_or((0, u64::MAX))).unzip())
}

fn filter_range(batch: &RecordBatch, range: HashRange) -> Result<RecordBatch, String> {
    let hashes = batch
        .column_by_name(columns::KEY_HASH)
        .and_then(|c| c.as_primitive_opt::<UInt64Type>().cloned())
        .ok_or("no key_hash column")?;
    let mask: BooleanArray = hashes
        .values()
        .iter()
        .map(|&h| Some(range.contains(h)))
        .collect();
    arrow_select::filter::filter_record_batch(batch, &mask).map_err(|e| e.to_string())
}

/// The bytes of one row group's column chunks, addressed by their offsets in the file.
async fn fetch_row_group(
    from: &Location,
    path: &str,
    group: &RowGroupMetaData,
) -> Result<RangeBytes> {
    let (mut start, mut end) = (u64::MAX, 0u64);
    for column in group.columns() {
        let (s, len) = column.byte_range();
        start = start.min(s);
        end = end.max(s + len);
    }
    if start >= end {
        return Ok(RangeBytes {
            start: 0,
            data: Bytes::new(),
        });
    }
    let data = from
        .store()
        .get_range(&from.child(path), start..end)
        .await
        .map_err(|e| Error::storage(from.describe(path), e))?;
    Ok(RangeBytes { start, data })
}

/// A slice of a file held in memory, readable at the file's own offsets.
#[derive(Clone)]
struct RangeBytes {
    start: u64,
    data: Bytes,
}

impl Length for RangeBytes {
    fn len(&self) -> u64 {
        self.start + self.data.len() as u64
    }
}

impl ChunkReader for RangeBytes {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        use bytes::Buf;
        Ok(self
            .get_bytes(start, (self.len() - start) as usize)?
            .reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let offset = start
            .checked_sub(self.start)
            .map(|o| o as usize)
            .filter(|o| o + length <= self.data.len())
            .ok_or_else(|| {
                parquet::errors::ParquetError::General(format!(
                    "read of {length} bytes at {start} is outside the fetched row group"
                ))
            })?;
        Ok(self.data.slice(offset..offset + length))
    }
}

/// An in-memory sink the synchronous Parquet writer fills; drained to the upload after
/// every row group, so memory holds at most one row group per piece.
#[derive(Clone, Default)]
struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuffer {
    fn take(&self) -> Vec<u8> {
        self.0
            .lock()
            .map(|mut b| std::mem::take(&mut *b))
            .unwrap_or_default()
    }
}

struct PieceWriter {
    path: String,
    range: HashRange,
    buffer: SharedBuffer,
    writer: SerializedFileWriter<SharedBuffer>,
    factory: ArrowRowGroupWriterFactory,
    sink: ChecksumWriter,
    described: String,
    rows: u64,
}

impl PieceWriter {
    fn new(
        to: &Location,
        path: String,
        range: HashRange,
        schema: &SchemaRef,
        properties: Arc<parquet::file::properties::WriterProperties>,
    ) -> Result<PieceWriter> {
        let described = to.describe(&path);
        let parquet_schema = ArrowSchemaConverter::new()
            .with_coerce_types(properties.coerce_types())
            .convert(schema)
            .map_err(|e| Error::corrupt(&described, e.to_string()))?;
        let buffer = SharedBuffer::default();
        let writer =
            SerializedFileWriter::new(buffer.clone(), parquet_schema.root_schema_ptr(), properties)
                .map_err(|e| Error::corrupt(&described, e.to_string()))?;
        let factory = ArrowRowGroupWriterFactory::new(&writer, schema.clone());
        let sink = ChecksumWriter::new(to.store().clone(), to.child(&path), 8);
        Ok(PieceWriter {
            path,
            range,
            buffer,
            writer,
            factory,
            sink,
            described,
            rows: 0,
        })
    }

    /// Copies a source row group's encoded column chunks as they are.
    fn append_row_group(
        &mut self,
        source: &RangeBytes,
        group: &RowGroupMetaData,
    ) -> parquet::errors::Result<()> {
        let mut out = self.writer.next_row_group()?;
        for column in group.columns() {
            let close = ColumnCloseResult {
                bytes_written: column.compressed_size() as u64,
                rows_written: group.num_rows() as u64,
                metadata: column.clone(),
                bloom_filter: None,
                column_index: None,
                offset_index: None,
            };
            out.append_column(source, close)?;
        }
        out.close()?;
        self.rows += group.num_rows() as u64;
        Ok(())
    }

    /// Encodes a batch as a new row group.
    fn append_batch(&mut self, batch: &RecordBatch) -> parquet::errors::Result<()> {
        let index = self.writer.flushed_row_groups().len();
        let mut writers = self.factory.create_column_writers(index)?;
        let mut next = writers.iter_mut();
        for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
            for leaf in compute_leaves(field, column)? {
                next.next()
                    .ok_or_else(|| {
                        parquet::errors::ParquetError::General("more leaves than columns".into())
                    })?
                    .write(&leaf)?;
            }
        }
        let mut out = self.writer.next_row_group()?;
        for w in writers {
            w.close()?.append_to_row_group(&mut out)?;
        }
        out.close()?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    async fn drain(&mut self) -> Result<()> {
        let bytes = self.buffer.take();
        if !bytes.is_empty() {
            self.sink
                .write(Bytes::from(bytes))
                .await
                .map_err(|e| parquet_error(&self.described, "upload failed", e))?;
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<ShardEntry> {
        self.writer
            .finish()
            .map_err(|e| Error::corrupt(&self.described, e.to_string()))?;
        self.drain().await?;
        self.sink
            .complete()
            .await
            .map_err(|e| parquet_error(&self.described, "upload failed", e))?;
        let (crc, bytes) = self.sink.summary();
        Ok(ShardEntry {
            path: self.path,
            hash_range: Some(self.range),
            subtask: None,
            rows: self.rows,
            bytes,
            crc32c: format!("{crc:08x}"),
        })
    }
}
