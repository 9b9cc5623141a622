//! Arrow columns built straight from Flink's serialized values: each value is decoded into
//! the builder of its column, with no tree of values in between (the import's hot path).

use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_array::builder::{
    ArrayBuilder, BinaryBuilder, BooleanBuilder, Float32Builder, Float64Builder, Int8Builder,
    Int16Builder, Int32Builder, Int64Builder, StringBuilder,
};
use arrow_array::{ListArray, StructArray};
use arrow_buffer::{NullBufferBuilder, OffsetBuffer};
use arrow_schema::{DataType, FieldRef, Fields};

use crate::java::{Parse, Reader};
use crate::snapshots::Ty;

/// A column being built, of the Arrow type [`Ty::data_type`] names.
pub(crate) enum Column {
    Bool(BooleanBuilder),
    I8(Int8Builder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Utf8(StringBuilder),
    Binary(BinaryBuilder),
    List {
        field: FieldRef,
        offsets: Vec<i32>,
        valid: NullBufferBuilder,
        items: Box<Column>,
    },
    Struct {
        fields: Fields,
        children: Vec<Column>,
        valid: NullBufferBuilder,
    },
}

impl Column {
    /// An empty column of type `dt`.
    pub fn new(dt: &DataType) -> Result<Column, String> {
        Ok(match dt {
            DataType::Boolean => Column::Bool(BooleanBuilder::new()),
            DataType::Int8 => Column::I8(Int8Builder::new()),
            DataType::Int16 => Column::I16(Int16Builder::new()),
            DataType::Int32 => Column::I32(Int32Builder::new()),
            DataType::Int64 => Column::I64(Int64Builder::new()),
            DataType::Float32 => Column::F32(Float32Builder::new()),
            DataType::Float64 => Column::F64(Float64Builder::new()),
            DataType::Utf8 => Column::Utf8(StringBuilder::new()),
            DataType::Binary => Column::Binary(BinaryBuilder::new()),
            DataType::List(field) => Column::List {
                field: field.clone(),
                offsets: vec![0],
                valid: NullBufferBuilder::new(0),
                items: Box::new(Column::new(field.data_type())?),
            },
            DataType::Struct(fields) => Column::Struct {
                fields: fields.clone(),
                children: fields
                    .iter()
                    .map(|f| Column::new(f.data_type()))
                    .collect::<Result<_, _>>()?,
                valid: NullBufferBuilder::new(0),
            },
            other => return Err(format!("no column of type {other}")),
        })
    }

    /// Rows so far.
    pub fn len(&self) -> usize {
        match self {
            Column::Bool(b) => b.len(),
            Column::I8(b) => b.len(),
            Column::I16(b) => b.len(),
            Column::I32(b) => b.len(),
            Column::I64(b) => b.len(),
            Column::F32(b) => b.len(),
            Column::F64(b) => b.len(),
            Column::Utf8(b) => b.len(),
            Column::Binary(b) => b.len(),
            Column::List { offsets, .. } => offsets.len() - 1,
            Column::Struct { valid, .. } => valid.len(),
        }
    }

    pub fn append_null(&mut self) {
        match self {
            Column::Bool(b) => b.append_null(),
            Column::I8(b) => b.append_null(),
            Column::I16(b) => b.append_null(),
            Column::I32(b) => b.append_null(),
            Column::I64(b) => b.append_null(),
            Column::F32(b) => b.append_null(),
            Column::F64(b) => b.append_null(),
            Column::Utf8(b) => b.append_null(),
            Column::Binary(b) => b.append_null(),
            Column::List { offsets, valid, .. } => {
                offsets.push(offsets.last().copied().unwrap_or(0));
                valid.append_null();
            }
            Column::Struct {
                children, valid, ..
            } => {
                children.iter_mut().for_each(Column::append_null);
                valid.append_null();
            }
        }
    }

    pub fn finish(self) -> Result<ArrayRef, String> {
        Ok(match self {
            Column::Bool(mut b) => Arc::new(b.finish()),
            Column::I8(mut b) => Arc::new(b.finish()),
            Column::I16(mut b) => Arc::new(b.finish()),
            Column::I32(mut b) => Arc::new(b.finish()),
            Column::I64(mut b) => Arc::new(b.finish()),
            Column::F32(mut b) => Arc::new(b.finish()),
            Column::F64(mut b) => Arc::new(b.finish()),
            Column::Utf8(mut b) => Arc::new(b.finish()),
            Column::Binary(mut b) => Arc::new(b.finish()),
            Column::List {
                field,
                offsets,
                mut valid,
                items,
            } => Arc::new(
                ListArray::try_new(
                    field,
                    OffsetBuffer::new(offsets.into()),
                    items.finish()?,
                    valid.finish(),
                )
                .map_err(|e| e.to_string())?,
            ),
            Column::Struct {
                fields,
                children,
                mut valid,
            } => Arc::new(
                StructArray::try_new(
                    fields,
                    children
                        .into_iter()
                        .map(Column::finish)
                        .collect::<Result<_, _>>()?,
                    valid.finish(),
                )
                .map_err(|e| e.to_string())?,
            ),
        })
    }
}

/// Ends the list whose items were just appended to `items`.
fn close_list(
    r: &Reader<'_>,
    offsets: &mut Vec<i32>,
    valid: &mut NullBufferBuilder,
    items: usize,
) -> Parse<()> {
    let Ok(end) = i32::try_from(items) else {
        return r.fail("more list items than an Arrow list holds");
    };
    offsets.push(end);
    valid.append_non_null();
    Ok(())
}

/// Reads the items of one list: `n` values of `item` into the list column `col`.
pub(crate) fn read_list_items(
    r: &mut Reader<'_>,
    col: &mut Column,
    mut next: impl FnMut(&mut Reader<'_>, &mut Column) -> Parse<bool>,
) -> Parse<()> {
    let Column::List {
        offsets,
        valid,
        items,
        ..
    } = col
    else {
        return r.fail("internal: a list value without a list column");
    };
    while next(r, items)? {}
    close_list(r, offsets, valid, items.len())
}

/// Decodes one value of `ty` from `r` into `col`, a column of `ty.data_type()`.
pub(crate) fn read(ty: &Ty, r: &mut Reader<'_>, col: &mut Column) -> Parse<()> {
    match ty {
        Ty::Nullable(padding, t) => {
            if r.bool()? {
                r.bytes(usize::try_from(*padding).unwrap_or(0))?;
                col.append_null();
                return Ok(());
            }
            return read(t, r, col);
        }
        Ty::Ttl(t) => {
            r.i64()?; // last access time
            return read(t, r, col);
        }
        Ty::Pojo(_) => {
            let flags = r.u8()?;
            if flags & 1 != 0 {
                col.append_null();
                return Ok(());
            }
            if flags & 2 == 0 {
                return r.fail("a POJO subclass value (needs the JVM)");
            }
        }
        _ => {}
    }
    match (ty, col) {
        (Ty::Bool, Column::Bool(b)) => b.append_value(r.bool()?),
        (Ty::I8, Column::I8(b)) => b.append_value(r.i8()?),
        (Ty::I16, Column::I16(b)) => b.append_value(r.i16()?),
        (Ty::I32, Column::I32(b)) => b.append_value(r.i32()?),
        (Ty::I64, Column::I64(b)) => b.append_value(r.i64()?),
        (Ty::F32, Column::F32(b)) => b.append_value(r.f32()?),
        (Ty::F64, Column::F64(b)) => b.append_value(r.f64()?),
        (Ty::Char, Column::Utf8(b)) => b.append_value(String::from_utf16_lossy(&[r.u16()?])),
        (Ty::Str, Column::Utf8(b)) => b.append_option(r.flink_string()?),
        (Ty::Enum(names), Column::Utf8(b)) => {
            let i = r.i32()?;
            match usize::try_from(i).ok().and_then(|i| names.get(i)) {
                Some(n) => b.append_value(n),
                None => return r.fail(format!("enum index {i} out of range")),
            }
        }
        (Ty::Bytes, Column::Binary(b)) => {
            let n = r.count(1, "byte array length")?;
            b.append_value(r.bytes(n)?);
        }
        (Ty::PrimArray(item) | Ty::List(item), col @ Column::List { .. }) => {
            let mut n = r.count(1, "list length")?;
            read_list_items(r, col, |r, items| {
                if n == 0 {
                    return Ok(false);
                }
                n -= 1;
                read(item, r, items).map(|()| true)
            })?;
        }
        (Ty::StrArray, col @ Column::List { .. }) => {
            let mut n = r.count(1, "array length")?;
            read_list_items(r, col, |r, items| {
                if n == 0 {
                    return Ok(false);
                }
                n -= 1;
                read(&Ty::Str, r, items).map(|()| true)
            })?;
        }
        (Ty::Map(k, v), col @ Column::List { .. }) => {
            let mut n = r.count(2, "map size")?;
            read_list_items(r, col, |r, entry| {
                if n == 0 {
                    return Ok(false);
                }
                n -= 1;
                let Column::Struct {
                    children, valid, ..
                } = entry
                else {
                    return r.fail("internal: a map entry without a struct column");
                };
                let [key, value] = children.as_mut_slice() else {
                    return r.fail("internal: a map entry column without key and value");
                };
                read(k, r, key)?;
                if r.bool()? {
                    value.append_null();
                } else {
                    read(v, r, value)?;
                }
                valid.append_non_null();
                Ok(true)
            })?;
        }
        (Ty::TimeWindow, col @ Column::Struct { .. }) => {
            read_struct(r, col, |r, i, c| match (i, c) {
                (0 | 1, Column::I64(b)) => {
                    b.append_value(r.i64()?);
                    Ok(())
                }
                _ => r.fail("internal: a time window column is not two int64"),
            })?;
        }
        (Ty::Tuple(fs), col @ Column::Struct { .. }) => {
            read_struct(r, col, |r, i, c| match fs.get(i) {
                Some(f) => read(f, r, c),
                None => r.fail("internal: a tuple column with extra fields"),
            })?;
        }
        (Ty::Row(kind, fs), col @ Column::Struct { .. }) => {
            let skip = if *kind { 2 } else { 0 };
            let mask = r.bytes((fs.len() + skip).div_ceil(8))?;
            read_struct(r, col, |r, i, c| {
                let bit = i + skip;
                match fs.get(i) {
                    _ if mask[bit / 8] & (0x80 >> (bit % 8)) != 0 => {
                        c.append_null();
                        Ok(())
                    }
                    Some(f) => read(f, r, c),
                    None => r.fail("internal: a row column with extra fields"),
                }
            })?;
        }
        (Ty::Pojo(fs), col @ Column::Struct { .. }) => {
            read_struct(r, col, |r, i, c| match fs.get(i) {
                Some((_, f)) => {
                    if r.bool()? {
                        c.append_null();
                        Ok(())
                    } else {
                        read(f, r, c)
                    }
                }
                None => r.fail("internal: a POJO column with extra fields"),
            })?;
        }
        (Ty::Opaque(class), _) => return r.fail(format!("values of {class} need the JVM")),
        (ty, _) => return r.fail(format!("internal: no column for {ty:?}")),
    }
    Ok(())
}

/// Reads one struct value, field by field, into `col`.
fn read_struct(
    r: &mut Reader<'_>,
    col: &mut Column,
    mut field: impl FnMut(&mut Reader<'_>, usize, &mut Column) -> Parse<()>,
) -> Parse<()> {
    let Column::Struct {
        children, valid, ..
    } = col
    else {
        return r.fail("internal: a struct value without a struct column");
    };
    for (i, c) in children.iter_mut().enumerate() {
        field(r, i, c)?;
    }
    valid.append_non_null();
    Ok(())
}

#[cfg(test)]
mod tests {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;

    use super::*;

    fn column(ty: &Ty, bytes: &[u8]) -> Parse<ArrayRef> {
        let mut col = Column::new(&ty.data_type().unwrap()).unwrap();
        let mut r = Reader::new(bytes);
        while !r.is_empty() {
            read(ty, &mut r, &mut col)?;
        }
        Ok(col.finish().unwrap())
    }

    #[test]
    fn nullable_longs_and_lists_decode_in_place() {
        let ty = Ty::Nullable(0, Box::new(Ty::I64));
        let a = column(&ty, &[0, 0, 0, 0, 0, 0, 0, 0, 7, 1]).unwrap();
        let a = a.as_primitive::<Int64Type>();
        assert_eq!((a.value(0), a.is_null(1)), (7, true));

        let ty = Ty::List(Box::new(Ty::I64));
        let mut bytes = vec![0, 0, 0, 2];
        bytes.extend(5i64.to_be_bytes());
        bytes.extend(6i64.to_be_bytes());
        bytes.extend([0, 0, 0, 0]);
        let a = column(&ty, &bytes).unwrap();
        let a = a.as_list::<i32>();
        assert_eq!(a.value_offsets(), &[0, 2, 2]);
    }

    #[test]
    fn a_struct_null_nulls_every_field() {
        let ty = Ty::Pojo(vec![("a".into(), Ty::I64), ("b".into(), Ty::Str)]);
        // A null POJO, then {a: 3, b: null}.
        let mut bytes = vec![1, 2, 0];
        bytes.extend(3i64.to_be_bytes());
        bytes.push(1);
        let a = column(&ty, &bytes).unwrap();
        let s = a.as_struct();
        assert_eq!((s.len(), s.is_null(0), s.is_valid(1)), (2, true, true));
        assert_eq!(s.column(0).as_primitive::<Int64Type>().value(1), 3);
        assert!(s.column(1).is_null(1));
    }

    #[test]
    fn a_column_of_the_wrong_type_is_an_error() {
        let mut col = Column::new(&DataType::Utf8).unwrap();
        let e = read(&Ty::I64, &mut Reader::new(&[0; 8]), &mut col).unwrap_err();
        assert!(
            e.message.starts_with("internal: no column"),
            "{}",
            e.message
        );
    }
}
