//! Writing a canonical Flink savepoint from a Rewind savepoint: keyed state laid out in
//! Flink's key groups (at any max parallelism for keys whose Java `hashCode` is known),
//! operator state and coordinator state as the import kept them, serializer snapshots as
//! Flink wrote them or generated from the Arrow types, and `_metadata` written last,
//! create-only. No JVM.

mod plan;

use std::collections::{BTreeMap, HashMap};

use arrow_array::Array;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use rewind_savepoint::format::Redistribution;
use rewind_savepoint::{Location, ReadOptions, SavepointReader};

use crate::error::FlinkError;
use crate::keyed::{self, Buckets, Layout};
use crate::metadata::{
    self, KeyGroups, KeyedHandle, MasterState, Metadata, Operator, OperatorStateHandle,
    StreamHandle, Subtask,
};
use crate::operator_state::{self, StateElements};
use crate::savepoint::METADATA_FILE;
pub use plan::Serializers;
use plan::{KeyedPlan, ListsPlan, OperatorPlan};

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

fn storage(path: String, source: object_store::Error) -> FlinkError {
    FlinkError::Storage {
        path,
        error: source,
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
    let mut files = Files {
        dest: &dest,
        report: ExportReport::default(),
    };
    let mut operators = Vec::new();
    for op in &plan.operators {
        operators.push(write_operator(source, op, options, &mut files).await?);
    }
    let master_states = plan
        .master_states
        .iter()
        .map(|bytes| MasterState::from_bytes(bytes.clone()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            invalid(
                source.location().to_string(),
                format!("a kept master state: {}", e.message),
            )
        })?;
    let metadata = Metadata {
        version: metadata::FLINK_2_VERSION,
        checkpoint_id: plan.checkpoint_id,
        master_states,
        operators,
        format_type: None,
        properties: plan.properties,
    };
    files.write_metadata(&metadata).await?;
    Ok(files.report)
}

/// The files an export writes, and its report of them.
struct Files<'a> {
    dest: &'a Location,
    report: ExportReport,
}

impl Files<'_> {
    /// Puts the file at `relative` and returns its handle in `_metadata`.
    async fn put(&mut self, relative: String, bytes: Vec<u8>) -> Result<StreamHandle, FlinkError> {
        let size = bytes.len();
        self.dest
            .store()
            .put(
                &self.dest.child(&relative),
                PutPayload::from(Bytes::from(bytes)),
            )
            .await
            .map_err(|e| storage(self.dest.describe(&relative), e))?;
        self.report.files += 1;
        self.report.bytes += size as u64;
        Ok(StreamHandle::Relative {
            path: relative,
            size: i64::try_from(size).unwrap_or(i64::MAX),
        })
    }

    /// `_metadata`, last and create-only: its presence means the savepoint is complete.
    async fn write_metadata(&mut self, metadata: &Metadata) -> Result<(), FlinkError> {
        let dest = self.dest;
        let bytes =
            metadata::write(metadata).map_err(|e| invalid(dest.describe(METADATA_FILE), e))?;
        self.report.bytes += bytes.len() as u64;
        self.report.files += 1;
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match dest
            .store()
            .put_opts(
                &dest.child(METADATA_FILE),
                PutPayload::from(Bytes::from(bytes)),
                options,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => Err(taken(dest)),
            Err(e) => Err(storage(dest.describe(METADATA_FILE), e)),
        }
    }
}

/// One operator: its keyed state and its operator lists, one file each per subtask.
async fn write_operator(
    source: &SavepointReader,
    op: &OperatorPlan,
    options: &ExportOptions,
    files: &mut Files<'_>,
) -> Result<Operator, FlinkError> {
    let mut exported = ExportedOperator {
        uid: op.uid.clone(),
        operator_id: op.operator_id.clone(),
        parallelism: op.parallelism as u32,
        max_parallelism: op.max_parallelism as u32,
        states: Vec::new(),
    };
    let mut subtasks: Vec<Subtask> = (0..op.parallelism)
        .map(|index| Subtask::without_state(index, op.finished_subtasks.contains(&index)))
        .collect();
    if let Some(keyed) = &op.keyed {
        let states = write_keyed(source, op, keyed, options, &mut subtasks, files).await?;
        exported.states.extend(states);
    }
    if let Some(lists) = &op.lists {
        let states = write_lists(source, op, lists, &mut subtasks, files).await?;
        exported.states.extend(states);
    }
    files.report.operators.push(exported);
    Ok(Operator {
        name: Some(op.name.clone()),
        uid: Some(op.flink_uid.clone()),
        id: op.operator_id.clone(),
        parallelism: op.parallelism,
        max_parallelism: op.max_parallelism,
        coordinator_state: op.coordinator.clone().map(|data| StreamHandle::Inline {
            name: format!("coordinator-{}", op.operator_id),
            data,
        }),
        fully_finished: op.finished,
        subtasks: subtasks
            .into_iter()
            .filter(|s| s.finished || s.keyed_state.is_some() || s.operator_state.is_some())
            .collect(),
    })
}

/// Keyed state: every state's rows bucketed by key group, then one stream per subtask.
async fn write_keyed(
    source: &SavepointReader,
    op: &OperatorPlan,
    keyed: &KeyedPlan,
    options: &ExportOptions,
    subtasks: &mut [Subtask],
    files: &mut Files<'_>,
) -> Result<Vec<ExportedState>, FlinkError> {
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
    let mut exported = Vec::new();
    for st in &keyed.states {
        let before = buckets.entries;
        let mut stream = source
            .read_state(&op.uid, &st.name, ReadOptions::default())
            .await?;
        while let Some(batch) = stream.try_next().await? {
            keyed::add_batch(&st.encoding, &batch, kept, &mut buckets)
                .map_err(|e| invalid(format!("{}/{}", op.uid, st.name), e))?;
        }
        exported.push(ExportedState {
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
        let stream = buckets
            .stream(i, &header, options.compress)
            .map_err(|e| invalid(op.uid.clone(), e))?;
        let delegate = files
            .put(format!("{}-keyed-{i}", op.uid), stream.bytes)
            .await?;
        sub.keyed_state = Some(KeyedHandle::Savepoint(KeyGroups {
            first: stream.first_key_group,
            offsets: stream.offsets,
            delegate,
        }));
    }
    Ok(exported)
}

/// Operator lists: each state's elements dealt to the subtasks (split and union as Flink
/// deals them at restore; broadcast whole to each), one stream per subtask.
async fn write_lists(
    source: &SavepointReader,
    op: &OperatorPlan,
    lists: &ListsPlan,
    subtasks: &mut [Subtask],
    files: &mut Files<'_>,
) -> Result<Vec<ExportedState>, FlinkError> {
    let mut exported = Vec::new();
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
        exported.push(ExportedState {
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
        let states: Vec<StateElements<'_>> = lists
            .states
            .iter()
            .zip(&elements)
            .map(|(st, values)| {
                let (from, n) = match st.mode {
                    Redistribution::Broadcast => (0, values.len()),
                    _ => rewind_savepoint::format::deal(
                        values.len(),
                        Redistribution::Split,
                        i as u32,
                        op.parallelism as u32,
                    ),
                };
                StateElements {
                    name: &st.flink_name,
                    distribution: st.mode.into(),
                    elements: (from..from + n).map(|row| values.value(row)).collect(),
                }
            })
            .collect();
        let (bytes, offsets) = operator_state::stream(&lists.header, &states);
        let delegate = files.put(format!("{}-operator-{i}", op.uid), bytes).await?;
        sub.operator_state = Some(OperatorStateHandle {
            states: offsets,
            delegate,
        });
    }
    Ok(exported)
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
