//! Importing a canonical Flink savepoint into a Rewind savepoint: keyed value, list and
//! map state and timers become typed columns under the same uid and state name, keyed by
//! Rewind's key hash; operator state is carried as binary elements. What Flink needs to
//! write the savepoint back (operator ids, serializer snapshots, coordinator and master
//! state) is kept in the manifest's `flink` extension (see [`crate::extension`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::DataType;
use rewind_savepoint::format::check_name;
use rewind_savepoint::{Location, SavepointInfo, SavepointWriter, StateSpec, WriterOptions};

mod keyed_states;
mod operator_state;

use crate::error::FlinkError;
use crate::extension::{
    self, Blob, FlinkState, OperatorRecord, RECORD_VERSION, SavepointRecord, StateRecord,
};
use crate::metadata::{Distribution, KeyedHandle, Operator};
use crate::savepoint::FlinkSavepoint;
use keyed_states::read_keyed;
use operator_state::operator_lists;

/// How to import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Import what can be decoded and record the rest as skipped, instead of failing.
    pub skip_undecodable: bool,
    /// Uids of the job's operators. A savepoint of Flink 1.x records only operator ids
    /// (Flink's hash of each uid): an operator whose id is the hash of one of these is
    /// imported under that uid, and the uid is kept for the export. Uids that name no
    /// operator are ignored.
    pub uids: Vec<String>,
}

/// What an import wrote and skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Every state written.
    pub states: Vec<ImportedState>,
    /// Every state not imported (with `skip_undecodable`).
    pub skipped: Vec<SkippedState>,
    /// The new savepoint's id.
    pub id: String,
}

/// A state an import wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportedState {
    /// The Rewind operator uid.
    pub uid: String,
    /// The Rewind state name.
    pub state: String,
    /// Flink's kind of state (`VALUE`, `LIST`, `MAP`, `PRIORITY_QUEUE`, ...), or the
    /// redistribution of an operator list (`split`, `union`, `broadcast`).
    pub kind: String,
    /// Rows written.
    pub rows: u64,
}

/// A state an import left out, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkippedState {
    /// The Rewind operator uid.
    pub uid: String,
    /// The state (or what raw state it is).
    pub state: String,
    /// The serializer class that could not be decoded (empty for raw state).
    pub serializer: String,
    /// Why it was left out.
    pub reason: String,
}

/// A Flink name as a Rewind uid or state name: characters Rewind does not allow become `_`.
fn rewind_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with('.') || out.is_empty() {
        out.insert(0, '_');
    }
    out
}

fn unsupported(sp: &FlinkSavepoint, message: String) -> FlinkError {
    FlinkError::Unsupported {
        path: sp.location().to_string(),
        message,
    }
}

/// Imports `sp` into a store in this process's memory, so that any Rewind reader can read
/// a Flink savepoint with nothing written: the returned location holds the import and is
/// displayed as `sp`'s own. `uids` as in [`ImportOptions::uids`].
pub async fn import_in_memory(
    sp: &FlinkSavepoint,
    uids: &[String],
) -> Result<Location, FlinkError> {
    let store: Arc<dyn object_store::ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let display = format!(
        "{} (Flink savepoint, read through the importer)",
        sp.location()
    );
    let at = Location::new(store, object_store::path::Path::from("import"), display);
    let options = ImportOptions {
        uids: uids.to_vec(),
        ..ImportOptions::default()
    };
    import(sp, at.clone(), &options).await?;
    Ok(at)
}

/// Whether `at` is a Flink savepoint (a directory with `_metadata`, or the file itself);
/// a Rewind manifest wins when both are present.
pub async fn is_flink_savepoint(at: &Location) -> bool {
    use object_store::ObjectStoreExt;
    let is_rewind = at
        .store()
        .head(&at.child(rewind_savepoint::format::MANIFEST_FILE))
        .await
        .is_ok();
    !is_rewind && crate::looks_like_flink(at).await
}

/// Where a Rewind reader can read the savepoint at `at`: `at` itself when it is a Rewind
/// savepoint, or, for a canonical Flink savepoint, its import in memory
/// ([`import_in_memory`], nothing written). Every reading tool opens savepoints this way.
pub async fn readable_location(at: Location, uids: &[String]) -> Result<Location, FlinkError> {
    if is_flink_savepoint(&at).await {
        let sp = FlinkSavepoint::open(at).await?;
        return import_in_memory(&sp, uids).await;
    }
    Ok(at)
}

/// Writes `dest` from the canonical Flink savepoint `sp`.
pub async fn import(
    sp: &FlinkSavepoint,
    dest: Location,
    options: &ImportOptions,
) -> Result<ImportReport, FlinkError> {
    refuse_non_canonical(sp)?;
    let mut report = ImportReport {
        skipped: raw_state(sp, options)?,
        ..ImportReport::default()
    };
    let mut operators = Vec::new();
    for op in &sp.metadata().operators {
        operators.push(read_operator(sp, op, options, &mut report).await?);
    }
    let info = savepoint_info(sp, &operators, &report);
    // Format 1.1 already (extensions), so the lean layout costs old readers nothing more.
    let writer_options = WriterOptions {
        lean_keyed_shards: true,
        ..WriterOptions::default()
    };
    let writer = SavepointWriter::create_with_options(dest, info, writer_options).await?;
    declare(&writer, &operators)?;
    report.states = write_states(&writer, operators).await?;
    report.id = writer.commit().await?.id;
    Ok(report)
}

/// Native savepoints and checkpoints hold RocksDB's or a changelog's files, not the
/// canonical stream.
fn refuse_non_canonical(sp: &FlinkSavepoint) -> Result<(), FlinkError> {
    for s in sp.metadata().operators.iter().flat_map(|op| &op.subtasks) {
        match &s.keyed_state {
            Some(KeyedHandle::Incremental { .. }) => {
                return Err(unsupported(sp, "a native savepoint (RocksDB's own files): only canonical savepoints can be imported; take one with `flink savepoint --type canonical`".into()));
            }
            Some(KeyedHandle::Checkpoint(_) | KeyedHandle::Changelog { .. }) => {
                return Err(unsupported(sp, "a checkpoint, not a canonical savepoint: take one with `flink savepoint --type canonical`".into()));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Raw state (a `snapshotState` raw stream) has no serializer to decode it with: refused,
/// or with `skip_undecodable` reported as skipped; never dropped silently.
fn raw_state(
    sp: &FlinkSavepoint,
    options: &ImportOptions,
) -> Result<Vec<SkippedState>, FlinkError> {
    let raw = raw_states(sp.metadata(), &options.uids);
    if !raw.is_empty() && !options.skip_undecodable {
        return Err(unsupported(
            sp,
            format!(
                "raw state cannot be imported (its bytes have no serializer): {}; import the rest with --skip-undecodable",
                raw.iter()
                    .map(|(uid, what)| format!("{uid}: {what}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ));
    }
    Ok(raw
        .into_iter()
        .map(|(uid, state)| SkippedState {
            uid,
            state,
            serializer: String::new(),
            reason: "raw state has no serializer".into(),
        })
        .collect())
}

/// The new savepoint's job, lineage (where it came from, what was skipped) and the `flink`
/// extension an export needs to write the savepoint back.
fn savepoint_info(
    sp: &FlinkSavepoint,
    operators: &[ImportedOperator],
    report: &ImportReport,
) -> SavepointInfo {
    let m = sp.metadata();
    let job = sp
        .location()
        .root()
        .as_ref()
        .rsplit('/')
        .next()
        .map(rewind_name)
        .unwrap_or_else(|| "flink-import".into());
    let mut info = SavepointInfo::new(&job, "import");
    info.checkpoint_id = u64::try_from(m.checkpoint_id).unwrap_or(0);
    let serializers: BTreeMap<String, String> = operators
        .iter()
        .flat_map(|o| {
            o.lists
                .iter()
                .map(move |l| (format!("{}/{}", o.uid, l.name), l.serializer.clone()))
        })
        .collect();
    info.lineage.parameters = Some(serde_json::json!({
        "source": "apache-flink",
        "location": sp.location().to_string(),
        "metadata_version": m.version,
        "format": m.format_type,
        "operator_state_serializers": serializers,
        "skipped": report.skipped.iter().map(|s| serde_json::json!({
            "operator": s.uid, "state": s.state, "serializer": s.serializer, "reason": s.reason
        })).collect::<Vec<_>>(),
        "note": "keyed state re-partitioned by Rewind's key hash; `rewind export-flink` writes Flink's key groups back",
    }));
    info.extensions.insert(
        extension::SYSTEM.into(),
        extension::value(&SavepointRecord {
            version: RECORD_VERSION,
            metadata_version: m.version,
            checkpoint_id: m.checkpoint_id,
            properties: Blob(m.properties.clone()),
            master_states: m
                .master_states
                .iter()
                .map(|s| Blob(s.bytes.clone()))
                .collect(),
        }),
    );
    info
}

/// Every operator and state, with what an export needs of each, before any rows.
fn declare(writer: &SavepointWriter, operators: &[ImportedOperator]) -> Result<(), FlinkError> {
    for op in operators {
        writer.add_operator(&op.uid, &op.name, op.parallelism)?;
        writer.set_operator_extension(&op.uid, extension::SYSTEM, extension::value(&op.record))?;
        for st in &op.keyed {
            writer.add_state(&op.uid, st.spec.clone())?;
        }
        for l in &op.lists {
            let record = StateRecord {
                version: RECORD_VERSION,
                rewind_name: l.name.clone(),
                types: vec![None, None, None, Some("binary".into())],
                role: None,
                states: vec![FlinkState {
                    name: l.flink_name.clone(),
                    meta: None,
                    domain: None,
                    order: 0,
                }],
            };
            writer.add_state(
                &op.uid,
                StateSpec::operator_list(&l.name, DataType::Binary, l.mode.into())
                    .with_extension(extension::SYSTEM, extension::value(&record)),
            )?;
        }
    }
    Ok(())
}

/// Every state's rows; what was written, state by state.
async fn write_states(
    writer: &SavepointWriter,
    operators: Vec<ImportedOperator>,
) -> Result<Vec<ImportedState>, FlinkError> {
    let mut written = Vec::new();
    for op in operators {
        for st in op.keyed {
            written.push(ImportedState {
                uid: op.uid.clone(),
                state: st.spec.name().to_string(),
                kind: st.flink_kind,
                rows: st.batch.num_rows() as u64,
            });
            writer
                .write_keyed(&op.uid, st.spec.name(), vec![st.batch])
                .await?;
        }
        for l in op.lists {
            let rows: usize = l.per_subtask.iter().map(RecordBatch::num_rows).sum();
            written.push(ImportedState {
                uid: op.uid.clone(),
                state: l.name.clone(),
                kind: l.mode.as_str().to_string(),
                rows: rows as u64,
            });
            writer
                .write_operator_list(&op.uid, &l.name, l.per_subtask)
                .await?;
        }
    }
    Ok(written)
}

/// `op`'s Flink uid: the one it records, else the given uid whose hash is its id.
fn flink_uid(op: &Operator, uids: &[String]) -> Option<String> {
    op.uid
        .clone()
        .or_else(|| uids.iter().find(|u| op.is_named_by(u)).cloned())
}

/// `op`'s name in Rewind: its Flink uid, else its operator id.
fn rewind_uid(op: &Operator, uids: &[String]) -> String {
    rewind_name(flink_uid(op, uids).as_deref().unwrap_or(&op.id))
}

/// (uid, what) of every subtask's raw operator or keyed state.
fn raw_states(m: &crate::metadata::Metadata, uids: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for op in &m.operators {
        let uid = rewind_uid(op, uids);
        for s in &op.subtasks {
            if s.raw_operator_state.is_some() {
                out.push((
                    uid.clone(),
                    format!("raw operator state of subtask {}", s.index),
                ));
            }
            if s.raw_keyed_state.is_some() {
                out.push((
                    uid.clone(),
                    format!("raw keyed state of subtask {}", s.index),
                ));
            }
        }
    }
    out
}

struct ImportedOperator {
    uid: String,
    name: String,
    parallelism: u32,
    record: OperatorRecord,
    keyed: Vec<KeyedState>,
    lists: Vec<ListState>,
}

struct KeyedState {
    spec: StateSpec,
    flink_kind: String,
    batch: RecordBatch,
}

struct ListState {
    name: String,
    flink_name: String,
    mode: Distribution,
    serializer: String,
    per_subtask: Vec<RecordBatch>,
}

async fn read_operator(
    sp: &FlinkSavepoint,
    op: &Operator,
    options: &ImportOptions,
    report: &mut ImportReport,
) -> Result<ImportedOperator, FlinkError> {
    let flink_uid = flink_uid(op, &options.uids);
    let uid = rewind_name(flink_uid.as_deref().unwrap_or(&op.id));
    check_name("operator uid", &uid).map_err(|e| unsupported(sp, e))?;
    let mut imported = ImportedOperator {
        uid: uid.clone(),
        name: op.name.clone().unwrap_or_else(|| uid.clone()),
        parallelism: u32::try_from(op.parallelism.max(1)).unwrap_or(1),
        record: OperatorRecord {
            version: RECORD_VERSION,
            rewind_uid: uid.clone(),
            operator_id: op.id.clone(),
            uid: flink_uid,
            name: op.name.clone(),
            max_parallelism: op.max_parallelism,
            coordinator_state: match &op.coordinator_state {
                None => None,
                Some(h) => Some(Blob(sp.read(h).await?.to_vec())),
            },
            operator_state_header: None,
            key_serializer: None,
            finished: op.fully_finished,
            finished_subtasks: op
                .subtasks
                .iter()
                .filter(|s| s.finished)
                .map(|s| s.index)
                .collect(),
        },
        keyed: Vec::new(),
        lists: Vec::new(),
    };
    let (keyed, key_serializer) = read_keyed(sp, op, &uid, options, report).await?;
    imported.keyed = keyed;
    imported.record.key_serializer = key_serializer.map(Blob);
    let (lists, header) = operator_lists(sp, op).await?;
    imported.lists = lists;
    imported.record.operator_state_header = header.map(Blob);
    Ok(imported)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_state_is_listed_never_dropped_silently() {
        let bytes = include_bytes!(
            "../../../../fixtures/flink/java-hashmap-canonical-n100000/savepoint-d4c30c-92ca55030761/_metadata"
        );
        let mut m = crate::metadata::parse(bytes).unwrap();
        assert!(raw_states(&m, &[]).is_empty());
        let op = m
            .operators
            .iter_mut()
            .find(|o| o.uid.as_deref() == Some("counter"))
            .unwrap();
        op.subtasks[1].raw_operator_state =
            op.subtasks[0]
                .operator_state
                .clone()
                .or(Some(crate::metadata::OperatorStateHandle {
                    states: Vec::new(),
                    delegate: crate::metadata::StreamHandle::EmptySegment,
                }));
        assert_eq!(
            raw_states(&m, &[]),
            vec![(
                "counter".to_string(),
                "raw operator state of subtask 1".to_string()
            )]
        );
    }
}
