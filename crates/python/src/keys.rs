//! Keys given from Python (a list, or a pyarrow array) as an Arrow array of a state's key
//! type: pyarrow does the conversion, so every key type has the notation pyarrow gives it
//! (ints, str, bytes, datetime, dict for a struct).

use arrow_array::{ArrayRef, make_array};
use arrow_data::ArrayData;
use arrow_pyarrow::{FromPyArrow, ToPyArrow};
use arrow_schema::DataType;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use crate::errors::InvalidInputError;

/// `keys` as an array of `key_type` (named `type_name` in messages).
pub fn key_array(
    keys: &Bound<'_, PyAny>,
    key_type: &DataType,
    type_name: &str,
) -> PyResult<ArrayRef> {
    let py = keys.py();
    // A str or bytes is iterable, but a caller passing one meant one key, not its characters.
    if keys.is_instance_of::<PyString>() || keys.is_instance_of::<PyBytes>() {
        return Err(InvalidInputError::new_err(
            "keys must be a list of keys (or a pyarrow array), not a single str or bytes",
        ));
    }
    let pyarrow = py.import("pyarrow")?;
    let target = key_type.to_pyarrow(py)?;
    let converted = if keys.is_instance(&pyarrow.getattr("Array")?)? {
        keys.call_method1("cast", (target,))
    } else {
        let kwargs = PyDict::new(py);
        kwargs.set_item("type", target)?;
        pyarrow.call_method("array", (keys,), Some(&kwargs))
    };
    let array = converted.map_err(|e| {
        InvalidInputError::new_err(format!("keys must be keys of type {type_name}: {e}"))
    })?;
    Ok(make_array(ArrayData::from_pyarrow_bound(&array)?))
}
