//! A state's rows as the library streams them, in one layout, and the Python iterator
//! `Savepoint.batches` hands to pyarrow.

use std::sync::Mutex;

use arrow_array::RecordBatch;
use arrow_pyarrow::ToPyArrow;
use arrow_schema::SchemaRef;
use futures::TryStreamExt;
use futures::stream::BoxStream;
use pyo3::prelude::*;

use crate::errors::{SavepointError, savepoint_error};
use crate::runtime::block_on;
use rewind_savepoint::columns;

/// The rows of one state: batches with the columns shown, all in the first batch's layout
/// (pyarrow wants one schema per table or reader).
pub struct Rows {
    stream: BoxStream<'static, rewind_savepoint::Result<RecordBatch>>,
    first: Option<RecordBatch>,
    schema: SchemaRef,
    with_hash: bool,
}

impl Rows {
    /// Reads the first batch, which fixes the layout; a state without rows has the
    /// `fallback` layout (the manifest's types).
    pub async fn start(
        mut stream: BoxStream<'static, rewind_savepoint::Result<RecordBatch>>,
        fallback: SchemaRef,
        with_hash: bool,
    ) -> PyResult<Rows> {
        let first = stream
            .try_next()
            .await
            .map_err(savepoint_error)?
            .map(|b| shown(b, with_hash));
        let schema = first.as_ref().map(|b| b.schema()).unwrap_or(fallback);
        Ok(Rows {
            stream,
            first,
            schema,
            with_hash,
        })
    }

    /// The layout of every batch.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The next batch, or `None` at the end.
    pub async fn next(&mut self) -> PyResult<Option<RecordBatch>> {
        if let Some(first) = self.first.take() {
            return Ok(Some(first));
        }
        let Some(batch) = self.stream.try_next().await.map_err(savepoint_error)? else {
            return Ok(None);
        };
        let batch = shown(batch, self.with_hash);
        if batch.schema() == self.schema {
            return Ok(Some(batch));
        }
        // Shards may differ in schema metadata only; the columns' types are checked equal
        // by the reader, so the columns fit the first layout.
        RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec())
            .map(Some)
            .map_err(|e| SavepointError::new_err(format!("batches of one state differ: {e}")))
    }
}

/// A Python iterator of `pyarrow.RecordBatch`es, read one at a time as pyarrow asks.
#[pyclass(module = "rewind")]
pub struct BatchIterator {
    rows: Mutex<Rows>,
}

impl BatchIterator {
    /// An iterator over `rows`.
    pub fn new(rows: Rows) -> BatchIterator {
        BatchIterator {
            rows: Mutex::new(rows),
        }
    }
}

#[pymethods]
impl BatchIterator {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let mut rows = self
            .rows
            .lock()
            .map_err(|_| SavepointError::new_err("an earlier read of these batches failed"))?;
        let rows = &mut *rows;
        match block_on(py, rows.next())? {
            Some(batch) => Ok(Some(batch.to_pyarrow(py)?)),
            None => Ok(None),
        }
    }
}

/// A batch with `key_hash` dropped unless asked for.
pub fn shown(mut batch: RecordBatch, with_hash: bool) -> RecordBatch {
    if !with_hash {
        if let Ok(at) = batch.schema().index_of(columns::KEY_HASH) {
            batch.remove_column(at);
        }
    }
    batch
}
