//! The analysis as one self-contained HTML page: inline styles, charts as plain SVG, no
//! script and no request to anywhere, readable on a laptop and printable.

use std::fmt::Write as _;

use rewind_savepoint::{Analysis, KeySize, StateAnalysis};

use crate::output::bytes;

/// Text made safe for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1em; margin: 1.2em 0 0.3em; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { padding: 2px 10px; border-bottom: 1px solid #eee; text-align: right; }
td:first-child, th:first-child { text-align: left; } code { background: #f4f4f4; padding: 0 3px; }
.findings li { margin: 0.3em 0; } .finding-growth { color: #a33; } .finding-hot_key { color: #b60; }
.finding-skew { color: #36a; } .finding-overdue_timers { color: #639; } .finding-delta_layers { color: #266; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5em; } figure { margin: 0; } figcaption { font-size: 0.85em; color: #555; }
svg text { font: 10px system-ui, sans-serif; fill: #444; }
@media print { body { max-width: none; margin: 0; } h2 { page-break-before: auto; } .state { page-break-inside: avoid; } }
";

/// A bar chart of `values` (and, lighter, `before` beside each bar) with `labels` under
/// some bars.
fn bars(values: &[u64], before: Option<&[u64]>, labels: &[String], caption: &str) -> String {
    let (w, h, pad) = (
        (values.len().max(1) * if before.is_some() { 22 } else { 14 }).clamp(160, 700) as f64,
        120.0,
        18.0,
    );
    let max = values
        .iter()
        .chain(before.unwrap_or(&[]).iter())
        .copied()
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let slot = w / values.len().max(1) as f64;
    let mut svg = format!(
        "<figure><svg width=\"{w}\" height=\"{}\" role=\"img\" aria-label=\"{}\">",
        h + pad,
        esc(caption)
    );
    for (i, v) in values.iter().enumerate() {
        let x = i as f64 * slot;
        let bar = |value: u64, dx: f64, width: f64, color: &str| {
            let bh = value as f64 / max * h;
            format!(
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{color}\"><title>{value}</title></rect>",
                x + dx,
                h - bh,
                width
            )
        };
        match before {
            Some(b) => {
                svg.push_str(&bar(
                    b.get(i).copied().unwrap_or(0),
                    1.0,
                    slot / 2.0 - 1.0,
                    "#bbb",
                ));
                svg.push_str(&bar(*v, slot / 2.0, slot / 2.0 - 1.0, "#4a7ab5"));
            }
            None => svg.push_str(&bar(*v, 1.0, (slot - 2.0).max(1.0), "#4a7ab5")),
        }
        if let Some(label) = labels.get(i).filter(|l| !l.is_empty()) {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x + slot / 2.0,
                h + 12.0,
                esc(label)
            );
        }
    }
    let _ = write!(
        svg,
        "</svg><figcaption>{}</figcaption></figure>",
        esc(caption)
    );
    svg
}

fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut t = String::from("<table><tr>");
    for h in header {
        let _ = write!(t, "<th>{}</th>", esc(h));
    }
    t.push_str("</tr>");
    for r in rows {
        t.push_str("<tr>");
        for c in r {
            let _ = write!(t, "<td>{}</td>", esc(c));
        }
        t.push_str("</tr>");
    }
    t.push_str("</table>");
    t
}

/// Key, size and size in the baseline, per key.
fn key_rows(keys: &[KeySize]) -> Vec<Vec<String>> {
    keys.iter()
        .map(|k| {
            vec![
                k.key.clone(),
                k.size.to_string(),
                k.before.map_or("-".into(), |b| b.to_string()),
            ]
        })
        .collect()
}

fn state(s: &StateAnalysis) -> String {
    let mut out = format!(
        "<section class=\"state\"><h3>{}/{} <small>({}, {} rows, {})</small></h3>",
        esc(&s.operator),
        esc(&s.state),
        esc(&s.kind),
        s.rows,
        esc(&bytes(s.bytes))
    );
    out.push_str("<div class=\"charts\">");
    let rows: Vec<u64> = s.subtasks.iter().map(|t| t.rows).collect();
    let labels: Vec<String> = s.subtasks.iter().map(|t| t.subtask.to_string()).collect();
    let before = s.growth.as_ref().map(|g| g.subtask_rows_before.as_slice());
    out.push_str(&bars(
        &rows,
        before,
        &labels,
        &format!(
            "rows per subtask (skew {:.2}){}",
            s.skew,
            if before.is_some() {
                "; grey: baseline"
            } else {
                ""
            }
        ),
    ));
    if !s.slices.is_empty() {
        let labels: Vec<String> = (0..s.slices.len())
            .map(|i| {
                if i % 16 == 0 {
                    format!("{:#x}..", i / 4)
                } else {
                    String::new()
                }
            })
            .collect();
        out.push_str(&bars(
            &s.slices,
            None,
            &labels,
            &format!(
                "rows per 1/64 of the hash space (largest/mean {:.2})",
                s.slice_skew
            ),
        ));
    }
    if !s.sizes.is_empty() {
        let labels: Vec<String> = (0..s.sizes.len())
            .map(|i| {
                if i == 0 {
                    "0-1".into()
                } else {
                    format!("{}", 1u64 << i)
                }
            })
            .collect();
        out.push_str(&bars(
            &s.sizes,
            None,
            &labels,
            &format!(
                "keys by size ({}, powers of two)",
                s.size_unit.unwrap_or_default()
            ),
        ));
    }
    for f in s.fields.iter().filter(|f| !f.histogram.is_empty()) {
        out.push_str(&bars(
            &f.histogram,
            None,
            &[],
            &format!(
                "{}: 10 buckets from {} to {}",
                f.field,
                f.min.unwrap_or_default(),
                f.max.unwrap_or_default()
            ),
        ));
    }
    out.push_str("</div>");
    let columns: Vec<Vec<String>> = s
        .columns
        .iter()
        .map(|c| vec![c.column.clone(), bytes(c.bytes)])
        .collect();
    out.push_str(&table(&["column", "bytes"], &columns));
    if !s.layers.is_empty() {
        out.push_str(&table(&super::LAYER_HEADER, &super::layer_rows(&s.layers)));
    }
    if !s.top_keys.is_empty() {
        out.push_str(&table(
            &["largest keys", s.size_unit.unwrap_or("size"), "baseline"],
            &key_rows(&s.top_keys),
        ));
    }
    if let Some(g) = s.growth.as_ref().filter(|g| !g.top_growth.is_empty()) {
        out.push_str(&table(
            &["grew most", "now", "baseline"],
            &key_rows(&g.top_growth),
        ));
    }
    if !s.fields.is_empty() {
        let num = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v}"));
        let rows: Vec<Vec<String>> = s
            .fields
            .iter()
            .map(|f| {
                vec![
                    f.field.clone(),
                    f.data_type.clone(),
                    f.nulls.to_string(),
                    num(f.min),
                    num(f.max),
                    num(f.mean),
                ]
            })
            .collect();
        out.push_str(&table(
            &["field", "type", "nulls", "min", "max", "mean"],
            &rows,
        ));
    }
    if !s.windows.is_empty() {
        let rows: Vec<Vec<String>> = s
            .windows
            .iter()
            .map(|w| vec![w.start.to_string(), w.rows.to_string()])
            .collect();
        out.push_str(&table(&["window start", "rows"], &rows));
    }
    if let Some(t) = &s.timers {
        let _ = write!(
            out,
            "<p>Timers: {} event time, {} processing time; earliest {}, latest {}; {} behind the watermark {}.</p>",
            t.event_time,
            t.processing_time,
            t.earliest.map_or("-".into(), |v| v.to_string()),
            t.latest.map_or("-".into(), |v| v.to_string()),
            t.behind_watermark,
            t.watermark
                .map_or("(none recorded)".into(), |v| v.to_string())
        );
    }
    out.push_str("</section>");
    out
}

/// The whole page.
pub fn report(a: &Analysis, savepoint: &str, baseline: Option<&str>) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>rewind analyze {}</title><style>{STYLE}</style></head><body>",
        esc(savepoint)
    );
    let _ = write!(
        out,
        "<h1>Savepoint analysis</h1><p><code>{}</code> (id {}){}</p>",
        esc(savepoint),
        esc(&a.id),
        match (baseline, &a.baseline_id) {
            (Some(b), Some(id)) => format!(
                ", against the baseline <code>{}</code> (id {})",
                esc(b),
                esc(id)
            ),
            _ => String::new(),
        }
    );
    out.push_str("<h2 id=\"findings\">Findings</h2><ul class=\"findings\">");
    if a.findings.is_empty() {
        out.push_str("<li>none</li>");
    }
    for f in &a.findings {
        let _ = write!(
            out,
            "<li class=\"finding-{}\">{}</li>",
            f.kind,
            esc(&f.message)
        );
    }
    out.push_str("</ul><h2>Size by operator, state and column</h2>");
    let total: u64 = a.states.iter().map(|s| s.bytes).sum::<u64>().max(1);
    out.push_str("<table><tr><th>state</th><th>kind</th><th>rows</th><th>bytes</th><th>share</th><th></th><th>bytes/key</th><th>by column</th></tr>");
    for s in &a.states {
        let columns: Vec<String> = s
            .columns
            .iter()
            .map(|c| format!("{} {}", c.column, bytes(c.bytes)))
            .collect();
        let share = s.bytes as f64 / total as f64;
        let _ = write!(
            out,
            "<tr><td>{}/{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}%</td><td><svg width=\"120\" height=\"10\"><rect width=\"{:.1}\" height=\"10\" fill=\"#4a7ab5\"></rect></svg></td><td>{}</td><td>{}</td></tr>",
            esc(&s.operator),
            esc(&s.state),
            esc(&s.kind),
            s.rows,
            esc(&bytes(s.bytes)),
            share * 100.0,
            share * 120.0,
            s.bytes_per_key.map_or("-".into(), |b| format!("{b:.1}")),
            esc(&columns.join(", "))
        );
    }
    out.push_str("</table>");
    out.push_str("<h2>States</h2>");
    for s in &a.states {
        out.push_str(&state(s));
    }
    out.push_str("</body></html>\n");
    out
}
