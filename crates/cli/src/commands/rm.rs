//! `rewind rm`: dispose of a savepoint, listing every file before deleting it.

use std::io::Write;

use anyhow::Result;
use rewind_savepoint::{delete_files, plan_removal};

use super::location;
use crate::cli::RmArgs;

pub async fn run(args: RmArgs, out: &mut dyn Write) -> Result<u8> {
    let location = location(&args.savepoint)?;
    // List first (a dry run), print, then delete exactly that.
    let plan = plan_removal(&location, args.orphans).await?;
    for path in &plan.listed {
        writeln!(
            out,
            "{} {path}",
            if args.dry_run {
                "would delete"
            } else {
                "delete"
            }
        )?;
    }
    for path in &plan.orphans {
        writeln!(
            out,
            "{} {path} (not in any manifest)",
            if args.dry_run {
                "would delete"
            } else {
                "delete"
            }
        )?;
    }
    out.flush()?;
    if !args.dry_run {
        delete_files(&location, &plan).await?;
        writeln!(
            out,
            "removed {} files",
            plan.listed.len() + plan.orphans.len()
        )?;
    }
    Ok(crate::EXIT_OK)
}
