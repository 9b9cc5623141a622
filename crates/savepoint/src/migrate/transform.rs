//! The value transformations of a migration, on Arrow arrays: rename a field, give a field
//! a default, convert a field to another type, conform a value to a target type. A field
//! is a dotted path into the value's struct (`acc.views`), or `value` for the whole value.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, BooleanArray, Scalar, StructArray, new_null_array};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{DataType, Field, FieldRef, Fields};

/// What went wrong in one state: a bad request, or a value that does not fit.
#[derive(Debug)]
pub(crate) enum Failure {
    Invalid(String),
    DoesNotFit {
        field: String,
        row: usize,
        value: String,
        to: String,
    },
}

pub(crate) type Outcome<T> = std::result::Result<T, Failure>;

fn invalid(m: impl Into<String>) -> Failure {
    Failure::Invalid(m.into())
}

/// One change to a state's values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Change {
    Rename {
        field: String,
        to: String,
    },
    Default {
        field: String,
        value: serde_json::Value,
    },
    Cast {
        field: String,
        to: DataType,
    },
    Conform {
        to: DataType,
    },
}

/// Applies `change` to a value column; returns the new column and how many rows changed.
pub(crate) fn apply(value: &ArrayRef, change: &Change, lossy: bool) -> Outcome<(ArrayRef, u64)> {
    match change {
        Change::Conform { to } => {
            let out = conform(value, to, "value", lossy)?;
            Ok((out, value.len() as u64))
        }
        Change::Rename { field, to } => {
            if field == "value" {
                return Err(invalid("the whole value has no name to change"));
            }
            let out = update(value, &path(field), &mut |current| match current {
                Some((f, column)) => Ok(Some((
                    Arc::new(f.as_ref().clone().with_name(to.clone())),
                    column.clone(),
                ))),
                None => Err(invalid(format!("no field {field}"))),
            })?;
            Ok((out, value.len() as u64))
        }
        Change::Default { field, value: json } => {
            let mut affected = 0;
            let out = update_or_whole(value, field, &mut |current| {
                let (f, filled) = match current {
                    Some((f, column)) => {
                        affected = column.null_count() as u64;
                        (f.clone(), fill_nulls(column, json, field)?)
                    }
                    None => {
                        affected = value.len() as u64;
                        let scalar = json_scalar(json, None, field)?;
                        let filled = repeat(&scalar, value.len())?;
                        let f = Field::new(last(field), filled.data_type().clone(), true);
                        (Arc::new(f), filled)
                    }
                };
                Ok(Some((
                    Arc::new(
                        f.as_ref()
                            .clone()
                            .with_data_type(filled.data_type().clone()),
                    ),
                    filled,
                )))
            })?;
            Ok((out, affected))
        }
        Change::Cast { field, to } => {
            let mut affected = 0;
            let out = update_or_whole(value, field, &mut |current| match current {
                Some((f, column)) => {
                    affected = (column.len() - column.null_count()) as u64;
                    let cast = checked_cast(column, to, field, lossy)?;
                    Ok(Some((
                        Arc::new(
                            f.as_ref()
                                .clone()
                                .with_data_type(to.clone())
                                .with_nullable(true),
                        ),
                        cast,
                    )))
                }
                None => Err(invalid(format!("no field {field}"))),
            })?;
            Ok((out, affected))
        }
    }
}

fn path(field: &str) -> Vec<&str> {
    field.split('.').collect()
}

fn last(field: &str) -> &str {
    field.rsplit('.').next().unwrap_or(field)
}

type FieldFn<'a> =
    dyn FnMut(Option<(&FieldRef, &ArrayRef)>) -> Outcome<Option<(FieldRef, ArrayRef)>> + 'a;

/// `update`, or `f` on the whole value when `field` is `value`.
fn update_or_whole(value: &ArrayRef, field: &str, f: &mut FieldFn<'_>) -> Outcome<ArrayRef> {
    if field != "value" {
        return update(value, &path(field), f);
    }
    let whole: FieldRef = Arc::new(Field::new("value", value.data_type().clone(), true));
    match f(Some((&whole, value)))? {
        Some((_, column)) => Ok(column),
        None => Err(invalid("the whole value cannot be removed")),
    }
}

/// Rebuilds the struct `array` with the field at `path` replaced by what `f` makes of it
/// (`f` sees `None` when the last step of the path does not exist yet).
fn update(array: &ArrayRef, path: &[&str], f: &mut FieldFn<'_>) -> Outcome<ArrayRef> {
    let Some(strukt) = array.as_struct_opt() else {
        return Err(invalid(format!(
            "{} is not a struct (it is {}): name a field of a struct, or `value`",
            path.join("."),
            type_name(array.data_type())
        )));
    };
    let (fields, mut columns, nulls) = strukt.clone().into_parts();
    let mut fields: Vec<FieldRef> = fields.iter().cloned().collect();
    let Some((head, rest)) = path.split_first() else {
        return Err(invalid("empty field path"));
    };
    let at = fields.iter().position(|f| f.name() == head);
    if rest.is_empty() {
        match (at, f(at.map(|i| (&fields[i], &columns[i])))?) {
            (Some(i), Some((field, column))) => {
                if field.name() != fields[i].name()
                    && fields.iter().any(|f| f.name() == field.name())
                {
                    return Err(invalid(format!("a field {} exists already", field.name())));
                }
                fields[i] = field;
                columns[i] = column;
            }
            (Some(i), None) => {
                fields.remove(i);
                columns.remove(i);
            }
            (None, Some((field, column))) => {
                fields.push(field);
                columns.push(column);
            }
            (None, None) => {}
        }
    } else {
        let i = at.ok_or_else(|| invalid(format!("no field {head} in {}", path.join("."))))?;
        let child = update(&columns[i], rest, f)?;
        fields[i] = Arc::new(
            fields[i]
                .as_ref()
                .clone()
                .with_data_type(child.data_type().clone()),
        );
        columns[i] = child;
    }
    StructArray::try_new(Fields::from(fields), columns, nulls)
        .map(|s| Arc::new(s) as ArrayRef)
        .map_err(|e| invalid(e.to_string()))
}

/// Converts `column` to `to`; a value that does not fit is a failure naming its row,
/// or null when `lossy`.
fn checked_cast(column: &ArrayRef, to: &DataType, field: &str, lossy: bool) -> Outcome<ArrayRef> {
    // A conversion into or out of a nested type could hide a lost value inside it.
    if column.data_type().is_nested() || to.is_nested() {
        return Err(invalid(format!(
            "field {field}: {} cannot be converted to {}: convert plain values, or the \
             fields of a struct one by one",
            type_name(column.data_type()),
            type_name(to)
        )));
    }
    if !arrow_cast::can_cast_types(column.data_type(), to) {
        return Err(invalid(format!(
            "field {field}: {} cannot be converted to {}",
            type_name(column.data_type()),
            type_name(to)
        )));
    }
    let options = arrow_cast::CastOptions {
        safe: true,
        ..Default::default()
    };
    let cast = arrow_cast::cast_with_options(column, to, &options)
        .map_err(|e| invalid(format!("field {field}: {e}")))?;
    if !lossy && cast.null_count() > column.null_count() {
        if let Some(row) = (0..column.len()).find(|&r| column.is_valid(r) && cast.is_null(r)) {
            return Err(Failure::DoesNotFit {
                field: field.to_string(),
                row,
                value: display(column, row),
                to: type_name(to),
            });
        }
    }
    Ok(cast)
}

/// `value` shaped as `target`: struct fields matched by name (missing nullable ones
/// added as null, others dropped), other types converted as by a checked cast.
fn conform(value: &ArrayRef, target: &DataType, at: &str, lossy: bool) -> Outcome<ArrayRef> {
    if value.data_type() == target {
        return Ok(value.clone());
    }
    match (value.as_struct_opt(), target) {
        (Some(strukt), DataType::Struct(fields)) => {
            let mut columns = Vec::with_capacity(fields.len());
            for field in fields {
                let sub = format!("{at}.{}", field.name());
                let column = match strukt.column_by_name(field.name()) {
                    Some(c) => conform(c, field.data_type(), &sub, lossy)?,
                    None if field.is_nullable() => new_null_array(field.data_type(), value.len()),
                    None => {
                        return Err(invalid(format!(
                            "field {sub} is required but the savepoint has none: give it a default"
                        )));
                    }
                };
                if !field.is_nullable() && column.null_count() > 0 {
                    return Err(invalid(format!(
                        "field {sub} is required but {} rows have no value",
                        column.null_count()
                    )));
                }
                columns.push(column);
            }
            StructArray::try_new(fields.clone(), columns, strukt.nulls().cloned())
                .map(|s| Arc::new(s) as ArrayRef)
                .map_err(|e| invalid(format!("{at}: {e}")))
        }
        _ => checked_cast(value, target, at, lossy),
    }
}

/// `column` with its nulls replaced by `json`.
fn fill_nulls(column: &ArrayRef, json: &serde_json::Value, field: &str) -> Outcome<ArrayRef> {
    let scalar = json_scalar(json, Some(column.data_type()), field)?;
    if column.null_count() == 0 {
        return Ok(column.clone());
    }
    let mask: BooleanArray = (0..column.len()).map(|r| Some(column.is_null(r))).collect();
    arrow_select::zip::zip(&mask, &Scalar::new(scalar), column)
        .map_err(|e| invalid(format!("field {field}: {e}")))
}

/// A one-element array holding `json`, of type `to` (or the JSON's own type).
fn json_scalar(json: &serde_json::Value, to: Option<&DataType>, field: &str) -> Outcome<ArrayRef> {
    use arrow_array::{BooleanArray, Float64Array, Int64Array, StringArray};
    let natural: ArrayRef = match json {
        serde_json::Value::Bool(b) => Arc::new(BooleanArray::from(vec![*b])),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Arc::new(Int64Array::from(vec![i])),
            None => Arc::new(Float64Array::from(vec![n.as_f64().unwrap_or(f64::NAN)])),
        },
        serde_json::Value::String(s) => Arc::new(StringArray::from(vec![s.as_str()])),
        other => {
            return Err(invalid(format!(
                "field {field}: a default must be a number, string or boolean, not {other}"
            )));
        }
    };
    match to {
        Some(t) if t != natural.data_type() => {
            let options = arrow_cast::CastOptions {
                safe: false,
                ..Default::default()
            };
            arrow_cast::cast_with_options(&natural, t, &options).map_err(|e| {
                invalid(format!(
                    "field {field}: the default {json} does not fit {}: {e}",
                    type_name(t)
                ))
            })
        }
        _ => Ok(natural),
    }
}

fn repeat(scalar: &ArrayRef, len: usize) -> Outcome<ArrayRef> {
    let indices = arrow_array::UInt32Array::from(vec![0u32; len]);
    arrow_select::take::take(scalar, &indices, None).map_err(|e| invalid(e.to_string()))
}

pub(crate) fn display(column: &dyn Array, row: usize) -> String {
    ArrayFormatter::try_new(column, &FormatOptions::default())
        .map(|f| f.value(row).to_string())
        .unwrap_or_else(|_| format!("#{row}"))
}

pub(crate) fn type_name(t: &DataType) -> String {
    rewind_format::type_name(t).unwrap_or_else(|_| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int32Array, Int64Array, StringArray};

    fn strukt(fields: Vec<(&str, ArrayRef)>) -> ArrayRef {
        let (f, c): (Vec<FieldRef>, Vec<ArrayRef>) = fields
            .into_iter()
            .map(|(n, a)| (Arc::new(Field::new(n, a.data_type().clone(), true)), a))
            .unzip();
        Arc::new(StructArray::new(Fields::from(f), c, None))
    }

    fn sample() -> ArrayRef {
        let inner = strukt(vec![(
            "views",
            Arc::new(Int64Array::from(vec![Some(3), None])),
        )]);
        strukt(vec![
            ("name", Arc::new(StringArray::from(vec!["a", "b"]))),
            ("acc", inner),
        ])
    }

    #[test]
    fn renames_nested_fields_and_refuses_collisions() {
        let change = Change::Rename {
            field: "acc.views".into(),
            to: "impressions".into(),
        };
        let (out, n) = apply(&sample(), &change, false).unwrap();
        assert_eq!(n, 2);
        let acc = out.as_struct().column_by_name("acc").unwrap();
        assert!(acc.as_struct().column_by_name("impressions").is_some());
        let clash = Change::Rename {
            field: "name".into(),
            to: "acc".into(),
        };
        assert!(
            matches!(apply(&sample(), &clash, false), Err(Failure::Invalid(m)) if m.contains("exists already"))
        );
    }

    #[test]
    fn defaults_fill_nulls_or_add_the_field() {
        let fill = Change::Default {
            field: "acc.views".into(),
            value: serde_json::json!(0),
        };
        let (out, n) = apply(&sample(), &fill, false).unwrap();
        assert_eq!(n, 1);
        let views = out
            .as_struct()
            .column_by_name("acc")
            .unwrap()
            .as_struct()
            .column(0)
            .clone();
        assert_eq!(views.null_count(), 0);
        let add = Change::Default {
            field: "tier".into(),
            value: serde_json::json!("free"),
        };
        let (out, n) = apply(&sample(), &add, false).unwrap();
        assert_eq!(n, 2);
        assert_eq!(
            display(out.as_struct().column_by_name("tier").unwrap(), 1),
            "free"
        );
    }

    #[test]
    fn casts_are_checked_unless_lossy() {
        let value: ArrayRef = Arc::new(Int64Array::from(vec![1, 5_000_000_000]));
        let change = Change::Cast {
            field: "value".into(),
            to: DataType::Int32,
        };
        match apply(&value, &change, false) {
            Err(Failure::DoesNotFit { row, value, to, .. }) => {
                assert_eq!(
                    (row, value.as_str(), to.as_str()),
                    (1, "5000000000", "int32")
                );
            }
            other => panic!("{other:?}"),
        }
        let (out, _) = apply(&value, &change, true).unwrap();
        assert_eq!(out.null_count(), 1);
        let ok: ArrayRef = Arc::new(Int32Array::from(vec![1, 2]));
        let widen = Change::Cast {
            field: "value".into(),
            to: DataType::Int64,
        };
        assert_eq!(
            apply(&ok, &widen, false).unwrap().0.data_type(),
            &DataType::Int64
        );
    }

    #[test]
    fn conform_matches_fields_by_name() {
        let to = DataType::Struct(Fields::from(vec![
            Field::new(
                "acc",
                DataType::Struct(Fields::from(vec![Field::new(
                    "views",
                    DataType::Int32,
                    true,
                )])),
                true,
            ),
            Field::new("extra", DataType::Utf8, true),
        ]));
        let (out, _) = apply(&sample(), &Change::Conform { to: to.clone() }, false).unwrap();
        assert_eq!(out.data_type(), &to);
        let required = DataType::Struct(Fields::from(vec![Field::new(
            "missing",
            DataType::Utf8,
            false,
        )]));
        assert!(matches!(
            apply(&sample(), &Change::Conform { to: required }, false),
            Err(Failure::Invalid(m)) if m.contains("value.missing is required")
        ));
    }
}
