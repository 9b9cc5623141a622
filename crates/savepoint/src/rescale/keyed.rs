//! Cutting a keyed shard at new subtask boundaries: whole row groups are copied as encoded
//! bytes, only row groups that straddle a boundary are decoded, filtered and re-encoded.

use std::sync::Arc;

use arrow_array::{BooleanArray, RecordBatch};
use arrow_schema::SchemaRef;
use bytes::Bytes;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
use parquet::file::metadata::{KeyValue, ParquetMetaData, RowGroupMetaData};
use parquet::file::reader::{ChunkReader, Length};
use rewind_format::{HashRange, ShardEntry, StateEntry};

use super::Written;
use super::piece::PieceWriter;
use crate::parquet_io::guarded;
use crate::reader::open_checked;
use crate::shard_writer::{WrittenShard, shard_format_version, shard_properties};
use crate::spec::StateSpec;
use crate::{Error, Location, Result, SavepointReader, SavepointWriter};

/// Where a recut writes: the new savepoint and the state its shards belong to.
pub(super) struct Target<'a> {
    pub writer: &'a SavepointWriter,
    pub uid: &'a str,
    pub spec: &'a StateSpec,
}

/// One new shard cut from a run of sources.
struct Piece {
    shard: WrittenShard,
    /// Source bytes of row groups copied without decoding.
    spliced: u64,
    /// Source bytes of row groups decoded and re-encoded.
    reencoded: u64,
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
/// groups can be concatenated only within a layout). A piece is cut holding a permit of
/// `cutting`, and completes its upload after giving it back.
pub(super) async fn recut(
    from: &SavepointReader,
    state: &StateEntry,
    to: &Target<'_>,
    range: HashRange,
    sources: &[ShardEntry],
    cutting: &tokio::sync::Semaphore,
) -> Result<Written> {
    let lean_allowed = crate::lean::allowed(from.manifest());
    let mut opened = Vec::with_capacity(sources.len());
    for shard in sources {
        // The reader's checks, so a bad source fails here as `read_state` would fail on it.
        let footer = open_checked(from.location(), state, shard, lean_allowed).await?;
        opened.push(Source {
            shard,
            home: crate::layers::home(from.location(), shard)?,
            metadata: footer.metadata.metadata().clone(),
            arrow: footer.metadata,
            described: footer.described,
        });
    }
    let mut outcome = Written::default();
    let mut rest = &opened[..];
    while let Some(first) = rest.first() {
        let run = rest.iter().take_while(|s| first.same_layout(s)).count();
        let (group, next) = rest.split_at(run);
        rest = next;
        // The part of `range` this run of sources covers: the first run starts and the
        // last run ends where `range` does; runs in between meet at their sources' bounds.
        let start = match (outcome.shards.is_empty(), first.shard.hash_range) {
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
        let written = write_piece(to, piece, group, cutting).await?;
        outcome.spliced += written.spliced;
        outcome.reencoded += written.reencoded;
        outcome.shards.push(written.shard);
    }
    Ok(outcome)
}

/// Writes one new shard holding the rows of `group` inside `piece`.
async fn write_piece(
    to: &Target<'_>,
    piece: HashRange,
    group: &[Source<'_>],
    cutting: &tokio::sync::Semaphore,
) -> Result<Piece> {
    let Target { writer, uid, spec } = *to;
    let Some(first) = group.first() else {
        return Err(Error::Internal("a shard cut from no source".into()));
    };
    let turn = cutting
        .acquire()
        .await
        .map_err(|_| Error::Internal("the rescale's cutting turns were closed".into()))?;
    let schema = first.arrow.schema().clone();
    // Carry the source's footer metadata (ARROW:schema above all) so readers see the same
    // Arrow types; the rewind.* keys are this savepoint's (its writer encodes the file).
    let savepoint_id = writer.id()?;
    // A rescale merges delta layers: every piece it writes is a base shard.
    let version = shard_format_version(crate::lean::is_lean(&schema), false);
    let mut properties = shard_properties(writer.options(), &savepoint_id, uid, spec, version);
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
    )
    .await?;
    let lean = out.is_lean();
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
                out.append_row_group(bytes.data, bytes.start, group, bounds)
                    .await?;
                spliced += size;
            } else {
                let builder =
                    ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, source.arrow.clone())
                        .with_row_groups(vec![index])
                        .with_batch_size(group.num_rows().max(1) as usize);
                let parts = guarded(described, || {
                    let mut parts = Vec::new();
                    for batch in builder.build().map_err(|e| corrupt(&e))? {
                        let batch = batch.map_err(|e| corrupt(&e))?;
                        let (part, hashes) =
                            filter_range(&batch, piece).map_err(|e| corrupt(&e))?;
                        if part.num_rows() > 0 {
                            parts.push((part, hashes));
                        }
                    }
                    Ok(parts)
                })?;
                for (part, hashes) in parts {
                    out.append_batch(&part, &hashes).await?;
                }
                // A boundary row group is decoded by the shards on both sides; count its
                // bytes once, on the side where it starts.
                if piece.contains(bounds.start()) {
                    reencoded += size;
                }
            }
        }
    }
    let sealed = out.seal().await?;
    drop(turn);
    Ok(Piece {
        shard: WrittenShard {
            entry: sealed.complete().await?,
            lean,
        },
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
    let data = from.get_range(path, start..end).await?;
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
