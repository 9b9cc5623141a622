//! Automatic state schema evolution on restore: a stored column whose type differs from
//! the job's is adapted when the change is safe, and refused with the field named when
//! it is not.
//!
//! Safe: struct fields added (left out here, so serde fills them: `Option` fields become
//! `None`, `#[serde(default)]` fields their default), removed (dropped) or reordered
//! (matched by name); numbers widened without loss (i8 -> i16 -> i32 -> i64, unsigned to
//! wider unsigned or signed, f32 -> f64, integers of up to 32 bits -> f64); utf8 <->
//! large_utf8; a nullable field read into a required one when no value is null.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, StructArray};
use arrow_schema::{DataType, Field, Fields};

/// Adapts `stored` toward `target`; `Err` names the field (`path`) and the change.
pub(crate) fn evolve(path: &str, stored: &ArrayRef, target: &DataType) -> Result<ArrayRef, String> {
    let from = stored.data_type();
    if let (DataType::Struct(_), DataType::Struct(to)) = (from, target) {
        // Also when the types are equal up to nullability: required fields are checked.
        return evolve_struct(path, stored, to);
    }
    if rewind_savepoint::format::same_type(from, target) {
        return Ok(stored.clone());
    }
    match (from, target) {
        (DataType::List(_), DataType::List(item))
        | (DataType::LargeList(_), DataType::List(item)) => evolve_list(path, stored, item),
        _ if widens(from, target) => {
            arrow_cast::cast(stored, target).map_err(|e| format!("field {path}: {e}"))
        }
        _ => Err(format!(
            "field {path}: the savepoint has {}, the job has {}",
            name(from),
            name(target)
        )),
    }
}

fn name(t: &DataType) -> String {
    rewind_savepoint::format::type_name(t).unwrap_or_else(|_| t.to_string())
}

/// Lossless number widenings and string representations.
fn widens(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    matches!(
        (from, to),
        (Int8, Int16 | Int32 | Int64 | Float32 | Float64)
            | (Int16, Int32 | Int64 | Float32 | Float64)
            | (Int32, Int64 | Float64)
            | (
                UInt8,
                UInt16 | UInt32 | UInt64 | Int16 | Int32 | Int64 | Float32 | Float64
            )
            | (UInt16, UInt32 | UInt64 | Int32 | Int64 | Float32 | Float64)
            | (UInt32, UInt64 | Int64 | Float64)
            | (Float32, Float64)
            | (Utf8, LargeUtf8)
            | (LargeUtf8, Utf8)
    )
}

fn evolve_struct(path: &str, stored: &ArrayRef, to: &Fields) -> Result<ArrayRef, String> {
    let array = stored
        .as_any()
        .downcast_ref::<StructArray>()
        .ok_or_else(|| format!("field {path}: not a struct array"))?;
    let mut fields: Vec<Arc<Field>> = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for field in to {
        let Some(column) = array.column_by_name(field.name()) else {
            // New in the job: serde fills it (None or its default) or names it missing.
            continue;
        };
        let sub = format!("{path}.{}", field.name());
        let column = evolve(&sub, column, field.data_type())?;
        if !field.is_nullable() && column.null_count() > 0 {
            return Err(format!(
                "field {sub}: the job requires a value, the savepoint has {} nulls",
                column.null_count()
            ));
        }
        // The evolved column's own type: a nested struct may lack the fields it gains.
        fields.push(Arc::new(
            field
                .as_ref()
                .clone()
                .with_data_type(column.data_type().clone())
                .with_nullable(true),
        ));
        columns.push(column);
    }
    let nulls = array.nulls().cloned();
    if columns.is_empty() {
        return Ok(Arc::new(StructArray::new_empty_fields(array.len(), nulls)));
    }
    StructArray::try_new(Fields::from(fields), columns, nulls)
        .map(|a| Arc::new(a) as ArrayRef)
        .map_err(|e| format!("field {path}: {e}"))
}

fn evolve_list(path: &str, stored: &ArrayRef, item: &Arc<Field>) -> Result<ArrayRef, String> {
    let list = arrow_cast::cast(
        stored,
        &DataType::List(Arc::new(Field::new(
            item.name(),
            stored_item(stored)?,
            true,
        ))),
    )
    .map_err(|e| format!("field {path}: {e}"))?;
    let list = list
        .as_any()
        .downcast_ref::<arrow_array::ListArray>()
        .ok_or_else(|| format!("field {path}: not a list"))?;
    let values = evolve(&format!("{path}[]"), list.values(), item.data_type())?;
    let field = Arc::new(Field::new(item.name(), values.data_type().clone(), true));
    arrow_array::ListArray::try_new(field, list.offsets().clone(), values, list.nulls().cloned())
        .map(|a| Arc::new(a) as ArrayRef)
        .map_err(|e| format!("field {path}: {e}"))
}

fn stored_item(stored: &ArrayRef) -> Result<DataType, String> {
    match stored.data_type() {
        DataType::List(f) | DataType::LargeList(f) => Ok(f.data_type().clone()),
        other => Err(format!("not a list: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int32Array, Int64Array, StringArray};

    fn strukt(fields: Vec<(&str, ArrayRef)>) -> ArrayRef {
        let (f, c): (Vec<Arc<Field>>, Vec<ArrayRef>) = fields
            .into_iter()
            .map(|(n, a)| (Arc::new(Field::new(n, a.data_type().clone(), true)), a))
            .unzip();
        Arc::new(StructArray::new(Fields::from(f), c, None))
    }

    #[test]
    fn widens_reorders_and_drops() {
        let stored = strukt(vec![
            ("gone", Arc::new(StringArray::from(vec!["x"]))),
            ("clicks", Arc::new(Int32Array::from(vec![7]))),
            ("last", Arc::new(Int64Array::from(vec![9]))),
        ]);
        let target = DataType::Struct(Fields::from(vec![
            Field::new("last", DataType::Int64, false),
            Field::new("clicks", DataType::Int64, false),
            Field::new("added", DataType::Utf8, true),
        ]));
        let out = evolve("value", &stored, &target).unwrap();
        let s = out.as_any().downcast_ref::<StructArray>().unwrap();
        assert_eq!(s.num_columns(), 2);
        assert_eq!(s.column_names(), vec!["last", "clicks"]);
        assert_eq!(s.column(1).data_type(), &DataType::Int64);
    }

    #[test]
    fn adds_fields_to_nested_structs() {
        let inner = strukt(vec![("views", Arc::new(Int64Array::from(vec![3])))]);
        let stored = strukt(vec![
            ("end", Arc::new(Int64Array::from(vec![60]))),
            ("acc", inner),
        ]);
        let target = DataType::Struct(Fields::from(vec![
            Field::new("end", DataType::Int64, false),
            Field::new(
                "acc",
                DataType::Struct(Fields::from(vec![
                    Field::new("views", DataType::Int64, false),
                    Field::new("paid_views", DataType::Int64, false),
                ])),
                false,
            ),
        ]));
        let out = evolve("value", &stored, &target).unwrap();
        let s = out.as_any().downcast_ref::<StructArray>().unwrap();
        let acc = s.column(1).as_any().downcast_ref::<StructArray>().unwrap();
        assert_eq!(acc.column_names(), vec!["views"]);
    }

    #[test]
    fn refuses_narrowing_and_names_the_field() {
        let stored = strukt(vec![("clicks", Arc::new(Int64Array::from(vec![7])))]);
        let target = DataType::Struct(Fields::from(vec![Field::new(
            "clicks",
            DataType::Int32,
            false,
        )]));
        assert_eq!(
            evolve("value", &stored, &target).unwrap_err(),
            "field value.clicks: the savepoint has int64, the job has int32"
        );
        let stored: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None]));
        let target = DataType::Struct(Fields::from(vec![Field::new("x", DataType::Int64, false)]));
        let wrapped = strukt(vec![("x", stored)]);
        assert!(
            evolve("value", &wrapped, &target)
                .unwrap_err()
                .contains("1 nulls")
        );
    }
}
