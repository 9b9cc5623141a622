//! One new keyed shard assembled from row groups: source row groups copied as they are
//! (their bytes handed to the upload without another copy, their footer entries moved to
//! the new offsets) and row groups newly encoded from rows cut out of a boundary row group.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use parquet::arrow::async_writer::AsyncFileWriter;
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::file::metadata::{
    ColumnChunkMetaData, FileMetaData, KeyValue, ParquetMetaData, ParquetMetaDataWriter,
    RowGroupMetaData,
};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::SchemaDescPtr;
use rewind_format::{HashRange, ShardEntry};

use crate::parquet_io::{ChecksumWriter, parquet_error};
use crate::{Error, Location, Result};

const MAGIC: &[u8; 4] = b"PAR1";

/// A shard being written: the bytes so far are with the upload, the footer's row groups
/// are kept here until [`PieceWriter::seal`].
pub(super) struct PieceWriter {
    path: String,
    range: HashRange,
    sink: ChecksumWriter,
    described: String,
    /// Bytes handed to `sink`: the offset the next row group starts at.
    offset: u64,
    row_groups: Vec<RowGroupMetaData>,
    schema: SchemaRef,
    parquet_schema: SchemaDescPtr,
    properties: Arc<WriterProperties>,
    rows: u64,
    /// For a lean shard: the hash range of every row group written, for its footer.
    lean: Option<Vec<Option<(u64, u64)>>>,
}

impl PieceWriter {
    pub(super) async fn new(
        to: &Location,
        path: String,
        range: HashRange,
        schema: &SchemaRef,
        properties: Arc<WriterProperties>,
    ) -> Result<PieceWriter> {
        let described = to.describe(&path);
        let parquet_schema = ArrowSchemaConverter::new()
            .with_coerce_types(properties.coerce_types())
            .convert(schema)
            .map_err(|e| Error::corrupt(&described, e.to_string()))?;
        let sink = ChecksumWriter::new(to.store().clone(), to.child(&path), 8);
        let lean = crate::lean::is_lean(schema).then(Vec::new);
        let mut writer = PieceWriter {
            path,
            range,
            sink,
            described,
            offset: 0,
            row_groups: Vec::new(),
            schema: schema.clone(),
            parquet_schema: Arc::new(parquet_schema),
            properties,
            rows: 0,
            lean,
        };
        writer.put(Bytes::from_static(MAGIC)).await?;
        Ok(writer)
    }

    pub(super) fn is_lean(&self) -> bool {
        self.lean.is_some()
    }

    /// Copies a source row group as it is: `bytes` are the file's bytes from offset
    /// `start`, spanning every column chunk of `group`.
    pub(super) async fn append_row_group(
        &mut self,
        bytes: Bytes,
        start: u64,
        group: &RowGroupMetaData,
        bounds: HashRange,
    ) -> Result<()> {
        if let Some(ranges) = self.lean.as_mut() {
            ranges.push(Some((bounds.start(), bounds.end())));
        }
        let moved = moved(group, start, self.offset, self.row_groups.len())
            .map_err(|e| Error::corrupt(&self.described, e.to_string()))?;
        self.row_groups.push(moved);
        self.rows += group.num_rows() as u64;
        self.put(bytes).await
    }

    /// Encodes a batch as new row groups; `hashes` are its rows' key hashes, in order.
    pub(super) async fn append_batch(&mut self, batch: &RecordBatch, hashes: &[u64]) -> Result<()> {
        let corrupt =
            |e: parquet::errors::ParquetError| Error::corrupt(&self.described, e.to_string());
        // Encoded on its own as a file without a footer; its row groups move to this one.
        let mut encoder = ArrowWriter::try_new(
            Vec::new(),
            self.schema.clone(),
            Some((*self.properties).clone()),
        )
        .map_err(corrupt)?;
        encoder.write(batch).map_err(corrupt)?;
        encoder.flush().map_err(corrupt)?;
        let groups = encoder.flushed_row_groups().to_vec();
        // Finishing flushes the writer's buffer; its footer and page indexes are cut off.
        let encoded = Bytes::from(encoder.into_inner().map_err(corrupt)?);
        let end = groups
            .iter()
            .flat_map(|g| g.columns())
            .map(|c| {
                let (start, len) = c.byte_range();
                start + len
            })
            .max()
            .unwrap_or(MAGIC.len() as u64);
        let body = usize::try_from(end)
            .ok()
            .filter(|&end| end <= encoded.len() && end >= MAGIC.len())
            .map(|end| encoded.slice(MAGIC.len()..end))
            .ok_or_else(|| Error::Internal("an encoded row group outside its file".into()))?;
        let mut first = 0usize;
        for group in &groups {
            let rows = usize::try_from(group.num_rows()).unwrap_or(0);
            if let Some(ranges) = self.lean.as_mut() {
                let own = &hashes[first.min(hashes.len())..(first + rows).min(hashes.len())];
                ranges.push(own.first().zip(own.last()).map(|(lo, hi)| (*lo, *hi)));
            }
            first += rows;
        }
        for group in &groups {
            let moved = moved(
                group,
                MAGIC.len() as u64,
                self.offset,
                self.row_groups.len(),
            )
            .map_err(corrupt)?;
            self.row_groups.push(moved);
            self.rows += group.num_rows() as u64;
        }
        // The groups lie back to back after the magic, so they move by one offset.
        self.put(body).await
    }

    async fn put(&mut self, bytes: Bytes) -> Result<()> {
        self.offset += bytes.len() as u64;
        self.sink
            .write(bytes)
            .await
            .map_err(|e| parquet_error(&self.described, "upload failed", e))
    }

    /// Writes the footer; the upload is left to complete.
    pub(super) async fn seal(mut self) -> Result<Sealed> {
        let mut kvs = self
            .properties
            .key_value_metadata()
            .cloned()
            .unwrap_or_default();
        if let Some(ranges) = &self.lean {
            kvs.push(KeyValue::new(
                crate::lean::HASH_RANGES_KEY.to_string(),
                crate::lean::format_ranges(ranges),
            ));
        }
        let rows = self.row_groups.iter().map(|g| g.num_rows()).sum();
        let file = FileMetaData::new(
            self.properties.writer_version().as_num(),
            rows,
            Some(self.properties.created_by().to_string()),
            Some(kvs),
            self.parquet_schema.clone(),
            None,
        );
        let metadata = ParquetMetaData::new(file, std::mem::take(&mut self.row_groups));
        let mut footer = Vec::new();
        ParquetMetaDataWriter::new(&mut footer, &metadata)
            .with_preserve_page_index_locations(false)
            .finish()
            .map_err(|e| Error::corrupt(&self.described, e.to_string()))?;
        self.put(Bytes::from(footer)).await?;
        Ok(Sealed {
            path: self.path,
            range: self.range,
            sink: self.sink,
            described: self.described,
            rows: self.rows,
        })
    }
}

/// `group`'s footer entry for its bytes moved from file offset `from` to `to`, as row
/// group number `ordinal`. Page indexes and bloom filters are not carried.
fn moved(
    group: &RowGroupMetaData,
    from: u64,
    to: u64,
    ordinal: usize,
) -> parquet::errors::Result<RowGroupMetaData> {
    let shift = |offset: i64| offset - from as i64 + to as i64;
    let columns = group
        .columns()
        .iter()
        .map(|c| {
            c.clone()
                .into_builder()
                .set_data_page_offset(shift(c.data_page_offset()))
                .set_dictionary_page_offset(c.dictionary_page_offset().map(shift))
                .set_index_page_offset(None)
                .set_column_index_offset(None)
                .set_column_index_length(None)
                .set_offset_index_offset(None)
                .set_offset_index_length(None)
                .set_bloom_filter_offset(None)
                .set_bloom_filter_length(None)
                .build()
        })
        .collect::<parquet::errors::Result<Vec<ColumnChunkMetaData>>>()?;
    let start = columns
        .iter()
        .map(|c| c.dictionary_page_offset().unwrap_or(c.data_page_offset()))
        .min();
    let mut builder = group
        .clone()
        .into_builder()
        .set_column_metadata(columns)
        .set_ordinal(i32::try_from(ordinal).unwrap_or(i32::MAX));
    if let Some(start) = start {
        builder = builder.set_file_offset(start);
    }
    builder.build()
}

/// A piece whose bytes are all written, its upload (and on local disk its fsync) pending.
pub(super) struct Sealed {
    path: String,
    range: HashRange,
    sink: ChecksumWriter,
    described: String,
    rows: u64,
}

impl Sealed {
    pub(super) async fn complete(mut self) -> Result<ShardEntry> {
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
