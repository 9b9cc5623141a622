//! Keyed state of a Flink savepoint: every subtask's key groups decoded into one set of
//! typed columns per state (timers of one service together), with the header entries an
//! export needs to write them back.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use rewind_savepoint::StateSpec;

use super::{ImportOptions, ImportReport, KeyedState, SkippedState, rewind_name, unsupported};
use crate::error::FlinkError;
use crate::extension::{self, Blob, FlinkState, RECORD_VERSION, StateRecord};
use crate::java::Reader;
use crate::keyed::{self, Header, Kind};
use crate::metadata::{KeyedHandle, Operator};
use crate::placement::prefix_len;
use crate::savepoint::FlinkSavepoint;

/// Every keyed state of `op`, and the key serializer's snapshot as Flink wrote it.
pub(super) async fn read_keyed(
    sp: &FlinkSavepoint,
    op: &Operator,
    uid: &str,
    options: &ImportOptions,
    report: &mut ImportReport,
) -> Result<(Vec<KeyedState>, Option<Vec<u8>>), FlinkError> {
    let mut keyed = Vec::new();
    let mut key_serializer = None;
    let prefix_len = prefix_len(op.max_parallelism);
    let mut states = States::default();
    let first = first_keyed(op);
    for s in &op.subtasks {
        let Some(KeyedHandle::Savepoint(groups)) = &s.keyed_state else {
            continue;
        };
        let bytes = sp.read(&groups.delegate).await?;
        let file = sp.location().describe(&groups.delegate.describe());
        let corrupt = |e: crate::java::ParseError| FlinkError::Corrupt {
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
        if key_serializer.is_none() {
            key_serializer = Some(header.key_raw.clone());
        }
        let targets = states.targets(uid, &header, options, report, s.index == first)?;
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
        keyed.push(state);
    }
    if !kept_groups.is_empty() {
        let state = key_groups_state(&kept_groups)
            .map_err(|e| unsupported(sp, format!("{uid}/{KEY_GROUPS_STATE}: {e}")))?;
        keyed.push(state);
    }
    Ok((keyed, key_serializer))
}

fn first_keyed(op: &Operator) -> i32 {
    op.subtasks
        .iter()
        .find(|s| s.keyed_state.is_some())
        .map_or(0, |s| s.index)
}

/// The state that keeps each key's Flink key group for keys whose Java `hashCode` Rewind
/// cannot compute (spec: "The `flink` extension").
const KEY_GROUPS_STATE: &str = "flink-key-groups";

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
                    if crate::placement::check_hashable(&header.key.ty).is_err() {
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
                    problems.push(SkippedState {
                        uid: uid.to_string(),
                        state: meta.name.clone(),
                        serializer: class.unwrap_or_default(),
                        reason: why,
                    });
                }
            }
        }
        if !problems.is_empty() && !options.skip_undecodable {
            let list: Vec<String> = problems
                .iter()
                .map(|p| format!("{}/{} ({}): {}", p.uid, p.state, p.serializer, p.reason))
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
    use crate::snapshots::{Snapshot, Ty};

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
            ..ImportOptions::default()
        };
        let which = States::default()
            .targets("op", &header(), &skip, &mut report, true)
            .unwrap();
        assert_eq!(which, vec![Some((0, "")), None]);
        assert_eq!(report.skipped.len(), 1);
        assert_eq!(report.skipped[0].state, "blob");
    }
}
