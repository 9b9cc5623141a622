//! `rewind log`: the lineage of every savepoint under a prefix.

use std::collections::HashSet;
use std::io::Write;

use anyhow::Result;
use rewind_savepoint::{LineageEntry, find_savepoints};

use super::location;
use crate::cli::LogArgs;

pub async fn run(args: LogArgs, out: &mut dyn Write) -> Result<u8> {
    let (entries, broken) = find_savepoints(&location(&args.root)?).await?;
    let ids: HashSet<&str> = entries.iter().map(|e| e.id.as_str()).collect();
    let is_root = |e: &LineageEntry| e.parent_id.as_deref().is_none_or(|p| !ids.contains(p));
    if args.json {
        serde_json::to_writer_pretty(
            &mut *out,
            &serde_json::json!({ "json_version": 1, "savepoints": entries, "unreadable": broken }),
        )?;
        writeln!(out)?;
    } else if args.dot {
        writeln!(
            out,
            "digraph lineage {{\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];"
        )?;
        for e in &entries {
            let label = format!(
                "{}\\n{} {}\\n{}",
                display_path(e),
                e.kind,
                &e.id[..8.min(e.id.len())],
                e.created_at
            );
            writeln!(
                out,
                "  \"{}\" [label=\"{}\"];",
                e.id,
                label.replace('"', "'")
            )?;
            if let Some(p) = &e.parent_id {
                if !ids.contains(p.as_str()) {
                    writeln!(
                        out,
                        "  \"{p}\" [label=\"(not under this prefix)\\n{}\", style=dashed];",
                        e.parent_location
                            .clone()
                            .unwrap_or_default()
                            .replace('"', "'")
                    )?;
                }
                writeln!(
                    out,
                    "  \"{p}\" -> \"{}\" [label=\"{}\"];",
                    e.id, e.operation
                )?;
            }
        }
        writeln!(out, "}}")?;
    } else {
        if entries.is_empty() {
            writeln!(out, "no savepoints under {}", args.root)?;
        }
        for e in entries.iter().filter(|e| is_root(e)) {
            print_tree(out, &entries, e, "", "")?;
        }
        for b in &broken {
            writeln!(out, "unreadable: {}: {}", b.path, b.error)?;
        }
    }
    Ok(crate::EXIT_OK)
}

fn display_path(e: &LineageEntry) -> &str {
    if e.path.is_empty() { "." } else { &e.path }
}

fn print_tree(
    out: &mut dyn Write,
    all: &[LineageEntry],
    e: &LineageEntry,
    lead: &str,
    child_lead: &str,
) -> Result<()> {
    let version = e
        .app_version
        .as_deref()
        .map(|v| format!(" {v}"))
        .unwrap_or_default();
    let parent = match (&e.parent_id, &e.parent_location) {
        (Some(_), Some(loc)) if lead.is_empty() => format!(" (from {loc})"),
        _ => String::new(),
    };
    writeln!(
        out,
        "{lead}{}  {} {}  {}  {}  {}{}{parent}",
        display_path(e),
        e.kind,
        &e.id[..8.min(e.id.len())],
        e.created_at,
        e.operation,
        e.job,
        version
    )?;
    let children: Vec<&LineageEntry> = all
        .iter()
        .filter(|c| c.parent_id.as_deref() == Some(e.id.as_str()))
        .collect();
    for (i, c) in children.iter().enumerate() {
        let last = i + 1 == children.len();
        let (branch, next) = if last {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        print_tree(
            out,
            all,
            c,
            &format!("{child_lead}{branch}"),
            &format!("{child_lead}{next}"),
        )?;
    }
    Ok(())
}
