//! `rewind migrate`: a new savepoint with state values migrated.

use std::io::Write;

use anyhow::{Context, Result, bail};
use rewind_savepoint::format::{FormatVersion, parse_type};
use rewind_savepoint::{MigrateOptions, Migration, MigrationReport, migrate, plan_migration};

use super::{location, open_savepoint};
use crate::cli::MigrateArgs;

pub async fn run(args: MigrateArgs, out: &mut dyn Write) -> Result<u8> {
    let source = open_savepoint(&args.src).await?;
    let migrations = parse(&args)?;
    let options = MigrateOptions {
        lossy: args.lossy,
        to_format_version: args
            .to_format_version
            .as_deref()
            .map(|v| {
                v.parse::<FormatVersion>()
                    .map_err(|e| anyhow::anyhow!("--to-format-version {v}: {e}"))
            })
            .transpose()?,
    };
    if migrations.is_empty() && options.to_format_version.is_none() {
        bail!(
            "nothing to do: give a --schema, --rename-field, --cast, --default or --to-format-version"
        );
    }
    let report = match (&args.dest, args.dry_run) {
        (_, true) => plan_migration(&source, &migrations, &options).await?,
        (Some(dest), false) => migrate(&source, location(dest)?, &migrations, &options).await?,
        (None, false) => bail!("DEST is required without --dry-run"),
    };
    print_report(&report, &args, out)?;
    Ok(crate::EXIT_OK)
}

fn print_report(r: &MigrationReport, args: &MigrateArgs, out: &mut dyn Write) -> Result<()> {
    let verb = if args.dry_run {
        "would change"
    } else {
        "changed"
    };
    writeln!(
        out,
        "format {} -> {}; {} shards {verb}, {} copied",
        r.from_format_version, r.to_format_version, r.shards_rewritten, r.shards_copied
    )?;
    if r.shards_relayout > 0 {
        let layout = if r.to_format_version >= rewind_savepoint::format::FormatVersion::V1_1 {
            "lean (no stored key_hash)"
        } else {
            "full (key_hash stored, for 1.0 readers)"
        };
        writeln!(
            out,
            "{} keyed shards re-encoded {layout}",
            r.shards_relayout
        )?;
    }
    if r.extensions_dropped {
        writeln!(
            out,
            "extensions left out: format {} has none (export-flink will generate Flink serializers)",
            r.to_format_version
        )?;
    }
    if r.timer_domains_repaired > 0 {
        let verb = if args.dry_run {
            "would repair"
        } else {
            "repaired"
        };
        writeln!(
            out,
            "{verb} {} timer domains (event/processing -> event_time/processing_time)",
            r.timer_domains_repaired
        )?;
    }
    for s in &r.states {
        writeln!(out, "{}/{} ({} rows)", s.uid, s.state, s.rows)?;
        writeln!(out, "  from {}", s.from_type)?;
        writeln!(out, "  to   {}", s.to_type)?;
        for (change, rows) in &s.affected {
            writeln!(out, "  {change}: {rows} rows")?;
        }
    }
    match (&r.id, &args.dest) {
        (Some(id), Some(dest)) => writeln!(out, "wrote savepoint {id} to {dest}")?,
        _ => writeln!(out, "dry run: nothing written")?,
    }
    Ok(())
}

fn split2<'a>(text: &'a str, sep: char, what: &str) -> Result<(&'a str, &'a str)> {
    text.split_once(sep)
        .with_context(|| format!("{text:?} is not {what}"))
}

/// `UID/STATE:FIELD=VALUE` -> (uid, state, field, value).
fn field_target<'a>(text: &'a str, what: &str) -> Result<(&'a str, &'a str, &'a str, &'a str)> {
    let (target, value) = split2(text, '=', what)?;
    let (uid_state, field) = split2(target, ':', what)?;
    let (uid, state) = split2(uid_state, '/', what)?;
    Ok((uid, state, field, value))
}

fn data_type(text: &str) -> Result<arrow_schema::DataType> {
    parse_type(text.trim()).map_err(|e| anyhow::anyhow!("type {text:?}: {e}"))
}

/// The migrations the flags ask for, per state in the documented order.
fn parse(args: &MigrateArgs) -> Result<Vec<Migration>> {
    let mut out = Vec::new();
    for text in &args.schema {
        let (target, file) = split2(text, '=', "UID/STATE=FILE")?;
        let (uid, state) = split2(target, '/', "UID/STATE=FILE")?;
        let json = std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?;
        let parsed: serde_json::Value =
            serde_json::from_str(&json).with_context(|| format!("{file}: not JSON"))?;
        let type_text = match &parsed {
            serde_json::Value::String(t) => t.clone(),
            serde_json::Value::Object(o) => {
                if o.contains_key("key") || o.contains_key("key_type") {
                    bail!("{file}: keys never change type in a migration; give only \"value\"");
                }
                o.get("value")
                    .and_then(|v| v.as_str())
                    .with_context(|| format!("{file}: no \"value\" type"))?
                    .to_string()
            }
            _ => bail!("{file}: expected a type string or {{\"value\": \"...\"}}"),
        };
        out.push(Migration::Schema {
            uid: uid.into(),
            state: state.into(),
            value_type: data_type(&type_text).with_context(|| file.to_string())?,
        });
    }
    for text in &args.rename_field {
        let (uid, state, field, to) = field_target(text, "UID/STATE:FIELD=NEW")?;
        out.push(Migration::RenameField {
            uid: uid.into(),
            state: state.into(),
            field: field.into(),
            to: to.into(),
        });
    }
    for text in &args.default {
        let (uid, state, field, json) = field_target(text, "UID/STATE:FIELD=JSON")?;
        let value = serde_json::from_str(json)
            .with_context(|| format!("--default {text}: the value is not JSON (quote strings)"))?;
        out.push(Migration::Default {
            uid: uid.into(),
            state: state.into(),
            field: field.into(),
            value,
        });
    }
    for text in &args.cast {
        let (uid, state, field, to) = field_target(text, "UID/STATE:FIELD=TYPE")?;
        out.push(Migration::Cast {
            uid: uid.into(),
            state: state.into(),
            field: field.into(),
            to: data_type(to)?,
        });
    }
    Ok(out)
}
