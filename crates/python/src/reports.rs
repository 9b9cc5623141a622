//! The `rewind` command's reports as Python objects: the content of their `--json`
//! documents (docs/json.md), without `json_version`, which versions the CLI's wire
//! format (the package has its own version).

use pyo3::prelude::*;
use rewind_savepoint::AnalyzeOptions;

use crate::errors::savepoint_error;
use crate::runtime::block_on;
use crate::savepoint::{open_reader, to_python};

/// What `rewind analyze URL --json` reports: findings first, then per state its rows,
/// bytes, skew, largest keys, value statistics and timers; with `baseline` (an older
/// savepoint of the same job), growth. `top` largest keys per state; `operator` and
/// `state` narrow it to one operator or state name.
#[pyfunction]
#[pyo3(signature = (url, baseline=None, top=10, operator=None, state=None))]
pub fn analyze<'py>(
    py: Python<'py>,
    url: String,
    baseline: Option<String>,
    top: usize,
    operator: Option<String>,
    state: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let json = block_on(py, async move {
        let source = open_reader(url).await?;
        let baseline = match baseline {
            Some(b) => Some(open_reader(b).await?),
            None => None,
        };
        let options = AnalyzeOptions {
            top,
            operator,
            state,
        };
        let analysis = rewind_savepoint::analyze(&source, baseline.as_ref(), &options)
            .await
            .map_err(savepoint_error)?;
        Ok(serde_json::to_string(&analysis))
    })?;
    to_python(py, json)
}
