//! `rewind state`: the rows of one state, decoded.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{DataType, Field, Schema};
use futures::StreamExt;
use rewind_savepoint::format::parse_type;
use rewind_savepoint::{ReadOptions, columns};

use super::open_savepoint_naming;
use crate::cli::{StateArgs, StateFormat};
use crate::output::table;

const DEFAULT_TABLE_ROWS: usize = 20;

pub async fn run(args: StateArgs, out: &mut dyn Write) -> Result<u8> {
    // A Flink 1.x savepoint records operator ids only: the uid asked for names its own.
    let reader = open_savepoint_naming(&args.savepoint, std::slice::from_ref(&args.uid)).await?;
    let state = reader.state(&args.uid, &args.state)?.clone();
    let keys = if args.keys.is_empty() {
        None
    } else {
        let key_type = state
            .key_type
            .as_deref()
            .with_context(|| format!("state {:?} is operator state and has no keys", state.name))?;
        Some(parse_keys(&args.keys, &parse_type(key_type)?)?)
    };
    let limit = args.limit.unwrap_or(match args.format {
        StateFormat::Table => DEFAULT_TABLE_ROWS,
        _ => usize::MAX,
    });
    let mut stream = reader
        .read_state(
            &args.uid,
            &args.state,
            ReadOptions {
                keys,
                ..Default::default()
            },
        )
        .await?;

    let mut printed = 0usize;
    let mut more = false;
    let mut sink = match args.format {
        StateFormat::Table => Sink::Table(None),
        StateFormat::Json => Sink::Json(crate::json_rows::writer(&mut *out)),
        StateFormat::Csv => Sink::Csv {
            out: &mut *out,
            header: true,
        },
    };
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        if printed >= limit {
            more = true;
            break;
        }
        let take = batch.num_rows().min(limit - printed);
        printed += take;
        let mut batch = batch.slice(0, take);
        // The key hash is how the format places a key; people ask for keys and values.
        if !args.with_hash {
            if let Ok(at) = batch.schema().index_of(columns::KEY_HASH) {
                batch.remove_column(at);
            }
        }
        sink.write(&batch)?;
    }
    match sink {
        Sink::Json(mut w) => w.finish()?,
        Sink::Csv { .. } => {}
        Sink::Table(t) => {
            match t {
                Some(t) => writeln!(out, "{t}")?,
                None => writeln!(out, "(no rows)")?,
            }
            if more {
                writeln!(
                    out,
                    "(first {printed} rows of {}; use --limit N for more)",
                    state.rows()
                )?;
            }
        }
    }
    Ok(crate::EXIT_OK)
}

/// Where rows go, by output format.
enum Sink<'a> {
    Table(Option<comfy_table::Table>),
    Json(arrow_json::LineDelimitedWriter<&'a mut dyn Write>),
    Csv {
        out: &'a mut dyn Write,
        header: bool,
    },
}

impl Sink<'_> {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            Sink::Table(t) => {
                let t = t.get_or_insert_with(|| {
                    let schema = batch.schema();
                    let names: Vec<&str> =
                        schema.fields().iter().map(|f| f.name().as_str()).collect();
                    table(&names)
                });
                for row in render_rows(batch)? {
                    t.add_row(row);
                }
            }
            Sink::Json(w) => w.write(batch)?,
            Sink::Csv { out, header } => {
                let mut w = arrow_csv::WriterBuilder::new()
                    .with_header(*header)
                    .build(&mut **out);
                w.write(&flatten_for_csv(batch)?)?;
                *header = false;
            }
        }
        Ok(())
    }
}

/// Turns `--key` arguments into an array of the state's key type, via JSON so that every
/// key type (structs included) has one notation.
fn parse_keys(keys: &[String], key_type: &DataType) -> Result<ArrayRef> {
    let is_string = matches!(key_type, DataType::Utf8 | DataType::LargeUtf8);
    let mut lines = String::new();
    for k in keys {
        let value: serde_json::Value = if is_string && !k.starts_with('"') {
            serde_json::Value::String(k.clone())
        } else {
            match serde_json::from_str(k) {
                Ok(v) => v,
                Err(_) if !is_string => serde_json::Value::String(k.clone()),
                Err(e) => bail!("--key {k}: not a JSON string: {e}"),
            }
        };
        lines.push_str(&serde_json::json!({ "key": value }).to_string());
        lines.push('\n');
    }
    let schema = Arc::new(Schema::new(vec![Field::new(
        "key",
        key_type.clone(),
        false,
    )]));
    let mut reader = arrow_json::ReaderBuilder::new(schema)
        .build(lines.as_bytes())
        .context("reading --key values")?;
    let batch = reader
        .next()
        .transpose()
        .with_context(|| {
            format!(
                "--key values must be keys of type {}",
                rewind_savepoint::format::type_name(key_type).unwrap_or_default()
            )
        })?
        .context("no --key values")?;
    Ok(batch.column(0).clone())
}

fn formatters(batch: &RecordBatch) -> Result<Vec<ArrayFormatter<'_>>> {
    let options = FormatOptions::default().with_null("null");
    Ok(batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<_, _>>()?)
}

fn render_rows(batch: &RecordBatch) -> Result<Vec<Vec<String>>> {
    let formatters = formatters(batch)?;
    Ok((0..batch.num_rows())
        .map(|row| {
            formatters
                .iter()
                .map(|f| f.value(row).to_string())
                .collect()
        })
        .collect())
}

/// CSV has no nested types: lists, structs and maps become their display text.
fn flatten_for_csv(batch: &RecordBatch) -> Result<RecordBatch> {
    let formatters = formatters(batch)?;
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for ((field, column), formatter) in batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .zip(&formatters)
    {
        if column.data_type().is_nested() {
            let text: StringArray = (0..column.len())
                .map(|i| column.is_valid(i).then(|| formatter.value(i).to_string()))
                .collect();
            fields.push(Field::new(field.name(), DataType::Utf8, true));
            columns.push(Arc::new(text));
        } else {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
        }
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}
