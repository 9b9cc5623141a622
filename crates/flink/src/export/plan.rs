//! Everything an export will write, decided before anything is written: per operator its
//! Flink id, parallelism and max parallelism, and per state the header entry and the
//! encoding of its rows, kept from the import where it still describes the state and
//! generated from the Arrow types where not. Every refusal happens here.

use rewind_savepoint::format::{Redistribution, StateEntry, StateKind, parse_type, same_type};
use rewind_savepoint::{SavepointReader, StateSpec};

use super::{ExportOptions, invalid};
use crate::error::FlinkError;
use crate::extension::{self, OperatorRecord, SavepointRecord, StateRecord};
use crate::java::{Out, Reader};
use crate::keyed::{self, EntryKind, Kind, StateEncoding, state_meta_bytes};
use crate::placement::{MAX_MAX_PARALLELISM, check_hashable, operator_id};
use crate::snapshots::{Ty, namespace_ty_of, proxy, snapshot_proxy, ty_of};

/// The checkpoint properties of a canonical savepoint, as Flink 2.3 serializes them (Java
/// serialization of `CheckpointProperties`), for savepoints that did not come from Flink.
const CANONICAL_PROPERTIES: &[u8] = include_bytes!("canonical-savepoint-properties.bin");

/// Where a state's serializer snapshots come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Serializers {
    /// Flink's own, kept by the import.
    #[default]
    Kept,
    /// Generated from the Arrow types (state made or changed in Rewind).
    Generated,
}

impl Serializers {
    /// `kept` or `generated`.
    pub fn as_str(self) -> &'static str {
        match self {
            Serializers::Kept => "kept",
            Serializers::Generated => "generated",
        }
    }
}

pub(crate) struct Plan {
    pub checkpoint_id: i64,
    pub master_states: Vec<Vec<u8>>,
    pub properties: Vec<u8>,
    pub operators: Vec<OperatorPlan>,
}

pub(crate) struct OperatorPlan {
    pub uid: String,
    pub name: String,
    pub flink_uid: String,
    pub operator_id: String,
    pub parallelism: i32,
    pub max_parallelism: i32,
    pub coordinator: Option<Vec<u8>>,
    /// Every subtask had finished (kept only for an operator with no state).
    pub finished: bool,
    /// Subtasks that had finished (kept only at the same parallelism).
    pub finished_subtasks: Vec<i32>,
    pub keyed: Option<KeyedPlan>,
    pub lists: Option<ListsPlan>,
}

pub(crate) struct KeyedPlan {
    key_raw: Vec<u8>,
    /// The state that holds each key's key group, for keys whose Java `hashCode` Rewind
    /// cannot compute (kept by the import).
    pub key_groups: Option<String>,
    /// Header entries in state-id order.
    pub header: Vec<Vec<u8>>,
    pub states: Vec<KeyedStatePlan>,
}

impl KeyedPlan {
    /// The keyed-state header (`KeyedBackendSerializationProxy`).
    pub fn header_bytes(&self, compressed: bool) -> Result<Vec<u8>, String> {
        keyed::header_bytes(&self.key_raw, &self.header, compressed)
    }
}

pub(crate) struct KeyedStatePlan {
    pub name: String,
    pub flink_names: Vec<String>,
    pub encoding: StateEncoding,
    pub serializers: Serializers,
}

pub(crate) struct ListsPlan {
    pub header: Vec<u8>,
    pub states: Vec<ListPlan>,
}

pub(crate) struct ListPlan {
    pub name: String,
    pub flink_name: String,
    pub mode: Redistribution,
}

/// Flink's default max parallelism for an operator of `parallelism`.
fn default_max_parallelism(parallelism: i32) -> i32 {
    let wanted = (parallelism + parallelism / 2).max(1) as u32;
    (wanted.next_power_of_two() as i32).clamp(128, MAX_MAX_PARALLELISM)
}

pub(crate) fn plan(source: &SavepointReader, options: &ExportOptions) -> Result<Plan, FlinkError> {
    let m = source.manifest();
    let at = source.location().to_string();
    let record: Option<SavepointRecord> =
        extension::read(&m.extensions).map_err(|e| invalid(&at, e))?;
    if let Some(mp) = options.max_parallelism {
        if mp == 0 || mp > MAX_MAX_PARALLELISM as u32 {
            return Err(invalid(
                &at,
                format!("--max-parallelism {mp} is outside Flink's 1 to {MAX_MAX_PARALLELISM}"),
            ));
        }
    }
    for uid in options.operator_parallelism.keys() {
        if m.operator(uid).is_none() {
            return Err(invalid(&at, format!("--operator {uid}: no such operator")));
        }
    }
    let mut operators = Vec::new();
    for op in &m.operators {
        let rec: Option<OperatorRecord> = extension::read(&op.extensions)
            .map_err(|e| invalid(format!("{at}: operator {}", op.uid), e))?;
        // Flink's operator id comes from the uid: after a rename only the new uid's id
        // restores. Serializers, max parallelism and the state itself stay the operator's.
        let same_uid = rec.as_ref().filter(|r| r.rewind_uid == op.uid);
        let p = options
            .operator_parallelism
            .get(&op.uid)
            .copied()
            .or(options.parallelism)
            .unwrap_or(op.parallelism);
        let parallelism = i32::try_from(p)
            .ok()
            .filter(|p| (1..=MAX_MAX_PARALLELISM).contains(p))
            .ok_or_else(|| {
                invalid(
                    &op.uid,
                    format!("parallelism {p} is outside 1 to {MAX_MAX_PARALLELISM}"),
                )
            })?;
        let max_parallelism = options
            .max_parallelism
            .map(|v| v as i32)
            .or(rec.as_ref().map(|r| r.max_parallelism))
            .unwrap_or_else(|| default_max_parallelism(parallelism));
        if max_parallelism < parallelism {
            return Err(invalid(
                &op.uid,
                format!(
                    "max parallelism {max_parallelism} is below the parallelism {parallelism}: Flink needs at least one key group per subtask"
                ),
            ));
        }
        let keyed_states: Vec<&StateEntry> =
            op.states.iter().filter(|s| s.kind.is_keyed()).collect();
        let keyed = if keyed_states.is_empty() {
            None
        } else {
            let changed = rec
                .as_ref()
                .is_some_and(|r| r.max_parallelism != max_parallelism);
            Some(plan_keyed(
                op.uid.as_str(),
                rec.as_ref(),
                &keyed_states,
                changed,
                options,
            )?)
        };
        let lists = plan_lists(&op.uid, rec.as_ref(), op)?;
        operators.push(OperatorPlan {
            uid: op.uid.clone(),
            name: same_uid
                .and_then(|r| r.name.clone())
                .unwrap_or_else(|| op.name.clone()),
            flink_uid: match same_uid {
                Some(r) => r.uid.clone().unwrap_or_default(),
                None => op.uid.clone(),
            },
            operator_id: same_uid.map_or_else(|| operator_id(&op.uid), |r| r.operator_id.clone()),
            parallelism,
            max_parallelism,
            coordinator: rec
                .as_ref()
                .and_then(|r| r.coordinator_state.as_ref())
                .map(|b| b.0.clone()),
            finished: rec.as_ref().is_some_and(|r| r.finished)
                && keyed.is_none()
                && lists.is_none(),
            finished_subtasks: rec
                .as_ref()
                .filter(|_| p == op.parallelism)
                .map(|r| r.finished_subtasks.clone())
                .unwrap_or_default(),
            keyed,
            lists,
        });
    }
    Ok(Plan {
        checkpoint_id: record.as_ref().map_or_else(
            || i64::try_from(m.checkpoint_id.max(1)).unwrap_or(1),
            |r| r.checkpoint_id,
        ),
        master_states: record
            .as_ref()
            .map(|r| r.master_states.iter().map(|b| b.0.clone()).collect())
            .unwrap_or_default(),
        properties: record.map_or_else(|| CANONICAL_PROPERTIES.to_vec(), |r| r.properties.0),
        operators,
    })
}

/// One header entry being planned: its position, bytes, and which state (and, for
/// timers, which queue) it belongs to.
struct Entry {
    order: u32,
    raw: Vec<u8>,
    state: usize,
    processing: bool,
}

fn plan_keyed(
    uid: &str,
    rec: Option<&OperatorRecord>,
    states: &[&StateEntry],
    max_parallelism_changed: bool,
    options: &ExportOptions,
) -> Result<KeyedPlan, FlinkError> {
    let key_dt = states
        .iter()
        .find_map(|s| s.key_type.as_deref())
        .map(parse_type)
        .transpose()
        .map_err(|e| invalid(uid, e.to_string()))?
        .ok_or_else(|| invalid(uid, "keyed state without a key type"))?;
    for s in states {
        let dt = s
            .key_type
            .as_deref()
            .map(parse_type)
            .transpose()
            .ok()
            .flatten();
        if !dt.as_ref().is_some_and(|dt| same_type(dt, &key_dt)) {
            return Err(invalid(
                format!("{uid}/{}", s.name),
                "its key type differs from the operator's other states: Flink has one key type per operator",
            ));
        }
    }
    // The key serializer Flink wrote, while it still describes the key column.
    let kept_key = rec.and_then(|r| r.key_serializer.as_ref()).and_then(|b| {
        let s = snapshot_proxy(&mut Reader::new(&b.0)).ok()?;
        let dt = s.ty.data_type().ok()?;
        same_type(&dt, &key_dt).then(|| (s.ty, b.0.clone()))
    });
    let key_kept = kept_key.is_some();
    let (key, key_raw) = match kept_key {
        Some(k) => k,
        None => {
            let ty = ty_of(&key_dt, None).map_err(|e| invalid(uid, format!("key type: {e}")))?;
            let mut o = Out::default();
            proxy(&ty, None, &mut o).map_err(|e| invalid(uid, e))?;
            (ty, o.buf)
        }
    };
    // The key groups the import kept, when the key type matches.
    let kept_groups = states
        .iter()
        .find(|st| {
            extension::read::<StateRecord>(&st.extensions)
                .ok()
                .flatten()
                .is_some_and(|r| {
                    r.role.as_deref() == Some("key_groups") && r.rewind_name == st.name
                })
        })
        .map(|st| st.name.clone());
    let key_groups = match check_hashable(&key) {
        Ok(()) => None,
        Err(why) => match (&kept_groups, max_parallelism_changed) {
            (Some(name), false) => Some(name.clone()),
            (Some(_), true) => {
                return Err(invalid(
                    uid,
                    format!(
                        "keys are {why}: their Flink key groups were kept for max parallelism {}, and Rewind cannot compute them for another without the JVM",
                        rec.map(|r| r.max_parallelism).unwrap_or_default()
                    ),
                ));
            }
            (None, _) => {
                return Err(invalid(
                    uid,
                    format!(
                        "keys are {why}: Rewind cannot compute their Flink key groups without the JVM, and no key groups were kept by an import"
                    ),
                ));
            }
        },
    };
    let mut entries: Vec<Entry> = Vec::new();
    let mut plans = Vec::new();
    let states: Vec<&&StateEntry> = states
        .iter()
        .filter(|st| Some(&st.name) != kept_groups.as_ref())
        .collect();
    for (i, st) in states.iter().enumerate() {
        let at = format!("{uid}/{}", st.name);
        let srec: Option<StateRecord> =
            extension::read(&st.extensions).map_err(|e| invalid(&at, e))?;
        let current = StateRecord::types_of(st);
        let srec = srec.filter(|r| key_kept && r.rewind_name == st.name && r.types == current);
        let kept = match srec {
            Some(r) => kept_state(&at, &key, &r, i, &mut entries)?,
            None => None,
        };
        let plan = match kept {
            Some(p) => p,
            None => {
                let pojo = options
                    .pojo
                    .get(&format!("{uid}/{}", st.name))
                    .map(String::as_str);
                generated_state(&at, &key, st, pojo, i, &mut entries)?
            }
        };
        plans.push(plan);
    }
    entries.sort_by_key(|e| e.order);
    let mut header = Vec::with_capacity(entries.len());
    for (id, e) in entries.into_iter().enumerate() {
        let id = u16::try_from(id).map_err(|_| invalid(uid, "more than 65535 states"))?;
        let enc = &mut plans[e.state].encoding;
        match (&mut enc.kind, e.processing) {
            (EntryKind::Timers { processing }, true) => *processing = id,
            _ => enc.id = id,
        }
        header.push(e.raw);
    }
    Ok(KeyedPlan {
        key_raw,
        key_groups,
        header,
        states: plans,
    })
}

/// A state as the import kept it; `None` when a kept entry no longer parses.
fn kept_state(
    at: &str,
    key: &Ty,
    rec: &StateRecord,
    index: usize,
    entries: &mut Vec<Entry>,
) -> Result<Option<KeyedStatePlan>, FlinkError> {
    let mut metas = Vec::new();
    for f in &rec.states {
        let Some(raw) = &f.meta else { return Ok(None) };
        let Ok(meta) = keyed::state_meta(&mut Reader::new(&raw.0)) else {
            return Ok(None);
        };
        metas.push((f, meta, raw.0.clone()));
    }
    let Some((_, first, _)) = metas.first() else {
        return Ok(None);
    };
    let namespace = first.namespace.as_ref().map_or(Ty::Void, |s| s.ty.clone());
    let kind = match (first.kind, first.value.as_ref().map(|s| &s.ty)) {
        (Some(Kind::Value), Some(t)) => EntryKind::Value(t.clone()),
        (Some(Kind::List), Some(Ty::List(item))) => EntryKind::List((**item).clone()),
        (Some(Kind::Map), Some(Ty::Map(k, v))) => EntryKind::Map((**k).clone(), (**v).clone()),
        (Some(Kind::Timers), Some(Ty::Timer(_, n))) => {
            return kept_timers(at, key, (**n).clone(), &metas, index, entries).map(Some);
        }
        _ => {
            return Err(invalid(
                at,
                format!("{} state cannot be exported", first.flink_kind),
            ));
        }
    };
    for (f, _, raw) in &metas {
        entries.push(Entry {
            order: f.order,
            raw: raw.clone(),
            state: index,
            processing: false,
        });
    }
    Ok(Some(KeyedStatePlan {
        name: rec.rewind_name.clone(),
        flink_names: metas.iter().map(|(f, _, _)| f.name.clone()).collect(),
        encoding: StateEncoding {
            kind,
            key: key.clone(),
            namespace,
            id: 0,
        },
        serializers: Serializers::Kept,
    }))
}

type KeptMeta<'a> = (&'a extension::FlinkState, keyed::StateMeta, Vec<u8>);

fn kept_timers(
    at: &str,
    key: &Ty,
    namespace: Ty,
    metas: &[KeptMeta<'_>],
    index: usize,
    entries: &mut Vec<Entry>,
) -> Result<KeyedStatePlan, FlinkError> {
    let mut names = Vec::new();
    let service = metas
        .first()
        .map(|(f, _, _)| f.name.split_once('_').map_or("", |x| x.1).to_string())
        .unwrap_or_default();
    for domain in ["event_time", "processing_time"] {
        let processing = domain == "processing_time";
        match metas
            .iter()
            .find(|(f, _, _)| f.domain.as_deref() == Some(domain))
        {
            Some((f, _, raw)) => {
                names.push(f.name.clone());
                entries.push(Entry {
                    order: f.order,
                    raw: raw.clone(),
                    state: index,
                    processing,
                });
            }
            None => {
                // The queue Flink did not write: made like the other one.
                let service = service
                    .strip_prefix("timer_state/event_")
                    .or_else(|| service.strip_prefix("timer_state/processing_"))
                    .unwrap_or(&service);
                let prefix = if processing { "processing" } else { "event" };
                let name = format!("_timer_state/{prefix}_{service}");
                let timer = Ty::Timer(Box::new(key.clone()), Box::new(namespace.clone()));
                let raw = state_meta_bytes(&name, None, &namespace, &timer, None)
                    .map_err(|e| invalid(at, e))?;
                names.push(name);
                entries.push(Entry {
                    order: u32::MAX,
                    raw,
                    state: index,
                    processing,
                });
            }
        }
    }
    Ok(KeyedStatePlan {
        name: at.rsplit('/').next().unwrap_or(at).to_string(),
        flink_names: names,
        encoding: StateEncoding {
            kind: EntryKind::Timers { processing: 0 },
            key: key.clone(),
            namespace,
            id: 0,
        },
        serializers: Serializers::Kept,
    })
}

/// A state with serializers generated from its Arrow types.
fn generated_state(
    at: &str,
    key: &Ty,
    st: &StateEntry,
    pojo: Option<&str>,
    index: usize,
    entries: &mut Vec<Entry>,
) -> Result<KeyedStatePlan, FlinkError> {
    let spec = StateSpec::from_entry(st).map_err(|e| invalid(at, e.to_string()))?;
    let types = spec.to_entry().map_err(|e| invalid(at, e.to_string()))?;
    let parse =
        |t: &Option<String>, what: &str| -> Result<Option<arrow_schema::DataType>, FlinkError> {
            t.as_deref()
                .map(parse_type)
                .transpose()
                .map_err(|e| invalid(at, format!("{what}: {e}")))
        };
    let namespace = match parse(&types.namespace_type, "namespace type")? {
        Some(dt) => namespace_ty_of(&dt).map_err(|e| invalid(at, format!("namespace type {e}")))?,
        None => Ty::Void,
    };
    let value_dt = parse(&types.value_type, "value type")?;
    let value_ty = |dt: &arrow_schema::DataType, pojo: Option<&str>| {
        ty_of(dt, pojo).map_err(|e| invalid(at, format!("value type {e}")))
    };
    let order = 1_000_000 + u32::try_from(index).unwrap_or(0) * 2;
    let (kind, serializer, flink_kind) = match st.kind {
        StateKind::Value => {
            let t = value_ty(
                value_dt
                    .as_ref()
                    .ok_or_else(|| invalid(at, "no value type"))?,
                pojo,
            )?;
            (EntryKind::Value(t.clone()), t, "VALUE")
        }
        StateKind::List => {
            let Some(arrow_schema::DataType::List(item)) = &value_dt else {
                return Err(invalid(at, "list state whose value type is not a list"));
            };
            let t = value_ty(item.data_type(), pojo)?;
            (EntryKind::List(t.clone()), Ty::List(Box::new(t)), "LIST")
        }
        StateKind::Map => {
            let uk = parse(&types.user_key_type, "user key type")?
                .ok_or_else(|| invalid(at, "map state without a user key type"))?;
            let uk = ty_of(&uk, None).map_err(|e| invalid(at, format!("user key type {e}")))?;
            let v = value_ty(
                value_dt
                    .as_ref()
                    .ok_or_else(|| invalid(at, "no value type"))?,
                pojo,
            )?;
            (
                EntryKind::Map(uk.clone(), v.clone()),
                Ty::Map(Box::new(uk), Box::new(v)),
                "MAP",
            )
        }
        StateKind::Timers => {
            let service = st.name.strip_prefix("timers-").unwrap_or(&st.name);
            let timer = Ty::Timer(Box::new(key.clone()), Box::new(namespace.clone()));
            let mut names = Vec::new();
            for (k, prefix) in ["event", "processing"].iter().enumerate() {
                let name = format!("_timer_state/{prefix}_{service}");
                let raw = state_meta_bytes(&name, None, &namespace, &timer, None)
                    .map_err(|e| invalid(at, e))?;
                entries.push(Entry {
                    order: order + k as u32,
                    raw,
                    state: index,
                    processing: k == 1,
                });
                names.push(name);
            }
            return Ok(KeyedStatePlan {
                name: st.name.clone(),
                flink_names: names,
                encoding: StateEncoding {
                    kind: EntryKind::Timers { processing: 0 },
                    key: key.clone(),
                    namespace,
                    id: 0,
                },
                serializers: Serializers::Generated,
            });
        }
        StateKind::OperatorList => return Err(invalid(at, "internal: not keyed state")),
    };
    let raw = state_meta_bytes(&st.name, Some(flink_kind), &namespace, &serializer, pojo)
        .map_err(|e| invalid(at, e))?;
    entries.push(Entry {
        order,
        raw,
        state: index,
        processing: false,
    });
    Ok(KeyedStatePlan {
        name: st.name.clone(),
        flink_names: vec![st.name.clone()],
        encoding: StateEncoding {
            kind,
            key: key.clone(),
            namespace,
            id: 0,
        },
        serializers: Serializers::Generated,
    })
}

/// Operator list states: only those that came from Flink (their serializers are in the
/// header the import kept) can go back.
fn plan_lists(
    uid: &str,
    rec: Option<&OperatorRecord>,
    op: &rewind_savepoint::format::OperatorEntry,
) -> Result<Option<ListsPlan>, FlinkError> {
    let lists: Vec<&StateEntry> = op
        .states
        .iter()
        .filter(|s| s.kind == StateKind::OperatorList)
        .collect();
    if lists.is_empty() {
        return Ok(None);
    }
    let header = rec.and_then(|r| r.operator_state_header.as_ref());
    let mut states = Vec::new();
    for st in lists {
        let at = format!("{uid}/{}", st.name);
        let srec: Option<StateRecord> =
            extension::read(&st.extensions).map_err(|e| invalid(&at, e))?;
        let flink_name = srec
            .filter(|r| r.rewind_name == st.name && st.value_type.as_deref() == Some("binary"))
            .and_then(|r| r.states.first().map(|f| f.name.clone()));
        let (Some(flink_name), Some(_)) = (flink_name, header) else {
            return Err(invalid(
                &at,
                "operator list state that did not come from a Flink savepoint (or was renamed or retyped) has no Flink serializer: drop it with `rewind edit --drop-state` before exporting",
            ));
        };
        states.push(ListPlan {
            name: st.name.clone(),
            flink_name,
            mode: st.redistribution.unwrap_or(Redistribution::Split),
        });
    }
    Ok(Some(ListsPlan {
        header: header.map(|b| b.0.clone()).unwrap_or_default(),
        states,
    }))
}
