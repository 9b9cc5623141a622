//! Checking a savepoint's files against its manifest.

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use parquet::arrow::ProjectionMask;
use rewind_format::{MANIFEST_FILE, Manifest, ShardEntry, StateEntry, StateKind, hash_keys};

use crate::reader::{check_shard_schema, list_files, open_shard, read_manifest};
use crate::spec::columns;
use crate::values;
use crate::{Error, Location, Result};

/// What kind of problem [`validate`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// A shard listed in the manifest is not there.
    Missing,
    /// A shard's size differs from the manifest.
    Size,
    /// A shard's CRC-32C differs from the manifest.
    Checksum,
    /// A shard is not a readable Parquet file.
    Unreadable,
    /// A shard's row count differs from the manifest.
    RowCount,
    /// A shard's columns or types differ from the manifest's state.
    Schema,
    /// A keyed shard holds rows outside its hash range, out of order, or with wrong hashes.
    HashRange,
    /// A keyed state's shards leave a gap in the hash space or overlap.
    Coverage,
    /// A file under the savepoint root that the manifest does not list.
    Unlisted,
    /// A column value breaks a rule of the spec: a null key, namespace, user key, timer
    /// domain or timestamp, or a timer domain other than `event_time`/`processing_time`.
    ColumnValue,
    /// A derived savepoint (rescale, edit, migrate) that does not record its parent.
    Lineage,
}

/// One problem found by [`validate`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// What kind.
    pub kind: ProblemKind,
    /// The file, relative to the savepoint root, where there is one.
    pub path: Option<String>,
    /// The operator uid, where the problem belongs to one.
    pub operator: Option<String>,
    /// The state name, where the problem belongs to one.
    pub state: Option<String>,
    /// What is wrong, in one line.
    pub message: String,
}

/// The outcome of [`validate`].
#[derive(Debug, Clone)]
pub struct ValidationReport {
    /// The savepoint's manifest.
    pub manifest: Manifest,
    /// Every problem found; empty when the savepoint is valid.
    pub problems: Vec<Problem>,
    /// Shards checked.
    pub shards_checked: usize,
    /// Bytes read to check them.
    pub bytes_checked: u64,
}

impl ValidationReport {
    /// Whether no problem was found.
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Options of [`validate`].
#[derive(Clone, Default)]
pub struct ValidateOptions {
    /// Also decode every key and check its stored hash and the sort order (reads the key
    /// columns in full).
    pub deep: bool,
    /// Called with the bytes of each shard once it is checked (for progress bars).
    pub progress: Option<Arc<dyn Fn(u64) + Send + Sync>>,
}

impl std::fmt::Debug for ValidateOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidateOptions")
            .field("deep", &self.deep)
            .finish()
    }
}

/// Lineage operations that derive a savepoint from another: the spec requires a parent.
const DERIVED_OPERATIONS: [&str; 4] = ["rescale", "edit", "migrate", "compact"];

/// Shards checked at once: enough to hide object-store latency, few enough for memory.
const CONCURRENCY: usize = 4;

/// Bytes read per request while checksumming a shard.
const CHECKSUM_CHUNK: u64 = 8 << 20;

/// Checks everything the manifest promises: each shard is present with its size and
/// CRC-32C, is readable Parquet with the declared columns and row count, holds only key
/// hashes inside its range, each keyed state's shards tile the hash space, and no
/// unlisted file lies under the root.
///
/// Returns `Err` only when the manifest itself cannot be read; problems with the
/// savepoint's files are in the report. Memory stays bounded whatever the size.
pub async fn validate(location: &Location, options: ValidateOptions) -> Result<ValidationReport> {
    let manifest = read_manifest(location).await?;
    let mut problems: Vec<Problem> = manifest
        .problems()
        .into_iter()
        .map(|p| Problem {
            kind: ProblemKind::Coverage,
            path: None,
            operator: Some(p.operator),
            state: Some(p.state),
            message: p.message,
        })
        .collect();
    let lineage = &manifest.lineage;
    if DERIVED_OPERATIONS.contains(&lineage.operation.as_str()) && lineage.parent.is_none() {
        problems.push(Problem {
            kind: ProblemKind::Lineage,
            path: Some(MANIFEST_FILE.into()),
            operator: None,
            state: None,
            message: format!(
                "a savepoint written by {:?} records no lineage.parent",
                lineage.operation
            ),
        });
    }

    let jobs: Vec<(String, StateEntry, ShardEntry)> = manifest
        .shards()
        .map(|(op, st, sh)| (op.uid.clone(), st.clone(), sh.clone()))
        .collect();
    let shards_checked = jobs.len();
    let lean_allowed = crate::lean::allowed(&manifest);
    let results: Vec<(u64, Vec<Problem>)> = futures::stream::iter(jobs)
        .map(|(uid, state, shard)| {
            let options = options.clone();
            async move {
                let found =
                    check_shard(location, &uid, &state, &shard, options.deep, lean_allowed).await?;
                if let Some(progress) = &options.progress {
                    progress(shard.bytes);
                }
                Ok::<_, Error>((shard.bytes, found))
            }
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    let mut bytes_checked = 0;
    for (bytes, found) in results {
        bytes_checked += bytes;
        problems.extend(found);
    }

    // Files of sibling folders are theirs: only this folder's own are checked for orphans.
    let listed: HashSet<&str> = manifest
        .shards()
        .filter(|(_, _, s)| s.sibling.is_none())
        .map(|(_, _, s)| s.path.as_str())
        .collect();
    for (path, _) in list_files(location).await? {
        if path != MANIFEST_FILE && !listed.contains(path.as_str()) {
            problems.push(Problem {
                kind: ProblemKind::Unlisted,
                message: "file is not listed in the manifest (left by a failed writer?)".into(),
                path: Some(path),
                operator: None,
                state: None,
            });
        }
    }
    Ok(ValidationReport {
        manifest,
        problems,
        shards_checked,
        bytes_checked,
    })
}

async fn check_shard(
    location: &Location,
    uid: &str,
    state: &StateEntry,
    shard: &ShardEntry,
    deep: bool,
    lean_allowed: bool,
) -> Result<Vec<Problem>> {
    let problem = |kind, message: String| Problem {
        kind,
        path: Some(shard.file_key()),
        operator: Some(uid.to_string()),
        state: Some(state.name.clone()),
        message,
    };
    // A shared file is read where it is: in its sibling folder.
    let location = &crate::layers::home(location, shard)?;
    let path = location.child(&shard.path);
    let described = location.describe(&shard.path);
    location.check_inside(&shard.path)?;
    let meta = match location.store().head(&path).await {
        Ok(m) => m,
        Err(object_store::Error::NotFound { .. }) => {
            return Ok(vec![problem(
                ProblemKind::Missing,
                "shard file is missing".into(),
            )]);
        }
        Err(e) => return Err(Error::storage(described, e)),
    };
    if meta.size != shard.bytes {
        return Ok(vec![problem(
            ProblemKind::Size,
            format!("{} bytes, the manifest says {}", meta.size, shard.bytes),
        )]);
    }
    // Large ranged reads: the local store's GET stream yields 8 KiB chunks, which costs
    // more than the checksum itself. Memory stays at one chunk per shard in flight.
    let mut crc = 0u32;
    let mut offset = 0u64;
    while offset < shard.bytes {
        let end = (offset + CHECKSUM_CHUNK).min(shard.bytes);
        let chunk = location
            .store()
            .get_range(&path, offset..end)
            .await
            .map_err(|e| Error::storage(&described, e))?;
        crc = crc32c::crc32c_append(crc, &chunk);
        offset = end;
    }
    let crc = format!("{crc:08x}");
    if crc != shard.crc32c {
        return Ok(vec![problem(
            ProblemKind::Checksum,
            format!("CRC-32C is {crc}, the manifest says {}", shard.crc32c),
        )]);
    }
    let builder = match open_shard(location, shard, 8192).await {
        Ok(b) => b,
        Err(Error::Corrupt { message, .. }) => {
            return Ok(vec![problem(ProblemKind::Unreadable, message)]);
        }
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    if let Err(e) = check_shard_schema(&described, state, shard, &builder, lean_allowed) {
        let message = match e {
            Error::Corrupt { message, .. } => message,
            other => other.to_string(),
        };
        return Ok(vec![problem(ProblemKind::Schema, message)]);
    }
    let rows = builder.metadata().file_metadata().num_rows();
    if u64::try_from(rows).ok() != Some(shard.rows) {
        found.push(problem(
            ProblemKind::RowCount,
            format!("{rows} rows, the manifest says {}", shard.rows),
        ));
    }
    let user_key_is_key_type = state
        .user_key_type
        .as_deref()
        .and_then(|t| rewind_format::parse_type(t).ok())
        .is_some_and(|t| rewind_format::is_key_type(&t));
    if let Some(message) = values::null_in_statistics(builder.metadata(), user_key_is_key_type) {
        found.push(problem(ProblemKind::ColumnValue, message));
    }
    let Some(range) = shard.hash_range else {
        return Ok(found);
    };
    if let Some(message) = statistics_outside(&builder, range) {
        found.push(problem(ProblemKind::HashRange, message));
    } else if deep {
        found.extend(
            deep_check(&described, builder, range)
                .await?
                .into_iter()
                .map(|(kind, message)| problem(kind, message)),
        );
    } else if state.kind == StateKind::Timers {
        if let Some((kind, message)) = domain_check(&described, builder).await? {
            found.push(problem(kind, message));
        }
    }
    Ok(found)
}

/// Decodes the `domain` column of a timers shard and checks every value.
async fn domain_check(
    described: &str,
    builder: parquet::arrow::ParquetRecordBatchStreamBuilder<crate::parquet_io::ObjectReader>,
) -> Result<Option<(ProblemKind, String)>> {
    let mask = ProjectionMask::columns(builder.parquet_schema(), [columns::TIMER_DOMAIN]);
    let mut stream = match decode(described, builder, mask) {
        Ok(s) => s,
        Err(verdict) => return verdict.map(|v| v.into_iter().next()),
    };
    let mut row = 0usize;
    while let Some(batch) = stream.next().await {
        let batch = match batch {
            Ok(b) => b,
            Err(Error::Corrupt { message, .. }) => {
                return Ok(Some((ProblemKind::Unreadable, message)));
            }
            Err(e) => return Err(e),
        };
        if let Some(message) = values::bad_timer_domain(&batch, row) {
            return Ok(Some((ProblemKind::ColumnValue, message)));
        }
        row += batch.num_rows();
    }
    Ok(None)
}

/// The batches of a shard being decoded.
type Batches = futures::stream::BoxStream<'static, Result<arrow_array::RecordBatch>>;

/// What a shard that cannot be decoded amounts to: its problems, or the store's error.
type Verdict = Result<Vec<(ProblemKind, String)>>;

/// A stream of the `mask` columns, or (as `Err`) the verdict when it cannot be built:
/// the file's problem, or the store's error.
fn decode(
    described: &str,
    builder: parquet::arrow::ParquetRecordBatchStreamBuilder<crate::parquet_io::ObjectReader>,
    mask: ProjectionMask,
) -> std::result::Result<Batches, Verdict> {
    match builder.with_projection(mask).build() {
        Ok(s) => Ok(crate::parquet_io::guarded_stream(described.to_string(), s).boxed()),
        Err(e) => Err(
            match crate::parquet_io::parquet_error(described, "reading Parquet", e) {
                Error::Corrupt { message, .. } => Ok(vec![(ProblemKind::Unreadable, message)]),
                other => Err(other),
            },
        ),
    }
}

/// Checks the hash range of every row group (`key_hash` statistics, or a lean shard's
/// footer): present where required, inside the shard's range and in order.
fn statistics_outside<T>(
    builder: &parquet::arrow::arrow_reader::ArrowReaderBuilder<T>,
    range: rewind_format::HashRange,
) -> Option<String> {
    let bounds = match crate::stats::row_group_hash_bounds(builder.metadata(), builder.schema()) {
        Ok(b) => b,
        Err(e) => return Some(e),
    };
    let mut last_max = None;
    for (i, bound) in bounds.into_iter().enumerate() {
        let Some((lo, hi)) = bound else { continue };
        if !range.contains(lo) || !range.contains(hi) {
            return Some(format!(
                "row group {i} holds key hashes {lo:016x}..={hi:016x}, outside the shard's range {range}"
            ));
        }
        if last_max.is_some_and(|m| lo < m) {
            return Some(format!(
                "row group {i} is not sorted by key hash after the one before it"
            ));
        }
        last_max = Some(hi);
    }
    None
}

/// Decodes `key_hash`, the key and every column with a value rule, and checks every
/// stored hash, the sort order, nulls and timer domains: what is wrong with the file (one
/// finding per kind), or a storage error when it could not be read.
async fn deep_check(
    described: &str,
    builder: parquet::arrow::ParquetRecordBatchStreamBuilder<crate::parquet_io::ObjectReader>,
    range: rewind_format::HashRange,
) -> Result<Vec<(ProblemKind, String)>> {
    let names: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|n| n != columns::VALUE)
        .collect();
    let mask = ProjectionMask::columns(builder.parquet_schema(), names.iter().map(String::as_str));
    // A lean shard's recorded row-group ranges, checked against the computed hashes.
    let groups = crate::lean::is_lean(builder.schema())
        .then(|| RecordedGroups::of(builder.metadata()))
        .flatten();
    let mut stream = match decode(described, builder, mask) {
        Ok(s) => s,
        Err(verdict) => return verdict,
    };
    let mut hashes: Option<(ProblemKind, String)> = None;
    let mut values: Option<(ProblemKind, String)> = None;
    let mut last = None;
    let mut row = 0usize;
    while let Some(batch) = stream.next().await {
        let batch = match batch {
            Ok(b) => b,
            Err(Error::Corrupt { message, .. }) => {
                return Ok(vec![(ProblemKind::Unreadable, message)]);
            }
            Err(e) => return Err(e),
        };
        if values.is_none() {
            values = values::forbidden_null(&batch, row)
                .or_else(|| values::bad_timer_domain(&batch, row))
                .map(|m| (ProblemKind::ColumnValue, m));
        }
        if hashes.is_none() {
            hashes = check_hashes(&batch, row, range, &mut last, groups.as_ref());
        }
        if hashes.is_some() && values.is_some() {
            break;
        }
        row += batch.num_rows();
    }
    Ok(hashes.into_iter().chain(values).collect())
}

/// The recorded hash range of each row group of a lean shard, by first row.
struct RecordedGroups {
    /// `(first row, row group index, range)` per row group with rows.
    groups: Vec<(usize, usize, (u64, u64))>,
}

impl RecordedGroups {
    fn of(metadata: &parquet::file::metadata::ParquetMetaData) -> Option<RecordedGroups> {
        // A footer without valid ranges is reported by `statistics_outside`.
        let ranges = crate::lean::row_group_ranges(metadata).ok()?;
        let mut first = 0usize;
        let mut groups = Vec::new();
        for (index, (group, range)) in metadata.row_groups().iter().zip(ranges).enumerate() {
            if let Some(r) = range {
                groups.push((first, index, r));
            }
            first += usize::try_from(group.num_rows()).unwrap_or(0);
        }
        Some(RecordedGroups { groups })
    }

    /// The row group holding file row `row`: its index and recorded range.
    fn of_row(&self, row: usize) -> Option<(usize, (u64, u64))> {
        let i = self.groups.partition_point(|(first, _, _)| *first <= row);
        i.checked_sub(1)
            .map(|i| (self.groups[i].1, self.groups[i].2))
    }
}

/// Checks one batch's hashes (stored, or computed in a lean shard) against its keys, the
/// range, the order and, in a lean shard, the recorded range of its row group.
fn check_hashes(
    batch: &arrow_array::RecordBatch,
    row: usize,
    range: rewind_format::HashRange,
    last: &mut Option<u64>,
    groups: Option<&RecordedGroups>,
) -> Option<(ProblemKind, String)> {
    let Some(key) = batch.column_by_name(columns::KEY) else {
        return Some((ProblemKind::Schema, "no key column".into()));
    };
    if key.null_count() > 0 {
        // A null key has no hash; the null is reported as a column value.
        return None;
    }
    let computed = match hash_keys(key.as_ref()) {
        Ok(h) => h,
        Err(e) => return Some((ProblemKind::HashRange, e.to_string())),
    };
    let stored = match batch.column_by_name(columns::KEY_HASH) {
        Some(c) => match c.as_primitive_opt::<UInt64Type>() {
            Some(s) => s.values().to_vec(),
            None => return Some((ProblemKind::Schema, "key_hash is not uint64".into())),
        },
        None if groups.is_some() => computed.clone(),
        None => return Some((ProblemKind::Schema, "no key_hash column".into())),
    };
    for (i, (&s, &c)) in stored.iter().zip(&computed).enumerate() {
        let at = row + i;
        if let Some((g, (lo, hi))) = groups.and_then(|g| g.of_row(at)) {
            if !(lo..=hi).contains(&c) {
                return Some((
                    ProblemKind::HashRange,
                    format!(
                        "row {at}: the key hashes to {c:016x}, outside row group {g}'s recorded range {lo:016x}..={hi:016x}"
                    ),
                ));
            }
        }
        if s != c {
            return Some((
                ProblemKind::HashRange,
                format!("row {at}: stored key_hash {s:016x}, the key hashes to {c:016x}"),
            ));
        }
        if !range.contains(s) {
            return Some((
                ProblemKind::HashRange,
                format!("row {at}: key hash {s:016x} outside the shard's range {range}"),
            ));
        }
        if last.is_some_and(|l| s < l) {
            return Some((
                ProblemKind::HashRange,
                format!("row {at}: rows are not sorted by key hash"),
            ));
        }
        *last = Some(s);
    }
    None
}
