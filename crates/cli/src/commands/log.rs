//! `rewind log`: the lineage of every savepoint under a prefix.

use std::io::Write;

use anyhow::Result;
use rewind_savepoint::{LineageEntry, Unreadable, find_savepoints, latest_completed};
use serde::Serialize;

use super::location;
use crate::cli::LogArgs;
use crate::json;

/// The `log --json` document (docs/json.md).
#[derive(Serialize)]
struct LogView<'a> {
    savepoints: Vec<SavepointView<'a>>,
    unreadable: Vec<UnreadableView<'a>>,
}

/// The `log --latest --json` document.
#[derive(Serialize)]
struct LatestView<'a> {
    latest: SavepointView<'a>,
}

#[derive(Serialize)]
struct SavepointView<'a> {
    path: &'a str,
    id: &'a str,
    kind: &'a str,
    created_at: &'a str,
    checkpoint_id: u64,
    operation: &'a str,
    job: &'a str,
    app_version: Option<&'a str>,
    parent_id: Option<&'a str>,
    parent_location: Option<&'a str>,
}

impl<'a> From<&'a LineageEntry> for SavepointView<'a> {
    fn from(e: &'a LineageEntry) -> Self {
        SavepointView {
            path: &e.path,
            id: &e.id,
            kind: e.kind,
            created_at: &e.created_at,
            checkpoint_id: e.checkpoint_id,
            operation: &e.operation,
            job: &e.job,
            app_version: e.app_version.as_deref(),
            parent_id: e.parent_id.as_deref(),
            parent_location: e.parent_location.as_deref(),
        }
    }
}

#[derive(Serialize)]
struct UnreadableView<'a> {
    path: &'a str,
    error: &'a str,
}

impl<'a> From<&'a Unreadable> for UnreadableView<'a> {
    fn from(u: &'a Unreadable) -> Self {
        UnreadableView {
            path: &u.path,
            error: &u.error,
        }
    }
}

pub async fn run(args: LogArgs, out: &mut dyn Write) -> Result<u8> {
    let root = location(&args.root)?;
    let (entries, broken) = find_savepoints(&root).await?;
    if args.latest {
        let Some(latest) = latest_completed(&entries) else {
            anyhow::bail!(
                "{}: no completed savepoint or checkpoint under it",
                args.root
            );
        };
        if args.json {
            let latest = SavepointView::from(latest);
            json::write_document(out, &LatestView { latest })?;
        } else {
            writeln!(out, "{}", root.join(&latest.path)?)?;
        }
        return Ok(crate::EXIT_OK);
    }
    let is_root = |e: &LineageEntry| parent_of(&entries, e).is_none();
    if args.json {
        let view = LogView {
            savepoints: entries.iter().map(SavepointView::from).collect(),
            unreadable: broken.iter().map(UnreadableView::from).collect(),
        };
        json::write_document(out, &view)?;
    } else if args.dot {
        writeln!(
            out,
            "digraph lineage {{\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];"
        )?;
        // Nodes are locations: copies of one savepoint (same id) are distinct nodes.
        for e in &entries {
            let label = format!(
                "{}\\n{} {}\\n{}",
                dot_escape(display_path(e)),
                e.kind,
                dot_escape(&e.id[..8.min(e.id.len())]),
                dot_escape(&e.created_at)
            );
            writeln!(
                out,
                "  \"{}\" [label=\"{label}\"];",
                dot_escape(display_path(e))
            )?;
            let Some(p) = &e.parent_id else { continue };
            let from = match parent_of(&entries, e) {
                Some(parent) => dot_escape(display_path(parent)),
                None => {
                    let node = format!("parent {p}");
                    writeln!(
                        out,
                        "  \"{}\" [label=\"(not under this prefix)\\n{}\", style=dashed];",
                        dot_escape(&node),
                        dot_escape(e.parent_location.as_deref().unwrap_or(p))
                    )?;
                    dot_escape(&node)
                }
            };
            writeln!(
                out,
                "  \"{from}\" -> \"{}\" [label=\"{}\"];",
                dot_escape(display_path(e)),
                dot_escape(&e.operation)
            )?;
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

/// The savepoint under the prefix that `e` was derived from: the one with its parent's id
/// or, when several copies share that id, the one at the recorded parent location (else
/// the first by path).
fn parent_of<'a>(all: &'a [LineageEntry], e: &LineageEntry) -> Option<&'a LineageEntry> {
    let id = e.parent_id.as_deref()?;
    // Never itself, nor a copy of itself (a parent id equal to its own id would loop).
    let mut copies = all.iter().filter(|c| c.id == id && c.id != e.id);
    let first = copies.next()?;
    let recorded = e
        .parent_location
        .as_deref()
        .unwrap_or_default()
        .trim_end_matches('/');
    let at_recorded =
        |c: &&LineageEntry| !c.path.is_empty() && recorded.ends_with(&format!("/{}", c.path));
    Some(
        std::iter::once(first)
            .chain(copies)
            .find(at_recorded)
            .unwrap_or(first),
    )
}

/// Text inside a double-quoted DOT string.
fn dot_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
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
        .filter(|c| parent_of(all, c).is_some_and(|p| p.path == e.path))
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
