//! Differences in the manifests: job, operators, states, schemas and source positions.

use std::collections::BTreeSet;

use rewind_format::{Manifest, OperatorEntry, SplitEntry, StateEntry, parse_type};
use serde::Serialize;

/// One structural difference between savepoints A and B.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StructureChange {
    /// A job field (`name`, `app_version`, `job_id`) differs.
    JobChanged {
        /// Which field.
        field: String,
        /// A's value.
        a: Option<String>,
        /// B's value.
        b: Option<String>,
    },
    /// An operator only B has.
    OperatorAdded {
        /// Its uid.
        uid: String,
    },
    /// An operator only A has.
    OperatorRemoved {
        /// Its uid.
        uid: String,
    },
    /// An operator's parallelism differs.
    ParallelismChanged {
        /// Operator uid.
        uid: String,
        /// In A.
        a: u32,
        /// In B.
        b: u32,
    },
    /// A state only B has.
    StateAdded {
        /// Operator uid.
        uid: String,
        /// State name.
        state: String,
    },
    /// A state only A has.
    StateRemoved {
        /// Operator uid.
        uid: String,
        /// State name.
        state: String,
    },
    /// A state's kind or a column type differs (struct fields are compared one by one).
    SchemaChanged {
        /// Operator uid.
        uid: String,
        /// State name.
        state: String,
        /// The column (`key`, `value`, ...) or struct field path (`value.count`), or `kind`.
        column: String,
        /// A's type (absent when the field is new).
        a: Option<String>,
        /// B's type (absent when the field was removed).
        b: Option<String>,
    },
    /// A source split only B has.
    SplitAdded {
        /// Operator uid.
        uid: String,
        /// Split id.
        split: String,
    },
    /// A source split only A has.
    SplitRemoved {
        /// Operator uid.
        uid: String,
        /// Split id.
        split: String,
    },
    /// A split's position differs.
    PositionMoved {
        /// Operator uid.
        uid: String,
        /// Split id.
        split: String,
        /// In A.
        a: serde_json::Value,
        /// In B.
        b: serde_json::Value,
        /// B minus A, where both positions have a numeric `offset`.
        delta: Option<i64>,
    },
    /// A split's watermark differs.
    WatermarkMoved {
        /// Operator uid.
        uid: String,
        /// Split id.
        split: String,
        /// In A (milliseconds).
        a: Option<i64>,
        /// In B (milliseconds).
        b: Option<i64>,
        /// B minus A in milliseconds, where both have one.
        delta_ms: Option<i64>,
    },
}

/// The structural differences, in manifest order of A then B.
pub(crate) fn diff_structure(
    a: &Manifest,
    b: &Manifest,
    only_uid: Option<&str>,
) -> Vec<StructureChange> {
    let mut out = Vec::new();
    if only_uid.is_none() {
        let fields = [
            ("name", Some(a.job.name.clone()), Some(b.job.name.clone())),
            (
                "app_version",
                a.job.app_version.clone(),
                b.job.app_version.clone(),
            ),
            ("job_id", a.job.job_id.clone(), b.job.job_id.clone()),
        ];
        for (field, x, y) in fields {
            if x != y {
                out.push(StructureChange::JobChanged {
                    field: field.into(),
                    a: x,
                    b: y,
                });
            }
        }
    }
    let wanted = |uid: &str| only_uid.is_none_or(|u| u == uid);
    for op in a.operators.iter().filter(|o| wanted(&o.uid)) {
        match b.operator(&op.uid) {
            None => out.push(StructureChange::OperatorRemoved {
                uid: op.uid.clone(),
            }),
            Some(other) => diff_operator(op, other, &mut out),
        }
    }
    for op in b.operators.iter().filter(|o| wanted(&o.uid)) {
        if a.operator(&op.uid).is_none() {
            out.push(StructureChange::OperatorAdded {
                uid: op.uid.clone(),
            });
        }
    }
    out
}

fn diff_operator(a: &OperatorEntry, b: &OperatorEntry, out: &mut Vec<StructureChange>) {
    let uid = a.uid.clone();
    if a.parallelism != b.parallelism {
        out.push(StructureChange::ParallelismChanged {
            uid: uid.clone(),
            a: a.parallelism,
            b: b.parallelism,
        });
    }
    for st in &a.states {
        match b.state(&st.name) {
            None => out.push(StructureChange::StateRemoved {
                uid: uid.clone(),
                state: st.name.clone(),
            }),
            Some(other) => diff_schema(&uid, st, other, out),
        }
    }
    for st in &b.states {
        if a.state(&st.name).is_none() {
            out.push(StructureChange::StateAdded {
                uid: uid.clone(),
                state: st.name.clone(),
            });
        }
    }
    let no_splits: Vec<SplitEntry> = Vec::new();
    let sa = a.source.as_ref().map_or(&no_splits, |s| &s.splits);
    let sb = b.source.as_ref().map_or(&no_splits, |s| &s.splits);
    for split in sa {
        match sb.iter().find(|s| s.id == split.id) {
            None => out.push(StructureChange::SplitRemoved {
                uid: uid.clone(),
                split: split.id.clone(),
            }),
            Some(other) => {
                if split.position != other.position {
                    let offset = |p: &serde_json::Value| p.get("offset").and_then(|o| o.as_i64());
                    let delta = offset(&split.position)
                        .zip(offset(&other.position))
                        .map(|(x, y)| y - x);
                    out.push(StructureChange::PositionMoved {
                        uid: uid.clone(),
                        split: split.id.clone(),
                        a: split.position.clone(),
                        b: other.position.clone(),
                        delta,
                    });
                }
                if split.watermark != other.watermark {
                    out.push(StructureChange::WatermarkMoved {
                        uid: uid.clone(),
                        split: split.id.clone(),
                        a: split.watermark,
                        b: other.watermark,
                        delta_ms: split.watermark.zip(other.watermark).map(|(x, y)| y - x),
                    });
                }
            }
        }
    }
    for split in sb {
        if !sa.iter().any(|s| s.id == split.id) {
            out.push(StructureChange::SplitAdded {
                uid: uid.clone(),
                split: split.id.clone(),
            });
        }
    }
}

/// Whether two states have the same kind and column types (then their rows can be compared).
pub(crate) fn same_schema(a: &StateEntry, b: &StateEntry) -> bool {
    a.kind == b.kind
        && a.key_type == b.key_type
        && a.namespace_type == b.namespace_type
        && a.user_key_type == b.user_key_type
        && a.value_type == b.value_type
}

fn diff_schema(uid: &str, a: &StateEntry, b: &StateEntry, out: &mut Vec<StructureChange>) {
    let mut change = |column: String, x: Option<String>, y: Option<String>| {
        out.push(StructureChange::SchemaChanged {
            uid: uid.to_string(),
            state: a.name.clone(),
            column,
            a: x,
            b: y,
        });
    };
    if a.kind != b.kind {
        change(
            "kind".into(),
            Some(a.kind.as_str().into()),
            Some(b.kind.as_str().into()),
        );
        return;
    }
    let columns = [
        ("key", &a.key_type, &b.key_type),
        ("namespace", &a.namespace_type, &b.namespace_type),
        ("user_key", &a.user_key_type, &b.user_key_type),
        ("value", &a.value_type, &b.value_type),
    ];
    for (column, x, y) in columns {
        if x == y {
            continue;
        }
        let fields = |t: &Option<String>| -> Option<Vec<(String, String)>> {
            let dt = parse_type(t.as_deref()?).ok()?;
            let arrow_schema::DataType::Struct(fs) = dt else {
                return None;
            };
            fs.iter()
                .map(|f| {
                    Some((
                        f.name().clone(),
                        rewind_format::type_name(f.data_type()).ok()?,
                    ))
                })
                .collect()
        };
        match (fields(x), fields(y)) {
            // Both structs: name the fields that were added, removed or retyped.
            (Some(fx), Some(fy)) => {
                let names: BTreeSet<&String> = fx.iter().chain(&fy).map(|(n, _)| n).collect();
                for name in names {
                    let tx = fx.iter().find(|(n, _)| n == name).map(|(_, t)| t.clone());
                    let ty = fy.iter().find(|(n, _)| n == name).map(|(_, t)| t.clone());
                    if tx != ty {
                        change(format!("{column}.{name}"), tx, ty);
                    }
                }
            }
            _ => change(column.to_string(), x.clone(), y.clone()),
        }
    }
}
