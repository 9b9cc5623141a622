//! Staged output no checkpoint can commit any more, and how it is found and removed.
//!
//! A [`FileSink`](super::FileSink) stages chunks as `_pending/<token>.jsonl`. Before a
//! checkpoint's or savepoint's manifest is written, the job records which chunks it lists
//! in `_pending/_listed-<checkpoint>-<random>.json` (`{"location": ..., "tokens": [...]}`).
//! A chunk is an **orphan** when no record whose savepoint exists (its `_manifest.json`)
//! lists it: staged for a checkpoint that never completed (a crash, a cancel), or listed
//! only by checkpoints since disposed of. Orphans are removed by the job when it starts
//! and by `rewind rm --orphans` on the sink's folder; a chunk a committed manifest lists
//! is never removed, nor one whose listing cannot be checked (the store failed).

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload};
use rewind_savepoint::Location;
use rewind_savepoint::format::MANIFEST_FILE;
use serde::{Deserialize, Serialize};

use crate::{EngineError, Result};

/// The folder of staged chunks and listing records under a file sink's location.
pub(crate) const PENDING_DIR: &str = "_pending";

/// How listing records are named under [`PENDING_DIR`].
const RECORD_PREFIX: &str = "_listed-";

/// Which staged chunks a checkpoint or savepoint lists.
#[derive(Debug, Serialize, Deserialize)]
struct ListingRecord {
    /// Where the checkpoint or savepoint is written (its manifest decides).
    location: String,
    /// The tokens of the chunks it lists.
    tokens: Vec<String>,
}

/// Records, before the manifest of the checkpoint or savepoint at `location` is written,
/// that it lists the staged chunks `tokens` of the sink at `sink`; returns the record's
/// name. Once they are committed, the job removes the record again.
pub(crate) fn record_listing(
    sink: &Location,
    checkpoint: u64,
    location: &str,
    tokens: &[String],
) -> Result<String> {
    let random = uuid::Uuid::new_v4().simple().to_string();
    let name = format!(
        "{PENDING_DIR}/{RECORD_PREFIX}{checkpoint:020}-{}.json",
        &random[..12]
    );
    let record = ListingRecord {
        location: location.to_string(),
        tokens: tokens.to_vec(),
    };
    let body = serde_json::to_vec(&record).map_err(|e| EngineError::Internal(e.to_string()))?;
    let store = sink.store().clone();
    let path = sink.child(&name);
    crate::io::block_on(async move { store.put(&path, PutPayload::from(body)).await })?
        .map_err(|e| sink_error(sink, &name, e))?;
    Ok(name)
}

/// What [`find_staged_orphans`] found: files under the sink's location that can go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StagedOrphans {
    /// Staged chunks no existing checkpoint or savepoint lists.
    pub chunks: Vec<String>,
    /// Listing records of savepoints that do not exist (never committed, or removed), or
    /// whose chunks are all committed.
    pub records: Vec<String>,
    /// Staged chunks kept because a committed checkpoint or savepoint lists them.
    pub kept: usize,
}

impl StagedOrphans {
    /// Every file to delete, chunks first (a record goes only after its chunks).
    pub fn files(&self) -> impl Iterator<Item = &String> {
        self.chunks.iter().chain(&self.records)
    }
}

/// The orphans under the file sink at `sink` that are at least `min_age` old (younger
/// files may belong to a checkpoint in progress). Reads the listing records and checks
/// each listed savepoint's manifest; deletes nothing.
pub fn find_staged_orphans(sink: &Location, min_age: Duration) -> Result<StagedOrphans> {
    let store = sink.store().clone();
    let prefix = sink.child(PENDING_DIR);
    let files: Vec<object_store::ObjectMeta> =
        crate::io::block_on(async move { store.list(Some(&prefix)).try_collect().await })?
            .map_err(|e| sink_error(sink, PENDING_DIR, e))?;
    let now = SystemTime::now();
    let old_enough = |meta: &object_store::ObjectMeta| {
        now.duration_since(SystemTime::from(meta.last_modified))
            .is_ok_and(|age| age >= min_age)
    };
    let mut chunks = Vec::new();
    let mut records = Vec::new();
    for meta in &files {
        let Some(name) = sink.relative(&meta.location) else {
            continue;
        };
        let Some(file) = name.strip_prefix(&format!("{PENDING_DIR}/")) else {
            continue;
        };
        if file.starts_with(RECORD_PREFIX) {
            records.push((name.clone(), meta));
        } else {
            chunks.push((name.clone(), file.to_string(), meta));
        }
    }
    // Tokens a committed savepoint lists (or might: a record that cannot be read or
    // checked keeps everything it could name, by keeping every chunk).
    let mut kept_tokens: HashSet<String> = HashSet::new();
    let mut keep_all = false;
    let mut live_records = Vec::new();
    let mut stale = Vec::new();
    for (name, meta) in &records {
        match read_record(sink, name).and_then(|r| Ok((exists(&r.location)?, r))) {
            Ok((true, record)) => {
                live_records.push((name.clone(), record.tokens.clone()));
                kept_tokens.extend(record.tokens);
            }
            Ok((false, _)) if old_enough(meta) => stale.push(name.clone()),
            Ok((false, record)) => kept_tokens.extend(record.tokens),
            Err(_) => keep_all = true,
        }
    }
    let chunk_token = |file: &str| file.strip_suffix(".jsonl").unwrap_or(file).to_string();
    let mut orphans = StagedOrphans::default();
    let present: HashSet<String> = chunks.iter().map(|(_, f, _)| chunk_token(f)).collect();
    for (name, file, meta) in &chunks {
        // Checkpoints of earlier versions listed a legacy part's whole file name.
        let listed = kept_tokens.contains(&chunk_token(file)) || kept_tokens.contains(file);
        if listed || keep_all {
            orphans.kept += 1;
        } else if old_enough(meta) {
            orphans.chunks.push(name.clone());
        }
    }
    orphans.records = stale;
    // A committed savepoint's record is done once none of its chunks is staged any more.
    for (name, tokens) in live_records {
        if !keep_all && !tokens.iter().any(|t| present.contains(t)) {
            orphans.records.push(name);
        }
    }
    orphans.chunks.sort();
    orphans.records.sort();
    Ok(orphans)
}

/// Deletes what [`find_staged_orphans`] found, chunks first.
pub fn remove_staged_orphans(sink: &Location, orphans: &StagedOrphans) -> Result<()> {
    let names: Vec<String> = orphans.files().cloned().collect();
    remove_files(sink, &names)
}

/// Deletes files under the sink's location; one already gone is fine.
pub(crate) fn remove_files(sink: &Location, names: &[String]) -> Result<()> {
    for name in names {
        let store = sink.store().clone();
        let path = sink.child(name);
        match crate::io::block_on(async move { store.delete(&path).await })? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(sink_error(sink, name, e)),
        }
    }
    Ok(())
}

fn read_record(sink: &Location, name: &str) -> Result<ListingRecord> {
    let store = sink.store().clone();
    let path = sink.child(name);
    let bytes = crate::io::block_on(async move { store.get(&path).await?.bytes().await })?
        .map_err(|e| sink_error(sink, name, e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| sink_error(sink, name, format!("not a listing record: {e}")))
}

/// Whether a savepoint is committed at `location`; an error when that cannot be told.
fn exists(location: &str) -> Result<bool> {
    let at = Location::parse(location)?;
    let store = at.store().clone();
    let manifest = at.child(MANIFEST_FILE);
    match crate::io::block_on(async move { store.head(&manifest).await })? {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(EngineError::Internal(format!("{location}: {e}"))),
    }
}

fn sink_error(sink: &Location, name: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Operator {
        operator: "file sink".into(),
        message: format!("{}: {e}", sink.describe(name)),
    }
}
