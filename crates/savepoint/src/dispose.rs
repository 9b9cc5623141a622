//! Disposing of a savepoint: deleting exactly what its manifest lists, manifest first.

use std::collections::HashSet;

use object_store::ObjectStoreExt;
use rewind_format::MANIFEST_FILE;

use crate::reader::{list_files, read_manifest};
use crate::{Error, Location, Result};

/// What [`remove`] deleted (or, with `dry_run`, would delete), relative to the root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removal {
    /// The manifest and shards the manifest lists (empty for an incomplete savepoint).
    pub listed: Vec<String>,
    /// Files under the root that no manifest lists (only with `orphans`).
    pub orphans: Vec<String>,
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
    let mut removal = match read_manifest(location).await {
        Ok(m) => {
            let mut listed = vec![MANIFEST_FILE.to_string()];
            listed.extend(m.shards().map(|(_, _, s)| s.path.clone()));
            Removal {
                listed,
                orphans: Vec::new(),
            }
        }
        Err(Error::Incomplete { .. }) if orphans => Removal::default(),
        Err(Error::NotFound { .. }) if !staging.is_empty() => Removal::default(),
        Err(e) => return Err(e),
    };
    if orphans {
        let files = list_files(location).await?;
        let listed: HashSet<&str> = removal.listed.iter().map(String::as_str).collect();
        // Directories holding another savepoint's manifest are not ours to clean.
        let nested: Vec<String> = files
            .iter()
            .filter_map(|(p, _)| {
                p.strip_suffix(MANIFEST_FILE)
                    .filter(|d| !d.is_empty())
                    .map(str::to_string)
            })
            .collect();
        removal.orphans = files
            .into_iter()
            .map(|(p, _)| p)
            .chain(staging)
            .filter(|p| {
                !listed.contains(p.as_str()) && !nested.iter().any(|d| p.starts_with(d.as_str()))
            })
            .collect();
    }
    Ok(removal)
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
        // The local store refuses staging names; they are plain files on disk.
        if let (Some(root), true) = (location.local_root(), is_staging(path)) {
            match std::fs::remove_file(root.join(path)) {
                Ok(()) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
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
