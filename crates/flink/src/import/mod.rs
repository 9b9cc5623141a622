//! Importing a canonical Flink savepoint into a Rewind savepoint: keyed value, list and
//! map state and timers become typed columns under the same uid and state name, keyed by
//! Rewind's key hash; operator state is carried as binary elements. What Flink needs to
//! write the savepoint back (operator ids, serializer snapshots, coordinator and master
//! state) is kept in the manifest's `flink` extension (see [`crate::extension`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use rewind_savepoint::format::{Redistribution, check_name};
use rewind_savepoint::{Location, SavepointInfo, SavepointWriter, StateSpec, WriterOptions};

mod operator_state;

use crate::bytes::Reader;
use crate::extension::{
    self, Blob, FlinkState, OperatorRecord, RECORD_VERSION, SavepointRecord, StateRecord,
};
use crate::keyed::{self, Header, Kind};
use crate::metadata::{Distribution, KeyedHandle, Operator};
use crate::{FlinkError, FlinkSavepoint};
use operator_state::operator_lists;

/// How to import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Import what can be decoded and record the rest as skipped, instead of failing.
    pub skip_undecodable: bool,
}

/// What an import wrote and skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// (uid, state, kind, rows) of every state written.
    pub states: Vec<(String, String, String, u64)>,
    /// (uid, state, serializer class, why) of every state not imported.
    pub skipped: Vec<(String, String, String, String)>,
    /// The new savepoint's id.
    pub id: String,
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
/// displayed as `sp`'s own.
pub async fn import_in_memory(sp: &FlinkSavepoint) -> Result<Location, FlinkError> {
    let store: Arc<dyn object_store::ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let display = format!(
        "{} (Flink savepoint, read through the importer)",
        sp.location()
    );
    let at = Location::new(store, object_store::path::Path::from("import"), display);
    import(sp, at.clone(), &ImportOptions::default()).await?;
    Ok(at)
}

/// Writes `dest` from the canonical Flink savepoint `sp`.
pub async fn import(
    sp: &FlinkSavepoint,
    dest: Location,
    options: &ImportOptions,
) -> Result<ImportReport, FlinkError> {
    let m = sp.metadata();
    for op in &m.operators {
        for s in &op.subtasks {
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
    }
    let mut report = ImportReport::default();
    // Raw state (a `snapshotState` raw stream) has no serializer to decode it with: never
    // dropped silently.
    let raw = raw_state(m);
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
    for (uid, what) in raw {
        report.skipped.push((
            uid,
            what,
            String::new(),
            "raw state has no serializer".into(),
        ));
    }
    let mut operators = Vec::new();
    for op in &m.operators {
        operators.push(read_operator(sp, op, options, &mut report).await?);
    }
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
        "skipped": report.skipped.iter().map(|(u, s, c, why)| serde_json::json!({
            "operator": u, "state": s, "serializer": c, "reason": why
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
            master_states: m.master_state_bytes.iter().cloned().map(Blob).collect(),
        }),
    );
    // Format 1.1 already (extensions), so the lean layout costs old readers nothing more.
    let options = WriterOptions {
        lean_keyed_shards: true,
        ..WriterOptions::default()
    };
    let writer = SavepointWriter::create_with_options(dest, info, options).await?;
    for op in &operators {
        writer.add_operator(&op.uid, &op.name, op.parallelism)?;
        writer.set_operator_extension(&op.uid, extension::SYSTEM, extension::value(&op.record))?;
        for st in &op.keyed {
            writer.add_state(&op.uid, st.spec.clone())?;
        }
        for l in &op.lists {
            let mode = match l.mode {
                Distribution::Split => Redistribution::Split,
                Distribution::Union => Redistribution::Union,
                Distribution::Broadcast => Redistribution::Broadcast,
            };
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
                StateSpec::operator_list(&l.name, DataType::Binary, mode)
                    .with_extension(extension::SYSTEM, extension::value(&record)),
            )?;
        }
    }
    for op in operators {
        for st in op.keyed {
            report.states.push((
                op.uid.clone(),
                st.spec.name().to_string(),
                st.flink_kind,
                st.batch.num_rows() as u64,
            ));
            writer
                .write_keyed(&op.uid, st.spec.name(), vec![st.batch])
                .await?;
        }
        for l in op.lists {
            let rows: usize = l.per_subtask.iter().map(RecordBatch::num_rows).sum();
            report.states.push((
                op.uid.clone(),
                l.name.clone(),
                l.mode.as_str().to_string(),
                rows as u64,
            ));
            writer
                .write_operator_list(&op.uid, &l.name, l.per_subtask)
                .await?;
        }
    }
    report.id = writer.commit().await?.id;
    Ok(report)
}

/// (uid, what) of every subtask's raw operator or keyed state.
fn raw_state(m: &crate::Metadata) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for op in &m.operators {
        let uid = rewind_name(op.uid.as_deref().unwrap_or(&op.id));
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
    let uid = rewind_name(op.uid.as_deref().unwrap_or(&op.id));
    check_name("operator uid", &uid).map_err(|e| unsupported(sp, e))?;
    let mut imported = ImportedOperator {
        uid: uid.clone(),
        name: op.name.clone().unwrap_or_else(|| uid.clone()),
        parallelism: u32::try_from(op.parallelism.max(1)).unwrap_or(1),
        record: OperatorRecord {
            version: RECORD_VERSION,
            rewind_uid: uid.clone(),
            operator_id: op.id.clone(),
            uid: op.uid.clone(),
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
    // Keyed state: every subtask's entries decoded into one set of columns per state.
    let prefix_len = crate::export::hashing::prefix_len(op.max_parallelism);
    let mut states = States::default();
    let first = first_keyed(op);
    for s in &op.subtasks {
        let Some(KeyedHandle::Savepoint(groups)) = &s.keyed_state else {
            continue;
        };
        let bytes = sp.read(&groups.delegate).await?;
        let file = sp.location().describe(&groups.delegate.describe());
        let corrupt = |e: crate::bytes::ParseError| FlinkError::Corrupt {
            path: file.clone(),
            offset: e.offset,
            message: e.message,
        };
        let header = keyed::header(&mut Reader::new(&bytes)).map_err(|e| {
            if e.message.starts_with("unknown serializer") {
                FlinkError::Unsupported {
                    path: file.clone(),
                    message: format!(
                        "operator {uid}: {} (its states cannot be listed)",
                        e.message
                    ),
                }
            } else {
                corrupt(e)
            }
        })?;
        // Compressed: each key group is its own Snappy stream; decoded into one plain
        // stream with new offsets.
        let plain;
        let (bytes, offsets) = if header.compression {
            plain = keyed::decompress_key_groups(&bytes, &groups.offsets).map_err(corrupt)?;
            (&plain.0[..], &plain.1[..])
        } else {
            (&bytes[..], &groups.offsets[..])
        };
        if imported.record.key_serializer.is_none() {
            imported.record.key_serializer = Some(Blob(header.key_raw.clone()));
        }
        let targets = states.targets(&uid, &header, options, report, s.index == first)?;
        keyed::entries(
            bytes,
            &header,
            (groups.first, offsets),
            prefix_len,
            &targets,
            &mut states.columns,
        )
        .map_err(corrupt)?;
    }
    let mut kept_groups: Vec<(ArrayRef, Vec<i32>)> = Vec::new();
    for ((meta, mut columns), flink) in states
        .metas
        .into_iter()
        .zip(states.columns)
        .zip(states.flink)
    {
        let groups = columns.groups.take();
        let name = match meta.kind {
            Some(Kind::Timers) => format!("timers-{}", timer_service(&meta.name).1),
            _ => meta.name.clone(),
        };
        let name = rewind_name(&name);
        let mut state = keyed_state(&name, &meta, columns)
            .map_err(|e| unsupported(sp, format!("{uid}/{name}: {e}")))?;
        if let Some(groups) = groups {
            kept_groups.push((state.batch.column(0).clone(), groups));
        }
        let entry = state.spec.to_entry()?;
        let record = StateRecord {
            version: RECORD_VERSION,
            rewind_name: name.clone(),
            types: StateRecord::types_of(&entry),
            states: flink,
            role: None,
        };
        state.spec = state
            .spec
            .with_extension(extension::SYSTEM, extension::value(&record));
        imported.keyed.push(state);
    }
    if !kept_groups.is_empty() {
        let state = key_groups_state(&kept_groups)
            .map_err(|e| unsupported(sp, format!("{uid}/{KEY_GROUPS_STATE}: {e}")))?;
        imported.keyed.push(state);
    }
    let (lists, header) = operator_lists(sp, op).await?;
    imported.lists = lists;
    imported.record.operator_state_header = header.map(Blob);
    Ok(imported)
}

fn first_keyed(op: &Operator) -> i32 {
    op.subtasks
        .iter()
        .find(|s| s.keyed_state.is_some())
        .map_or(0, |s| s.index)
}

/// The state that keeps each key's Flink key group for keys whose Java `hashCode` Rewind
/// cannot compute (spec: "The `flink` extension").
pub(crate) const KEY_GROUPS_STATE: &str = "flink-key-groups";

/// A value state from each distinct key to its key group, over every state of an operator.
fn key_groups_state(kept: &[(ArrayRef, Vec<i32>)]) -> Result<KeyedState, String> {
    let mut seen = std::collections::HashSet::new();
    let mut keys: Vec<ArrayRef> = Vec::new();
    let mut groups: Vec<i32> = Vec::new();
    for (array, rows) in kept {
        let hashes =
            rewind_savepoint::format::hash_keys(array.as_ref()).map_err(|e| e.to_string())?;
        let mut take = Vec::new();
        for (row, hash) in hashes.into_iter().enumerate() {
            if seen.insert(hash) {
                take.push(row as u32);
                groups.push(*rows.get(row).ok_or("a row without a key group")?);
            }
        }
        let indices = arrow_array::UInt32Array::from(take);
        keys.push(
            arrow_select::take::take(array.as_ref(), &indices, None).map_err(|e| e.to_string())?,
        );
    }
    let refs: Vec<&dyn arrow_array::Array> = keys.iter().map(|a| a.as_ref()).collect();
    let key = arrow_select::concat::concat(&refs).map_err(|e| e.to_string())?;
    let key_dt = key.data_type().clone();
    let value: ArrayRef = Arc::new(arrow_array::Int32Array::from(groups));
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("key", key_dt.clone(), false),
            Field::new("value", DataType::Int32, true),
        ])),
        vec![key, value],
    )
    .map_err(|e| e.to_string())?;
    let spec = StateSpec::value(KEY_GROUPS_STATE, key_dt, DataType::Int32);
    let entry = spec.to_entry().map_err(|e| e.to_string())?;
    let record = StateRecord {
        version: RECORD_VERSION,
        rewind_name: KEY_GROUPS_STATE.into(),
        types: StateRecord::types_of(&entry),
        states: Vec::new(),
        role: Some("key_groups".into()),
    };
    Ok(KeyedState {
        spec: spec.with_extension(extension::SYSTEM, extension::value(&record)),
        flink_kind: "key groups".into(),
        batch,
    })
}

/// `_timer_state/event_<service>` and `..._processing_<service>`: the domain as the spec
/// names it (`event_time`, `processing_time`) and the service. Rewind keeps one timers
/// state per service, with the domain in a column.
fn timer_service(name: &str) -> (&'static str, &str) {
    let rest = name.strip_prefix("_timer_state/").unwrap_or(name);
    match rest.split_once('_') {
        Some(("event", s)) => ("event_time", s),
        Some(("processing", s)) => ("processing_time", s),
        _ => ("event_time", rest),
    }
}

/// The keyed states of one operator being decoded: the first header entry seen for each
/// and its columns, which every subtask appends to.
#[derive(Default)]
struct States {
    slots: BTreeMap<String, usize>,
    metas: Vec<keyed::StateMeta>,
    columns: Vec<keyed::StateColumns>,
    /// Per slot, the Flink states it holds (a timer service has two).
    flink: Vec<Vec<FlinkState>>,
}

impl States {
    /// Where each state of a subtask's `header` goes. States that cannot be decoded are
    /// reported once (from the first subtask) and fail the import unless skipping was
    /// asked for.
    fn targets(
        &mut self,
        uid: &str,
        header: &Header,
        options: &ImportOptions,
        report: &mut ImportReport,
        first: bool,
    ) -> Result<Vec<keyed::Target>, FlinkError> {
        let mut targets = Vec::with_capacity(header.states.len());
        let mut problems = Vec::new();
        for (order, meta) in header.states.iter().enumerate() {
            let flink_state = FlinkState {
                name: meta.name.clone(),
                meta: Some(Blob(meta.raw.clone())),
                domain: (meta.kind == Some(Kind::Timers))
                    .then(|| timer_service(&meta.name).0.to_string()),
                order: u32::try_from(order).unwrap_or(u32::MAX),
            };
            let (domain, slot_name) = match meta.kind {
                Some(Kind::Timers) => {
                    let (domain, service) = timer_service(&meta.name);
                    (domain, format!("\0timers/{service}"))
                }
                _ => ("", meta.name.clone()),
            };
            if let Some(&slot) = self.slots.get(&slot_name) {
                let seen = &self.metas[slot];
                let ty = |m: &keyed::StateMeta| {
                    (
                        m.kind,
                        m.namespace.as_ref().map(|s| s.ty.clone()),
                        m.value.as_ref().map(|s| s.ty.clone()),
                    )
                };
                if ty(seen) != ty(meta) {
                    return Err(FlinkError::Unsupported {
                        path: uid.to_string(),
                        message: format!(
                            "state {} has different serializers in different subtasks",
                            meta.name
                        ),
                    });
                }
                if let Some(known) = self.flink.get_mut(slot) {
                    if !known.iter().any(|f| f.name == flink_state.name) {
                        known.push(flink_state);
                    }
                }
                targets.push(Some((slot, domain)));
                continue;
            }
            match keyed::StateColumns::new(&header.key.ty, meta) {
                Ok(mut columns) => {
                    // Keys whose Java hashCode is user code: keep each row's key group.
                    if crate::export::hashing::check_hashable(&header.key.ty).is_err() {
                        columns.groups = Some(Vec::new());
                    }
                    self.slots.insert(slot_name, self.columns.len());
                    targets.push(Some((self.columns.len(), domain)));
                    self.metas.push(meta.clone());
                    self.columns.push(columns);
                    self.flink.push(vec![flink_state]);
                }
                Err(why) => {
                    targets.push(None);
                    let class = meta.value.as_ref().map(|s| s.class.clone());
                    problems.push((
                        uid.to_string(),
                        meta.name.clone(),
                        class.unwrap_or_default(),
                        why,
                    ));
                }
            }
        }
        if !problems.is_empty() && !options.skip_undecodable {
            let list: Vec<String> = problems
                .iter()
                .map(|(u, s, c, why)| format!("{u}/{s} ({c}): {why}"))
                .collect();
            return Err(FlinkError::Unsupported {
                path: uid.to_string(),
                message: format!(
                    "state that cannot be decoded (import the rest with --skip-undecodable): {}",
                    list.join("; ")
                ),
            });
        }
        if first {
            report.skipped.extend(problems);
        }
        Ok(targets)
    }
}

/// The batch and spec of one decoded state.
fn keyed_state(
    name: &str,
    meta: &keyed::StateMeta,
    columns: keyed::StateColumns,
) -> Result<KeyedState, String> {
    let key = columns.key.finish()?;
    let key_dt = key.data_type().clone();
    let mut fields = vec![Field::new("key", key_dt.clone(), false)];
    let mut arrays = vec![key];
    let namespace = columns.namespace.map(|c| c.finish()).transpose()?;
    if let Some(ns) = namespace.clone() {
        fields.push(Field::new("namespace", ns.data_type().clone(), false));
        arrays.push(ns);
    }
    let value = columns.value.finish()?;
    let mut spec = match (meta.kind, columns.user_key) {
        (Some(Kind::Timers), _) => {
            let domain = columns
                .domain
                .map(|mut d| d.finish())
                .ok_or("no time domains")?;
            fields.push(Field::new("domain", DataType::Utf8, false));
            arrays.push(Arc::new(domain));
            fields.push(Field::new("timestamp", DataType::Int64, false));
            arrays.push(value);
            StateSpec::timers(name, key_dt)
        }
        (Some(Kind::Map), Some(user_key)) => {
            let user_key = user_key.finish()?;
            let spec = StateSpec::map(
                name,
                key_dt,
                user_key.data_type().clone(),
                value.data_type().clone(),
            );
            fields.push(Field::new("user_key", user_key.data_type().clone(), false));
            arrays.push(user_key);
            fields.push(Field::new("value", value.data_type().clone(), true));
            arrays.push(value);
            spec
        }
        (Some(Kind::List), _) => {
            let DataType::List(item) = value.data_type() else {
                return Err("list state without a list column".into());
            };
            let spec = StateSpec::list(name, key_dt, item.data_type().clone());
            fields.push(Field::new("value", value.data_type().clone(), true));
            arrays.push(value);
            spec
        }
        _ => {
            let spec = StateSpec::value(name, key_dt, value.data_type().clone());
            fields.push(Field::new("value", value.data_type().clone(), true));
            arrays.push(value);
            spec
        }
    };
    if let Some(ns) = namespace {
        spec = spec.with_namespace(ns.data_type().clone());
    }
    let batch =
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|e| e.to_string())?;
    Ok(KeyedState {
        spec,
        flink_kind: match meta.kind {
            Some(Kind::Timers) => "timers".into(),
            _ => meta.flink_kind.to_lowercase(),
        },
        batch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyed::StateMeta;
    use crate::serializers::{Snapshot, Ty};

    fn header() -> Header {
        let snap = |class: &str, ty: Ty| Snapshot {
            class: class.into(),
            ty,
        };
        let state = |name: &str, value: Snapshot| StateMeta {
            name: name.into(),
            flink_kind: "VALUE".into(),
            kind: Some(Kind::Value),
            namespace: Some(snap("void", Ty::Void)),
            value: Some(value),
            raw: Vec::new(),
        };
        Header {
            compression: false,
            key: snap("long", Ty::I64),
            key_raw: Vec::new(),
            states: vec![
                state("count", snap("long", Ty::I64)),
                state(
                    "blob",
                    snap(
                        "org.example.KryoSerializerSnapshot",
                        Ty::Opaque("kryo".into()),
                    ),
                ),
            ],
        }
    }

    #[test]
    fn raw_state_is_listed_never_dropped_silently() {
        let bytes = include_bytes!(
            "../../../../fixtures/flink/java-hashmap-canonical-n100000/savepoint-d4c30c-92ca55030761/_metadata"
        );
        let mut m = crate::metadata::parse(bytes).unwrap();
        assert!(raw_state(&m).is_empty());
        let op = m
            .operators
            .iter_mut()
            .find(|o| o.uid.as_deref() == Some("counter"))
            .unwrap();
        op.subtasks[1].raw_operator_state =
            op.subtasks[0]
                .operator_state
                .clone()
                .or(Some(crate::OperatorStateHandle {
                    states: Vec::new(),
                    delegate: crate::StreamHandle::EmptySegment,
                }));
        assert_eq!(
            raw_state(&m),
            vec![(
                "counter".to_string(),
                "raw operator state of subtask 1".to_string()
            )]
        );
    }

    #[test]
    fn undecodable_state_fails_unless_skipped_and_is_recorded() {
        let mut report = ImportReport::default();
        let strict = States::default().targets(
            "op",
            &header(),
            &ImportOptions::default(),
            &mut report,
            true,
        );
        let message = strict.unwrap_err().to_string();
        assert!(
            message.contains(
                "op/blob (org.example.KryoSerializerSnapshot): values of kryo need the JVM"
            ),
            "{message}"
        );
        let skip = ImportOptions {
            skip_undecodable: true,
        };
        let which = States::default()
            .targets("op", &header(), &skip, &mut report, true)
            .unwrap();
        assert_eq!(which, vec![Some((0, "")), None]);
        assert_eq!(report.skipped.len(), 1);
        assert_eq!(report.skipped[0].1, "blob");
    }
}
