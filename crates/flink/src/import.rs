//! Importing a canonical Flink savepoint into a Rewind savepoint: keyed value, list and
//! map state and timers become typed columns under the same uid and state name, keyed by
//! Rewind's key hash (Flink's key groups are not carried over); operator state is carried
//! as binary elements with its serializer named in the lineage.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use rewind_savepoint::format::{Redistribution, check_name};
use rewind_savepoint::{Location, SavepointInfo, SavepointWriter, StateSpec};

use crate::bytes::Reader;
use crate::keyed::{self, Entry, Header, Kind};
use crate::metadata::{Distribution, KeyedHandle, Operator};
use crate::serializers::{Ty, Val};
use crate::{FlinkError, FlinkSavepoint};

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
        "note": "keyed state re-partitioned by Rewind's key hash; Flink key groups not kept",
    }));
    let writer = SavepointWriter::create(dest, info).await?;
    for op in &operators {
        writer.add_operator(&op.uid, &op.name, op.parallelism)?;
        for st in &op.keyed {
            writer.add_state(&op.uid, st.spec.clone())?;
        }
        for l in &op.lists {
            let mode = match l.mode {
                Distribution::Split => Redistribution::Split,
                Distribution::Union => Redistribution::Union,
                Distribution::Broadcast => Redistribution::Broadcast,
            };
            writer.add_state(
                &op.uid,
                StateSpec::operator_list(&l.name, DataType::Binary, mode),
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

struct ImportedOperator {
    uid: String,
    name: String,
    parallelism: u32,
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
        keyed: Vec::new(),
        lists: Vec::new(),
    };
    // Keyed state: every subtask's entries, by state name.
    let prefix_len = if op.max_parallelism <= 128 { 1 } else { 2 };
    let mut by_state: BTreeMap<String, (keyed::StateMeta, Ty, Vec<Entry>)> = BTreeMap::new();
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
        if header.compression {
            return Err(FlinkError::Unsupported {
                path: file.clone(),
                message: "compressed keyed state (Snappy) is not supported yet".into(),
            });
        }
        let decodable = decodable(&uid, &header, options, report, s.index == first_keyed(op))?;
        let mut entries = Vec::new();
        keyed::entries(
            &bytes,
            &header,
            &groups.offsets,
            prefix_len,
            &decodable,
            &mut entries,
        )
        .map_err(corrupt)?;
        for (i, meta) in header.states.iter().enumerate() {
            if decodable[i] {
                by_state
                    .entry(meta.name.clone())
                    .or_insert_with(|| (meta.clone(), header.key.ty.clone(), Vec::new()));
            }
        }
        for e in entries {
            if let Some(meta) = header.states.get(e.state as usize) {
                if let Some(slot) = by_state.get_mut(&meta.name) {
                    slot.2.push(e);
                }
            }
        }
    }
    // Per timer service: key type, namespace type, (domain, timer) entries.
    type Service = (Ty, Option<Ty>, Vec<(String, Entry)>);
    let mut timers: BTreeMap<String, Service> = BTreeMap::new();
    for (name, (meta, key_ty, entries)) in by_state {
        if meta.kind == Some(Kind::Timers) {
            // `_timer_state/event_<service>` and `..._processing_<service>`: one Rewind
            // timers state per service, with the domain in a column.
            let rest = name.strip_prefix("_timer_state/").unwrap_or(&name);
            let (domain, service) = match rest.split_once('_') {
                Some(("event", s)) => ("event", s),
                Some(("processing", s)) => ("processing", s),
                _ => ("event", rest),
            };
            let ns = match meta.value.as_ref().map(|s| &s.ty) {
                Some(Ty::Timer(_, ns)) if **ns != Ty::Void => Some((**ns).clone()),
                _ => None,
            };
            let slot = timers
                .entry(service.to_string())
                .or_insert_with(|| (key_ty.clone(), ns, Vec::new()));
            slot.2
                .extend(entries.into_iter().map(|e| (domain.to_string(), e)));
            continue;
        }
        let state = keyed_state(&meta, &key_ty, &entries)
            .map_err(|e| unsupported(sp, format!("{uid}/{name}: {e}")))?;
        imported.keyed.push(state);
    }
    for (service, (key_ty, ns, entries)) in timers {
        let name = rewind_name(&format!("timers-{service}"));
        let state = timer_state(&name, &key_ty, ns.as_ref(), &entries)
            .map_err(|e| unsupported(sp, format!("{uid}/{name}: {e}")))?;
        imported.keyed.push(state);
    }
    imported.lists = operator_lists(sp, op).await?;
    Ok(imported)
}

fn first_keyed(op: &Operator) -> i32 {
    op.subtasks
        .iter()
        .find(|s| s.keyed_state.is_some())
        .map_or(0, |s| s.index)
}

/// Which states of the header can be decoded; the others are reported once (from the
/// first subtask) and fail the import unless skipping was asked for.
fn decodable(
    uid: &str,
    header: &Header,
    options: &ImportOptions,
    report: &mut ImportReport,
    first: bool,
) -> Result<Vec<bool>, FlinkError> {
    let mut out = Vec::with_capacity(header.states.len());
    let mut problems = Vec::new();
    let key_ok = header.key.ty.data_type();
    for meta in &header.states {
        let class = meta
            .value
            .as_ref()
            .map(|s| s.class.clone())
            .unwrap_or_default();
        let value_ok = match (meta.kind, meta.value.as_ref().map(|s| &s.ty)) {
            (None, _) => Err(format!("{} state is not imported", meta.flink_kind)),
            (Some(Kind::Timers), Some(Ty::Timer(k, n))) => k.data_type().and_then(|_| match **n {
                Ty::Void => Ok(DataType::Null),
                ref ns => ns.data_type(),
            }),
            (Some(_), Some(t)) => t.data_type(),
            (Some(_), None) => Err("no value serializer".into()),
        };
        let ns_ok = match meta.namespace.as_ref().map(|s| &s.ty) {
            None | Some(Ty::Void) => Ok(DataType::Null),
            Some(t) => t.data_type(),
        };
        match (key_ok.clone(), value_ok, ns_ok) {
            (Ok(_), Ok(_), Ok(_)) => out.push(true),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                out.push(false);
                problems.push((uid.to_string(), meta.name.clone(), class, e));
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
    Ok(out)
}

fn column(values: &[&Val], dt: &DataType) -> Result<ArrayRef, String> {
    crate::arrow::to_array(values, dt)
}

fn keyed_state(
    meta: &keyed::StateMeta,
    key_ty: &Ty,
    entries: &[Entry],
) -> Result<KeyedState, String> {
    let name = rewind_name(&meta.name);
    let key_dt = key_ty.data_type()?;
    let value_ty = meta
        .value
        .as_ref()
        .map(|s| &s.ty)
        .ok_or("no value serializer")?;
    let ns_dt = match meta.namespace.as_ref().map(|s| &s.ty) {
        None | Some(Ty::Void) => None,
        Some(t) => Some(t.data_type()?),
    };
    let (mut spec, value_dt) = match (meta.kind, value_ty) {
        (Some(Kind::List), Ty::List(item)) => {
            let item = item.data_type()?;
            let spec = StateSpec::list(&name, key_dt.clone(), item.clone());
            (
                spec,
                DataType::List(Arc::new(Field::new("item", item, true))),
            )
        }
        (Some(Kind::Map), Ty::Map(uk, v)) => {
            let v = v.data_type()?;
            (
                StateSpec::map(&name, key_dt.clone(), uk.data_type()?, v.clone()),
                v,
            )
        }
        _ => {
            let v = value_ty.data_type()?;
            (StateSpec::value(&name, key_dt.clone(), v.clone()), v)
        }
    };
    if let Some(ns) = &ns_dt {
        spec = spec.with_namespace(ns.clone());
    }
    let mut fields = vec![Field::new("key", key_dt.clone(), false)];
    let mut columns = vec![column(
        &entries.iter().map(|e| &e.key).collect::<Vec<_>>(),
        &key_dt,
    )?];
    if let Some(ns) = &ns_dt {
        fields.push(Field::new("namespace", ns.clone(), false));
        columns.push(column(
            &entries.iter().map(|e| &e.namespace).collect::<Vec<_>>(),
            ns,
        )?);
    }
    if let (Some(Kind::Map), Ty::Map(uk, _)) = (meta.kind, value_ty) {
        let uk = uk.data_type()?;
        fields.push(Field::new("user_key", uk.clone(), false));
        columns.push(column(
            &entries.iter().map(|e| &e.user_key).collect::<Vec<_>>(),
            &uk,
        )?);
    }
    let values = column(
        &entries.iter().map(|e| &e.value).collect::<Vec<_>>(),
        &value_dt,
    )?;
    fields.push(Field::new("value", values.data_type().clone(), true));
    columns.push(values);
    let batch =
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| e.to_string())?;
    Ok(KeyedState {
        spec,
        flink_kind: meta.flink_kind.to_lowercase(),
        batch,
    })
}

fn timer_state(
    name: &str,
    key_ty: &Ty,
    ns: Option<&Ty>,
    entries: &[(String, Entry)],
) -> Result<KeyedState, String> {
    let key_dt = key_ty.data_type()?;
    let mut spec = StateSpec::timers(name, key_dt.clone());
    let mut fields = vec![Field::new("key", key_dt.clone(), false)];
    let mut columns = vec![column(
        &entries.iter().map(|(_, e)| &e.key).collect::<Vec<_>>(),
        &key_dt,
    )?];
    if let Some(ns) = ns {
        let dt = ns.data_type()?;
        spec = spec.with_namespace(dt.clone());
        fields.push(Field::new("namespace", dt.clone(), false));
        columns.push(column(
            &entries
                .iter()
                .map(|(_, e)| &e.namespace)
                .collect::<Vec<_>>(),
            &dt,
        )?);
    }
    let domains: Vec<Val> = entries.iter().map(|(d, _)| Val::Str(d.clone())).collect();
    fields.push(Field::new("domain", DataType::Utf8, false));
    columns.push(column(
        &domains.iter().collect::<Vec<_>>(),
        &DataType::Utf8,
    )?);
    fields.push(Field::new("timestamp", DataType::Int64, false));
    columns.push(column(
        &entries.iter().map(|(_, e)| &e.value).collect::<Vec<_>>(),
        &DataType::Int64,
    )?);
    let batch =
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| e.to_string())?;
    Ok(KeyedState {
        spec,
        flink_kind: "timers".into(),
        batch,
    })
}

/// Operator list and broadcast state, element by element, as binary: each element's
/// bytes run from its offset to the next offset in the stream.
async fn operator_lists(sp: &FlinkSavepoint, op: &Operator) -> Result<Vec<ListState>, FlinkError> {
    let mut states: BTreeMap<String, ListState> = BTreeMap::new();
    let parallelism = op.parallelism.max(1) as usize;
    for s in &op.subtasks {
        let Some(h) = &s.operator_state else { continue };
        let bytes = sp.read(&h.delegate).await?;
        let serializers = operator_serializers(&bytes);
        let mut all: Vec<i64> = h
            .states
            .iter()
            .flat_map(|(_, _, o)| o.iter().copied())
            .collect();
        all.sort_unstable();
        for (name, mode, offsets) in &h.states {
            let entry = states.entry(name.clone()).or_insert_with(|| ListState {
                name: rewind_name(name),
                mode: *mode,
                serializer: serializers
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| "unknown".into()),
                per_subtask: vec![empty_binary(); parallelism],
            });
            let mut elements: Vec<Val> = Vec::with_capacity(offsets.len());
            for &o in offsets {
                let start = usize::try_from(o).unwrap_or(usize::MAX).min(bytes.len());
                let end = all.iter().find(|&&x| x > o).map_or(bytes.len(), |&x| {
                    usize::try_from(x).unwrap_or(bytes.len()).min(bytes.len())
                });
                elements.push(Val::Bytes(bytes[start..end.max(start)].to_vec()));
            }
            let refs: Vec<&Val> = elements.iter().collect();
            let values = column(&refs, &DataType::Binary).map_err(|e| unsupported(sp, e))?;
            let batch = RecordBatch::try_new(
                Arc::new(Schema::new(vec![Field::new(
                    "value",
                    DataType::Binary,
                    true,
                )])),
                vec![values],
            )
            .map_err(|e| unsupported(sp, e.to_string()))?;
            if let Some(slot) = entry.per_subtask.get_mut(s.index as usize) {
                *slot = batch;
            }
        }
    }
    Ok(states.into_values().collect())
}

fn empty_binary() -> RecordBatch {
    RecordBatch::new_empty(Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Binary,
        true,
    )])))
}

/// The element serializer class of each operator state, from the stream's header.
fn operator_serializers(bytes: &[u8]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut r = Reader::new(bytes);
    let parse =
        |r: &mut Reader<'_>, out: &mut BTreeMap<String, String>| -> crate::bytes::Parse<()> {
            let version = r.i32()?;
            if version >= 6 {
                r.bool()?;
            }
            for _ in 0..2 {
                let n = r.i16()?;
                for _ in 0..n.max(0) {
                    let name = r.utf()?;
                    r.i32()?;
                    let options = r.count(4, "options")?;
                    for _ in 0..options {
                        r.utf()?;
                        r.utf()?;
                    }
                    let serializers = r.count(6, "serializers")?;
                    for _ in 0..serializers {
                        let key = r.utf()?;
                        let s = crate::serializers::snapshot_proxy(r)?;
                        if key == "VALUE_SERIALIZER" {
                            out.insert(name.clone(), s.class);
                        }
                    }
                }
            }
            Ok(())
        };
    let _ = parse(&mut r, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyed::StateMeta;
    use crate::serializers::Snapshot;

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
        };
        Header {
            compression: false,
            key: snap("long", Ty::I64),
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
    fn undecodable_state_fails_unless_skipped_and_is_recorded() {
        let mut report = ImportReport::default();
        let strict = decodable(
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
        let which = decodable("op", &header(), &skip, &mut report, true).unwrap();
        assert_eq!(which, vec![true, false]);
        assert_eq!(report.skipped.len(), 1);
        assert_eq!(report.skipped[0].1, "blob");
    }
}
