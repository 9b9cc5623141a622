//! Values of Flink's built-in serializers written from Arrow columns: the inverse of
//! `super::read`, so that what an import decoded encodes to the same bytes.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;

use crate::java::Out;
use crate::snapshots::Ty;

/// Writes the value at `row` of `array` (a column of `ty.data_type()`) as `ty`'s
/// serializer does. `Err` says what cannot be written (a null where Flink allows none).
pub(crate) fn write(ty: &Ty, array: &dyn Array, row: usize, out: &mut Out) -> Result<(), String> {
    let null = array.is_null(row);
    match ty {
        Ty::Nullable(padding, t) => {
            out.bool(null);
            if null {
                for _ in 0..(*padding).max(0) {
                    out.u8(0);
                }
                return Ok(());
            }
            return write(t, array, row, out);
        }
        // The last access time is not kept by an import: the export's time restarts it.
        Ty::Ttl(t) => {
            out.i64(now_millis());
            return write(t, array, row, out);
        }
        Ty::Pojo(_) if null => {
            out.u8(1);
            return Ok(());
        }
        Ty::Pojo(_) => out.u8(2),
        Ty::Str if null => {
            out.flink_string(None);
            return Ok(());
        }
        _ if null => return Err(format!("a null {} where Flink allows none", ty.describe())),
        _ => {}
    }
    match (ty, array.data_type()) {
        (Ty::Bool, DataType::Boolean) => out.bool(array.as_boolean().value(row)),
        (Ty::I8, DataType::Int8) => out.u8(array.as_primitive::<Int8Type>().value(row) as u8),
        (Ty::I16, DataType::Int16) => out.i16(array.as_primitive::<Int16Type>().value(row)),
        (Ty::I32, DataType::Int32) => out.i32(array.as_primitive::<Int32Type>().value(row)),
        (Ty::I64, DataType::Int64) => out.i64(array.as_primitive::<Int64Type>().value(row)),
        (Ty::F32, DataType::Float32) => out
            .buf
            .extend_from_slice(&array.as_primitive::<Float32Type>().value(row).to_be_bytes()),
        (Ty::F64, DataType::Float64) => out
            .buf
            .extend_from_slice(&array.as_primitive::<Float64Type>().value(row).to_be_bytes()),
        (Ty::Char, _) => {
            let s = string(array, row)?;
            let mut units = s.encode_utf16();
            match (units.next(), units.next()) {
                (Some(u), None) => out.u16(u),
                _ => return Err(format!("{s:?} is not one Java char")),
            }
        }
        (Ty::Str, _) => out.flink_string(Some(string(array, row)?)),
        (Ty::Enum(names), _) => {
            let s = string(array, row)?;
            let i = names
                .iter()
                .position(|n| n == s)
                .ok_or_else(|| format!("{s:?} is not a constant of the enum"))?;
            out.len_i32(i)?;
        }
        (Ty::Bytes, DataType::Binary) => {
            let b = array.as_binary::<i32>().value(row);
            out.len_i32(b.len())?;
            out.bytes(b);
        }
        (Ty::Bytes, DataType::LargeBinary) => {
            let b = array.as_binary::<i64>().value(row);
            out.len_i32(b.len())?;
            out.bytes(b);
        }
        (Ty::PrimArray(item) | Ty::List(item), _) => {
            let items = list_items(array, row)?;
            out.len_i32(items.len())?;
            for i in 0..items.len() {
                write(item, items.as_ref(), i, out)?;
            }
        }
        (Ty::StrArray, _) => {
            let items = list_items(array, row)?;
            out.len_i32(items.len())?;
            for i in 0..items.len() {
                write(&Ty::Str, items.as_ref(), i, out)?;
            }
        }
        (Ty::Map(k, v), _) => {
            let entries = list_items(array, row)?;
            let entries = entries
                .as_struct_opt()
                .ok_or("a map column whose entries are not structs")?;
            out.len_i32(entries.len())?;
            for i in 0..entries.len() {
                write(k, entries.column(0).as_ref(), i, out)?;
                let value = entries.column(1);
                out.bool(value.is_null(i));
                if !value.is_null(i) {
                    write(v, value.as_ref(), i, out)?;
                }
            }
        }
        (Ty::TimeWindow, DataType::Struct(_)) => {
            let s = array.as_struct();
            for c in s.columns() {
                write(&Ty::I64, c.as_ref(), row, out)?;
            }
        }
        (Ty::Tuple(fs), DataType::Struct(_)) => {
            let s = array.as_struct();
            for (f, c) in fs.iter().zip(s.columns()) {
                write(f, c.as_ref(), row, out)?;
            }
        }
        (Ty::Row(kind, fs), DataType::Struct(_)) => {
            let s = array.as_struct();
            let skip = if *kind { 2 } else { 0 };
            let mut mask = vec![0u8; (fs.len() + skip).div_ceil(8)];
            for (i, c) in s.columns().iter().enumerate() {
                if c.is_null(row) {
                    let bit = i + skip;
                    mask[bit / 8] |= 0x80 >> (bit % 8);
                }
            }
            out.bytes(&mask);
            for (f, c) in fs.iter().zip(s.columns()) {
                if !c.is_null(row) {
                    write(f, c.as_ref(), row, out)?;
                }
            }
        }
        (Ty::Pojo(fs), DataType::Struct(_)) => {
            // By name: Flink orders a POJO's fields by name, a struct may not.
            let s = array.as_struct();
            for (name, f) in fs {
                let c = s
                    .column_by_name(name)
                    .ok_or_else(|| format!("the POJO field {name:?} has no column"))?;
                out.bool(c.is_null(row));
                if !c.is_null(row) {
                    write(f, c.as_ref(), row, out)?;
                }
            }
        }
        (Ty::Void, _) => out.u8(0),
        (ty, dt) => {
            return Err(format!(
                "a column of type {dt} cannot be written as Flink's {}",
                ty.describe()
            ));
        }
    }
    Ok(())
}

fn string(array: &dyn Array, row: usize) -> Result<&str, String> {
    match array.data_type() {
        DataType::Utf8 => Ok(array.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => Ok(array.as_string::<i64>().value(row)),
        dt => Err(format!("a {dt} column where Flink expects a string")),
    }
}

/// The items of the list at `row`.
pub(crate) fn list_items(array: &dyn Array, row: usize) -> Result<ArrayRef, String> {
    match array.data_type() {
        DataType::List(_) => Ok(array.as_list::<i32>().value(row)),
        DataType::LargeList(_) => Ok(array.as_list::<i64>().value(row)),
        dt => Err(format!("a {dt} column where Flink expects a list")),
    }
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::java::Reader;
    use crate::values::{self as columns, Column};

    /// Bytes decode into a column and encode back to the same bytes.
    fn round_trip(ty: &Ty, bytes: &[u8]) {
        let mut col = Column::new(&ty.data_type().unwrap()).unwrap();
        let mut r = Reader::new(bytes);
        let mut n = 0;
        while !r.is_empty() {
            columns::read(ty, &mut r, &mut col).unwrap();
            n += 1;
        }
        let array = col.finish().unwrap();
        let mut out = Out::default();
        for row in 0..n {
            write(ty, array.as_ref(), row, &mut out).unwrap();
        }
        assert_eq!(out.buf, bytes, "{ty:?}");
    }

    #[test]
    fn values_encode_as_they_decode() {
        let mut o = Out::default();
        o.i64(42);
        o.i64(-1);
        round_trip(&Ty::I64, &o.buf);
        let mut o = Out::default();
        o.flink_string(Some("user-7"));
        o.flink_string(None);
        o.flink_string(Some("é"));
        round_trip(&Ty::Str, &o.buf);
        let pojo = Ty::Pojo(vec![
            ("avg".into(), Ty::F64),
            ("last".into(), Ty::Str),
            ("total".into(), Ty::I64),
        ]);
        let mut o = Out::default();
        o.u8(2);
        o.bool(false);
        o.buf.extend_from_slice(&5000.0f64.to_be_bytes());
        o.bool(true);
        o.bool(false);
        o.i64(11);
        o.u8(1);
        round_trip(&pojo, &o.buf);
        let map = Ty::Map(Box::new(Ty::Str), Box::new(Ty::I64));
        let mut o = Out::default();
        o.i32(2);
        o.flink_string(Some("a"));
        o.bool(false);
        o.i64(3);
        o.flink_string(Some("b"));
        o.bool(true);
        round_trip(&map, &o.buf);
        let tuple = Ty::Tuple(vec![Ty::I32, Ty::List(Box::new(Ty::I64))]);
        let mut o = Out::default();
        o.i32(7);
        o.i32(2);
        o.i64(1);
        o.i64(2);
        round_trip(&tuple, &o.buf);
        let row = Ty::Row(true, vec![Ty::I32, Ty::Str]);
        let mut o = Out::default();
        o.u8(0b0001_0000);
        o.i32(9);
        round_trip(&row, &o.buf);
    }

    #[test]
    fn a_null_where_flink_has_none_is_an_error() {
        let a = arrow_array::Int64Array::from(vec![None]);
        let e = write(&Ty::I64, &a, 0, &mut Out::default()).unwrap_err();
        assert!(e.contains("null I64"), "{e}");
    }
}
