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
            .filter(|p| {
                !listed.contains(p.as_str()) && !nested.iter().any(|d| p.starts_with(d.as_str()))
            })
            .collect();
    }
    Ok(removal)
}

/// Deletes exactly the files of `removal` (from [`plan_removal`]), manifest first.
pub async fn delete_files(location: &Location, removal: &Removal) -> Result<()> {
    for path in removal.listed.iter().chain(&removal.orphans) {
        match location.store().delete(&location.child(path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(Error::storage(location.describe(path), e)),
        }
    }
    Ok(())
}
