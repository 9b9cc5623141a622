//! `rewind inspect` on a Flink savepoint: what its `_metadata` says, read without a JVM.

use std::io::Write;

use anyhow::Result;
use rewind_flink::{FlinkSavepoint, KeyedHandle, Operator, StreamHandle, Subtask};
use rewind_savepoint::Location;
use serde::Serialize;

use crate::output::{bytes, table};

/// The `inspect --json` document of a Flink savepoint (docs/json.md).
#[derive(Serialize)]
struct FlinkView {
    kind: &'static str,
    location: String,
    metadata_version: i32,
    checkpoint_id: i64,
    format: Option<String>,
    total_bytes: u64,
    files: usize,
    operators: Vec<OperatorView>,
    missing_files: Vec<String>,
    absolute_paths: Vec<String>,
}

#[derive(Serialize)]
struct OperatorView {
    id: String,
    uid: Option<String>,
    name: Option<String>,
    parallelism: i32,
    max_parallelism: i32,
    coordinator_state_bytes: i64,
    fully_finished: bool,
    subtasks: Vec<SubtaskView>,
}

#[derive(Serialize)]
struct SubtaskView {
    index: i32,
    finished: bool,
    keyed: Option<KeyedView>,
    operator_states: Vec<OperatorStateView>,
}

#[derive(Serialize)]
struct KeyedView {
    handle: &'static str,
    first_key_group: i32,
    last_key_group: i32,
    location: String,
    inline: bool,
    bytes: i64,
    offsets: Vec<i64>,
    files: Vec<String>,
}

#[derive(Serialize)]
struct OperatorStateView {
    name: String,
    mode: &'static str,
    elements: usize,
    location: String,
    inline: bool,
}

pub async fn inspect(at: Location, json: bool, out: &mut dyn Write) -> Result<u8> {
    let sp = FlinkSavepoint::open(at).await?;
    let files = rewind_savepoint::list_files(sp.location()).await?;
    let m = sp.metadata();
    let view = FlinkView {
        kind: "flink-savepoint",
        location: sp.location().to_string(),
        metadata_version: m.version,
        checkpoint_id: m.checkpoint_id,
        format: m.format_type.clone(),
        total_bytes: files.iter().map(|(_, n)| n).sum(),
        files: files.len(),
        operators: m.operators.iter().map(operator_view).collect(),
        missing_files: sp.missing_files().await,
        absolute_paths: sp.absolute_paths(),
    };
    if json {
        crate::json::write_document(out, &view)?;
    } else {
        print_tables(&view, out)?;
    }
    Ok(crate::EXIT_OK)
}

fn operator_view(op: &Operator) -> OperatorView {
    OperatorView {
        id: op.id.clone(),
        uid: op.uid.clone(),
        name: op.name.clone(),
        parallelism: op.parallelism,
        max_parallelism: op.max_parallelism,
        coordinator_state_bytes: op.coordinator_state.as_ref().map_or(0, StreamHandle::size),
        fully_finished: op.fully_finished,
        subtasks: op.subtasks.iter().map(subtask_view).collect(),
    }
}

fn subtask_view(s: &Subtask) -> SubtaskView {
    let keyed = s.keyed_state.as_ref().map(|k| {
        let (first, last) = k.key_groups();
        let (handle, delegate, offsets, files) = match k {
            KeyedHandle::Savepoint(g) => (
                "canonical savepoint",
                Some(&g.delegate),
                g.offsets.clone(),
                vec![],
            ),
            KeyedHandle::Checkpoint(g) => (
                "full checkpoint",
                Some(&g.delegate),
                g.offsets.clone(),
                vec![],
            ),
            KeyedHandle::Incremental { meta, files, .. } => (
                "native (RocksDB files)",
                Some(meta),
                vec![],
                files
                    .iter()
                    .map(|(n, h)| format!("{n}: {}", h.describe()))
                    .collect(),
            ),
            KeyedHandle::Changelog { .. } => ("changelog", None, vec![], vec![]),
        };
        KeyedView {
            handle,
            first_key_group: first,
            last_key_group: last,
            location: delegate.map(StreamHandle::describe).unwrap_or_default(),
            inline: matches!(delegate, Some(StreamHandle::Inline { .. })),
            bytes: delegate.map_or(0, StreamHandle::size)
                + match k {
                    KeyedHandle::Incremental { files, .. } => {
                        files.iter().map(|(_, h)| h.size()).sum()
                    }
                    _ => 0,
                },
            offsets,
            files,
        }
    });
    let operator_states = s
        .operator_state
        .iter()
        .flat_map(|h| {
            h.states.iter().map(move |state| OperatorStateView {
                name: state.name.clone(),
                mode: state.distribution.as_str(),
                elements: state.offsets.len(),
                location: h.delegate.describe(),
                inline: matches!(h.delegate, StreamHandle::Inline { .. }),
            })
        })
        .collect();
    SubtaskView {
        index: s.index,
        finished: s.finished,
        keyed,
        operator_states,
    }
}

fn print_tables(v: &FlinkView, out: &mut dyn Write) -> Result<()> {
    let dash = || "-".to_string();
    writeln!(out, "Flink savepoint  {}", v.location)?;
    writeln!(
        out,
        "Metadata         version {}, checkpoint {}, format {}",
        v.metadata_version,
        v.checkpoint_id,
        v.format.clone().unwrap_or_else(|| "unknown".into())
    )?;
    writeln!(
        out,
        "Size             {} in {} files",
        bytes(v.total_bytes),
        v.files
    )?;
    writeln!(out, "\nOperators")?;
    let mut ops = table(&[
        "operator id",
        "uid",
        "name",
        "parallelism",
        "max parallelism",
        "coordinator state",
        "state",
    ]);
    for o in &v.operators {
        let stateful = o
            .subtasks
            .iter()
            .any(|s| s.keyed.is_some() || !s.operator_states.is_empty());
        ops.add_row(vec![
            o.id.clone(),
            o.uid.clone().unwrap_or_else(dash),
            o.name.clone().unwrap_or_else(dash),
            o.parallelism.to_string(),
            o.max_parallelism.to_string(),
            bytes(o.coordinator_state_bytes.max(0) as u64),
            if o.fully_finished {
                "finished".into()
            } else if stateful {
                "yes".into()
            } else {
                dash()
            },
        ]);
    }
    writeln!(out, "{ops}")?;
    writeln!(out, "\nSubtask state")?;
    let mut subs = table(&[
        "operator",
        "subtask",
        "kind",
        "key groups / mode",
        "where",
        "size / elements",
    ]);
    for o in &v.operators {
        let name = o.uid.clone().unwrap_or_else(|| o.id.clone());
        for s in &o.subtasks {
            if let Some(k) = &s.keyed {
                let non_empty = k.offsets.iter().filter(|&&x| x > 0).count();
                let where_ = if k.files.is_empty() {
                    format!("{}{}", k.location, if k.inline { "" } else { " (file)" })
                } else {
                    k.files.join(", ")
                };
                let groups = if k.offsets.is_empty() {
                    format!("{}-{}", k.first_key_group, k.last_key_group)
                } else {
                    format!(
                        "{}-{} ({non_empty} with data)",
                        k.first_key_group, k.last_key_group
                    )
                };
                subs.add_row(vec![
                    name.clone(),
                    s.index.to_string(),
                    format!("keyed, {}", k.handle),
                    groups,
                    where_,
                    bytes(k.bytes.max(0) as u64),
                ]);
            }
            for st in &s.operator_states {
                subs.add_row(vec![
                    name.clone(),
                    s.index.to_string(),
                    format!("operator state {}", st.name),
                    st.mode.to_string(),
                    st.location.clone(),
                    format!("{} elements", st.elements),
                ]);
            }
        }
    }
    writeln!(out, "{subs}")?;
    writeln!(
        out,
        "\nMissing files    {}",
        if v.missing_files.is_empty() {
            "none".into()
        } else {
            v.missing_files.join(", ")
        }
    )?;
    writeln!(
        out,
        "Absolute paths   {}",
        if v.absolute_paths.is_empty() {
            "none (the savepoint can be moved)".into()
        } else {
            format!(
                "{} (tied to where it was written)",
                v.absolute_paths.join(", ")
            )
        }
    )?;
    Ok(())
}
