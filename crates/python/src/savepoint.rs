//! `rewind.open` and the `Savepoint` class: the manifest's content, and state rows as
//! pyarrow tables and record batch readers.

use std::sync::Arc;

use arrow_pyarrow::{IntoPyArrow, Table, ToPyArrow};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use pyo3::prelude::*;
use rewind_savepoint::format::{StateEntry, parse_type};
use rewind_savepoint::{Location, ReadOptions, SavepointReader, StateSpec, columns};

use crate::batches::{BatchIterator, Rows};
use crate::errors::{InvalidInputError, flink_error, savepoint_error};
use crate::keys::key_array;
use crate::runtime::block_on;

/// Opens the savepoint at `url`: a local path or a `file://`, `s3://`, `gs://` or `az://`
/// URL (credentials from the environment, as for the `rewind` command). A canonical
/// Apache Flink savepoint (its directory or `_metadata`) is read through the importer, in
/// memory: nothing is written.
#[pyfunction]
pub fn open(py: Python<'_>, url: String) -> PyResult<Savepoint> {
    let reader = block_on(py, open_reader(url.clone()))?;
    Ok(Savepoint { url, reader })
}

/// The reader of the savepoint at `url` (a Flink savepoint through the importer).
pub async fn open_reader(url: String) -> PyResult<SavepointReader> {
    let location = Location::parse(&url).map_err(savepoint_error)?;
    let at = rewind_flink::readable_location(location, &[])
        .await
        .map_err(flink_error)?;
    SavepointReader::open(at).await.map_err(savepoint_error)
}

/// An open savepoint: its checked manifest, and its state to read.
#[pyclass(module = "rewind", frozen)]
pub struct Savepoint {
    url: String,
    reader: SavepointReader,
}

#[pymethods]
impl Savepoint {
    /// The URL or path it was opened with.
    #[getter]
    fn url(&self) -> &str {
        &self.url
    }

    /// The operators' uids, in the manifest's order.
    #[getter]
    fn operators(&self) -> Vec<String> {
        let manifest = self.reader.manifest();
        manifest.operators.iter().map(|o| o.uid.clone()).collect()
    }

    /// Every state as `(uid, state name)`, the arguments `read` takes.
    #[getter]
    fn states(&self) -> Vec<(String, String)> {
        let manifest = self.reader.manifest();
        manifest
            .operators
            .iter()
            .flat_map(|o| o.states.iter().map(|s| (o.uid.clone(), s.name.clone())))
            .collect()
    }

    /// The manifest as a dict, as `_manifest.json` holds it (spec/FORMAT.md).
    #[getter]
    fn manifest<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, serde_json::to_string(self.reader.manifest()))
    }

    /// Where the savepoint came from: the manifest's `lineage` (operation, parent,
    /// parameters).
    #[getter]
    fn lineage<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, serde_json::to_string(&self.reader.manifest().lineage))
    }

    fn __repr__(&self) -> String {
        let manifest = self.reader.manifest();
        let states = manifest.operators.iter().map(|o| o.states.len()).sum();
        // The location's own name says when a Flink savepoint is read through the importer.
        format!(
            "<rewind.Savepoint {}: format {} {}, {}, {}>",
            self.reader.location(),
            manifest.version,
            manifest.kind.as_str(),
            counted(manifest.operators.len(), "operator"),
            counted(states, "state"),
        )
    }

    /// The rows of state `uid`/`state` as a `pyarrow.Table`, with the columns
    /// `rewind state` shows; `keys` (a list or pyarrow array of the state's key type)
    /// reads only those keys' rows; `with_hash` also gives each row's `key_hash`.
    #[pyo3(signature = (uid, state, keys=None, with_hash=false))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        uid: &str,
        state: &str,
        keys: Option<&Bound<'py, PyAny>>,
        with_hash: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut rows = self.rows(py, uid, state, keys, with_hash, None)?;
        let batches = block_on(py, async move {
            let mut all = Vec::new();
            while let Some(batch) = rows.next().await? {
                all.push(batch);
            }
            Ok((all, rows.schema()))
        });
        let (batches, schema) = batches?;
        let table = Table::try_new(batches, schema)
            .map_err(|e| crate::errors::SavepointError::new_err(e.to_string()))?;
        table.into_pyarrow(py)
    }

    /// The same rows as `read`, streamed: a `pyarrow.RecordBatchReader` of batches of up
    /// to `batch_size` rows, so a state larger than memory can be processed.
    #[pyo3(signature = (uid, state, keys=None, with_hash=false, batch_size=None))]
    fn batches<'py>(
        &self,
        py: Python<'py>,
        uid: &str,
        state: &str,
        keys: Option<&Bound<'py, PyAny>>,
        with_hash: bool,
        batch_size: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if batch_size == Some(0) {
            return Err(InvalidInputError::new_err("batch_size must be at least 1"));
        }
        let rows = self.rows(py, uid, state, keys, with_hash, batch_size)?;
        let schema = rows.schema().to_pyarrow(py)?;
        let iterator = Bound::new(py, BatchIterator::new(rows))?;
        // pyarrow pulls from a Python iterator, so an error mid-stream reaches the caller
        // as the same rewind exception `read` raises.
        let reader = py.import("pyarrow")?.getattr("RecordBatchReader")?;
        reader.call_method1("from_batches", (schema, iterator))
    }
}

impl Savepoint {
    /// Opens the stream of a state's rows, checking the names and keys first.
    fn rows(
        &self,
        py: Python<'_>,
        uid: &str,
        state: &str,
        keys: Option<&Bound<'_, PyAny>>,
        with_hash: bool,
        batch_size: Option<usize>,
    ) -> PyResult<Rows> {
        let entry = self.reader.state(uid, state).map_err(savepoint_error)?;
        let keys = keys.map(|k| state_keys(entry, k)).transpose()?;
        let schema = output_schema(entry, with_hash)?;
        let reader = self.reader.clone();
        let (uid, state) = (uid.to_string(), state.to_string());
        block_on(py, async move {
            let options = ReadOptions {
                keys,
                batch_size,
                ..Default::default()
            };
            let stream = reader
                .read_state(&uid, &state, options)
                .await
                .map_err(savepoint_error)?;
            Rows::start(stream, schema, with_hash).await
        })
    }
}

/// `keys` as an array of the state's key type.
fn state_keys(entry: &StateEntry, keys: &Bound<'_, PyAny>) -> PyResult<arrow_array::ArrayRef> {
    let Some(key_type) = entry.key_type.as_deref() else {
        return Err(InvalidInputError::new_err(format!(
            "state {:?} is operator state and has no keys",
            entry.name
        )));
    };
    let parsed = parse_type(key_type)
        .map_err(|e| crate::errors::CorruptError::new_err(format!("{}: {e}", entry.name)))?;
    key_array(keys, &parsed, key_type)
}

/// The columns rows come in: the state's (as `rewind state` shows them), `key_hash` first
/// when asked for and the state is keyed. Used when the state has no rows to tell.
fn output_schema(entry: &StateEntry, with_hash: bool) -> PyResult<SchemaRef> {
    let spec = StateSpec::from_entry(entry).map_err(savepoint_error)?;
    let input = spec.input_schema();
    if !(with_hash && entry.kind.is_keyed()) {
        return Ok(input);
    }
    let mut fields = vec![Arc::new(Field::new(
        columns::KEY_HASH,
        DataType::UInt64,
        false,
    ))];
    fields.extend(input.fields().iter().cloned());
    Ok(Arc::new(Schema::new(fields)))
}

/// "1 state", "2 states".
fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// JSON text (of a manifest part, a report) as Python objects, through Python's `json`.
pub fn to_python<'py>(
    py: Python<'py>,
    json: serde_json::Result<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let text = json.map_err(|e| crate::errors::SavepointError::new_err(e.to_string()))?;
    py.import("json")?.call_method1("loads", (text,))
}
