//! `rewind inspect`: the manifest, for people (tables) or programs (`--json`).

use std::io::Write;

use anyhow::Result;
use rewind_savepoint::SavepointReader;
use rewind_savepoint::format::Manifest;
use serde::Serialize;

use super::location;
use crate::cli::InspectArgs;
use crate::output::{bytes, millis, table};

pub async fn run(args: InspectArgs, out: &mut dyn Write) -> Result<u8> {
    let at = location(&args.savepoint)?;
    // A Flink savepoint is inspected as such.
    if super::is_flink(&at).await {
        return super::flink::inspect(at, args.json, out).await;
    }
    let reader = SavepointReader::open(at).await?;
    let view = InspectView::from(reader.manifest());
    if args.json {
        crate::json::write_document(out, &view)?;
    } else {
        print_tables(&view, out)?;
    }
    Ok(crate::EXIT_OK)
}

/// The `inspect --json` document (docs/json.md). Its own types, not the manifest's, so the
/// manifest can evolve without breaking scripts.
#[derive(Serialize)]
struct InspectView {
    id: String,
    kind: &'static str,
    created_at: String,
    format_version: String,
    reader_features: Vec<String>,
    writer_features: Vec<String>,
    /// Systems whose information the manifest carries (`extensions`, format 1.1).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    extensions: Vec<String>,
    writer: String,
    job: JobView,
    checkpoint_id: u64,
    lineage: LineageView,
    operators: Vec<OperatorView>,
    source_splits: Vec<SplitView>,
}

#[derive(Serialize)]
struct JobView {
    name: String,
    app_version: Option<String>,
    job_id: Option<String>,
}

#[derive(Serialize)]
struct LineageView {
    operation: String,
    parent_id: Option<String>,
    parent_location: Option<String>,
}

#[derive(Serialize)]
struct OperatorView {
    uid: String,
    name: String,
    parallelism: u32,
    rows: u64,
    bytes: u64,
    states: Vec<StateView>,
}

#[derive(Serialize)]
struct StateView {
    name: String,
    kind: &'static str,
    key_type: Option<String>,
    namespace_type: Option<String>,
    user_key_type: Option<String>,
    value_type: Option<String>,
    redistribution: Option<&'static str>,
    shards: usize,
    rows: u64,
    bytes: u64,
    /// Delta layers over the base (incremental checkpoints; 0 otherwise).
    #[serde(skip_serializing_if = "is_zero")]
    delta_layers: u64,
    /// Shards in delta layers.
    #[serde(skip_serializing_if = "is_zero")]
    delta_shards: u64,
    /// Bytes of files that a sibling folder holds (shared with earlier checkpoints).
    #[serde(skip_serializing_if = "is_zero")]
    shared_bytes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Serialize)]
struct SplitView {
    operator: String,
    split: String,
    position: serde_json::Value,
    watermark: Option<i64>,
}

impl From<&Manifest> for InspectView {
    fn from(m: &Manifest) -> Self {
        let operators = m
            .operators
            .iter()
            .map(|op| {
                let states: Vec<StateView> = op
                    .states
                    .iter()
                    .map(|s| StateView {
                        name: s.name.clone(),
                        kind: s.kind.as_str(),
                        key_type: s.key_type.clone(),
                        namespace_type: s.namespace_type.clone(),
                        user_key_type: s.user_key_type.clone(),
                        value_type: s.value_type.clone(),
                        redistribution: s.redistribution.map(|r| r.as_str()),
                        shards: s.shards.len(),
                        rows: s.rows(),
                        bytes: s.bytes(),
                        delta_layers: s
                            .shards
                            .iter()
                            .filter(|sh| sh.is_delta())
                            .map(|sh| sh.layer)
                            .collect::<std::collections::BTreeSet<_>>()
                            .len() as u64,
                        delta_shards: s.shards.iter().filter(|sh| sh.is_delta()).count() as u64,
                        shared_bytes: s
                            .shards
                            .iter()
                            .filter(|sh| sh.sibling.is_some())
                            .map(|sh| sh.bytes)
                            .sum(),
                    })
                    .collect();
                OperatorView {
                    uid: op.uid.clone(),
                    name: op.name.clone(),
                    parallelism: op.parallelism,
                    rows: states.iter().map(|s| s.rows).sum(),
                    bytes: states.iter().map(|s| s.bytes).sum(),
                    states,
                }
            })
            .collect();
        let source_splits = m
            .operators
            .iter()
            .flat_map(|op| {
                op.source.iter().flat_map(move |src| {
                    src.splits.iter().map(move |s| SplitView {
                        operator: op.uid.clone(),
                        split: s.id.clone(),
                        position: s.position.clone(),
                        watermark: s.watermark,
                    })
                })
            })
            .collect();
        InspectView {
            id: m.id.clone(),
            kind: m.kind.as_str(),
            created_at: m.created_at.clone(),
            format_version: m.version.to_string(),
            reader_features: m.reader_features.clone(),
            writer_features: m.writer_features.clone(),
            extensions: extension_names(m),
            writer: format!("{} {}", m.writer.name, m.writer.version),
            job: JobView {
                name: m.job.name.clone(),
                app_version: m.job.app_version.clone(),
                job_id: m.job.job_id.clone(),
            },
            checkpoint_id: m.checkpoint_id,
            lineage: LineageView {
                operation: m.lineage.operation.clone(),
                parent_id: m.lineage.parent.as_ref().map(|p| p.id.clone()),
                parent_location: m.lineage.parent.as_ref().map(|p| p.location.clone()),
            },
            operators,
            source_splits,
        }
    }
}

/// Every system named in the manifest's extensions, at any level, sorted.
fn extension_names(m: &rewind_savepoint::format::Manifest) -> Vec<String> {
    let mut names: std::collections::BTreeSet<String> = m.extensions.keys().cloned().collect();
    for op in &m.operators {
        names.extend(op.extensions.keys().cloned());
        for st in &op.states {
            names.extend(st.extensions.keys().cloned());
        }
    }
    names.into_iter().collect()
}

fn print_tables(v: &InspectView, out: &mut dyn Write) -> Result<()> {
    let dash = || "-".to_string();
    writeln!(out, "Savepoint   {} ({})", v.id, v.kind)?;
    writeln!(
        out,
        "Created     {} by {}, format {}",
        v.created_at, v.writer, v.format_version
    )?;
    let features = |f: &[String]| {
        if f.is_empty() {
            "none".to_string()
        } else {
            f.join(", ")
        }
    };
    writeln!(
        out,
        "Features    reader: {}; writer: {}",
        features(&v.reader_features),
        features(&v.writer_features)
    )?;
    if !v.extensions.is_empty() {
        let described: Vec<String> = v
            .extensions
            .iter()
            .map(|e| match e.as_str() {
                "flink" => "flink (Flink's ids and serializers, for `rewind export-flink`)".into(),
                other => other.to_string(),
            })
            .collect();
        writeln!(out, "Extensions  {}", described.join(", "))?;
    }
    writeln!(
        out,
        "Job         {} (app version {}, job id {})",
        v.job.name,
        v.job.app_version.clone().unwrap_or_else(dash),
        v.job.job_id.clone().unwrap_or_else(dash)
    )?;
    writeln!(out, "Checkpoint  {}", v.checkpoint_id)?;
    match (&v.lineage.parent_id, &v.lineage.parent_location) {
        (Some(id), Some(loc)) => {
            writeln!(out, "Lineage     {} of {id} at {loc}", v.lineage.operation)?
        }
        _ => writeln!(out, "Lineage     {} (no parent)", v.lineage.operation)?,
    }
    let total_rows: u64 = v.operators.iter().map(|o| o.rows).sum();
    let total_bytes: u64 = v.operators.iter().map(|o| o.bytes).sum();
    writeln!(out, "State       {total_rows} rows, {}", bytes(total_bytes))?;
    let states = || v.operators.iter().flat_map(|o| o.states.iter());
    let shared: u64 = states().map(|s| s.shared_bytes).sum();
    let layers = states().map(|s| s.delta_layers).max().unwrap_or(0);
    if shared > 0 || layers > 0 {
        writeln!(
            out,
            "Incremental {} in files of earlier checkpoints, {} of own files; up to {layers} delta layers over a state's base (rows count every layer's rows; `rewind compact` writes a self-contained copy)",
            bytes(shared),
            bytes(total_bytes - shared),
        )?;
    }

    writeln!(out, "\nOperators")?;
    let mut ops = table(&[
        "uid",
        "name",
        "parallelism",
        "state",
        "kind",
        "types",
        "shards",
        "rows",
        "bytes",
    ]);
    for op in &v.operators {
        if op.states.is_empty() {
            ops.add_row(vec![
                op.uid.clone(),
                op.name.clone(),
                op.parallelism.to_string(),
                dash(),
                dash(),
                dash(),
                dash(),
                "0".into(),
                bytes(0),
            ]);
        }
        for (i, s) in op.states.iter().enumerate() {
            let (uid, name, p) = if i == 0 {
                (op.uid.clone(), op.name.clone(), op.parallelism.to_string())
            } else {
                (String::new(), String::new(), String::new())
            };
            ops.add_row(vec![
                uid,
                name,
                p,
                s.name.clone(),
                kind_label(s),
                types_label(s),
                if s.delta_shards > 0 {
                    format!(
                        "{} + {} delta",
                        s.shards as u64 - s.delta_shards,
                        s.delta_shards
                    )
                } else {
                    s.shards.to_string()
                },
                s.rows.to_string(),
                bytes(s.bytes),
            ]);
        }
    }
    writeln!(out, "{ops}")?;

    if !v.source_splits.is_empty() {
        writeln!(out, "\nSource splits")?;
        let mut splits = table(&["operator", "split", "position", "watermark"]);
        for s in &v.source_splits {
            splits.add_row(vec![
                s.operator.clone(),
                s.split.clone(),
                s.position.to_string(),
                s.watermark.map(millis).unwrap_or_else(dash),
            ]);
        }
        writeln!(out, "{splits}")?;
    }
    Ok(())
}

fn kind_label(s: &StateView) -> String {
    match s.redistribution {
        Some(r) => format!("{} ({r})", s.kind),
        None => s.kind.to_string(),
    }
}

fn types_label(s: &StateView) -> String {
    let mut parts = Vec::new();
    if let Some(k) = &s.key_type {
        parts.push(format!("key {k}"));
    }
    if let Some(n) = &s.namespace_type {
        parts.push(format!("namespace {n}"));
    }
    if let Some(u) = &s.user_key_type {
        parts.push(format!("user key {u}"));
    }
    if let Some(v) = &s.value_type {
        parts.push(format!("value {v}"));
    }
    parts.join(", ")
}
