//! `rewind rm`: dispose of a savepoint, listing every file before deleting it.

use std::io::Write;

use anyhow::Result;
use rewind_savepoint::{delete_files, plan_removal};

use super::location;
use crate::cli::RmArgs;

pub async fn run(args: RmArgs, out: &mut dyn Write) -> Result<u8> {
    let location = location(&args.savepoint)?;
    if args.orphans && is_sink_folder(&location).await? {
        return sink_orphans(&args, &location, out);
    }
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
    for path in &plan.shared {
        writeln!(
            out,
            "{} ../{path} (shared; its own checkpoint is gone and no other manifest lists it)",
            if args.dry_run {
                "would delete"
            } else {
                "delete"
            }
        )?;
    }
    for path in &plan.kept {
        writeln!(out, "keep {path} (a checkpoint next to it lists it)")?;
    }
    out.flush()?;
    if !args.dry_run {
        delete_files(&location, &plan).await?;
        writeln!(
            out,
            "removed {} files",
            plan.listed.len() + plan.orphans.len() + plan.shared.len()
        )?;
    }
    Ok(crate::EXIT_OK)
}

/// Whether `location` is a file sink's folder (committed `part-*.jsonl`, staged output in
/// `_pending/`) rather than a savepoint: it has no manifest.
async fn is_sink_folder(location: &rewind_savepoint::Location) -> Result<bool> {
    let files = rewind_savepoint::list_files(location).await?;
    let manifest = files
        .iter()
        .any(|(p, _)| p == rewind_savepoint::format::MANIFEST_FILE);
    let sink = files.iter().any(|(p, _)| {
        p.starts_with("_pending/") || (p.starts_with("part-") && p.ends_with(".jsonl"))
    });
    Ok(sink && !manifest)
}

/// `rm --orphans` on a sink folder: the staged chunks no committed checkpoint or savepoint
/// lists, and their stale listing records; committed output is never touched.
fn sink_orphans(
    args: &RmArgs,
    location: &rewind_savepoint::Location,
    out: &mut dyn Write,
) -> Result<u8> {
    let min_age: std::time::Duration = args.min_age.into();
    let found = rewind_engine::find_staged_orphans(location, min_age)?;
    let verb = if args.dry_run {
        "would delete"
    } else {
        "delete"
    };
    for chunk in &found.chunks {
        writeln!(out, "{verb} {chunk} (staged output no checkpoint lists)")?;
    }
    for record in &found.records {
        writeln!(
            out,
            "{verb} {record} (listing of a checkpoint that is gone or done)"
        )?;
    }
    writeln!(
        out,
        "kept {} staged chunks a committed checkpoint lists; files younger than {} are left alone",
        found.kept,
        humantime::format_duration(min_age)
    )?;
    out.flush()?;
    if !args.dry_run {
        rewind_engine::remove_staged_orphans(location, &found)?;
        writeln!(out, "removed {} files", found.files().count())?;
    }
    Ok(crate::EXIT_OK)
}
