//! Disposing of a savepoint: deleting exactly what its manifest lists, manifest first,
//! keeping every file that a manifest in a sibling folder still lists (spec: "Incremental
//! checkpoints").

use std::collections::HashSet;

use object_store::ObjectStoreExt;
use rewind_format::{MANIFEST_FILE, Manifest, SavepointKind};

use crate::reader::{list_files, read_manifest};
use crate::{Error, Location, Result};

/// What [`remove`] deleted (or, with `dry_run`, would delete), relative to the root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removal {
    /// The manifest and shards the manifest lists (empty for an incomplete savepoint).
    pub listed: Vec<String>,
    /// Files under the root that no manifest lists (only with `orphans`).
    pub orphans: Vec<String>,
    /// Files under the root that the savepoint lists (or, without a manifest, that would be
    /// orphans) but that a checkpoint in a sibling folder lists too: kept, not deleted.
    pub kept: Vec<String>,
    /// Files in sibling folders, as `sibling/path`, that the savepoint listed, whose own
    /// checkpoint is gone (no manifest there) and that no other manifest lists: deleted
    /// with it.
    pub shared: Vec<String>,
}

/// Deletes the savepoint at `location`: its manifest first, so a half-deleted savepoint
/// never looks complete, then every shard the manifest lists. With `orphans`, also the
/// files under the root that the manifest does not list (a crashed writer's leftovers),
/// except files of other savepoints nested under it; an incomplete savepoint (files but
/// no manifest) can be removed only this way. Refuses a location that is not a savepoint.
pub async fn remove(location: &Location, orphans: bool) -> Result<Removal> {
    let removal = plan_removal(location, orphans).await?;
    delete_files(location, &removal).await?;
    Ok(removal)
}

/// What [`remove`] would delete, without deleting anything.
pub async fn plan_removal(location: &Location, orphans: bool) -> Result<Removal> {
    let staging = if orphans {
        staging_files(location)
    } else {
        Vec::new()
    };
    let manifest = match read_manifest(location).await {
        Ok(m) => Some(m),
        Err(Error::Incomplete { .. }) if orphans => None,
        Err(Error::NotFound { .. }) if !staging.is_empty() => None,
        Err(e) => return Err(e),
    };
    // Checkpoints share files; other kinds of savepoint are never referenced.
    let others = match &manifest {
        Some(m) if m.kind == SavepointKind::Savepoint && !crate::layers::is_incremental(m) => {
            Vec::new()
        }
        _ => sibling_manifests(location).await?,
    };
    let me = location.folder_name();
    // Files other manifests list, as `folder/path` relative to the common parent.
    let elsewhere: HashSet<String> = others
        .iter()
        .flat_map(|(folder, m)| {
            m.shards()
                .map(move |(_, _, s)| match &s.sibling {
                    Some(sib) => format!("{sib}/{}", s.path),
                    None => format!("{folder}/{}", s.path),
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let listed_elsewhere = |path: &str| elsewhere.contains(&format!("{me}/{path}"));
    let mut removal = Removal::default();
    if let Some(m) = &manifest {
        removal.listed.push(MANIFEST_FILE.to_string());
        let with_manifest: HashSet<&str> = others.iter().map(|(f, _)| f.as_str()).collect();
        for (_, _, shard) in m.shards() {
            match &shard.sibling {
                None if listed_elsewhere(&shard.path) => removal.kept.push(shard.path.clone()),
                None => removal.listed.push(shard.path.clone()),
                // The sibling's own checkpoint is gone: its files are this one's to delete.
                Some(sib) if !with_manifest.contains(sib.as_str()) => {
                    let key = shard.file_key();
                    if !elsewhere.contains(&key) {
                        removal.shared.push(key);
                    }
                }
                Some(_) => {}
            }
        }
    }
    if orphans {
        let files = list_files(location).await?;
        let listed: HashSet<&str> = removal
            .listed
            .iter()
            .chain(&removal.kept)
            .map(String::as_str)
            .collect();
        // Directories holding another savepoint's manifest are not ours to clean.
        let nested: Vec<String> = files
            .iter()
            .filter_map(|(p, _)| {
                p.strip_suffix(MANIFEST_FILE)
                    .filter(|d| !d.is_empty())
                    .map(str::to_string)
            })
            .collect();
        let (kept, orphans): (Vec<String>, Vec<String>) = files
            .into_iter()
            .map(|(p, _)| p)
            .chain(staging)
            .filter(|p| {
                !listed.contains(p.as_str()) && !nested.iter().any(|d| p.starts_with(d.as_str()))
            })
            .partition(|p| listed_elsewhere(p));
        removal.kept.extend(kept);
        removal.orphans = orphans;
    }
    Ok(removal)
}

/// The manifests in the folders next to `location` (other checkpoints of the job, which
/// may list files of this folder), by folder name.
async fn sibling_manifests(location: &Location) -> Result<Vec<(String, Manifest)>> {
    let Some(parent) = location.parent() else {
        return Ok(Vec::new());
    };
    let me = location.folder_name();
    let listing = parent
        .store()
        .list_with_delimiter(Some(parent.root()))
        .await
        .map_err(|e| Error::storage(parent.to_string(), e))?;
    let mut out = Vec::new();
    for folder in listing.common_prefixes {
        let Some(name) = folder.parts().next_back().map(|p| p.as_ref().to_string()) else {
            continue;
        };
        if name == me {
            continue;
        }
        let path = folder.clone().join(MANIFEST_FILE);
        let bytes = match parent.store().get(&path).await {
            Ok(r) => r
                .bytes()
                .await
                .map_err(|e| Error::storage(parent.describe(&name), e))?,
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(e) => return Err(Error::storage(parent.describe(&name), e)),
        };
        // A manifest that does not parse cannot be honoured: refuse rather than delete
        // what it might list.
        let manifest = Manifest::from_json(&bytes)
            .map_err(|e| Error::manifest(parent.describe(&format!("{name}/{MANIFEST_FILE}")), e))?;
        out.push((name, manifest));
    }
    Ok(out)
}

/// Whether `name` is a local store's upload staging file: `<file>#<n>`.
fn is_staging(name: &str) -> bool {
    name.rsplit_once('#').is_some_and(|(file, n)| {
        !file.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
    })
}

/// The upload staging files (`<file>#<n>`) under a local location, relative to its root:
/// object_store's local store writes a file there and renames it when the upload
/// completes, so a writer killed mid-upload leaves one behind, and the store's listings
/// never show them. Symlinks are not followed.
fn staging_files(location: &Location) -> Vec<String> {
    let Some(root) = location.local_root() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() && is_staging(&entry.file_name().to_string_lossy()) {
                if let Ok(relative) = path.strip_prefix(root) {
                    let parts: Vec<String> = relative
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect();
                    out.push(parts.join("/"));
                }
            }
        }
    }
    out.sort();
    out
}

/// Deletes exactly the files of `removal` (from [`plan_removal`]), manifest first.
pub async fn delete_files(location: &Location, removal: &Removal) -> Result<()> {
    for path in removal.listed.iter().chain(&removal.orphans) {
        delete_one(location, path).await?;
    }
    // Files shared from a sibling folder whose checkpoint is gone; after this savepoint's
    // manifest, so that no manifest ever lists a deleted file.
    for key in &removal.shared {
        if let Some((sibling, path)) = key.split_once('/') {
            delete_one(&location.sibling(sibling)?, path).await?;
        }
    }
    Ok(())
}

async fn delete_one(location: &Location, path: &str) -> Result<()> {
    // The local store refuses staging names; they are plain files on disk.
    if let (Some(root), true) = (location.local_root(), is_staging(path)) {
        match std::fs::remove_file(root.join(path)) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                let e = object_store::Error::Generic {
                    store: "LocalFileSystem",
                    source: Box::new(e),
                };
                return Err(Error::storage(location.describe(path), e));
            }
        }
    }
    match location.store().delete(&location.child(path)).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(Error::storage(location.describe(path), e)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_names_are_file_hash_number() {
        for name in ["00003-ab.parquet#1", "_manifest.json#12"] {
            assert!(is_staging(name), "{name}");
        }
        for name in ["a.parquet", "#1", "a#", "a#1b", "a#b1"] {
            assert!(!is_staging(name), "{name}");
        }
    }
}
