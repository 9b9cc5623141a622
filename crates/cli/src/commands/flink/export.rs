//! `rewind export-flink`: a canonical Flink savepoint from a Rewind savepoint.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{Result, bail};
use rewind_flink::ExportOptions;

use super::super::{location, open_savepoint};
use crate::cli::ExportFlinkArgs;
use crate::output::table;

/// `NAME=VALUE` arguments of `flag` as a map.
fn pairs(flag: &str, items: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for item in items {
        match item.split_once('=') {
            Some((k, v)) if !k.is_empty() && !v.is_empty() => {
                out.insert(k.to_string(), v.to_string());
            }
            _ => bail!("{flag} {item:?}: expected NAME=VALUE"),
        }
    }
    Ok(out)
}

pub async fn export(args: ExportFlinkArgs, out: &mut dyn Write) -> Result<u8> {
    let mut operator_parallelism = BTreeMap::new();
    for (uid, n) in pairs("--operator", &args.operators)? {
        let n: u32 = n
            .parse()
            .map_err(|_| anyhow::anyhow!("--operator {uid}={n}: not a parallelism"))?;
        operator_parallelism.insert(uid, n);
    }
    let options = ExportOptions {
        max_parallelism: args.max_parallelism,
        parallelism: args.parallelism,
        operator_parallelism,
        pojo: pairs("--pojo", &args.pojos)?,
        compress: args.compress,
    };
    let source = open_savepoint(&args.src).await?;
    let report = rewind_flink::export(&source, location(&args.dest)?, &options).await?;
    let mut t = table(&[
        "operator",
        "operator id",
        "parallelism",
        "max parallelism",
        "state",
        "flink state",
        "entries",
        "serializers",
    ]);
    for op in &report.operators {
        if op.states.is_empty() {
            t.add_row(vec![
                op.uid.clone(),
                op.operator_id.clone(),
                op.parallelism.to_string(),
                op.max_parallelism.to_string(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]);
        }
        for st in &op.states {
            t.add_row(vec![
                op.uid.clone(),
                op.operator_id.clone(),
                op.parallelism.to_string(),
                op.max_parallelism.to_string(),
                st.name.clone(),
                st.flink_names.join(", "),
                st.entries.to_string(),
                st.serializers.as_str().to_string(),
            ]);
        }
    }
    writeln!(out, "{t}")?;
    writeln!(
        out,
        "wrote Flink savepoint {} ({} files, {} bytes) from {}",
        args.dest, report.files, report.bytes, args.src
    )?;
    Ok(crate::EXIT_OK)
}
