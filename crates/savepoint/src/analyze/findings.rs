//! The few things worth a look in an analysis, each with the number behind it.

use serde::Serialize;

use super::StateAnalysis;

/// A key holding at least this many times the mean size, and at least `HOT_MIN`, is hot.
const HOT_FACTOR: f64 = 10.0;
const HOT_MIN: u64 = 100;
/// Largest subtask over the mean from which the spread is reported, for states of at
/// least `SKEW_ROWS` rows (a handful of rows is never even).
const SKEW: f64 = 1.5;
const SKEW_ROWS: u64 = 100;
/// A growth is reported when at least this share of keys grew and the mean size grew by
/// at least `GROWTH_FACTOR`, or the rows did.
const KEYS_GREW: f64 = 0.5;
const GROWTH_FACTOR: f64 = 1.5;

/// Delta layers holding at least this many times their base's rows, and at least
/// `DELTA_ROWS`, are reported: every restore and read goes through them all. Rows, not bytes: a
/// small layer's bytes are mostly its Parquet footer.
const DELTAS_OVER_BASE: f64 = 1.0;
const DELTA_ROWS: u64 = 100;

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// `growth`, `hot_key`, `skew`, `overdue_timers` or `delta_layers`.
    pub kind: &'static str,
    /// Operator uid.
    pub operator: String,
    /// State name.
    pub state: String,
    /// The number behind it (growth factor, key size, largest subtask's share, timers,
    /// delta layers' rows over the base's).
    pub value: f64,
    /// What it is, in plain words.
    pub message: String,
}

impl Finding {
    fn of(s: &StateAnalysis, kind: &'static str, value: f64, message: String) -> Finding {
        Finding {
            kind,
            operator: s.operator.clone(),
            state: s.state.clone(),
            value,
            message: format!("`{}/{}`: {message}", s.operator, s.state),
        }
    }
}

fn unit_words(unit: Option<&str>) -> &'static str {
    match unit {
        Some("elements") => "list length",
        Some("entries") => "map entries",
        Some("timers") => "timers per key",
        _ => "value bytes",
    }
}

fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

/// " in 2 h": how long the growth took, when the commit times say; nothing under a
/// minute (savepoints taken seconds apart say nothing about a rate).
fn over(elapsed: Option<f64>) -> String {
    match elapsed {
        Some(s) if s >= 2.0 * 86_400.0 => format!(" in {:.0} days", s / 86_400.0),
        Some(s) if s >= 2.0 * 3_600.0 => format!(" in {:.0} h", s / 3_600.0),
        Some(s) if s >= 60.0 => format!(" in {:.0} min", s / 60.0),
        _ => String::new(),
    }
}

pub(crate) fn findings(states: &[StateAnalysis], elapsed: Option<f64>) -> Vec<Finding> {
    let mut out = Vec::new();
    let over = over(elapsed);
    for s in states {
        let finding = |kind, value, message: String| Finding::of(s, kind, value, message);
        if let Some(g) = &s.growth {
            if let (Some(now), Some(then)) = (s.mean_size, g.mean_size_before) {
                if g.keys_grew >= KEYS_GREW && then > 0.0 && now >= then * GROWTH_FACTOR {
                    out.push(finding(
                        "growth",
                        now / then,
                        format!(
                            "{} of keys grew, mean {} {then:.1} -> {now:.1}{over}; it looks unbounded (a list nobody trims, a map without TTL?)",
                            pct(g.keys_grew),
                            unit_words(s.size_unit)
                        ),
                    ));
                    continue;
                }
            }
            if g.rows_before > 0 && s.rows as f64 >= g.rows_before as f64 * GROWTH_FACTOR {
                out.push(finding(
                    "growth",
                    s.rows as f64 / g.rows_before as f64,
                    format!(
                        "rows {} -> {} ({:.1}x){over}, bytes {} -> {}",
                        g.rows_before,
                        s.rows,
                        s.rows as f64 / g.rows_before as f64,
                        g.bytes_before,
                        s.bytes
                    ),
                ));
            }
        }
    }
    for s in states {
        let finding = |kind, value, message: String| Finding::of(s, kind, value, message);
        if let (Some(top), Some(mean), Some(keys)) = (s.top_keys.first(), s.mean_size, s.keys) {
            if keys >= 10 && top.size >= HOT_MIN && top.size as f64 >= HOT_FACTOR * mean {
                out.push(finding(
                    "hot_key",
                    top.size as f64,
                    format!(
                        "key {} holds {} {}, {:.0}x the mean of {mean:.1}",
                        top.key,
                        top.size,
                        s.size_unit.unwrap_or("bytes"),
                        top.size as f64 / mean
                    ),
                ));
            }
        }
        if s.subtasks.len() > 1 && s.rows >= SKEW_ROWS && s.skew >= SKEW {
            let (largest, rows) = s
                .subtasks
                .iter()
                .max_by_key(|t| t.rows)
                .map(|t| (t.subtask, t.rows))
                .unwrap_or((0, 0));
            let share = rows as f64 / s.rows as f64;
            let slice_share = s.slices.iter().copied().max().unwrap_or(0) as f64 / s.rows as f64;
            let advice = if s.slices.is_empty() {
                String::new()
            } else if slice_share > 0.5 {
                format!(
                    "; one of 64 hash slices holds {}: more subtasks will not spread it (hot keys)",
                    pct(slice_share)
                )
            } else {
                "; its keys spread over the hash space: rescaling to more subtasks spreads it"
                    .into()
            };
            out.push(finding(
                "skew",
                share,
                format!(
                    "subtask {largest} holds {} of the rows (largest/mean {:.1} over {} subtasks){advice}",
                    pct(share),
                    s.skew,
                    s.subtasks.len()
                ),
            ));
        }
        let base: u64 = s
            .layers
            .iter()
            .filter(|l| l.layer == 0)
            .map(|l| l.rows)
            .sum();
        let deltas = s.layers.iter().filter(|l| l.layer > 0).count();
        let delta_rows: u64 = s
            .layers
            .iter()
            .filter(|l| l.layer > 0)
            .map(|l| l.rows)
            .sum();
        if delta_rows >= DELTA_ROWS && delta_rows as f64 >= DELTAS_OVER_BASE * base as f64 {
            let ratio = delta_rows as f64 / base.max(1) as f64;
            let layers = if deltas == 1 {
                "1 delta layer holds".to_string()
            } else {
                format!("{deltas} delta layers hold")
            };
            let over = if base == 0 {
                format!("{delta_rows} rows over an empty base")
            } else {
                format!("{ratio:.1}x the base's rows ({delta_rows} over {base})")
            };
            out.push(finding(
                "delta_layers",
                ratio,
                format!(
                    "{layers} {over}: every restore and read goes through them all (`rewind compact` writes one base; the engine compacts after `--max-delta-layers` layers or once they hold half as many rows as the base)"
                ),
            ));
        }
        if let Some(t) = &s.timers {
            if t.behind_watermark > 0 {
                out.push(finding(
                    "overdue_timers",
                    t.behind_watermark as f64,
                    format!(
                        "{} event-time timers are at or before the recorded watermark {}: due, not fired",
                        t.behind_watermark,
                        t.watermark.unwrap_or_default()
                    ),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{findings, over};
    use crate::analyze::{Layer, StateAnalysis};

    fn layered(rows: &[u64]) -> StateAnalysis {
        StateAnalysis {
            operator: "counts".into(),
            state: "count".into(),
            kind: "value".into(),
            rows: rows[0],
            bytes: 0,
            keys: None,
            bytes_per_key: None,
            columns: Vec::new(),
            subtasks: Vec::new(),
            skew: 1.0,
            slices: Vec::new(),
            slice_skew: 1.0,
            size_unit: None,
            mean_size: None,
            sizes: Vec::new(),
            top_keys: Vec::new(),
            fields: Vec::new(),
            timers: None,
            windows: Vec::new(),
            growth: None,
            layers: rows
                .iter()
                .enumerate()
                .map(|(i, r)| Layer {
                    layer: i as u32,
                    shards: 1,
                    rows: *r,
                    bytes: 1000,
                    shared_bytes: 0,
                })
                .collect(),
        }
    }

    #[test]
    fn delta_layers_outgrowing_their_base_are_a_finding() {
        let found = findings(&[layered(&[100, 50, 50, 50])], None);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].kind, found[0].value), ("delta_layers", 1.5));
        assert!(
            found[0].message.starts_with(
                "`counts/count`: 3 delta layers hold 1.5x the base's rows (150 over 100)"
            ),
            "{}",
            found[0].message
        );
        // Under the base's rows, or too few rows to matter (footers, not rows).
        assert!(findings(&[layered(&[100, 40, 40])], None).is_empty());
        assert!(findings(&[layered(&[10, 30, 30])], None).is_empty());
        let empty_base = findings(&[layered(&[0, 120])], None);
        assert!(
            empty_base[0]
                .message
                .starts_with("`counts/count`: 1 delta layer holds 120 rows over an empty base"),
            "{}",
            empty_base[0].message
        );
    }

    #[test]
    fn growth_says_how_long_it_took() {
        assert_eq!(over(Some(7_200.0)), " in 2 h");
        assert_eq!(over(Some(3.0 * 86_400.0)), " in 3 days");
        assert_eq!(over(Some(600.0)), " in 10 min");
        assert_eq!(over(Some(59.0)), "");
        assert_eq!(over(None), "");
    }
}
