//! A Flink savepoint on any object store: its parsed `_metadata`, and the bytes its
//! handles point to (inline, or files beside `_metadata`).

use object_store::ObjectStoreExt;
use rewind_savepoint::Location;

use crate::error::FlinkError;
use crate::metadata::MAGIC;
use crate::metadata::{self, Metadata, Operator, StreamHandle};

/// The name of Flink's metadata file.
pub const METADATA_FILE: &str = "_metadata";

/// An open Flink savepoint.
#[derive(Debug, Clone)]
pub struct FlinkSavepoint {
    dir: Location,
    metadata: Metadata,
}

/// The directory of a savepoint named by its directory or its `_metadata` file.
fn directory(location: &Location) -> Location {
    let root = location.root().as_ref();
    match root.rsplit_once('/') {
        Some((parent, METADATA_FILE)) => {
            let text = location.to_string();
            let display = text
                .strip_suffix(METADATA_FILE)
                .map(|d| d.trim_end_matches('/').to_string())
                .unwrap_or(text);
            Location::new(location.store().clone(), parent.into(), display)
        }
        _ => location.clone(),
    }
}

/// Whether `location` (a directory or a `_metadata` file) holds a Flink `_metadata`: its
/// first four bytes are Flink's magic number.
pub async fn looks_like_flink(location: &Location) -> bool {
    let dir = directory(location);
    let path = dir.child(METADATA_FILE);
    match dir.store().get_range(&path, 0..4).await {
        Ok(b) => b.len() == 4 && i32::from_be_bytes([b[0], b[1], b[2], b[3]]) == MAGIC,
        Err(_) => false,
    }
}

impl FlinkSavepoint {
    /// Reads and parses `_metadata` of the savepoint at `location` (its directory or its
    /// `_metadata` file).
    pub async fn open(location: Location) -> Result<FlinkSavepoint, FlinkError> {
        let dir = directory(&location);
        let described = dir.describe(METADATA_FILE);
        let bytes = match dir.store().get(&dir.child(METADATA_FILE)).await {
            Ok(r) => r.bytes().await.map_err(|e| FlinkError::Storage {
                path: described.clone(),
                error: e,
            })?,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(FlinkError::NotFlink {
                    path: described,
                    reason: "no such file".into(),
                });
            }
            Err(e) => {
                return Err(FlinkError::Storage {
                    path: described,
                    error: e,
                });
            }
        };
        let metadata = metadata::parse(&bytes).map_err(|e| {
            if e.offset <= 4 && bytes.len() >= 4 {
                FlinkError::NotFlink {
                    path: described.clone(),
                    reason: e.message.clone(),
                }
            } else if e.message.starts_with("unsupported Flink metadata version") {
                FlinkError::UnsupportedVersion {
                    path: described.clone(),
                    version: i32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
                }
            } else {
                FlinkError::Corrupt {
                    path: described.clone(),
                    offset: e.offset,
                    message: e.message,
                }
            }
        })?;
        Ok(FlinkSavepoint { dir, metadata })
    }

    /// The operator a user uid names: the one that records it, or, in a savepoint that
    /// records no uids (Flink 1.x writes only operator ids), the one whose id is Flink's
    /// hash of it.
    pub fn operator_by_uid(&self, uid: &str) -> Option<&Operator> {
        self.metadata
            .operators
            .iter()
            .find(|op| op.is_named_by(uid))
    }

    /// The parsed metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The savepoint's directory.
    pub fn location(&self) -> &Location {
        &self.dir
    }

    /// Where a handle's file is: relative files beside `_metadata`; absolute ones by their
    /// file name beside `_metadata` (a savepoint is often read on another machine).
    fn file_of(handle: &StreamHandle) -> Option<String> {
        match handle {
            StreamHandle::Relative { path, .. } => Some(path.clone()),
            StreamHandle::File { path, .. } | StreamHandle::Segment { path, .. } => {
                path.rsplit('/').next().map(str::to_string)
            }
            StreamHandle::KeyGroups(k) => Self::file_of(&k.delegate),
            StreamHandle::Inline { .. } | StreamHandle::EmptySegment => None,
        }
    }

    /// The bytes a stream handle holds or points to.
    pub async fn read(&self, handle: &StreamHandle) -> Result<bytes::Bytes, FlinkError> {
        match handle {
            StreamHandle::Inline { data, .. } => return Ok(bytes::Bytes::from(data.clone())),
            StreamHandle::EmptySegment => return Ok(bytes::Bytes::new()),
            _ => {}
        }
        let name = Self::file_of(handle).unwrap_or_default();
        let described = self.dir.describe(&name);
        rewind_savepoint::format::check_relative_path(&name).map_err(|e| {
            FlinkError::Unsupported {
                path: described.clone(),
                message: format!("a state file path that escapes the savepoint: {e}"),
            }
        })?;
        let storage = |e: object_store::Error| FlinkError::Storage {
            path: described.clone(),
            error: e,
        };
        let path = self.dir.child(&name);
        let bytes = match handle {
            StreamHandle::Segment { start, size, .. } => {
                let (s, n) = (*start as u64, *size as u64);
                self.dir
                    .store()
                    .get_range(&path, s..s + n)
                    .await
                    .map_err(storage)?
            }
            _ => self
                .dir
                .store()
                .get(&path)
                .await
                .map_err(storage)?
                .bytes()
                .await
                .map_err(storage)?,
        };
        Ok(bytes)
    }

    /// Files the metadata refers to that are not in the savepoint directory.
    pub async fn missing_files(&self) -> Vec<String> {
        let mut missing = Vec::new();
        for name in self.referenced_files() {
            if self.dir.store().head(&self.dir.child(&name)).await.is_err() {
                missing.push(name);
            }
        }
        missing
    }

    /// Absolute paths in file handles: they tie the savepoint to its original location.
    pub fn absolute_paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.each_stream(&mut |h| {
            if let StreamHandle::File { path, .. } | StreamHandle::Segment { path, .. } = h {
                out.push(path.clone());
            }
        });
        out.sort();
        out.dedup();
        out
    }

    fn referenced_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.each_stream(&mut |h| out.extend(Self::file_of(h)));
        out.sort();
        out.dedup();
        out
    }

    fn each_stream(&self, f: &mut dyn FnMut(&StreamHandle)) {
        use crate::metadata::KeyedHandle;
        for op in &self.metadata.operators {
            if let Some(c) = &op.coordinator_state {
                f(c);
            }
            for s in &op.subtasks {
                for o in [&s.operator_state, &s.raw_operator_state]
                    .into_iter()
                    .flatten()
                {
                    f(&o.delegate);
                }
                for k in [&s.keyed_state, &s.raw_keyed_state].into_iter().flatten() {
                    match k {
                        KeyedHandle::Savepoint(g) | KeyedHandle::Checkpoint(g) => f(&g.delegate),
                        KeyedHandle::Incremental { meta, files, .. } => {
                            f(meta);
                            for (_, h) in files {
                                f(h);
                            }
                        }
                        KeyedHandle::Changelog { .. } => {}
                    }
                }
            }
        }
    }
}
