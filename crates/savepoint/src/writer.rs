//! Writing a savepoint: shards first, the manifest last with a create-only put.

use std::sync::{Arc, Mutex, MutexGuard};

use arrow_array::RecordBatch;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use rewind_format::{
    Extensions, FormatVersion, HashRange, JobInfo, KEY_HASH_ALGORITHM, Lineage, MANIFEST_FILE,
    Manifest, OperatorEntry, SavepointKind, ShardEntry, SourceEntry, SplitEntry, WriterInfo,
    check_name, portable_segment,
};

use crate::shard_writer::{ShardTarget, ShardWriter, WRITER_NAME, WRITER_VERSION, WriterOptions};
use crate::sort::sort_and_split;
use crate::spec::StateSpec;
use crate::{Error, Location, Result};

/// Savepoint-level facts a writer records.
#[derive(Debug, Clone)]
pub struct SavepointInfo {
    /// The job.
    pub job: JobInfo,
    /// Savepoint or checkpoint.
    pub kind: SavepointKind,
    /// Checkpoint number (0 where there is none).
    pub checkpoint_id: u64,
    /// Where it comes from.
    pub lineage: Lineage,
    /// What other systems need to know about the whole savepoint (format 1.1).
    pub extensions: Extensions,
    /// The oldest format version to write; the writer writes a newer one when the
    /// savepoint uses what only that version has.
    pub min_version: FormatVersion,
}

impl SavepointInfo {
    /// A savepoint of job `job_name` made by `operation` (e.g. `generate`), with no parent.
    pub fn new(job_name: &str, operation: &str) -> Self {
        SavepointInfo {
            job: JobInfo {
                name: job_name.to_string(),
                ..JobInfo::default()
            },
            kind: SavepointKind::Savepoint,
            checkpoint_id: 0,
            lineage: Lineage {
                operation: operation.to_string(),
                parent: None,
                parameters: None,
            },
            extensions: Extensions::new(),
            min_version: FormatVersion::V1_0,
        }
    }

    /// A savepoint made from `source` by `operation` (edit, rescale, migrate): the same
    /// job and checkpoint id, `source` recorded as parent.
    pub(crate) fn derived_from(source: &crate::SavepointReader, operation: &str) -> Self {
        let manifest = source.manifest();
        let mut info = SavepointInfo::new(&manifest.job.name, operation);
        info.job = manifest.job.clone();
        info.checkpoint_id = manifest.checkpoint_id;
        info.extensions = manifest.extensions.clone();
        // A derived savepoint is never of an older version than its source.
        info.min_version = manifest.version.min(FormatVersion::CURRENT);
        info.lineage.parent = Some(rewind_format::ParentRef {
            id: manifest.id.clone(),
            location: source.location().to_string(),
        });
        info
    }
}

/// Writes one savepoint.
///
/// Declare operators and states, write their shards (each [`ShardWriter`] may run on its own
/// task), then [`commit`](SavepointWriter::commit). Nothing is a savepoint until `commit`
/// has put the manifest; a writer dropped before that leaves only unlisted files.
///
/// ```no_run
/// # async fn demo() -> rewind_savepoint::Result<()> {
/// use arrow_schema::DataType;
/// use rewind_savepoint::{Location, SavepointInfo, SavepointWriter, StateSpec};
/// let location = Location::parse("/tmp/my-savepoint")?;
/// let writer = SavepointWriter::create(location, SavepointInfo::new("my-job", "bootstrap")).await?;
/// writer.add_operator("counter", "Counter", 2)?;
/// writer.add_state("counter", StateSpec::value("count", DataType::Int64, DataType::UInt64))?;
/// # let batches = vec![];
/// writer.write_keyed("counter", "count", batches).await?;
/// let manifest = writer.commit().await?;
/// # Ok(()) }
/// ```
pub struct SavepointWriter {
    location: Location,
    options: WriterOptions,
    shared: Arc<Mutex<Draft>>,
}

/// The manifest being built; shard writers add their entries to it.
pub(crate) struct Draft {
    pub(crate) id: String,
    info: SavepointInfo,
    operators: Vec<OperatorEntry>,
    specs: Vec<(String, StateSpec)>,
    next_shard: u64,
    /// Every shard path handed out, for [`SavepointWriter::abort`].
    paths: Vec<String>,
    /// Whether a listed keyed shard may be lean (reader feature `lean_keyed_shards`).
    lean: bool,
}

impl Draft {
    pub(crate) fn add_shard(
        &mut self,
        uid: &str,
        state: &str,
        shard: ShardEntry,
        lean: bool,
    ) -> Result<()> {
        self.lean |= lean;
        let entry = self
            .operators
            .iter_mut()
            .find(|o| o.uid == uid)
            .and_then(|o| o.states.iter_mut().find(|s| s.name == state))
            .ok_or_else(|| Error::Internal(format!("shard for undeclared state {uid}/{state}")))?;
        entry.shards.push(shard);
        Ok(())
    }
}

impl SavepointWriter {
    /// Starts a savepoint at `location`. Fails with [`Error::AlreadyExists`] if a savepoint is
    /// already there (the check is repeated atomically at commit).
    pub async fn create(location: Location, info: SavepointInfo) -> Result<SavepointWriter> {
        Self::create_with_options(location, info, WriterOptions::default()).await
    }

    /// [`create`](Self::create) with encoding and upload options.
    pub async fn create_with_options(
        location: Location,
        info: SavepointInfo,
        options: WriterOptions,
    ) -> Result<SavepointWriter> {
        if info.job.name.is_empty() {
            return Err(Error::InvalidInput("the job name is empty".into()));
        }
        if options.row_group_rows == 0 {
            return Err(Error::InvalidInput(
                "row_group_rows must be at least 1".into(),
            ));
        }
        let manifest_path = location.child(MANIFEST_FILE);
        match location.store().head(&manifest_path).await {
            Ok(_) => {
                return Err(Error::AlreadyExists {
                    location: location.to_string(),
                });
            }
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(Error::storage(location.describe(MANIFEST_FILE), e)),
        }
        let id = uuid::Uuid::new_v4().to_string();
        Ok(SavepointWriter {
            location,
            options,
            shared: Arc::new(Mutex::new(Draft {
                id,
                info,
                operators: Vec::new(),
                specs: Vec::new(),
                next_shard: 0,
                paths: Vec::new(),
                lean: false,
            })),
        })
    }

    fn draft(&self) -> Result<MutexGuard<'_, Draft>> {
        lock(&self.shared)
    }

    /// The id the savepoint will have.
    pub fn id(&self) -> Result<String> {
        Ok(self.draft()?.id.clone())
    }

    /// Where it is written.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Declares an operator.
    pub fn add_operator(&self, uid: &str, name: &str, parallelism: u32) -> Result<()> {
        check_name("operator uid", uid).map_err(Error::InvalidInput)?;
        if parallelism == 0 {
            return Err(Error::InvalidInput(format!(
                "operator {uid:?}: parallelism must be at least 1"
            )));
        }
        let mut draft = self.draft()?;
        if draft.operators.iter().any(|o| o.uid == uid) {
            return Err(Error::InvalidInput(format!(
                "operator {uid:?} declared twice"
            )));
        }
        draft.operators.push(OperatorEntry {
            uid: uid.to_string(),
            name: name.to_string(),
            parallelism,
            states: Vec::new(),
            source: None,
            extensions: Extensions::new(),
        });
        Ok(())
    }

    /// Records what another system needs to know about an operator (format 1.1's
    /// `extensions`), by system name; derived savepoints carry it over with
    /// [`carry_operator_extensions`](Self::carry_operator_extensions).
    pub fn set_operator_extension(
        &self,
        uid: &str,
        system: &str,
        value: serde_json::Value,
    ) -> Result<()> {
        let mut draft = self.draft()?;
        operator_mut(&mut draft, uid)?
            .extensions
            .insert(system.to_string(), value);
        Ok(())
    }

    /// Copies the extensions of `from`'s operators to the declared operators of the same
    /// uid (`renamed` maps a new uid to its old one), for savepoints derived from `from`.
    pub fn carry_operator_extensions(
        &self,
        from: &Manifest,
        renamed: &dyn Fn(&str) -> String,
    ) -> Result<()> {
        let mut draft = self.draft()?;
        for op in &mut draft.operators {
            if let Some(old) = from.operator(&renamed(&op.uid)) {
                op.extensions = old.extensions.clone();
            }
        }
        Ok(())
    }

    /// Records a source operator's splits with their positions and watermarks.
    pub fn set_source_splits(&self, uid: &str, splits: Vec<SplitEntry>) -> Result<()> {
        let mut draft = self.draft()?;
        let op = operator_mut(&mut draft, uid)?;
        op.source = Some(SourceEntry { splits });
        Ok(())
    }

    /// Declares a state of an operator.
    pub fn add_state(&self, uid: &str, spec: StateSpec) -> Result<()> {
        check_name("state name", spec.name()).map_err(Error::InvalidInput)?;
        let entry = spec.to_entry()?;
        let mut draft = self.draft()?;
        let op = operator_mut(&mut draft, uid)?;
        if op.state(spec.name()).is_some() {
            return Err(Error::InvalidInput(format!(
                "state {:?} of operator {uid:?} declared twice",
                spec.name()
            )));
        }
        op.states.push(entry);
        draft.specs.push((uid.to_string(), spec));
        Ok(())
    }

    fn spec(&self, uid: &str, state: &str) -> Result<(StateSpec, u32)> {
        let draft = self.draft()?;
        let op = draft
            .operators
            .iter()
            .find(|o| o.uid == uid)
            .ok_or_else(|| Error::InvalidInput(format!("operator {uid:?} was not declared")))?;
        let spec = draft
            .specs
            .iter()
            .find(|(u, s)| u == uid && s.name() == state)
            .map(|(_, s)| s.clone())
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                    "state {state:?} of operator {uid:?} was not declared"
                ))
            })?;
        Ok((spec, op.parallelism))
    }

    pub(crate) fn shard_path(&self, uid: &str, state: &str) -> Result<String> {
        let mut draft = self.draft()?;
        let n = draft.next_shard;
        draft.next_shard += 1;
        // The savepoint id in the file name keeps two writers racing for one root apart:
        // the loser's files can never replace the winner's.
        let token = &draft.id[..8];
        let (uid, state) = (portable_segment(uid), portable_segment(state));
        let path = format!("state/{uid}/{state}/{n:05}-{token}.parquet");
        draft.paths.push(path.clone());
        Ok(path)
    }

    /// Gives up the savepoint: deletes every shard file this writer may have written (a
    /// file never written is no error), so a failed write leaves its location as it found
    /// it; returns how many deletes it made (stores that do not tell a missing file count
    /// it too). Files of other writers are never touched (each writer's file names carry
    /// its id). Call it only when [`commit`](Self::commit) was never called (a manifest
    /// whose put failed may still be stored) and no shard is still being written (a write
    /// in flight may land after its delete). Tries every file; the first failure is
    /// returned after.
    pub async fn abort(&self) -> Result<usize> {
        let paths = std::mem::take(&mut self.draft()?.paths);
        let store = self.location.store();
        let (mut deleted, mut failed) = (0, None);
        for path in &paths {
            match store.delete(&self.location.child(path)).await {
                Ok(()) => deleted += 1,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    failed.get_or_insert(Error::storage(self.location.describe(path), e));
                }
            }
        }
        failed.map_or(Ok(deleted), Err)
    }

    /// A writer for the shard of keyed state `uid/state` that holds the hashes in `range`.
    /// Rows must come sorted by key hash (see [`ShardWriter::write`]).
    pub fn keyed_shard(&self, uid: &str, state: &str, range: HashRange) -> Result<ShardWriter> {
        let (spec, _) = self.spec(uid, state)?;
        if !spec.kind().is_keyed() {
            return Err(Error::InvalidInput(format!(
                "{uid}/{state} is operator state; use operator_shard"
            )));
        }
        let path = self.shard_path(uid, state)?;
        self.shard_writer(uid, spec, path, ShardTarget::Keyed(range))
    }

    /// A writer for a delta shard of keyed state `uid/state` in layer `layer` (at least 1)
    /// holding changes to the hashes in `range` (spec: "Incremental checkpoints"): each
    /// batch has the state's columns and a boolean `deleted` column, true for a key (row
    /// identity) removed since the layers below, false for one inserted or updated. The
    /// savepoint then lists the reader feature `incremental_checkpoints`.
    pub fn keyed_delta_shard(
        &self,
        uid: &str,
        state: &str,
        range: HashRange,
        layer: u32,
    ) -> Result<ShardWriter> {
        if layer == 0 {
            return Err(Error::InvalidInput(
                "a delta shard's layer is at least 1 (layer 0 is the base)".into(),
            ));
        }
        Ok(self.keyed_shard(uid, state, range)?.into_delta(layer))
    }

    /// Lists shards that another savepoint in the folder `sibling` next to this one holds
    /// (a checkpoint of the same job written earlier), without copying them: the files
    /// stay where they are and this savepoint reads them there. `shards` are entries of
    /// the sibling's manifest; one that itself points to a sibling keeps pointing there.
    /// The savepoint then lists the reader feature `incremental_checkpoints`, and stays
    /// readable only as long as those files are kept (retention and `rewind rm` keep
    /// every file a remaining manifest lists). `lean`: whether the sibling's manifest
    /// allows lean keyed shards (then this one does too).
    pub fn reuse_shards(
        &self,
        uid: &str,
        state: &str,
        sibling: &str,
        shards: &[ShardEntry],
        lean: bool,
    ) -> Result<()> {
        self.spec(uid, state)?;
        let mut draft = self.draft()?;
        for shard in shards {
            let entry = ShardEntry {
                sibling: Some(shard.sibling.clone().unwrap_or_else(|| sibling.to_string())),
                ..shard.clone()
            };
            draft.add_shard(uid, state, entry, lean && shard.hash_range.is_some())?;
        }
        Ok(())
    }

    /// A writer for the shard that takes the place of `shard` (same range or subtask, same
    /// layer) in a savepoint derived from the one listing it.
    pub(crate) fn shard_like(
        &self,
        uid: &str,
        state: &str,
        shard: &ShardEntry,
    ) -> Result<ShardWriter> {
        match (shard.hash_range, shard.subtask) {
            (Some(range), _) if shard.is_delta() => {
                self.keyed_delta_shard(uid, state, range, shard.layer)
            }
            (Some(range), _) => self.keyed_shard(uid, state, range),
            (None, Some(subtask)) => self.operator_shard(uid, state, subtask),
            (None, None) => Err(Error::Internal(format!(
                "{uid}/{state}: shard without range or subtask"
            ))),
        }
    }

    /// A writer for subtask `subtask`'s shard of operator list state `uid/state`.
    pub fn operator_shard(&self, uid: &str, state: &str, subtask: u32) -> Result<ShardWriter> {
        let (spec, parallelism) = self.spec(uid, state)?;
        if spec.kind().is_keyed() {
            return Err(Error::InvalidInput(format!(
                "{uid}/{state} is keyed state; use keyed_shard"
            )));
        }
        if subtask >= parallelism {
            return Err(Error::InvalidInput(format!(
                "subtask {subtask} of {uid:?} is not below its parallelism {parallelism}"
            )));
        }
        let path = self.shard_path(uid, state)?;
        self.shard_writer(uid, spec, path, ShardTarget::Subtask(subtask))
    }

    fn shard_writer(
        &self,
        uid: &str,
        spec: StateSpec,
        path: String,
        target: ShardTarget,
    ) -> Result<ShardWriter> {
        let id = self.id()?;
        let draft = self.shared.clone();
        let on_finish: crate::shard_writer::OnFinish = Arc::new(move |uid, state, entry, lean| {
            lock(&draft)?.add_shard(uid, state, entry, lean)
        });
        Ok(ShardWriter::new(
            self.location.clone(),
            on_finish,
            &self.options,
            uid,
            &id,
            spec,
            path,
            target,
        ))
    }

    /// Adds a shard that was written (or copied) outside a [`ShardWriter`], e.g. by rescale;
    /// `lean` when it is (or, for a copy, may be) a lean keyed shard.
    pub(crate) fn add_shard_entry(
        &self,
        uid: &str,
        state: &str,
        shard: ShardEntry,
        lean: bool,
    ) -> Result<()> {
        self.draft()?.add_shard(uid, state, shard, lean)
    }

    /// Copies a shard of the savepoint `from` byte for byte (server-side where the store
    /// can) and lists it under `uid/state`. A keyed shard of a savepoint that allows lean
    /// shards may be one, so the new savepoint allows them too.
    pub(crate) async fn copy_shard(
        &self,
        from: &crate::SavepointReader,
        uid: &str,
        state: &str,
        shard: &ShardEntry,
    ) -> Result<()> {
        let path = self.shard_path(uid, state)?;
        let home = crate::layers::home(from.location(), shard)?;
        crate::file_copy::copy_file(&home, &shard.path, self.location(), &path).await?;
        let lean = shard.hash_range.is_some() && crate::lean::allowed(from.manifest());
        self.add_shard_entry(
            uid,
            state,
            ShardEntry {
                path,
                sibling: None,
                ..shard.clone()
            },
            lean,
        )
    }

    /// The encoding options of this writer.
    pub(crate) fn options(&self) -> &WriterOptions {
        &self.options
    }

    /// Writes a whole keyed state from unsorted batches, one shard per subtask of the
    /// operator's parallelism. Holds the state in memory to sort it: for large state, write
    /// sorted shards with [`keyed_shard`](Self::keyed_shard) instead.
    pub async fn write_keyed(
        &self,
        uid: &str,
        state: &str,
        batches: Vec<RecordBatch>,
    ) -> Result<()> {
        let (spec, parallelism) = self.spec(uid, state)?;
        let parts = sort_and_split(uid, &spec, &batches, parallelism)?;
        let mut shards = Vec::with_capacity(parts.len());
        for (i, part) in parts.into_iter().enumerate() {
            let range = HashRange::for_subtask(i as u32, parallelism)
                .ok_or_else(|| Error::Internal("subtask range".into()))?;
            shards.push((self.keyed_shard(uid, state, range)?, part));
        }
        // Encoding is CPU work: the shards are encoded side by side, one per core.
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        futures::stream::iter(shards)
            .map(|(mut shard, part)| {
                tokio::spawn(async move {
                    if let Some(batch) = part {
                        shard.write_with_hashes(batch).await?;
                    }
                    shard.finish().await
                })
            })
            .buffer_unordered(workers)
            .map(|joined| joined.map_err(|e| Error::Internal(format!("shard task failed: {e}")))?)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(())
    }

    /// Writes operator list state: `per_subtask[i]` holds subtask `i`'s elements in a
    /// `value` column.
    pub async fn write_operator_list(
        &self,
        uid: &str,
        state: &str,
        per_subtask: Vec<RecordBatch>,
    ) -> Result<()> {
        for (i, batch) in per_subtask.into_iter().enumerate() {
            let mut shard = self.operator_shard(uid, state, i as u32)?;
            shard.write(&batch).await?;
            shard.finish().await?;
        }
        Ok(())
    }

    /// Writes the manifest, create-only, and returns it. Fails with [`Error::AlreadyExists`]
    /// when another writer committed first, and with [`Error::InvalidInput`] when a keyed
    /// state's shards do not cover the hash space exactly once.
    pub async fn commit(self) -> Result<Manifest> {
        let mut manifest = {
            let draft = self.draft()?;
            let extended = !draft.info.extensions.is_empty()
                || draft.operators.iter().any(|o| {
                    !o.extensions.is_empty() || o.states.iter().any(|s| !s.extensions.is_empty())
                });
            let incremental = draft
                .operators
                .iter()
                .flat_map(|o| o.states.iter().flat_map(|s| s.shards.iter()))
                .any(|s| s.sibling.is_some() || s.is_delta());
            let mut reader_features = Vec::new();
            if draft.lean {
                reader_features.push(rewind_format::LEAN_KEYED_SHARDS.to_string());
            }
            if incremental {
                reader_features.push(rewind_format::INCREMENTAL_CHECKPOINTS.to_string());
            }
            Manifest {
                // The oldest version that holds everything written, so that 1.0 readers
                // see 1.0 savepoints unless a 1.1 member or feature is used.
                version: if extended || !reader_features.is_empty() {
                    draft.info.min_version.max(FormatVersion::V1_1)
                } else {
                    draft.info.min_version
                },
                reader_features,
                writer_features: Vec::new(),
                id: draft.id.clone(),
                kind: draft.info.kind,
                created_at: humantime::format_rfc3339_millis(std::time::SystemTime::now())
                    .to_string(),
                writer: WriterInfo {
                    name: WRITER_NAME.to_string(),
                    version: WRITER_VERSION.to_string(),
                },
                job: draft.info.job.clone(),
                checkpoint_id: draft.info.checkpoint_id,
                lineage: draft.info.lineage.clone(),
                key_hash: KEY_HASH_ALGORITHM.to_string(),
                operators: draft.operators.clone(),
                extensions: draft.info.extensions.clone(),
            }
        };
        // Shards finish in any order; list them in hash or subtask order so the manifest
        // (and a full read) is the same whatever the timing.
        for state in manifest
            .operators
            .iter_mut()
            .flat_map(|o| o.states.iter_mut())
        {
            state
                .shards
                .sort_by_key(|s| (s.layer, s.hash_range, s.subtask));
        }
        let bytes = manifest.to_json();
        // Never write what a reader would refuse: parse our own output with the reader's rules.
        let checked = Manifest::from_json(&bytes)
            .map_err(|e| Error::Internal(format!("writer produced an invalid manifest: {e}")))?;
        if let Some(p) = checked.problems().first() {
            return Err(Error::InvalidInput(format!(
                "cannot commit: {}/{}: {}",
                p.operator, p.state, p.message
            )));
        }
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let path = self.location.child(MANIFEST_FILE);
        let bytes = bytes::Bytes::from(bytes);
        let result = self
            .location
            .store()
            .put_opts(&path, PutPayload::from(bytes.clone()), options)
            .await;
        match result {
            Ok(_) => Ok(checked),
            // The store may have applied a put whose reply was lost, or a retry of it found
            // the first attempt's manifest: if the manifest there is byte for byte ours (its
            // id is unique), the commit happened.
            Err(_) if self.manifest_is(&path, &bytes).await => Ok(checked),
            Err(object_store::Error::AlreadyExists { .. }) => Err(Error::AlreadyExists {
                location: self.location.to_string(),
            }),
            Err(e) => Err(Error::storage(self.location.describe(MANIFEST_FILE), e)),
        }
    }

    /// Whether the object at `path` holds exactly `bytes`.
    async fn manifest_is(&self, path: &object_store::path::Path, bytes: &[u8]) -> bool {
        match self.location.store().get(path).await {
            Ok(found) => found.bytes().await.is_ok_and(|b| b.as_ref() == bytes),
            Err(_) => false,
        }
    }
}

fn operator_mut<'a>(draft: &'a mut Draft, uid: &str) -> Result<&'a mut OperatorEntry> {
    draft
        .operators
        .iter_mut()
        .find(|o| o.uid == uid)
        .ok_or_else(|| Error::InvalidInput(format!("operator {uid:?} was not declared")))
}

fn lock(m: &Mutex<Draft>) -> Result<MutexGuard<'_, Draft>> {
    m.lock()
        .map_err(|_| Error::Internal("a shard writer panicked while holding the draft".into()))
}
