//! Finding every savepoint under a prefix and how they derive from each other.

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use rewind_format::{MANIFEST_FILE, Manifest};
use serde::Serialize;

use crate::{Error, Location, Result};

/// One savepoint or checkpoint found by [`find_savepoints`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineageEntry {
    /// Its root, relative to the prefix searched ("" for the prefix itself).
    pub path: String,
    /// Savepoint id.
    pub id: String,
    /// `savepoint` or `checkpoint`.
    pub kind: &'static str,
    /// When it was written.
    pub created_at: String,
    /// Its number in the job's checkpoint sequence (0 where there is none).
    pub checkpoint_id: u64,
    /// The operation that wrote it.
    pub operation: String,
    /// The job name.
    pub job: String,
    /// The application version, if recorded.
    pub app_version: Option<String>,
    /// The parent's id, if any.
    pub parent_id: Option<String>,
    /// Where the parent was when this one was written.
    pub parent_location: Option<String>,
}

/// A manifest under the prefix that could not be read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unreadable {
    /// The manifest's path, relative to the prefix.
    pub path: String,
    /// Why.
    pub error: String,
}

/// Every manifest under `prefix` (at any depth), sorted by creation time, and those that
/// could not be read.
pub async fn find_savepoints(prefix: &Location) -> Result<(Vec<LineageEntry>, Vec<Unreadable>)> {
    let metas: Vec<object_store::ObjectMeta> = prefix
        .store()
        .list(Some(prefix.root()))
        .try_collect()
        .await
        .map_err(|e| Error::storage(prefix.to_string(), e))?;
    let mut found = Vec::new();
    let mut broken = Vec::new();
    for meta in metas {
        if meta.location.filename() != Some(MANIFEST_FILE) {
            continue;
        }
        let Some(rel) = prefix.relative(&meta.location) else {
            continue;
        };
        let root = rel
            .strip_suffix(MANIFEST_FILE)
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string();
        let parsed = async {
            let bytes = prefix.store().get(&meta.location).await?.bytes().await?;
            Ok::<_, object_store::Error>(bytes)
        }
        .await
        .map_err(|e| e.to_string())
        .and_then(|bytes| Manifest::from_json(&bytes).map_err(|e| e.to_string()));
        match parsed {
            Ok(m) => found.push(LineageEntry {
                path: root,
                id: m.id.clone(),
                kind: m.kind.as_str(),
                created_at: m.created_at.clone(),
                checkpoint_id: m.checkpoint_id,
                operation: m.lineage.operation.clone(),
                job: m.job.name.clone(),
                app_version: m.job.app_version.clone(),
                parent_id: m.lineage.parent.as_ref().map(|p| p.id.clone()),
                parent_location: m.lineage.parent.as_ref().map(|p| p.location.clone()),
            }),
            Err(error) => broken.push(Unreadable { path: rel, error }),
        }
    }
    found.sort_by(|a, b| (&a.created_at, &a.path).cmp(&(&b.created_at, &b.path)));
    Ok((found, broken))
}

/// The newest *completed* savepoint or checkpoint under `prefix`: the one with the
/// highest checkpoint id (ties: the later written), never judged by wall-clock time
/// alone, since clocks of different machines disagree and a slow checkpoint may commit
/// after a newer one started. Only committed manifests count; a checkpoint whose manifest
/// is missing or unreadable is not complete.
pub fn latest_completed(entries: &[LineageEntry]) -> Option<&LineageEntry> {
    entries.iter().max_by(|a, b| {
        (a.checkpoint_id, &a.created_at, &a.path).cmp(&(b.checkpoint_id, &b.created_at, &b.path))
    })
}
