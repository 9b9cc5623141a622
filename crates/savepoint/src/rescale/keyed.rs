//! Cutting a keyed shard at new subtask boundaries: whole row groups are copied as encoded
//! bytes, only row groups that straddle a boundary are decoded, filtered and re-encoded.

use std::io::Write;
use std::sync::{Arc, Mutex};

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
use crate::spec::StateSpec;
use crate::{Error, Location, Result, SavepointWriter};

pub(crate) struct RecutOutcome {
    /// The shards written, each with whether it is lean (no `key_hash` column).
    pub entries: Vec<(ShardEntry, bool)>,
    /// Source bytes of row groups copied without decoding.
    pub spliced: u64,
    /// Source bytes of row groups decoded and re-encoded.
    pub reencoded: u64,
}

/// An open source shard: its footer and Arrow schema.
struct Source<'a> {
    shard: &'a ShardEntry,
    /// Where the shard's file is (its sibling folder, for a shared file).
    home: Location,
    metadata: Arc<ParquetMetaData>,
    arrow: ArrowReaderMetadata,
    described: String,
}

impl Source<'_> {
    /// Whether row groups of `other` can be appended to a file written with this one's
    /// schema as they are: the same Parquet schema and the same Arrow schema.
    fn same_layout(&self, other: &Source<'_>) -> bool {
        let arrow_schema = |s: &Source<'_>| {
            s.metadata
                .file_metadata()
                .key_value_metadata()
                .and_then(|kvs| kvs.iter().find(|kv| kv.key == "ARROW:schema"))
                .and_then(|kv| kv.value.clone())
        };
        self.metadata.file_metadata().schema_descr().root_schema()
            == other.metadata.file_metadata().schema_descr().root_schema()
            && arrow_schema(self) == arrow_schema(other)
    }
}

/// Writes the shard of `range` from the parts of `sources` (in hash order, together
/// covering `range`) that fall in it: one file, unless the sources were written with
/// different Parquet layouts (then one file per run of sources that share one, since row
/// groups can be concatenated only within a layout).
pub(crate) async fn recut(
    from: &Location,
    writer: &SavepointWriter,
    uid: &str,
    spec: &StateSpec,
    range: HashRange,
    sources: &[ShardEntry],
) -> Result<RecutOutcome> {
    let mut opened = Vec::with_capacity(sources.len());
    for shard in sources {
        let home = crate::layers::home(from, shard)?;
        let described = home.describe(&shard.path);
        let corrupt = |e: &dyn std::fmt::Display| Error::corrupt(&described, e.to_string());
        let mut reader = ObjectReader::open(&home, &shard.path, shard.bytes)?;
        let metadata: Arc<ParquetMetaData> =
            reader.get_metadata(None).await.map_err(|e| corrupt(&e))?;
        let arrow = ArrowReaderMetadata::try_new(metadata.clone(), ArrowReaderOptions::new())
            .map_err(|e| corrupt(&e))?;
        opened.push(Source {
            shard,
            home,
            metadata,
            arrow,
            described,
        });
    }
    let mut outcome = RecutOutcome {
        entries: Vec::new(),
        spliced: 0,
        reencoded: 0,
    };
    let mut rest = &opened[..];
    while let Some(first) = rest.first() {
        let run = rest.iter().take_while(|s| first.same_layout(s)).count();
        let (group, next) = rest.split_at(run);
        rest = next;
        // The part of `range` this run of sources covers: the first run starts and the
        // last run ends where `range` does; runs in between meet at their sources' bounds.
        let start = match (outcome.entries.is_empty(), first.shard.hash_range) {
            (false, Some(r)) => r.start().max(range.start()),
            _ => range.start(),
        };
        let end = match (
            rest.is_empty(),
            group.last().and_then(|s| s.shard.hash_range),
        ) {
            (false, Some(r)) => r.end().min(range.end()),
            _ => range.end(),
        };
        let piece = HashRange::new(start, end).unwrap_or(range);
        let written = write_piece(writer, uid, spec, piece, group).await?;
        outcome.spliced += written.1;
        outcome.reencoded += written.2;
        outcome.entries.push(written.0);
    }
    Ok(outcome)
}

/// Writes one new shard holding the rows of `group` inside `piece`.
async fn write_piece(
    writer: &SavepointWriter,
    uid: &str,
    spec: &StateSpec,
    piece: HashRange,
    group: &[Source<'_>],
) -> Result<((ShardEntry, bool), u64, u64)> {
    let Some(first) = group.first() else {
        return Err(Error::Internal("a shard cut from no source".into()));
    };
    let schema = first.arrow.schema().clone();
    // Carry the source's footer metadata (ARROW:schema above all) so readers see the same
    // Arrow types; the rewind.* keys are this savepoint's (its writer encodes the file).
    let savepoint_id = writer.id()?;
    let mut properties = shard_properties(writer.options(), &savepoint_id, uid, spec);
    let carried: Vec<KeyValue> = first
        .metadata
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
    let path = writer.shard_path(uid, spec.name())?;
    let mut out = PieceWriter::new(
        writer.location(),
        path,
        piece,
        &schema,
        Arc::new(properties),
    )?;
    let lean = out.lean.is_some();
    let (mut spliced, mut reencoded) = (0u64, 0u64);
    for source in group {
        let described = &source.described;
        let corrupt = |e: &dyn std::fmt::Display| Error::corrupt(described, e.to_string());
        let (mins, maxes) =
            hash_bounds(&source.metadata, source.arrow.schema()).map_err(|e| corrupt(&e))?;
        for (index, group) in source.metadata.row_groups().iter().enumerate() {
            let Some(bounds) = HashRange::new(mins[index], maxes[index]) else {
                continue;
            };
            if !piece.intersects(&bounds) || group.num_rows() == 0 {
                continue;
            }
            let bytes = fetch_row_group(&source.home, &source.shard.path, group).await?;
            let size = group.compressed_size() as u64;
            if piece.contains(bounds.start()) && piece.contains(bounds.end()) {
                out.append_row_group(&bytes, group, bounds)
                    .map_err(|e| corrupt(&e))?;
                spliced += size;
            } else {
                let builder =
                    ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, source.arrow.clone())
                        .with_row_groups(vec![index])
                        .with_batch_size(group.num_rows().max(1) as usize);
                guarded(described, || {
                    for batch in builder.build().map_err(|e| corrupt(&e))? {
                        let batch = batch.map_err(|e| corrupt(&e))?;
                        let (part, hashes) =
                            filter_range(&batch, piece).map_err(|e| corrupt(&e))?;
                        if part.num_rows() > 0 {
                            out.append_batch(&part, &hashes).map_err(|e| corrupt(&e))?;
                        }
                    }
                    Ok(())
                })?;
                // A boundary row group is decoded by the shards on both sides; count its
                // bytes once, on the side where it starts.
                if piece.contains(bounds.start()) {
                    reencoded += size;
                }
            }
            out.drain().await?;
        }
    }
    Ok(((out.finish().await?, lean), spliced, reencoded))
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

/// The rows of `batch` inside `range`, with their key hashes (stored or, in a lean shard,
/// computed).
fn filter_range(batch: &RecordBatch, range: HashRange) -> Result<(RecordBatch, Vec<u64>), String> {
    let hashes = crate::lean::key_hashes(batch)?;
    let mask: BooleanArray = hashes
        .values()
        .iter()
        .map(|&h| Some(range.contains(h)))
        .collect();
    let kept = hashes
        .values()
        .iter()
        .copied()
        .filter(|&h| range.contains(h))
        .collect();
    let part =
        arrow_select::filter::filter_record_batch(batch, &mask).map_err(|e| e.to_string())?;
    Ok((part, kept))
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
    /// Makes room for `additional` bytes at once, so appending a row group does not copy
    /// the buffer again each time it grows (a profile showed ~5% of a rescale there).
    fn reserve(&self, additional: usize) {
        if let Ok(mut b) = self.0.lock() {
            b.reserve(additional);
        }
    }

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
    /// For a lean shard: the hash range of every row group written, for its footer.
    lean: Option<Vec<Option<(u64, u64)>>>,
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
        let lean = crate::lean::is_lean(schema).then(Vec::new);
        Ok(PieceWriter {
            path,
            range,
            buffer,
            writer,
            factory,
            sink,
            described,
            rows: 0,
            lean,
        })
    }

    /// Copies a source row group's encoded column chunks as they are.
    fn append_row_group(
        &mut self,
        source: &RangeBytes,
        group: &RowGroupMetaData,
        bounds: HashRange,
    ) -> parquet::errors::Result<()> {
        if let Some(ranges) = self.lean.as_mut() {
            ranges.push(Some((bounds.start(), bounds.end())));
        }
        self.buffer
            .reserve(usize::try_from(group.compressed_size()).unwrap_or(0));
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

    /// Encodes a batch as a new row group; `hashes` are its rows' key hashes, in order.
    fn append_batch(&mut self, batch: &RecordBatch, hashes: &[u64]) -> parquet::errors::Result<()> {
        if let Some(ranges) = self.lean.as_mut() {
            ranges.push(hashes.first().zip(hashes.last()).map(|(lo, hi)| (*lo, *hi)));
        }
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
        if let Some(ranges) = &self.lean {
            self.writer.append_key_value_metadata(KeyValue::new(
                crate::lean::HASH_RANGES_KEY.to_string(),
                crate::lean::format_ranges(ranges),
            ));
        }
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
            sibling: None,
            layer: 0,
        })
    }
}
