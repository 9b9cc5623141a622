//! `rewind import-flink`: a Rewind savepoint from a canonical Flink savepoint.

use std::io::Write;

use anyhow::{Result, bail};
use rewind_flink::{FlinkSavepoint, ImportOptions};

use super::super::location;
use crate::cli::ImportFlinkArgs;
use crate::output::table;

pub async fn import(args: ImportFlinkArgs, out: &mut dyn Write) -> Result<u8> {
    let sp = FlinkSavepoint::open(location(&args.src)?).await?;
    if let Some(uid) = args.uids.iter().find(|u| sp.operator_by_uid(u).is_none()) {
        bail!(
            "{}: --uid {uid}: no operator records this uid or has its id (Flink's hash of the uid)",
            args.src
        );
    }
    let options = ImportOptions {
        skip_undecodable: args.skip_undecodable,
        uids: args.uids.clone(),
    };
    let report = rewind_flink::import(&sp, location(&args.dest)?, &options).await?;
    let mut t = table(&["operator", "state", "kind", "rows"]);
    for s in &report.states {
        t.add_row(vec![
            s.uid.clone(),
            s.state.clone(),
            s.kind.clone(),
            s.rows.to_string(),
        ]);
    }
    writeln!(out, "{t}")?;
    for s in &report.skipped {
        writeln!(
            out,
            "skipped {}/{} ({}): {}",
            s.uid, s.state, s.serializer, s.reason
        )?;
    }
    writeln!(
        out,
        "wrote savepoint {} to {} from Flink savepoint {}",
        report.id,
        args.dest,
        sp.location()
    )?;
    Ok(crate::EXIT_OK)
}
