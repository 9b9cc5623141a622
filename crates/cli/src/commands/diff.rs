//! `rewind diff`: what differs between two savepoints.

use std::io::Write;

use anyhow::Result;
use rewind_savepoint::{
    DiffOptions, DiffReport, RowChange, RowChangeKind, StateDiff, StructureChange, diff,
};
use serde::Serialize;

use super::open_savepoint;
use crate::cli::DiffArgs;
use crate::json;
use crate::output::table;

pub async fn run(args: DiffArgs, out: &mut dyn Write) -> Result<u8> {
    let a = open_savepoint(&args.a).await?;
    let b = open_savepoint(&args.b).await?;
    let options = DiffOptions {
        operator: args.operator.clone(),
        state: args.state.clone(),
        examples: if args.stat { 0 } else { args.examples },
    };
    let report = diff(&a, &b, &options).await?;
    if args.json {
        print_json(&report, out)?;
    } else {
        print_tables(&report, out)?;
    }
    Ok(if report.is_identical() {
        crate::EXIT_OK
    } else {
        crate::EXIT_FINDING
    })
}

/// One line of `diff --json` (docs/json.md): its `type`, then the fields of that type.
#[derive(Serialize)]
struct Line<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    body: &'a T,
}

#[derive(Serialize)]
struct RowLine<'a> {
    operator: &'a str,
    state: &'a str,
    kind: &'static str,
    key: &'a serde_json::Value,
    a: Option<&'a serde_json::Value>,
    b: Option<&'a serde_json::Value>,
}

impl<'a> RowLine<'a> {
    fn new(s: &'a StateDiff, change: &'a RowChange) -> Self {
        RowLine {
            operator: &s.uid,
            state: &s.state,
            kind: match change.kind {
                RowChangeKind::Added => "added",
                RowChangeKind::Removed => "removed",
                RowChangeKind::Changed => "changed",
            },
            key: &change.key,
            a: change.a.as_ref(),
            b: change.b.as_ref(),
        }
    }
}

#[derive(Serialize)]
struct Summary<'a> {
    identical: bool,
    structure_changes: usize,
    states: Vec<StateSummary<'a>>,
}

#[derive(Serialize)]
struct StateSummary<'a> {
    operator: &'a str,
    state: &'a str,
    only_in_a: u64,
    only_in_b: u64,
    changed: u64,
    same: u64,
    skipped_rows: u64,
}

fn print_json(report: &DiffReport, out: &mut dyn Write) -> Result<()> {
    for change in &report.structure {
        // The library's `StructureChange` is the layout of a structure line.
        json::write_line(
            out,
            &Line {
                kind: "structure",
                body: change,
            },
        )?;
    }
    for s in &report.states {
        for e in &s.examples {
            json::write_line(
                out,
                &Line {
                    kind: "row",
                    body: &RowLine::new(s, e),
                },
            )?;
        }
    }
    let summary = Summary {
        identical: report.is_identical(),
        structure_changes: report.structure.len(),
        states: report
            .states
            .iter()
            .map(|s| StateSummary {
                operator: &s.uid,
                state: &s.state,
                only_in_a: s.only_in_a,
                only_in_b: s.only_in_b,
                changed: s.changed,
                same: s.same,
                skipped_rows: s.skipped_rows,
            })
            .collect(),
    };
    json::write_line(
        out,
        &Line {
            kind: "summary",
            body: &summary,
        },
    )?;
    Ok(())
}

fn describe(change: &StructureChange) -> (String, String, String) {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let ms = |v: &Option<i64>| v.map(|x| x.to_string()).unwrap_or_else(|| "-".into());
    match change {
        StructureChange::JobChanged { field, a, b } => (
            "job changed".into(),
            "-".into(),
            format!("{field}: {} -> {}", opt(a), opt(b)),
        ),
        StructureChange::OperatorAdded { uid } => {
            ("operator added".into(), uid.clone(), String::new())
        }
        StructureChange::OperatorRemoved { uid } => {
            ("operator removed".into(), uid.clone(), String::new())
        }
        StructureChange::ParallelismChanged { uid, a, b } => (
            "parallelism (layout only)".into(),
            uid.clone(),
            format!("{a} -> {b}"),
        ),
        StructureChange::StateAdded { uid, state } => {
            ("state added".into(), uid.clone(), state.clone())
        }
        StructureChange::StateRemoved { uid, state } => {
            ("state removed".into(), uid.clone(), state.clone())
        }
        StructureChange::SchemaChanged {
            uid,
            state,
            column,
            a,
            b,
        } => (
            "schema changed".into(),
            uid.clone(),
            format!("{state}.{column}: {} -> {}", opt(a), opt(b)),
        ),
        StructureChange::SplitAdded { uid, split } => {
            ("split added".into(), uid.clone(), split.clone())
        }
        StructureChange::SplitRemoved { uid, split } => {
            ("split removed".into(), uid.clone(), split.clone())
        }
        StructureChange::PositionMoved {
            uid,
            split,
            a,
            b,
            delta,
        } => {
            let by = delta.map(|d| format!(" ({d:+})")).unwrap_or_default();
            (
                "position moved".into(),
                uid.clone(),
                format!("{split}: {a} -> {b}{by}"),
            )
        }
        StructureChange::WatermarkMoved {
            uid,
            split,
            a,
            b,
            delta_ms,
        } => {
            let by = delta_ms.map(|d| format!(" ({d:+} ms)")).unwrap_or_default();
            (
                "watermark moved".into(),
                uid.clone(),
                format!("{split}: {} -> {}{by}", ms(a), ms(b)),
            )
        }
        _ => ("other".into(), "-".into(), format!("{change:?}")),
    }
}

fn print_tables(report: &DiffReport, out: &mut dyn Write) -> Result<()> {
    if report.is_identical() {
        writeln!(out, "identical content")?;
    }
    if !report.structure.is_empty() {
        writeln!(out, "Structure")?;
        let mut t = table(&["change", "operator", "detail"]);
        for c in &report.structure {
            let (what, uid, detail) = describe(c);
            t.add_row(vec![what, uid, detail]);
        }
        writeln!(out, "{t}")?;
    }
    if !report.states.is_empty() {
        writeln!(out, "State data")?;
        let mut t = table(&[
            "operator/state",
            "only in A",
            "only in B",
            "changed",
            "same",
            "in identical shards",
        ]);
        for s in &report.states {
            t.add_row(vec![
                format!("{}/{}", s.uid, s.state),
                s.only_in_a.to_string(),
                s.only_in_b.to_string(),
                s.changed.to_string(),
                s.same.to_string(),
                s.skipped_rows.to_string(),
            ]);
        }
        writeln!(out, "{t}")?;
    }
    let examples: Vec<_> = report
        .states
        .iter()
        .flat_map(|s| s.examples.iter().map(move |e| (s, e)))
        .collect();
    if !examples.is_empty() {
        writeln!(out, "Examples")?;
        let mut t = table(&["operator/state", "", "key", "A", "B"]);
        let show = |v: &Option<serde_json::Value>| {
            v.as_ref()
                .map(|v| v.to_string())
                .unwrap_or_else(|| "-".into())
        };
        for (s, e) in examples {
            let sign = match e.kind {
                RowChangeKind::Added => "+",
                RowChangeKind::Removed => "-",
                RowChangeKind::Changed => "~",
            };
            t.add_row(vec![
                format!("{}/{}", s.uid, s.state),
                sign.into(),
                e.key.to_string(),
                show(&e.a),
                show(&e.b),
            ]);
        }
        writeln!(out, "{t}")?;
    }
    Ok(())
}
