//! Reading a savepoint: the manifest, then state rows streamed shard by shard.

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt64Array};
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStoreExt, path::Path};
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::file::metadata::ParquetMetaData;
use rewind_format::{
    HashRange, MANIFEST_FILE, Manifest, OperatorEntry, ShardEntry, StateEntry, encode_key,
    hash_keys, parse_type, same_type,
};

use crate::layers::LayerRows;
use crate::parquet_io::{ObjectReader, guarded_async, guarded_stream, parquet_error};
use crate::spec::columns;
use crate::{Error, Location, Result};

/// Which rows of a state to read.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Only rows whose key hash lies in this range (shards and row groups outside it are
    /// not read at all).
    pub hash_range: Option<HashRange>,
    /// Only rows of these keys (an array of the state's key type).
    pub keys: Option<ArrayRef>,
    /// Rows per batch (default 8192).
    pub batch_size: Option<usize>,
}

/// An open savepoint: its checked manifest and the way to its files.
#[derive(Debug, Clone)]
pub struct SavepointReader {
    location: Location,
    manifest: Arc<Manifest>,
}

impl SavepointReader {
    /// Opens the savepoint at `location`: reads and checks its manifest (one GET).
    pub async fn open(location: Location) -> Result<SavepointReader> {
        let manifest = read_manifest(&location).await?;
        Ok(SavepointReader {
            location,
            manifest: Arc::new(manifest),
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Where the savepoint is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The operator with this uid, or [`Error::UnknownOperator`] listing the uids there are.
    pub fn operator(&self, uid: &str) -> Result<&OperatorEntry> {
        self.manifest
            .operator(uid)
            .ok_or_else(|| Error::UnknownOperator {
                uid: uid.to_string(),
                known: self
                    .manifest
                    .operators
                    .iter()
                    .map(|o| o.uid.clone())
                    .collect(),
            })
    }

    /// The state `uid/name`, or an error naming what exists.
    pub fn state(&self, uid: &str, name: &str) -> Result<&StateEntry> {
        let op = self.operator(uid)?;
        op.state(name).ok_or_else(|| Error::UnknownState {
            uid: uid.to_string(),
            state: name.to_string(),
            known: op.states.iter().map(|s| s.name.clone()).collect(),
        })
    }

    /// The elements of operator list state `uid/name` that subtask `subtask` of
    /// `parallelism` starts with (spec: "Operator list state"): `split` deals contiguous
    /// runs of all elements in old-subtask order, `union` gives every subtask all of them,
    /// `broadcast` gives each a copy of old subtask 0's list. Same rule as offline rescale.
    pub async fn read_operator_list(
        &self,
        uid: &str,
        name: &str,
        subtask: u32,
        parallelism: u32,
    ) -> Result<RecordBatch> {
        let state = self.state(uid, name)?;
        let mode = state.redistribution.ok_or_else(|| {
            Error::InvalidInput(format!("{uid}/{name} is keyed state, not an operator list"))
        })?;
        let spec = crate::spec::StateSpec::from_entry(state)?;
        let mut shards = state.shards.clone();
        shards.sort_by_key(|s| s.subtask);
        if mode == rewind_format::Redistribution::Broadcast {
            shards.retain(|s| s.subtask == Some(0));
        }
        let mut batches = Vec::new();
        for shard in &shards {
            let footer = open_checked(&self.location, state, shard, false).await?;
            let described = footer.described.clone();
            let stream = footer
                .into_builder()
                .with_batch_size(8192)
                .build()
                .map_err(|e| parquet_error(described.clone(), "reading Parquet", e))?;
            let rows: Vec<RecordBatch> = guarded_stream(described, stream).try_collect().await?;
            batches.extend(rows);
        }
        let all = match batches.first() {
            Some(first) => arrow_select::concat::concat_batches(&first.schema(), &batches)
                .map_err(|e| Error::Internal(e.to_string()))?,
            None => RecordBatch::new_empty(spec.shard_schema()),
        };
        let (offset, len) = rewind_format::deal(all.num_rows(), mode, subtask, parallelism);
        Ok(all.slice(offset, len))
    }

    /// Streams the rows of state `uid/name` as record batches in shard order, with the
    /// shard's columns (`key_hash` first for keyed state). An operator list state gives
    /// every subtask's stored list, in ascending subtask order, without redistributing it
    /// (see [`read_operator_list`](Self::read_operator_list) for that). Memory stays bounded by one
    /// row group per stream, whatever the state size.
    pub async fn read_state(
        &self,
        uid: &str,
        name: &str,
        options: ReadOptions,
    ) -> Result<BoxStream<'static, Result<RecordBatch>>> {
        let state = self.whole_state(uid, name)?;
        let filter = Arc::new(RowFilter::new(&state, &options)?);
        let batch_size = options.batch_size.unwrap_or(8192);
        if crate::layers::is_layered(&state) {
            let described = self.describe_state(&state);
            let layers = self.read_layers(&state, filter, batch_size);
            return Ok(crate::layers::merge(described, layers, batch_size));
        }
        let mut shards: Vec<ShardEntry> = state
            .shards
            .iter()
            .filter(|s| filter.may_hold(s.hash_range))
            .cloned()
            .collect();
        // An operator list's content is every subtask's list, in subtask order whatever
        // the manifest's order (spec: "Operator list state").
        shards.sort_by_key(|s| s.subtask);
        Ok(read_shards(
            self.location.clone(),
            state,
            shards,
            filter,
            batch_size,
            crate::lean::allowed(&self.manifest),
        ))
    }

    /// Streams the rows of keyed state `uid/name` layer by layer, unmerged: the base's
    /// rows, then each delta layer's upserts and deletes, in the order the spec applies
    /// them ("Incremental checkpoints"). Applying each item in turn to a table keyed by
    /// the rows' identities gives the state [`read_state`](Self::read_state) reads,
    /// without merging the layers by key hash first (a restore into a hash table needs no
    /// order). A state without delta layers comes as upserts alone.
    pub async fn read_state_layers(
        &self,
        uid: &str,
        name: &str,
        options: ReadOptions,
    ) -> Result<BoxStream<'static, Result<LayerRows>>> {
        let state = self.whole_state(uid, name)?;
        if !state.kind.is_keyed() {
            return Err(Error::InvalidInput(format!(
                "{uid}/{name} is {} state; only keyed state has layers",
                state.kind.as_str()
            )));
        }
        let filter = Arc::new(RowFilter::new(&state, &options)?);
        let batch_size = options.batch_size.unwrap_or(8192);
        let described = self.describe_state(&state);
        let layers = self.read_layers(&state, filter, batch_size);
        Ok(stream::iter(layers)
            .flat_map(move |layer| {
                let described = described.clone();
                layer
                    .rows
                    .map(move |batch| crate::layers::layer_rows(&described, batch?))
                    .map_ok(|rows| stream::iter(rows.into_iter().map(Ok)))
                    .try_flatten()
            })
            .boxed())
    }

    /// State `uid/name`, unless the manifest found a problem with it: never return part
    /// of a state as if it were all of it.
    fn whole_state(&self, uid: &str, name: &str) -> Result<StateEntry> {
        let state = self.state(uid, name)?.clone();
        if let Some(p) = self
            .manifest
            .problems()
            .into_iter()
            .find(|p| p.operator == uid && p.state == name)
        {
            return Err(Error::corrupt(
                self.location.describe(MANIFEST_FILE),
                format!("{uid}/{name}: {}", p.message),
            ));
        }
        Ok(state)
    }

    /// How errors about the rows of `state` as a whole name it.
    fn describe_state(&self, state: &StateEntry) -> String {
        format!(
            "{} state {}",
            self.location.describe(MANIFEST_FILE),
            state.name
        )
    }

    /// Each layer's rows (its shards read in hash order), lowest layer first.
    fn read_layers(
        &self,
        state: &StateEntry,
        filter: Arc<RowFilter>,
        batch_size: usize,
    ) -> Vec<crate::layers::Layer> {
        let lean = crate::lean::allowed(&self.manifest);
        let mut numbers: Vec<u32> = state.shards.iter().map(|s| s.layer).collect();
        numbers.sort_unstable();
        numbers.dedup();
        numbers
            .into_iter()
            .map(|number| {
                let mut shards: Vec<ShardEntry> = state
                    .shards
                    .iter()
                    .filter(|s| s.layer == number && filter.may_hold(s.hash_range))
                    .cloned()
                    .collect();
                shards.sort_by_key(|s| s.hash_range);
                crate::layers::Layer {
                    number,
                    rows: read_shards(
                        self.location.clone(),
                        state.clone(),
                        shards,
                        filter.clone(),
                        batch_size,
                        lean,
                    ),
                }
            })
            .collect()
    }
}

/// The rows of `shards`, one after the other.
fn read_shards(
    location: Location,
    state: StateEntry,
    shards: Vec<ShardEntry>,
    filter: Arc<RowFilter>,
    batch_size: usize,
    lean: bool,
) -> BoxStream<'static, Result<RecordBatch>> {
    stream::iter(shards)
        .then(move |shard| {
            let location = location.clone();
            let state = state.clone();
            let filter = filter.clone();
            async move { read_shard(location, state, shard, filter, batch_size, lean).await }
        })
        .try_flatten()
        .boxed()
}

impl SavepointReader {
    /// Streams one shard of state `uid/name`, all its rows, with the shard's columns.
    pub(crate) async fn read_whole_shard(
        &self,
        uid: &str,
        name: &str,
        shard: &ShardEntry,
    ) -> Result<BoxStream<'static, Result<RecordBatch>>> {
        let state = self.state(uid, name)?.clone();
        let filter = Arc::new(RowFilter::new(&state, &ReadOptions::default())?);
        let lean = crate::lean::allowed(&self.manifest);
        read_shard(
            self.location.clone(),
            state,
            shard.clone(),
            filter,
            8192,
            lean,
        )
        .await
    }
}

/// Reads and checks `_manifest.json`. With no manifest, tells "not a savepoint" from
/// "incomplete savepoint" by listing the root.
pub async fn read_manifest(location: &Location) -> Result<Manifest> {
    let path = location.child(MANIFEST_FILE);
    let described = location.describe(MANIFEST_FILE);
    location.check_inside(MANIFEST_FILE)?;
    let bytes = match location.store().get(&path).await {
        Ok(r) => r.bytes().await.map_err(|e| Error::storage(&described, e))?,
        Err(object_store::Error::NotFound { .. }) => {
            let files = list_files(location).await?.len();
            return Err(if files == 0 {
                Error::NotFound {
                    location: location.to_string(),
                }
            } else {
                Error::Incomplete {
                    location: location.to_string(),
                    files,
                }
            });
        }
        Err(e) => return Err(Error::storage(described, e)),
    };
    Manifest::from_json(&bytes).map_err(|e| Error::manifest(described, e))
}

/// The names of the folders right under `location` (one listing by delimiter: nothing
/// below them is read), sorted.
pub async fn list_folders(location: &Location) -> Result<Vec<String>> {
    let listed = location
        .store()
        .list_with_delimiter(Some(location.root()))
        .await
        .map_err(|e| Error::storage(location.to_string(), e))?;
    let mut out: Vec<String> = listed
        .common_prefixes
        .iter()
        .filter_map(|p| p.filename().map(str::to_string))
        .collect();
    out.sort();
    Ok(out)
}

/// Every object under the savepoint root, as paths relative to it, sorted.
pub async fn list_files(location: &Location) -> Result<Vec<(String, u64)>> {
    let mut out: Vec<(String, u64)> = location
        .store()
        .list(Some(location.root()))
        .map_err(|e| Error::storage(location.to_string(), e))
        .try_filter_map(|meta| {
            let rel = location.relative(&meta.location);
            async move { Ok(rel.filter(|r| !r.is_empty()).map(|r| (r, meta.size))) }
        })
        .try_collect()
        .await?;
    out.sort();
    Ok(out)
}

/// Opens a shard for reading after checking it exists with the manifest's size.
pub(crate) async fn open_shard(
    location: &Location,
    shard: &ShardEntry,
    batch_size: usize,
) -> Result<ParquetRecordBatchStreamBuilder<ObjectReader>> {
    let footer = open_footer(location, shard).await?;
    Ok(footer.into_builder().with_batch_size(batch_size))
}

/// A shard's file and its decoded footer, for callers that read it row group by row
/// group (rescale) as well as through a record batch stream.
pub(crate) struct ShardFooter {
    pub reader: ObjectReader,
    pub metadata: ArrowReaderMetadata,
    /// How errors name the file.
    pub described: String,
}

impl ShardFooter {
    pub(crate) fn into_builder(self) -> ParquetRecordBatchStreamBuilder<ObjectReader> {
        ParquetRecordBatchStreamBuilder::new_with_metadata(self.reader, self.metadata)
    }
}

/// Opens a shard of `state` with every check `read_state` makes before it decodes a row:
/// the file exists with the manifest's size, its footer is readable, and it carries the
/// Arrow schema the manifest declares (see [`check_shard_schema`]).
pub(crate) async fn open_checked(
    location: &Location,
    state: &StateEntry,
    shard: &ShardEntry,
    lean_allowed: bool,
) -> Result<ShardFooter> {
    let footer = open_footer(location, shard).await?;
    check_footer_schema(
        &footer.described,
        state,
        shard,
        footer.metadata.metadata(),
        footer.metadata.schema(),
        lean_allowed,
    )?;
    Ok(footer)
}

/// Checks that a shard exists with the manifest's size and reads its footer.
async fn open_footer(location: &Location, shard: &ShardEntry) -> Result<ShardFooter> {
    let location = &crate::layers::home(location, shard)?;
    let described = location.describe(&shard.path);
    let path: Path = location.child(&shard.path);
    let meta = match location.store().head(&path).await {
        Ok(m) => m,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(Error::corrupt(described, "shard file is missing"));
        }
        Err(e) => return Err(Error::storage(described, e)),
    };
    if meta.size != shard.bytes {
        let what = if meta.size < shard.bytes {
            "truncated"
        } else {
            "wrong size"
        };
        return Err(Error::corrupt(
            described,
            format!(
                "{what}: {} bytes, the manifest says {}",
                meta.size, shard.bytes
            ),
        ));
    }
    let mut reader = ObjectReader::open(location, &shard.path, shard.bytes)?;
    let metadata = guarded_async(&described, async {
        ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::new())
            .await
            .map_err(|e| parquet_error(&described, "not a readable Parquet file", e))
    })
    .await?;
    Ok(ShardFooter {
        reader,
        metadata,
        described,
    })
}

/// Checks that a shard carries its Arrow schema (spec: "Shard files" 1; without it the
/// Parquet schema alone confuses `large_utf8` with `utf8`, for one) and that it is the one
/// the manifest declares for its state: with `key_hash` first or, where the savepoint
/// allows lean shards (`lean_allowed`), without it.
pub(crate) fn check_shard_schema<T>(
    described: &str,
    state: &StateEntry,
    shard: &ShardEntry,
    builder: &parquet::arrow::arrow_reader::ArrowReaderBuilder<T>,
    lean_allowed: bool,
) -> Result<()> {
    check_footer_schema(
        described,
        state,
        shard,
        builder.metadata(),
        builder.schema(),
        lean_allowed,
    )
}

/// [`check_shard_schema`] on a footer and the Arrow schema decoded from it.
fn check_footer_schema(
    described: &str,
    state: &StateEntry,
    shard: &ShardEntry,
    metadata: &ParquetMetaData,
    schema: &arrow_schema::Schema,
    lean_allowed: bool,
) -> Result<()> {
    let has_arrow_schema = metadata
        .file_metadata()
        .key_value_metadata()
        .is_some_and(|kv| kv.iter().any(|e| e.key == ARROW_SCHEMA_KEY));
    if !has_arrow_schema {
        return Err(Error::corrupt(
            described,
            format!(
                "no {ARROW_SCHEMA_KEY} in the Parquet footer; the spec requires the Arrow schema there"
            ),
        ));
    }
    check_schema(described, state, schema, lean_allowed, shard.is_delta())
}

/// The footer key holding the serialized Arrow schema.
const ARROW_SCHEMA_KEY: &str = "ARROW:schema";

/// Checks that a shard's Arrow schema is the one the manifest declares for its state.
fn check_schema(
    described: &str,
    state: &StateEntry,
    schema: &arrow_schema::Schema,
    lean_allowed: bool,
    delta: bool,
) -> Result<()> {
    let spec = crate::StateSpec::from_entry(state)?;
    let lean = state.kind.is_keyed() && crate::lean::is_lean(schema);
    let expected = if lean && lean_allowed {
        spec.input_schema()
    } else {
        spec.shard_schema()
    };
    // A delta shard ends with its delete marks (spec: "Incremental checkpoints").
    let expected = if delta {
        crate::layers::with_deleted(&expected)
    } else {
        expected
    };
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let wanted: Vec<&str> = expected
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    if names != wanted {
        let hint = if lean && !lean_allowed && names.get(..) == wanted.get(1..) {
            format!(
                " (a lean shard, but the manifest does not list the reader feature {:?})",
                rewind_format::LEAN_KEYED_SHARDS
            )
        } else {
            String::new()
        };
        return Err(Error::corrupt(
            described,
            format!(
                "columns {names:?}, the manifest's state {:?} needs {wanted:?}{hint}",
                state.name
            ),
        ));
    }
    for (got, want) in schema.fields().iter().zip(expected.fields()) {
        if !same_type(got.data_type(), want.data_type()) {
            return Err(Error::corrupt(
                described,
                format!(
                    "column {:?} has type {}, the manifest says {}",
                    got.name(),
                    rewind_format::type_name(got.data_type())
                        .unwrap_or_else(|_| got.data_type().to_string()),
                    rewind_format::type_name(want.data_type()).unwrap_or_default()
                ),
            ));
        }
    }
    Ok(())
}

async fn read_shard(
    location: Location,
    state: StateEntry,
    shard: ShardEntry,
    filter: Arc<RowFilter>,
    batch_size: usize,
    lean_allowed: bool,
) -> Result<BoxStream<'static, Result<RecordBatch>>> {
    let footer = open_checked(&location, &state, &shard, lean_allowed).await?;
    let described = footer.described.clone();
    let mut builder = footer.into_builder().with_batch_size(batch_size);
    // Every caller sees `key_hash` first, whatever the layout on disk.
    let lean = state.kind.is_keyed() && crate::lean::is_lean(builder.schema());
    if state.kind.is_keyed() && filter.is_active() {
        let keep = filter
            .row_groups(&builder)
            .map_err(|e| Error::corrupt(&described, e))?;
        builder = builder.with_row_groups(keep);
    }
    let stream = builder
        .build()
        .map_err(|e| parquet_error(&described, "reading Parquet", e))?;
    // Rows decoded so far, so a broken value is named by its row in the file.
    let mut first_row = 0;
    Ok(guarded_stream(described.clone(), stream)
        .and_then(move |batch| {
            let filter = filter.clone();
            let described = described.clone();
            let at = first_row;
            first_row += batch.num_rows();
            async move {
                if let Some(message) = crate::values::forbidden_null(&batch, at) {
                    return Err(Error::corrupt(described, message));
                }
                let batch = if lean {
                    crate::lean::with_key_hash(batch).map_err(|e| Error::corrupt(&described, e))?
                } else {
                    batch
                };
                filter
                    .apply(batch)
                    .map_err(|e| Error::corrupt(described, e))
            }
        })
        .try_filter(|b| futures::future::ready(b.num_rows() > 0))
        .boxed())
}

/// The row selection of a read: a hash range and/or a key set.
struct RowFilter {
    range: Option<HashRange>,
    /// Hashes of the wanted keys, sorted, and their canonical encodings.
    key_hashes: Option<Vec<u64>>,
    key_encodings: HashSet<Vec<u8>>,
}

impl RowFilter {
    fn new(state: &StateEntry, options: &ReadOptions) -> Result<RowFilter> {
        let mut key_hashes = None;
        let mut key_encodings = HashSet::new();
        if let Some(keys) = &options.keys {
            let key_type = state.key_type.as_deref().ok_or_else(|| {
                Error::InvalidInput(format!("state {:?} has no keys", state.name))
            })?;
            let declared = parse_type(key_type).map_err(|e| Error::Internal(e.to_string()))?;
            if !same_type(keys.data_type(), &declared) {
                return Err(Error::InvalidInput(format!(
                    "keys of type {} given for state {:?} whose keys are {key_type}",
                    keys.data_type(),
                    state.name
                )));
            }
            let mut hashes =
                hash_keys(keys.as_ref()).map_err(|e| Error::InvalidInput(e.to_string()))?;
            hashes.sort_unstable();
            hashes.dedup();
            for row in 0..keys.len() {
                let mut buf = Vec::new();
                encode_key(keys.as_ref(), row, &mut buf)
                    .map_err(|e| Error::InvalidInput(e.to_string()))?;
                key_encodings.insert(buf);
            }
            key_hashes = Some(hashes);
        }
        Ok(RowFilter {
            range: options.hash_range,
            key_hashes,
            key_encodings,
        })
    }

    fn is_active(&self) -> bool {
        self.range.is_some() || self.key_hashes.is_some()
    }

    fn wants_range(&self, min: u64, max: u64) -> bool {
        let Some(span) = HashRange::new(min, max) else {
            return false;
        };
        if self.range.is_some_and(|r| !r.intersects(&span)) {
            return false;
        }
        match &self.key_hashes {
            None => true,
            Some(hashes) => {
                let first = hashes.partition_point(|&h| h < min);
                hashes.get(first).is_some_and(|&h| h <= max)
            }
        }
    }

    fn may_hold(&self, shard_range: Option<HashRange>) -> bool {
        match shard_range {
            Some(r) => self.wants_range(r.start(), r.end()),
            None => true,
        }
    }

    /// Row groups whose key-hash statistics may hold wanted rows.
    fn row_groups(
        &self,
        builder: &ParquetRecordBatchStreamBuilder<ObjectReader>,
    ) -> Result<Vec<usize>, String> {
        let bounds = crate::stats::row_group_hash_bounds(builder.metadata(), builder.schema())?;
        Ok(bounds
            .iter()
            .enumerate()
            // A row group without statistics is read.
            .filter(|(_, b)| b.is_none_or(|(lo, hi)| self.wants_range(lo, hi)))
            .map(|(i, _)| i)
            .collect())
    }

    fn apply(&self, batch: RecordBatch) -> Result<RecordBatch, String> {
        if !self.is_active() {
            return Ok(batch);
        }
        let Some(hashes) = batch
            .column_by_name(columns::KEY_HASH)
            .and_then(|c| c.as_primitive_opt::<UInt64Type>().cloned())
        else {
            return Err("no key_hash column".into());
        };
        let key = batch.column_by_name(columns::KEY).cloned();
        let mask = self.mask(&hashes, key.as_deref())?;
        arrow_select::filter::filter_record_batch(&batch, &mask).map_err(|e| e.to_string())
    }

    fn mask(&self, hashes: &UInt64Array, key: Option<&dyn Array>) -> Result<BooleanArray, String> {
        let mut buf = Vec::new();
        let mut out = Vec::with_capacity(hashes.len());
        for (row, &h) in hashes.values().iter().enumerate() {
            let mut keep = self.range.is_none_or(|r| r.contains(h));
            if keep {
                if let Some(wanted) = &self.key_hashes {
                    keep = wanted.binary_search(&h).is_ok();
                    if keep {
                        let key = key.ok_or("no key column")?;
                        buf.clear();
                        encode_key(key, row, &mut buf).map_err(|e| e.to_string())?;
                        keep = self.key_encodings.contains(&buf);
                    }
                }
            }
            out.push(keep);
        }
        Ok(BooleanArray::from(out))
    }
}
