//! Struct values of primitive fields (the usual accumulator: a sum and a count, a min and a
//! max) straight into Arrow columns: each field's value goes to its column's builder in
//! declaration order, with no per-row schema lookup. serde_arrow cost as much as the rest
//! of a window savepoint for such values. Anything else (nested structs, lists, maps,
//! enums, a field skipped while serializing) is refused, and the caller falls back to
//! serde_arrow.

use std::fmt;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float32Builder, Float64Builder, Int8Builder, Int16Builder, Int32Builder,
    Int64Builder, StringBuilder, UInt8Builder, UInt16Builder, UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, StructArray};
use arrow_schema::{DataType, Field};
use serde::Serialize;
use serde::ser::{self, Impossible};

/// The column of `values` when their traced type (`field`) is a struct of primitive
/// fields and every value serializes as exactly those fields; otherwise `None`.
pub(crate) fn to_array<V: Serialize>(values: &[&V], field: &Field) -> Option<ArrayRef> {
    let DataType::Struct(fields) = field.data_type() else {
        return None;
    };
    let mut columns = fields
        .iter()
        .map(|f| Column::new(f.data_type(), values.len()))
        .collect::<Option<Vec<Column>>>()?;
    for value in values {
        value
            .serialize(Row {
                columns: &mut columns,
                names: fields.iter().map(|f| f.name().as_str()),
            })
            .ok()?;
    }
    let arrays = columns.into_iter().map(Column::finish).collect();
    let validity = None; // Option<struct> traces as a nullable field and is refused above.
    StructArray::try_new(fields.clone(), arrays, validity)
        .ok()
        .map(|a| Arc::new(a) as ArrayRef)
}

enum Column {
    Bool(BooleanBuilder),
    I8(Int8Builder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    U8(UInt8Builder),
    U16(UInt16Builder),
    U32(UInt32Builder),
    U64(UInt64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Utf8(StringBuilder),
}

impl Column {
    fn new(data_type: &DataType, rows: usize) -> Option<Column> {
        Some(match data_type {
            DataType::Boolean => Column::Bool(BooleanBuilder::with_capacity(rows)),
            DataType::Int8 => Column::I8(Int8Builder::with_capacity(rows)),
            DataType::Int16 => Column::I16(Int16Builder::with_capacity(rows)),
            DataType::Int32 => Column::I32(Int32Builder::with_capacity(rows)),
            DataType::Int64 => Column::I64(Int64Builder::with_capacity(rows)),
            DataType::UInt8 => Column::U8(UInt8Builder::with_capacity(rows)),
            DataType::UInt16 => Column::U16(UInt16Builder::with_capacity(rows)),
            DataType::UInt32 => Column::U32(UInt32Builder::with_capacity(rows)),
            DataType::UInt64 => Column::U64(UInt64Builder::with_capacity(rows)),
            DataType::Float32 => Column::F32(Float32Builder::with_capacity(rows)),
            DataType::Float64 => Column::F64(Float64Builder::with_capacity(rows)),
            DataType::Utf8 => Column::Utf8(StringBuilder::with_capacity(rows, rows * 8)),
            _ => return None,
        })
    }

    fn append_null(&mut self) {
        match self {
            Column::Bool(b) => b.append_null(),
            Column::I8(b) => b.append_null(),
            Column::I16(b) => b.append_null(),
            Column::I32(b) => b.append_null(),
            Column::I64(b) => b.append_null(),
            Column::U8(b) => b.append_null(),
            Column::U16(b) => b.append_null(),
            Column::U32(b) => b.append_null(),
            Column::U64(b) => b.append_null(),
            Column::F32(b) => b.append_null(),
            Column::F64(b) => b.append_null(),
            Column::Utf8(b) => b.append_null(),
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            Column::Bool(mut b) => Arc::new(b.finish()),
            Column::I8(mut b) => Arc::new(b.finish()),
            Column::I16(mut b) => Arc::new(b.finish()),
            Column::I32(mut b) => Arc::new(b.finish()),
            Column::I64(mut b) => Arc::new(b.finish()),
            Column::U8(mut b) => Arc::new(b.finish()),
            Column::U16(mut b) => Arc::new(b.finish()),
            Column::U32(mut b) => Arc::new(b.finish()),
            Column::U64(mut b) => Arc::new(b.finish()),
            Column::F32(mut b) => Arc::new(b.finish()),
            Column::F64(mut b) => Arc::new(b.finish()),
            Column::Utf8(mut b) => Arc::new(b.finish()),
        }
    }
}

/// Not a flat struct of the traced type: fall back to serde_arrow.
#[derive(Debug)]
struct Refused;

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a flat struct of primitive fields")
    }
}

impl std::error::Error for Refused {}

impl ser::Error for Refused {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Refused
    }
}

/// Serializes one value: a struct whose fields go to `columns` in order.
struct Row<'a, I> {
    columns: &'a mut [Column],
    names: I,
}

/// The struct's fields, one per column, checked against the traced names.
struct Fields<'a, I> {
    columns: std::slice::IterMut<'a, Column>,
    names: I,
}

impl<'n, I: Iterator<Item = &'n str>> ser::SerializeStruct for Fields<'_, I> {
    type Ok = ();
    type Error = Refused;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Refused> {
        let (Some(column), Some(name)) = (self.columns.next(), self.names.next()) else {
            return Err(Refused);
        };
        if name != key {
            return Err(Refused);
        }
        value.serialize(Cell(column))
    }
    fn end(mut self) -> Result<(), Refused> {
        // A field skipped while serializing leaves its column short.
        match self.columns.next() {
            None => Ok(()),
            Some(_) => Err(Refused),
        }
    }
}

/// Refuses every kind of value but a struct (and what serializes as one).
macro_rules! refuse {
    ($($method:ident($($arg:ty),*)),* $(,)?) => {
        $(fn $method(self, $(_: $arg),*) -> Result<Self::Ok, Refused> { Err(Refused) })*
    };
}

/// Refuses sequences, tuples, maps and enum variants with data.
macro_rules! refuse_compounds {
    () => {
        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Refused> {
            Err(Refused)
        }
        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Refused> {
            Err(Refused)
        }
        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct, Refused> {
            Err(Refused)
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, Refused> {
            Err(Refused)
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Refused> {
            Err(Refused)
        }
        fn serialize_newtype_variant<T: ?Sized + Serialize>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<(), Refused> {
            Err(Refused)
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, Refused> {
            Err(Refused)
        }
    };
}

impl<'a, 'n, I: Iterator<Item = &'n str>> ser::Serializer for Row<'a, I> {
    type Ok = ();
    type Error = Refused;
    type SerializeSeq = Impossible<(), Refused>;
    type SerializeTuple = Impossible<(), Refused>;
    type SerializeTupleStruct = Impossible<(), Refused>;
    type SerializeTupleVariant = Impossible<(), Refused>;
    type SerializeMap = Impossible<(), Refused>;
    type SerializeStruct = Fields<'a, I>;
    type SerializeStructVariant = Impossible<(), Refused>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Fields<'a, I>, Refused> {
        Ok(Fields {
            columns: self.columns.iter_mut(),
            names: self.names,
        })
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Refused> {
        value.serialize(self)
    }
    refuse!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    );
    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<(), Refused> {
        Err(Refused)
    }
    refuse_compounds!();
}

/// One field's value into its column; the column's type must be the value's own.
struct Cell<'a>(&'a mut Column);

macro_rules! cell {
    ($($method:ident($t:ty) => $variant:ident),* $(,)?) => {
        $(fn $method(self, v: $t) -> Result<(), Refused> {
            match self.0 {
                Column::$variant(b) => Ok(b.append_value(v)),
                _ => Err(Refused),
            }
        })*
    };
}

impl ser::Serializer for Cell<'_> {
    type Ok = ();
    type Error = Refused;
    type SerializeSeq = Impossible<(), Refused>;
    type SerializeTuple = Impossible<(), Refused>;
    type SerializeTupleStruct = Impossible<(), Refused>;
    type SerializeTupleVariant = Impossible<(), Refused>;
    type SerializeMap = Impossible<(), Refused>;
    type SerializeStruct = Impossible<(), Refused>;
    type SerializeStructVariant = Impossible<(), Refused>;

    cell!(
        serialize_bool(bool) => Bool,
        serialize_i8(i8) => I8,
        serialize_i16(i16) => I16,
        serialize_i32(i32) => I32,
        serialize_i64(i64) => I64,
        serialize_u8(u8) => U8,
        serialize_u16(u16) => U16,
        serialize_u32(u32) => U32,
        serialize_u64(u64) => U64,
        serialize_f32(f32) => F32,
        serialize_f64(f64) => F64,
        serialize_str(&str) => Utf8,
    );
    fn serialize_none(self) -> Result<(), Refused> {
        self.0.append_null();
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), Refused> {
        value.serialize(self)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Refused> {
        value.serialize(self)
    }
    fn serialize_char(self, _: char) -> Result<(), Refused> {
        Err(Refused)
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Refused> {
        Err(Refused)
    }
    fn serialize_unit(self) -> Result<(), Refused> {
        Err(Refused)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Refused> {
        Err(Refused)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), Refused> {
        Err(Refused)
    }
    refuse_compounds!();
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Refused> {
        Err(Refused)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::keyed::tables::value_field;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Acc {
        sum: f64,
        count: u64,
        min: Option<i32>,
        label: String,
        seen: bool,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Nested {
        inner: Acc,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Skips {
        a: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        b: Option<i64>,
    }

    fn serde_arrow_column<V: Serialize>(values: &[&V], field: &Field) -> ArrayRef {
        #[derive(Serialize)]
        struct Row<'a, V> {
            value: &'a V,
        }
        let rows: Vec<Row<'_, V>> = values.iter().map(|v| Row { value: *v }).collect();
        let field = Arc::new(field.clone());
        serde_arrow::to_record_batch(&[field], &rows)
            .unwrap()
            .column(0)
            .clone()
    }

    #[test]
    fn a_flat_struct_is_built_as_serde_arrow_builds_it() {
        let values: Vec<Acc> = (0..1000)
            .map(|i| Acc {
                sum: i as f64 * 0.5,
                count: i,
                min: (i % 3 != 0).then_some(-(i as i32)),
                label: format!("k{i}"),
                seen: i % 2 == 0,
            })
            .collect();
        let refs: Vec<&Acc> = values.iter().collect();
        let field = value_field::<Acc>().unwrap();
        let direct = to_array(&refs, &field).expect("a flat struct");
        assert_eq!(direct.as_ref(), serde_arrow_column(&refs, &field).as_ref());
    }

    #[test]
    fn anything_else_is_refused() {
        let nested = Nested {
            inner: Acc {
                sum: 1.0,
                count: 1,
                min: None,
                label: String::new(),
                seen: false,
            },
        };
        let field = value_field::<Nested>().unwrap();
        assert!(to_array(&[&nested], &field).is_none());
        let skips = [Skips { a: 1, b: None }, Skips { a: 2, b: Some(3) }];
        let refs: Vec<&Skips> = skips.iter().collect();
        assert!(to_array(&refs, &value_field::<Skips>().unwrap()).is_none());
        let field = value_field::<u64>().unwrap();
        assert!(to_array(&[&1u64], &field).is_none());
    }
}
