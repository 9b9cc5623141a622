//! Reading rows for edits and bootstrap from CSV, JSON lines or Parquet files.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};
use rewind_savepoint::format::same_type;

/// The file's rows. With `schema`, CSV and JSON are read as that schema and a Parquet
/// file's columns must match it by name and type; without, the schema is the file's own
/// (Parquet) or inferred (CSV, JSON lines).
pub fn read_rows(path: &str, schema: Option<SchemaRef>) -> Result<Vec<RecordBatch>> {
    let p = Path::new(path);
    let ext = p
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let open = || File::open(p).with_context(|| format!("{path}: cannot open"));
    let batches: Vec<RecordBatch> = match ext.as_str() {
        "parquet" => {
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(open()?)
                    .with_context(|| format!("{path}: not a readable Parquet file"))?
                    .build()?;
            let batches = reader
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("{path}: reading Parquet"))?;
            match &schema {
                Some(schema) => batches
                    .iter()
                    .map(|b| project(path, b, schema))
                    .collect::<Result<_>>()?,
                None => batches,
            }
        }
        "csv" => {
            let schema = match schema {
                Some(s) => s,
                None => {
                    let (inferred, _) = arrow_csv::reader::Format::default()
                        .with_header(true)
                        .infer_schema(open()?, Some(1000))
                        .with_context(|| format!("{path}: cannot infer the CSV columns"))?;
                    Arc::new(inferred)
                }
            };
            arrow_csv::ReaderBuilder::new(schema)
                .with_header(true)
                .build(open()?)?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("{path}: reading CSV"))?
        }
        "json" | "jsonl" | "ndjson" => {
            let schema = match schema {
                Some(s) => s,
                None => {
                    let (inferred, _) =
                        arrow_json::reader::infer_json_schema(BufReader::new(open()?), Some(1000))
                            .with_context(|| format!("{path}: cannot infer the JSON fields"))?;
                    Arc::new(inferred)
                }
            };
            arrow_json::ReaderBuilder::new(schema)
                .build(BufReader::new(open()?))?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("{path}: reading JSON lines"))?
        }
        other => bail!(
            "{path}: unknown file type {other:?}; use .csv, .jsonl (or .json, .ndjson) or .parquet"
        ),
    };
    Ok(batches)
}

/// The columns of `schema`, taken by name from a Parquet batch, with a clear error naming
/// a missing column or a column of the wrong type.
fn project(path: &str, batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let mut columns = Vec::new();
    let mut fields = Vec::new();
    for field in schema.fields() {
        let column = batch
            .column_by_name(field.name())
            .with_context(|| format!("{path}: no column {:?}", field.name()))?;
        if !same_type(column.data_type(), field.data_type()) {
            bail!(
                "{path}: column {:?} has type {}, the state needs {}",
                field.name(),
                column.data_type(),
                field.data_type()
            );
        }
        fields.push(
            field
                .as_ref()
                .clone()
                .with_data_type(column.data_type().clone()),
        );
        columns.push(column.clone());
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}
