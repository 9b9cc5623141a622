//! `rewind analyze`: sizes, skew, hot keys, timers and growth of a savepoint's state, as
//! terminal tables, JSON or a self-contained HTML report (`html.rs`).

mod html;

use std::io::Write;

use anyhow::Result;
use rewind_savepoint::{Analysis, AnalyzeOptions, Layer, StateAnalysis, analyze};

use super::open_savepoint;
use crate::cli::AnalyzeArgs;
use crate::output::{bytes, table};

pub async fn run(args: AnalyzeArgs, out: &mut dyn Write) -> Result<u8> {
    let source = open_savepoint(&args.savepoint).await?;
    let baseline = match &args.baseline {
        Some(b) => Some(open_savepoint(b).await?),
        None => None,
    };
    let options = AnalyzeOptions {
        top: args.top,
        operator: args.operator.clone(),
        state: args.state.clone(),
    };
    let analysis = analyze(&source, baseline.as_ref(), &options).await?;
    if let Some(path) = &args.html {
        let page = html::report(&analysis, &args.savepoint, args.baseline.as_deref());
        std::fs::write(path, page)
            .map_err(|e| anyhow::anyhow!("{}: cannot write the report: {e}", path.display()))?;
    }
    if args.json {
        // The library's `Analysis` is the layout (docs/json.md), not a view of its own.
        crate::json::write_document(out, &analysis)?;
    } else {
        print(&analysis, out)?;
    }
    Ok(crate::EXIT_OK)
}

/// The header of the layers table of an incremental checkpoint's state.
const LAYER_HEADER: [&str; 5] = [
    "layer",
    "shards",
    "rows stored",
    "bytes",
    "in earlier checkpoints",
];

/// The rows of the layers table (see [`LAYER_HEADER`]).
fn layer_rows(layers: &[Layer]) -> Vec<Vec<String>> {
    layers
        .iter()
        .map(|l| {
            vec![
                match l.layer {
                    0 => "base".into(),
                    n => format!("delta {n}"),
                },
                l.shards.to_string(),
                l.rows.to_string(),
                bytes(l.bytes),
                bytes(l.shared_bytes),
            ]
        })
        .collect()
}

fn num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

fn print(a: &Analysis, out: &mut dyn Write) -> Result<()> {
    match &a.baseline_id {
        Some(b) => writeln!(out, "Savepoint {} against baseline {b}", a.id)?,
        None => writeln!(out, "Savepoint {}", a.id)?,
    }
    writeln!(out, "\nFindings")?;
    if a.findings.is_empty() {
        writeln!(out, "  none")?;
    }
    for f in &a.findings {
        writeln!(out, "  - {}", f.message)?;
    }
    let growth = a.baseline_id.is_some();
    let mut header = vec![
        "operator/state",
        "kind",
        "rows",
        "bytes",
        "keys",
        "bytes/key",
        "skew",
        "mean size",
    ];
    if growth {
        header.extend(["rows before", "bytes before", "keys grew"]);
    }
    let mut t = table(&header);
    for s in &a.states {
        let mut row = vec![
            format!("{}/{}", s.operator, s.state),
            s.kind.clone(),
            s.rows.to_string(),
            bytes(s.bytes),
            s.keys.map_or("-".into(), |k| k.to_string()),
            s.bytes_per_key.map_or("-".into(), |b| format!("{b:.1}")),
            format!("{:.2}", s.skew),
            s.mean_size.map_or("-".into(), |m| {
                format!("{m:.1} {}", s.size_unit.unwrap_or_default())
            }),
        ];
        if growth {
            match &s.growth {
                Some(g) => row.extend([
                    g.rows_before.to_string(),
                    bytes(g.bytes_before),
                    format!("{:.0}%", g.keys_grew * 100.0),
                ]),
                None => row.extend(["-".into(), "-".into(), "-".into()]),
            }
        }
        t.add_row(row);
    }
    writeln!(out, "\nStates\n{t}")?;
    for s in &a.states {
        state(s, out)?;
    }
    Ok(())
}

fn state(s: &StateAnalysis, out: &mut dyn Write) -> Result<()> {
    writeln!(out, "\n== {}/{} ({})", s.operator, s.state, s.kind)?;
    let columns: Vec<String> = s
        .columns
        .iter()
        .map(|c| format!("{} {}", c.column, bytes(c.bytes)))
        .collect();
    writeln!(out, "Bytes by column  {}", columns.join(", "))?;
    if !s.layers.is_empty() {
        let mut t = table(&LAYER_HEADER);
        for row in layer_rows(&s.layers) {
            t.add_row(row);
        }
        writeln!(
            out,
            "Layers (an incremental checkpoint; rows above are merged)\n{t}"
        )?;
    }
    let before = s.growth.as_ref().map(|g| &g.subtask_rows_before);
    let mut t = table(if before.is_some() {
        &["subtask", "rows", "bytes", "rows before"]
    } else {
        &["subtask", "rows", "bytes"]
    });
    for sub in &s.subtasks {
        let mut row = vec![
            sub.subtask.to_string(),
            sub.rows.to_string(),
            bytes(sub.bytes),
        ];
        if let Some(b) = before {
            row.push(
                b.get(sub.subtask as usize)
                    .map_or("-".into(), u64::to_string),
            );
        }
        t.add_row(row);
    }
    writeln!(out, "Subtasks (skew {:.2})\n{t}", s.skew)?;
    if !s.slices.is_empty() {
        let max = s.slices.iter().copied().max().unwrap_or(0);
        let share = if s.rows > 0 {
            max as f64 / s.rows as f64
        } else {
            0.0
        };
        writeln!(
            out,
            "Hash slices      64 slices, largest/mean {:.2}, the largest holds {:.1}% of the rows",
            s.slice_skew,
            share * 100.0
        )?;
    }
    if !s.sizes.is_empty() {
        let buckets: Vec<String> = s
            .sizes
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| {
                let (lo, hi) = (if i == 0 { 0 } else { 1u64 << i }, (1u64 << (i + 1)) - 1);
                format!("{lo}-{hi}: {n}")
            })
            .collect();
        writeln!(
            out,
            "Keys by size     ({}) {}",
            s.size_unit.unwrap_or_default(),
            buckets.join(", ")
        )?;
    }
    if !s.top_keys.is_empty() {
        let with_before = s.top_keys.iter().any(|k| k.before.is_some());
        let mut t = table(if with_before {
            &["largest keys", "size", "before"]
        } else {
            &["largest keys", "size"]
        });
        for k in &s.top_keys {
            let mut row = vec![k.key.clone(), k.size.to_string()];
            if with_before {
                row.push(k.before.map_or("-".into(), |b| b.to_string()));
            }
            t.add_row(row);
        }
        writeln!(out, "{t}")?;
    }
    if let Some(g) = &s.growth {
        if !g.top_growth.is_empty() {
            let mut t = table(&["grew most", "size", "before"]);
            for k in &g.top_growth {
                t.add_row(vec![
                    k.key.clone(),
                    k.size.to_string(),
                    k.before.map_or("-".into(), |b| b.to_string()),
                ]);
            }
            writeln!(out, "{t}")?;
        }
    }
    if !s.fields.is_empty() {
        let mut t = table(&[
            "field",
            "type",
            "nulls",
            "min",
            "max",
            "mean",
            "histogram (10 buckets, min..max)",
        ]);
        for f in &s.fields {
            t.add_row(vec![
                f.field.clone(),
                f.data_type.clone(),
                f.nulls.to_string(),
                f.min.map_or("-".into(), num),
                f.max.map_or("-".into(), num),
                f.mean.map_or("-".into(), num),
                f.histogram
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
            ]);
        }
        writeln!(out, "{t}")?;
    }
    if !s.windows.is_empty() {
        let starts: Vec<String> = s
            .windows
            .iter()
            .map(|w| format!("{}: {}", w.start, w.rows))
            .collect();
        writeln!(out, "Windows by start {}", starts.join(", "))?;
    }
    if let Some(t) = &s.timers {
        writeln!(
            out,
            "Timers           {} event time, {} processing time; earliest {}, latest {}; watermark {}: {} behind it",
            t.event_time,
            t.processing_time,
            t.earliest.map_or("-".into(), |v| v.to_string()),
            t.latest.map_or("-".into(), |v| v.to_string()),
            t.watermark.map_or("none".into(), |v| v.to_string()),
            t.behind_watermark
        )?;
    }
    Ok(())
}
