//! Writing one shard: a Parquet file with the state's columns, sorted by key hash.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::{Array, ArrayRef, RecordBatch, UInt64Array};
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use rewind_format::{FormatVersion, HashRange, ShardEntry, StateKind, hash_keys};

use crate::parquet_io::ChecksumWriter;
use crate::spec::{StateSpec, columns};
use crate::{Error, Location, Result};

/// The name and version this library records as the writer of every savepoint and shard.
pub const WRITER_NAME: &str = "rewind";
/// See [`WRITER_NAME`].
pub const WRITER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// How shards are encoded and uploaded.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Rows per Parquet row group: the unit a reader can skip by key-hash statistics.
    pub row_group_rows: usize,
    /// zstd level of the Parquet pages.
    pub zstd_level: i32,
    /// Parts of a multipart upload in flight at once, per shard.
    pub upload_concurrency: usize,
    /// Write keyed shards without the `key_hash` column (format 1.1's reader feature
    /// `lean_keyed_shards`): about 5 bytes a row smaller; readers compute the hash from the
    /// key. Off by default, so that 1.0 readers read what is written.
    pub lean_keyed_shards: bool,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            row_group_rows: 128 * 1024,
            zstd_level: 1,
            upload_concurrency: 8,
            lean_keyed_shards: false,
        }
    }
}

impl WriterOptions {
    /// The default options with the keyed-shard layout of `source`: what a savepoint
    /// derived from it (edit, rescale, migrate) writes, so that a 1.0 savepoint stays
    /// readable by 1.0 readers and a lean one stays lean.
    pub fn like(source: &rewind_format::Manifest) -> Self {
        WriterOptions {
            lean_keyed_shards: crate::lean::allowed(source),
            ..WriterOptions::default()
        }
    }
}

/// What a shard writer does with its entry once the file is complete (and whether it is a
/// lean keyed shard): the savepoint writer adds it to the manifest it is drafting.
pub(crate) type OnFinish = Arc<dyn Fn(&str, &str, ShardEntry, bool) -> Result<()> + Send + Sync>;

/// Which part of a state a shard holds.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ShardTarget {
    Keyed(HashRange),
    Subtask(u32),
}

/// Writes one shard of a state. Create it with [`crate::SavepointWriter::keyed_shard`] or
/// [`crate::SavepointWriter::operator_shard`], feed it batches, then [`finish`](Self::finish)
/// it to add it to the savepoint's manifest.
pub struct ShardWriter {
    location: Location,
    on_finish: OnFinish,
    uid: String,
    spec: StateSpec,
    path: String,
    target: ShardTarget,
    properties: WriterProperties,
    upload_concurrency: usize,
    writer: Option<AsyncArrowWriter<ChecksumWriter>>,
    last_hash: Option<u64>,
    rows: u64,
    /// Set for a lean keyed shard: the row groups written and their hash ranges.
    lean: Option<LeanGroups>,
    /// The delta layer (0 for a base shard): a delta's rows end with a `deleted` column.
    layer: u32,
}

/// The row groups of a lean shard, cut by the writer itself so that each one's hash range
/// is known when the footer is written.
struct LeanGroups {
    rows_per_group: usize,
    done: Vec<Option<(u64, u64)>>,
    /// First hash, last hash and rows of the row group being filled.
    open: Option<(u64, u64, usize)>,
}

impl ShardWriter {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        location: Location,
        on_finish: OnFinish,
        options: &WriterOptions,
        uid: &str,
        savepoint_id: &str,
        spec: StateSpec,
        path: String,
        target: ShardTarget,
    ) -> Self {
        let lean_layout = options.lean_keyed_shards && matches!(target, ShardTarget::Keyed(_));
        let properties = shard_properties(
            options,
            savepoint_id,
            uid,
            &spec,
            shard_format_version(lean_layout, false),
        );
        let lean = lean_layout.then(|| LeanGroups {
            rows_per_group: options.row_group_rows.max(1),
            done: Vec::new(),
            open: None,
        });
        ShardWriter {
            location,
            on_finish,
            uid: uid.to_string(),
            spec,
            path,
            target,
            properties,
            upload_concurrency: options.upload_concurrency,
            writer: None,
            last_hash: None,
            rows: 0,
            lean,
            layer: 0,
        }
    }

    /// Makes this a delta shard of `layer` (spec: "Incremental checkpoints"): every batch
    /// written carries a non-null boolean `deleted` column besides the state's columns.
    pub(crate) fn into_delta(mut self, layer: u32) -> Self {
        self.layer = layer;
        self.properties = with_format_version(
            self.properties,
            shard_format_version(self.lean.is_some(), layer > 0),
        );
        self
    }

    /// The state's input columns of `batch`, and its delete marks for a delta shard.
    fn input(&self, batch: &RecordBatch) -> Result<(Vec<ArrayRef>, Option<ArrayRef>)> {
        if self.layer == 0 {
            return Ok((self.spec.check_input(&self.uid, batch)?, None));
        }
        let at = batch
            .schema()
            .index_of(crate::layers::DELETED)
            .map_err(|_| {
                self.input_error("a delta shard's batches need a boolean deleted column")
            })?;
        let marks = batch.column(at).clone();
        if marks.data_type() != &arrow_schema::DataType::Boolean || marks.null_count() > 0 {
            return Err(self.input_error("the deleted column must be boolean without nulls"));
        }
        let mut rest = batch.clone();
        rest.remove_column(at);
        Ok((self.spec.check_input(&self.uid, &rest)?, Some(marks)))
    }

    /// The shard's path relative to the savepoint root.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Appends rows. The batch has the state's columns by name (`key`, then `namespace`,
    /// `user_key` or `domain`/`timestamp` where the kind has them, and `value`); the writer
    /// adds `key_hash`. Keyed rows must arrive in non-decreasing key-hash order (across
    /// batches too) and inside the shard's hash range, or the write fails.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let (columns, marks) = self.input(batch)?;
        let batch = if self.spec.kind().is_keyed() {
            let hashes = hash_keys(columns[0].as_ref()).map_err(|e| self.input_error(e))?;
            let mut all = vec![Arc::new(UInt64Array::from(hashes)) as ArrayRef];
            all.extend(columns);
            all.extend(marks);
            self.assemble(all)?
        } else {
            self.assemble(columns)?
        };
        self.write_with_hashes(batch).await
    }

    /// [`write`](Self::write) for a caller that has already computed each row's key hash
    /// (an engine routes records by it): `hashes[i]` must be the spec's hash of row `i`'s
    /// key. Order and range are checked as in `write`; the hashes themselves are trusted
    /// here and checked by `validate --deep`.
    pub async fn write_hashed(&mut self, hashes: Vec<u64>, batch: &RecordBatch) -> Result<()> {
        if !self.spec.kind().is_keyed() || hashes.len() != batch.num_rows() {
            return Err(self.input_error(format!(
                "{} key hashes for {} rows of a {:?} state",
                hashes.len(),
                batch.num_rows(),
                self.spec.kind()
            )));
        }
        let (columns, marks) = self.input(batch)?;
        let mut all = vec![Arc::new(UInt64Array::from(hashes)) as ArrayRef];
        all.extend(columns);
        all.extend(marks);
        let batch = self.assemble(all)?;
        self.write_with_hashes(batch).await
    }

    /// Appends rows that already carry the `key_hash` column first, in file order.
    pub(crate) async fn write_with_hashes(&mut self, batch: RecordBatch) -> Result<()> {
        // Writers never write what readers must refuse (spec: "Column values").
        if let Some(message) = crate::values::forbidden_null(&batch, self.rows as usize)
            .or_else(|| crate::values::bad_timer_domain(&batch, self.rows as usize))
        {
            return Err(self.input_error(message));
        }
        if let ShardTarget::Keyed(range) = self.target {
            self.check_order(batch.column(0).as_primitive::<UInt64Type>(), range)?;
        }
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if self.lean.is_some() {
            return self.write_lean(&batch).await;
        }
        self.write_rows(&batch).await
    }

    /// Writes a lean shard's rows a row group at a time, recording each group's range.
    async fn write_lean(&mut self, batch: &RecordBatch) -> Result<()> {
        let hashes = batch.column(0).as_primitive::<UInt64Type>().clone();
        let mut at = 0;
        while at < batch.num_rows() {
            let Some(lean) = self.lean.as_mut() else {
                return Err(Error::Internal("not a lean shard".into()));
            };
            let filled = lean.open.map_or(0, |(_, _, rows)| rows);
            let take = (lean.rows_per_group - filled).min(batch.num_rows() - at);
            let (first, last) = (hashes.value(at), hashes.value(at + take - 1));
            lean.open = Some(match lean.open {
                Some((lo, _, rows)) => (lo, last, rows + take),
                None => (first, last, take),
            });
            let full = filled + take == lean.rows_per_group;
            self.write_rows(&crate::lean::without_key_hash(&batch.slice(at, take)))
                .await?;
            if full {
                self.close_lean_group().await?;
            }
            at += take;
        }
        Ok(())
    }

    /// Ends the lean shard's open row group, if it has rows.
    async fn close_lean_group(&mut self) -> Result<()> {
        let Some(open) = self.lean.as_mut().and_then(|l| l.open.take()) else {
            return Ok(());
        };
        if let Some(writer) = self.writer.as_mut() {
            writer.flush().await.map_err(|e| {
                crate::parquet_io::parquet_error(
                    self.location.describe(&self.path),
                    "writing Parquet",
                    e,
                )
            })?;
        }
        if let Some(lean) = self.lean.as_mut() {
            lean.done.push(Some((open.0, open.1)));
        }
        Ok(())
    }

    async fn write_rows(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.writer.is_none() {
            let sink = ChecksumWriter::new(
                self.location.store().clone(),
                self.location.child(&self.path),
                self.upload_concurrency,
            );
            let writer =
                AsyncArrowWriter::try_new(sink, batch.schema(), Some(self.properties.clone()))
                    .map_err(|e| self.parquet_error(e))?;
            self.writer = Some(writer);
        }
        self.rows += batch.num_rows() as u64;
        let path = self.location.describe(&self.path);
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| Error::Internal("no writer".into()))?;
        writer
            .write(batch)
            .await
            .map_err(|e| crate::parquet_io::parquet_error(path, "writing Parquet", e))
    }

    fn check_order(
        &mut self,
        hashes: &arrow_array::PrimitiveArray<UInt64Type>,
        range: HashRange,
    ) -> Result<()> {
        for (i, &h) in hashes.values().iter().enumerate() {
            if !range.contains(h) {
                return Err(self.input_error(format!(
                    "row {i}: key hash {h:016x} is outside the shard's range {range}"
                )));
            }
            if self.last_hash.is_some_and(|last| h < last) {
                return Err(self.input_error(format!(
                    "row {i}: rows are not sorted by key hash ({h:016x} after {:016x})",
                    self.last_hash.unwrap_or_default()
                )));
            }
            self.last_hash = Some(h);
        }
        Ok(())
    }

    /// A batch with the canonical column names and the given arrays' exact types.
    fn assemble(&self, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
        let canonical = self.file_schema(self.spec.shard_schema());
        let fields: Vec<_> = canonical
            .fields()
            .iter()
            .zip(&columns)
            .map(|(f, c)| f.as_ref().clone().with_data_type(c.data_type().clone()))
            .collect();
        RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), columns)
            .map_err(|e| self.input_error(e))
    }

    /// `schema` with the delete marks of a delta shard.
    fn file_schema(&self, schema: arrow_schema::SchemaRef) -> arrow_schema::SchemaRef {
        if self.layer == 0 {
            schema
        } else {
            crate::layers::with_deleted(&schema)
        }
    }

    fn input_error(&self, e: impl std::fmt::Display) -> Error {
        Error::InvalidInput(format!("{}/{}: {e}", self.uid, self.spec.name()))
    }

    fn parquet_error(&self, e: parquet::errors::ParquetError) -> Error {
        crate::parquet_io::parquet_error(self.location.describe(&self.path), "writing Parquet", e)
    }

    /// Closes the file and adds the shard to the savepoint. A shard with no rows is still
    /// written (with the state's schema), so every shard is a readable Parquet file.
    pub async fn finish(mut self) -> Result<ShardEntry> {
        let written = self.close().await?;
        (self.on_finish)(
            &self.uid,
            self.spec.name(),
            written.entry.clone(),
            written.lean,
        )?;
        Ok(written.entry)
    }

    /// Closes the file without adding the shard to the savepoint: the caller lists it
    /// (rescale lists every shard it writes in one place, with its progress).
    pub(crate) async fn finish_unlisted(mut self) -> Result<WrittenShard> {
        self.close().await
    }

    async fn close(&mut self) -> Result<WrittenShard> {
        if self.writer.is_none() {
            let sink = ChecksumWriter::new(
                self.location.store().clone(),
                self.location.child(&self.path),
                self.upload_concurrency,
            );
            let schema = self.file_schema(match self.lean {
                Some(_) => self.spec.input_schema(),
                None => self.spec.shard_schema(),
            });
            let writer = AsyncArrowWriter::try_new(sink, schema, Some(self.properties.clone()))
                .map_err(|e| self.parquet_error(e))?;
            self.writer = Some(writer);
        }
        self.close_lean_group().await?;
        let mut writer = self
            .writer
            .take()
            .ok_or_else(|| Error::Internal("no writer".into()))?;
        if let Some(lean) = &self.lean {
            // The footer must describe exactly the row groups the file has.
            let written: Vec<i64> = writer
                .flushed_row_groups()
                .iter()
                .map(|g| g.num_rows())
                .collect();
            if written.len() != lean.done.len() || writer.in_progress_rows() > 0 {
                writer.into_inner().abort().await;
                return Err(Error::Internal(format!(
                    "{}: {} row groups written, {} recorded",
                    self.path,
                    written.len(),
                    lean.done.len()
                )));
            }
            writer.append_key_value_metadata(KeyValue::new(
                crate::lean::HASH_RANGES_KEY.to_string(),
                crate::lean::format_ranges(&lean.done),
            ));
        }
        if let Err(e) = writer.finish().await {
            writer.into_inner().abort().await;
            return Err(self.parquet_error(e));
        }
        let (crc, bytes) = writer.into_inner().summary();
        let (hash_range, subtask) = match self.target {
            ShardTarget::Keyed(r) => (Some(r), None),
            ShardTarget::Subtask(t) => (None, Some(t)),
        };
        let entry = ShardEntry {
            path: self.path.clone(),
            hash_range,
            subtask,
            rows: self.rows,
            bytes,
            crc32c: format!("{crc:08x}"),
            sibling: None,
            layer: self.layer,
        };
        Ok(WrittenShard {
            entry,
            lean: self.lean.is_some(),
        })
    }
}

/// A shard whose file is complete but not yet listed in the savepoint's draft.
pub(crate) struct WrittenShard {
    /// Its manifest entry.
    pub entry: ShardEntry,
    /// Whether it is (or, for a copy, may be) a lean keyed shard.
    pub lean: bool,
}

/// Integer types stored as Parquet INT32/INT64 without a logical type conversion.
fn is_plain_integer(t: &arrow_schema::DataType) -> bool {
    use arrow_schema::DataType::*;
    matches!(
        t,
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64
    )
}

/// The `rewind.format_version` of a shard file (spec: "Shard files" 4): the oldest format
/// version whose readers can read its layout. Lean and delta shards came with 1.1.
pub(crate) fn shard_format_version(lean: bool, delta: bool) -> FormatVersion {
    if lean || delta {
        FormatVersion::V1_1
    } else {
        FormatVersion::V1_0
    }
}

/// `properties` with `rewind.format_version` set to `version`.
fn with_format_version(properties: WriterProperties, version: FormatVersion) -> WriterProperties {
    let metadata = properties
        .key_value_metadata()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|kv| match kv.key.as_str() {
            FORMAT_VERSION_KEY => KeyValue::new(kv.key, version.to_string()),
            _ => kv,
        })
        .collect();
    properties
        .into_builder()
        .set_key_value_metadata(Some(metadata))
        .build()
}

const FORMAT_VERSION_KEY: &str = "rewind.format_version";

pub(crate) fn shard_properties(
    options: &WriterOptions,
    savepoint_id: &str,
    uid: &str,
    spec: &StateSpec,
    format_version: FormatVersion,
) -> WriterProperties {
    let level = ZstdLevel::try_new(options.zstd_level).unwrap_or_default();
    let writer = format!("{WRITER_NAME} {WRITER_VERSION}");
    let metadata = vec![
        KeyValue::new("rewind.writer".to_string(), writer.clone()),
        KeyValue::new(FORMAT_VERSION_KEY.to_string(), format_version.to_string()),
        KeyValue::new("rewind.savepoint_id".to_string(), savepoint_id.to_string()),
        KeyValue::new("rewind.operator".to_string(), uid.to_string()),
        KeyValue::new("rewind.state".to_string(), spec.name().to_string()),
        KeyValue::new(
            "rewind.state_kind".to_string(),
            spec.kind().as_str().to_string(),
        ),
    ];
    let hash_column = ColumnPath::from(columns::KEY_HASH);
    let mut builder = WriterProperties::builder();
    if matches!(
        spec.kind(),
        StateKind::Value | StateKind::List | StateKind::Timers
    ) {
        // One row per key (timers: mostly one or two per key, as windows set them): a
        // dictionary of the keys would be as long as the column, and building it costs more
        // than the rest of the shard (1M window timers: 5.5 B/row and a hash per row,
        // against 2.7 B/row as deltas, `rewind-bench --only windows`).
        let key = ColumnPath::from(columns::KEY);
        builder = builder.set_column_dictionary_enabled(key.clone(), false);
        if spec.key_type().is_some_and(is_plain_integer) {
            // Unique integers in hash order: bit-packed deltas take about the key range's
            // bits per row; ZSTD over 8-byte plain values leaves ~10% more (3.15 vs 3.42
            // B/row for 5M keys of 0..10M, `rewind-bench --only engine`).
            builder = builder.set_column_encoding(key, Encoding::DELTA_BINARY_PACKED);
        }
    }
    builder
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(Some(options.row_group_rows))
        .set_created_by(format!("{writer} (parquet-rs)"))
        .set_key_value_metadata(Some(metadata))
        // Sorted hashes: deltas pack far tighter than a dictionary of unique values.
        .set_column_dictionary_enabled(hash_column.clone(), false)
        .set_column_encoding(hash_column, Encoding::DELTA_BINARY_PACKED)
        .build()
}
