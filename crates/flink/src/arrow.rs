//! Decoded values into Arrow arrays of the types [`Ty::data_type`](crate::serializers::Ty)
//! names.

use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, BooleanBuilder, StringBuilder};
use arrow_array::{ArrayRef, Float32Array, Float64Array, Int64Array, ListArray, StructArray};
use arrow_schema::{DataType, Field};

use crate::serializers::Val;

/// One column of `values`, of type `dt`.
pub(crate) fn to_array(values: &[&Val], dt: &DataType) -> Result<ArrayRef, String> {
    let int = |v: &Val| match v {
        Val::Int(i) => Some(*i),
        _ => None,
    };
    let float = |v: &Val| match v {
        Val::Float(f) => Some(*f),
        _ => None,
    };
    Ok(match dt {
        DataType::Boolean => {
            let mut b = BooleanBuilder::with_capacity(values.len());
            for v in values {
                b.append_option(match v {
                    Val::Bool(x) => Some(*x),
                    _ => None,
                });
            }
            Arc::new(b.finish())
        }
        // Flink's byte, short and int values always fit their own width.
        DataType::Int8 | DataType::Int16 | DataType::Int32 => {
            let wide: ArrayRef = Arc::new(values.iter().map(|v| int(v)).collect::<Int64Array>());
            arrow_cast::cast(&wide, dt).map_err(|e| e.to_string())?
        }
        DataType::Int64 => Arc::new(values.iter().map(|v| int(v)).collect::<Int64Array>()),
        DataType::Float32 => Arc::new(
            values
                .iter()
                .map(|v| float(v).map(|f| f as f32))
                .collect::<Float32Array>(),
        ),
        DataType::Float64 => Arc::new(values.iter().map(|v| float(v)).collect::<Float64Array>()),
        DataType::Utf8 => {
            let mut b = StringBuilder::with_capacity(values.len(), values.len() * 8);
            for v in values {
                match v {
                    Val::Str(s) => b.append_value(s),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Binary => {
            let mut b = BinaryBuilder::with_capacity(values.len(), values.len() * 8);
            for v in values {
                match v {
                    Val::Bytes(x) => b.append_value(x),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        DataType::List(field) => {
            let mut offsets = Vec::with_capacity(values.len() + 1);
            offsets.push(0i32);
            let mut items: Vec<&Val> = Vec::new();
            let mut valid = Vec::with_capacity(values.len());
            for v in values {
                if let Val::List(xs) = v {
                    items.extend(xs.iter());
                    valid.push(true);
                } else {
                    valid.push(false);
                }
                offsets.push(i32::try_from(items.len()).map_err(|_| "list too long")?);
            }
            let child = to_array(&items, field.data_type())?;
            Arc::new(
                ListArray::try_new(
                    Arc::new(Field::new(field.name(), child.data_type().clone(), true)),
                    arrow_buffer::OffsetBuffer::new(offsets.into()),
                    child,
                    Some(valid.into()),
                )
                .map_err(|e| e.to_string())?,
            )
        }
        DataType::Struct(fields) => {
            let null = Val::Null;
            let mut columns = Vec::with_capacity(fields.len());
            for (i, f) in fields.iter().enumerate() {
                let column: Vec<&Val> = values
                    .iter()
                    .map(|v| match v {
                        Val::Struct(xs) => xs.get(i).unwrap_or(&null),
                        _ => &null,
                    })
                    .collect();
                columns.push(to_array(&column, f.data_type())?);
            }
            let valid: Vec<bool> = values.iter().map(|v| matches!(v, Val::Struct(_))).collect();
            Arc::new(
                StructArray::try_new(fields.clone(), columns, Some(valid.into()))
                    .map_err(|e| e.to_string())?,
            )
        }
        other => return Err(format!("no conversion to {other}")),
    })
}
