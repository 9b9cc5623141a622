//! `rewind validate`: check every file against the manifest.

use std::io::Write;
use std::sync::Arc;

use anyhow::Result;
use rewind_savepoint::{ValidateOptions, read_manifest, validate};
use serde::Serialize;

use super::savepoint_location;
use crate::cli::ValidateArgs;
use crate::output::{bytes, progress, table};

/// The `validate --json` document (docs/json.md).
#[derive(Serialize)]
struct ValidateView<'a> {
    valid: bool,
    id: &'a str,
    shards_checked: usize,
    bytes_checked: u64,
    problems: Vec<ProblemView<'a>>,
}

#[derive(Serialize)]
struct ProblemView<'a> {
    kind: rewind_savepoint::ProblemKind,
    path: Option<&'a str>,
    operator: Option<&'a str>,
    state: Option<&'a str>,
    message: &'a str,
}

pub async fn run(args: ValidateArgs, out: &mut dyn Write) -> Result<u8> {
    let location = savepoint_location(&args.savepoint).await?;
    if !args.json && super::is_flink(&super::location(&args.savepoint)?).await {
        // Reaching here means every handle, header and entry decoded.
        writeln!(
            out,
            "Flink savepoint {}: every state handle, serializer and entry decoded; its import checks as follows",
            args.savepoint
        )?;
    }
    // The manifest is read twice (once here for the progress total): it is small.
    let total: u64 = read_manifest(&location)
        .await?
        .shards()
        .map(|(_, _, s)| s.bytes)
        .sum();
    let bar = progress(total, "bytes");
    let tick = bar.clone();
    let options = ValidateOptions {
        deep: args.deep,
        progress: Some(Arc::new(move |n| tick.inc(n))),
    };
    let report = validate(&location, options).await?;
    bar.finish_and_clear();
    if args.json {
        let view = ValidateView {
            valid: report.is_valid(),
            id: &report.manifest.id,
            shards_checked: report.shards_checked,
            bytes_checked: report.bytes_checked,
            problems: report
                .problems
                .iter()
                .map(|p| ProblemView {
                    kind: p.kind,
                    path: p.path.as_deref(),
                    operator: p.operator.as_deref(),
                    state: p.state.as_deref(),
                    message: &p.message,
                })
                .collect(),
        };
        crate::json::write_document(out, &view)?;
    } else if report.is_valid() {
        writeln!(
            out,
            "valid: savepoint {}, {} shards, {} checked",
            report.manifest.id,
            report.shards_checked,
            bytes(report.bytes_checked)
        )?;
    } else {
        writeln!(
            out,
            "INVALID: savepoint {}: {} problems",
            report.manifest.id,
            report.problems.len()
        )?;
        let mut t = table(&["problem", "operator/state", "file", "detail"]);
        for p in &report.problems {
            let owner = match (&p.operator, &p.state) {
                (Some(o), Some(s)) => format!("{o}/{s}"),
                _ => "-".into(),
            };
            let kind = serde_json::to_value(p.kind)?
                .as_str()
                .unwrap_or_default()
                .to_string();
            t.add_row(vec![
                kind,
                owner,
                p.path.clone().unwrap_or_else(|| "-".into()),
                p.message.clone(),
            ]);
        }
        writeln!(out, "{t}")?;
    }
    Ok(if report.is_valid() {
        crate::EXIT_OK
    } else {
        crate::EXIT_FINDING
    })
}
