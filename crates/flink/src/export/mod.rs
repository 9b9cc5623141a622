//! Writing a canonical Flink savepoint from a Rewind savepoint: keyed state laid out in
//! Flink's key groups (at any max parallelism for keys whose Java `hashCode` is known),
//! operator state and coordinator state as the import kept them, serializer snapshots as
//! Flink wrote them or generated from the Arrow types, and `_metadata` written last,
//! create-only. No JVM.

pub(crate) mod hashing;
mod keyed;
mod metadata;
mod out;
mod plan;
mod snapshots;
mod values;

use std::collections::{BTreeMap, HashMap};

use arrow_array::Array;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use rewind_savepoint::format::Redistribution;
use rewind_savepoint::{Location, ReadOptions, SavepointReader};

use crate::FlinkError;
use crate::savepoint::METADATA_FILE;
use keyed::{Buckets, Layout};
use metadata::{File, OperatorState, SubtaskState};
use out::Out;
pub use plan::Serializers;

/// What `export` changes on the way out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// Max parallelism (number of key groups) of every operator; default: what the import
    /// kept, else Flink's default for the parallelism.
    pub max_parallelism: Option<u32>,
    /// Parallelism of every operator; default: the savepoint's.
    pub parallelism: Option<u32>,
    /// Parallelism of single operators by uid (over `parallelism`).
    pub operator_parallelism: BTreeMap<String, u32>,
    /// The Java class of a struct-typed state's POJO values, by `UID/STATE`.
    pub pojo: BTreeMap<String, String>,
    /// Compress keyed state with Snappy, as Flink does with
    /// `execution.checkpointing.snapshot-compression`.
    pub compress: bool,
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Every operator written.
    pub operators: Vec<ExportedOperator>,
    /// Files written, `_metadata` included.
    pub files: usize,
    /// Bytes written.
    pub bytes: u64,
}

/// One operator of an export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportedOperator {
    /// Its Rewind uid.
    pub uid: String,
    /// Flink's operator id (32 hex digits).
    pub operator_id: String,
    /// Parallelism written.
    pub parallelism: u32,
    /// Max parallelism written.
    pub max_parallelism: u32,
    /// Every state written.
    pub states: Vec<ExportedState>,
}

/// One state of an export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportedState {
    /// Its Rewind name.
    pub name: String,
    /// Flink's state names (a timers state has an event- and a processing-time queue).
    pub flink_names: Vec<String>,
    /// Entries written (keyed: Flink's key/value entries; operator lists: elements).
    pub entries: u64,
    /// `kept`: Flink's own serializer snapshots from the import; `generated`: made from
    /// the Arrow types.
    pub serializers: Serializers,
}

/// A request export cannot carry out, naming what it concerns.
pub(crate) fn invalid(path: impl Into<String>, message: impl Into<String>) -> FlinkError {
    FlinkError::InvalidInput {
        path: path.into(),
        message: message.into(),
    }
}

fn storage(path: String, e: impl std::fmt::Display) -> FlinkError {
    FlinkError::Storage {
        path,
        message: e.to_string(),
    }
}

/// Writes `source` to `dest` as a canonical Flink savepoint directory. Every operator and
/// state is checked before anything is written; `_metadata` is written last and only if
/// absent, so a failed export leaves no savepoint.
pub async fn export(
    source: &SavepointReader,
    dest: Location,
    options: &ExportOptions,
) -> Result<ExportReport, FlinkError> {
    let plan = plan::plan(source, options)?;
    refuse_taken(&dest).await?;
    let mut report = ExportReport::default();
    let mut operators = Vec::new();
    for op in &plan.operators {
        let mut exported = ExportedOperator {
            uid: op.uid.clone(),
            operator_id: op.operator_id.clone(),
            parallelism: op.parallelism as u32,
            max_parallelism: op.max_parallelism as u32,
            states: Vec::new(),
        };
        let mut subtasks: Vec<SubtaskState> = (0..op.parallelism)
            .map(|index| SubtaskState {
                index,
                finished: op.finished_subtasks.contains(&index),
                ..SubtaskState::default()
            })
            .collect();
        if let Some(keyed) = &op.keyed {
            let layout = Layout {
                max_parallelism: op.max_parallelism,
                parallelism: op.parallelism,
            };
            let mut buckets = Buckets::new(layout, keyed.header.len());
            let mut kept = HashMap::new();
            if let Some(name) = &keyed.key_groups {
                let mut stream = source
                    .read_state(&op.uid, name, ReadOptions::default())
                    .await?;
                while let Some(batch) = stream.try_next().await? {
                    keyed::kept_groups(&batch, &mut kept)
                        .map_err(|e| invalid(format!("{}/{name}", op.uid), e))?;
                }
            }
            let kept = keyed.key_groups.as_ref().map(|_| &kept);
            for st in &keyed.states {
                let before = buckets.entries;
                let mut stream = source
                    .read_state(&op.uid, &st.name, ReadOptions::default())
                    .await?;
                while let Some(batch) = stream.try_next().await? {
                    keyed::add_batch(&st.encoding, &batch, kept, &mut buckets)
                        .map_err(|e| invalid(format!("{}/{}", op.uid, st.name), e))?;
                }
                exported.states.push(ExportedState {
                    name: st.name.clone(),
                    flink_names: st.flink_names.clone(),
                    entries: buckets.entries - before,
                    serializers: st.serializers,
                });
            }
            let header = keyed
                .header_bytes(options.compress)
                .map_err(|e| invalid(op.uid.clone(), e))?;
            for (i, sub) in subtasks.iter_mut().enumerate() {
                if sub.finished {
                    continue;
                }
                let (first, bytes, offsets) = buckets
                    .stream(i, &header, options.compress)
                    .map_err(|e| invalid(op.uid.clone(), e))?;
                let path = format!("{}-keyed-{i}", op.uid);
                let size = put(&dest, &path, bytes, &mut report).await?;
                sub.keyed = Some((first, offsets, File { path, size }));
            }
        }
        if let Some(lists) = &op.lists {
            let mut elements = Vec::new();
            for st in &lists.states {
                let all = source.read_operator_list(&op.uid, &st.name, 0, 1).await?;
                let values = all
                    .column_by_name(rewind_savepoint::columns::VALUE)
                    .and_then(|c| {
                        c.as_any()
                            .downcast_ref::<arrow_array::BinaryArray>()
                            .cloned()
                    })
                    .ok_or_else(|| {
                        invalid(
                            format!("{}/{}", op.uid, st.name),
                            "operator state elements that are not binary",
                        )
                    })?;
                exported.states.push(ExportedState {
                    name: st.name.clone(),
                    flink_names: vec![st.flink_name.clone()],
                    entries: values.len() as u64,
                    serializers: Serializers::Kept,
                });
                elements.push(values);
            }
            for (i, sub) in subtasks.iter_mut().enumerate() {
                if sub.finished {
                    continue;
                }
                let mut o = Out {
                    buf: lists.header.clone(),
                };
                let mut states = Vec::new();
                for (st, values) in lists.states.iter().zip(&elements) {
                    let (from, n) = match st.mode {
                        Redistribution::Broadcast => (0, values.len()),
                        _ => rewind_savepoint::format::deal(
                            values.len(),
                            Redistribution::Split,
                            i as u32,
                            op.parallelism as u32,
                        ),
                    };
                    let mut offsets = Vec::with_capacity(n);
                    for row in from..from + n {
                        offsets.push(o.buf.len() as i64);
                        o.bytes(values.value(row));
                    }
                    let mode = match st.mode {
                        Redistribution::Split => 0,
                        Redistribution::Union => 1,
                        Redistribution::Broadcast => 2,
                    };
                    states.push((st.flink_name.clone(), mode, offsets));
                }
                let path = format!("{}-operator-{i}", op.uid);
                let size = put(&dest, &path, o.buf, &mut report).await?;
                sub.operator = Some((states, File { path, size }));
            }
        }
        operators.push(OperatorState {
            name: op.name.clone(),
            uid: op.flink_uid.clone(),
            id: op.operator_id.clone(),
            parallelism: op.parallelism,
            max_parallelism: op.max_parallelism,
            coordinator: op.coordinator.clone(),
            finished: op.finished,
            subtasks: subtasks
                .into_iter()
                .filter(|s| s.finished || s.keyed.is_some() || s.operator.is_some())
                .collect(),
        });
        report.operators.push(exported);
    }
    let bytes = metadata::write(
        plan.checkpoint_id,
        &plan.master_states,
        &operators,
        &plan.properties,
    )
    .map_err(|e| invalid(dest.describe(METADATA_FILE), e))?;
    report.bytes += bytes.len() as u64;
    report.files += 1;
    let path = dest.child(METADATA_FILE);
    let options = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    match dest
        .store()
        .put_opts(&path, PutPayload::from(Bytes::from(bytes)), options)
        .await
    {
        Ok(_) => Ok(report),
        Err(object_store::Error::AlreadyExists { .. }) => Err(taken(&dest)),
        Err(e) => Err(storage(dest.describe(METADATA_FILE), e)),
    }
}

fn taken(dest: &Location) -> FlinkError {
    invalid(
        dest.to_string(),
        "already holds a savepoint: export writes a new directory, never over one",
    )
}

/// Refuses a destination that holds a Flink or a Rewind savepoint.
async fn refuse_taken(dest: &Location) -> Result<(), FlinkError> {
    for name in [METADATA_FILE, rewind_savepoint::format::MANIFEST_FILE] {
        match dest.store().head(&dest.child(name)).await {
            Ok(_) => return Err(taken(dest)),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(storage(dest.describe(name), e)),
        }
    }
    Ok(())
}

async fn put(
    dest: &Location,
    relative: &str,
    bytes: Vec<u8>,
    report: &mut ExportReport,
) -> Result<i64, FlinkError> {
    let size = bytes.len();
    dest.store()
        .put(&dest.child(relative), PutPayload::from(Bytes::from(bytes)))
        .await
        .map_err(|e| storage(dest.describe(relative), e))?;
    report.files += 1;
    report.bytes += size as u64;
    Ok(i64::try_from(size).unwrap_or(i64::MAX))
}
