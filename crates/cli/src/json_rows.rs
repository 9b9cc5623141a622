//! Rows as JSON lines that lose nothing: nulls are written (a map entry whose value is
//! null stays in the map), and floats JSON cannot hold are strings: `"NaN"`, `"Infinity"`,
//! `"-Infinity"` (arrow-json alone writes them as `null`, which a reader takes for a null).

use std::io::Write;
use std::sync::Arc;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type};
use arrow_json::writer::{Encoder, EncoderFactory, EncoderOptions, LineDelimited, NullableEncoder};
use arrow_schema::{ArrowError, DataType, FieldRef};

/// A JSON-lines writer of record batches, one object per row.
pub fn writer<W: Write>(out: W) -> arrow_json::Writer<W, LineDelimited> {
    arrow_json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .with_encoder_factory(Arc::new(NonFiniteFloats))
        .build(out)
}

/// Encodes float arrays that hold a NaN or an infinity; others keep arrow-json's encoder.
#[derive(Debug)]
struct NonFiniteFloats;

impl EncoderFactory for NonFiniteFloats {
    fn make_default_encoder<'a>(
        &self,
        _field: &'a FieldRef,
        array: &'a dyn Array,
        _options: &'a EncoderOptions,
    ) -> Result<Option<NullableEncoder<'a>>, ArrowError> {
        let floats = match array.data_type() {
            DataType::Float64 => Floats::F64(array.as_primitive::<Float64Type>().values().to_vec()),
            DataType::Float32 => Floats::F32(array.as_primitive::<Float32Type>().values().to_vec()),
            _ => return Ok(None),
        };
        if floats.all_finite() {
            return Ok(None);
        }
        Ok(Some(NullableEncoder::new(
            Box::new(floats),
            array.logical_nulls(),
        )))
    }
}

enum Floats {
    F64(Vec<f64>),
    F32(Vec<f32>),
}

impl Floats {
    fn all_finite(&self) -> bool {
        match self {
            Floats::F64(v) => v.iter().all(|x| x.is_finite()),
            Floats::F32(v) => v.iter().all(|x| x.is_finite()),
        }
    }
}

impl Encoder for Floats {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        let (value, text) = match self {
            Floats::F64(v) => (v[idx], serde_json::to_string(&v[idx])),
            Floats::F32(v) => (f64::from(v[idx]), serde_json::to_string(&v[idx])),
        };
        let special: &[u8] = if value.is_nan() {
            b"\"NaN\""
        } else if value == f64::INFINITY {
            b"\"Infinity\""
        } else if value == f64::NEG_INFINITY {
            b"\"-Infinity\""
        } else {
            // Finite: serde_json always formats it.
            out.extend_from_slice(text.unwrap_or_default().as_bytes());
            return;
        };
        out.extend_from_slice(special);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::builder::{Float64Builder, ListBuilder, MapBuilder, StringBuilder};
    use arrow_array::{ArrayRef, Float32Array, Float64Array, RecordBatch};

    fn lines(columns: Vec<(&str, ArrayRef)>) -> String {
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let mut out = Vec::new();
        let mut w = super::writer(&mut out);
        w.write(&batch).unwrap();
        w.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn non_finite_floats_and_nulls_are_kept() {
        let mut list = ListBuilder::new(Float64Builder::new());
        list.values().append_value(f64::NAN);
        list.values().append_null();
        list.values().append_value(-0.0);
        list.append(true);
        list.append(false);
        let plain = Float64Array::from(vec![Some(1.5), None]);
        let single = Float32Array::from(vec![f32::INFINITY, 0.25]);
        assert_eq!(
            lines(vec![
                ("list", Arc::new(list.finish()) as ArrayRef),
                ("plain", Arc::new(plain)),
                ("single", Arc::new(single)),
            ]),
            "{\"list\":[\"NaN\",null,-0.0],\"plain\":1.5,\"single\":\"Infinity\"}\n\
             {\"list\":null,\"plain\":null,\"single\":0.25}\n"
        );
    }

    #[test]
    fn a_null_map_value_stays_in_the_map() {
        let mut map = MapBuilder::new(None, StringBuilder::new(), Float64Builder::new());
        map.keys().append_value("a");
        map.values().append_null();
        map.keys().append_value("b");
        map.values().append_value(f64::NEG_INFINITY);
        map.append(true).unwrap();
        assert_eq!(
            lines(vec![("m", Arc::new(map.finish()) as ArrayRef)]),
            "{\"m\":{\"a\":null,\"b\":\"-Infinity\"}}\n"
        );
    }
}
