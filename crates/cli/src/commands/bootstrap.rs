//! `rewind bootstrap`: a savepoint for a new job from data files.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{Context, Result, bail};
use arrow_schema::DataType;
use rewind_savepoint::format::JobInfo;
use rewind_savepoint::{SavepointInfo, SavepointWriter, StateSpec};

use super::location;
use crate::cli::BootstrapArgs;
use crate::files::read_rows;

pub async fn run(args: BootstrapArgs, out: &mut dyn Write) -> Result<u8> {
    // Read and check every file before the savepoint is created.
    let mut operators: BTreeMap<String, Vec<(String, StateSpec, Vec<arrow_array::RecordBatch>)>> =
        BTreeMap::new();
    for spec in &args.states {
        let (target, file) = spec
            .split_once('=')
            .with_context(|| format!("--state {spec:?} is not UID/STATE=FILE"))?;
        let (uid, state) = target
            .split_once('/')
            .with_context(|| format!("--state {spec:?} is not UID/STATE=FILE"))?;
        let rows = read_rows(file, None)?;
        let first = rows.first().with_context(|| format!("{file}: no rows"))?;
        let schema = first.schema();
        let column = |name: &str| {
            schema
                .field_with_name(name)
                .ok()
                .map(|f| f.data_type().clone())
        };
        let key = column("key").with_context(|| format!("{file}: no \"key\" column"))?;
        let value = column("value").with_context(|| format!("{file}: no \"value\" column"))?;
        let spec = match column("user_key") {
            Some(user_key) => StateSpec::map(state, key, user_key, value),
            None => StateSpec::value(state, key, value),
        };
        if let Some(extra) = schema
            .fields()
            .iter()
            .find(|f| !matches!(f.name().as_str(), "key" | "user_key" | "value"))
        {
            bail!(
                "{file}: unexpected column {:?}; a state file has key, value and for map state user_key",
                extra.name()
            );
        }
        if matches!(
            spec.input_schema().field(0).data_type(),
            DataType::Float32 | DataType::Float64
        ) {
            bail!("{file}: the key column holds floats, which cannot be keys");
        }
        operators
            .entry(uid.to_string())
            .or_default()
            .push((state.to_string(), spec, rows));
    }
    let mut info = SavepointInfo::new(&args.job, "bootstrap");
    info.job = JobInfo {
        name: args.job.clone(),
        app_version: args.app_version.clone(),
        job_id: None,
    };
    let writer = SavepointWriter::create(location(&args.dest)?, info).await?;
    let mut rows = 0usize;
    for (uid, states) in &operators {
        writer.add_operator(uid, uid, args.parallelism)?;
        for (_, spec, _) in states {
            writer.add_state(uid, spec.clone())?;
        }
    }
    for (uid, states) in operators {
        for (name, _, batches) in states {
            rows += batches.iter().map(|b| b.num_rows()).sum::<usize>();
            writer.write_keyed(&uid, &name, batches).await?;
        }
    }
    let manifest = writer.commit().await?;
    writeln!(
        out,
        "wrote savepoint {} to {}: {} operators, {rows} rows",
        manifest.id,
        args.dest,
        manifest.operators.len()
    )?;
    Ok(crate::EXIT_OK)
}
