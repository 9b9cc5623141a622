//! `rewind edit`: a new savepoint with edits applied in order.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arrow_schema::{Field, Schema};
use rewind_savepoint::format::SplitEntry;
use rewind_savepoint::{Edit, SavepointReader, StateSpec, edit};

use super::{location, open_savepoint};
use crate::cli::EditArgs;
use crate::files::read_rows;

pub async fn run(args: EditArgs, out: &mut dyn Write) -> Result<u8> {
    let source = open_savepoint(&args.src).await?;
    let edits = parse_edits(&source, &args.edits)?;
    let manifest = edit(&source, location(&args.dest)?, &edits).await?;
    writeln!(
        out,
        "wrote savepoint {} to {}: {} edits applied to {}",
        manifest.id,
        args.dest,
        edits.len(),
        source.manifest().id
    )?;
    Ok(crate::EXIT_OK)
}

fn split2<'a>(text: &'a str, sep: char, what: &str) -> Result<(&'a str, &'a str)> {
    text.split_once(sep)
        .with_context(|| format!("{text:?} is not {what}"))
}

/// Turns `--flag VALUE` pairs into edits, in order. Files are read here, so an unreadable
/// or mismatched file fails before anything is written.
fn parse_edits(source: &SavepointReader, words: &[String]) -> Result<Vec<Edit>> {
    let mut edits = Vec::new();
    let mut it = words.iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        let edit = match flag.as_str() {
            "--remove-operator" => Edit::RemoveOperator { uid: value.clone() },
            "--rename-operator" => {
                let (from, to) = split2(value, '=', "OLD=NEW")?;
                Edit::RenameOperator {
                    from: from.into(),
                    to: to.into(),
                }
            }
            "--set-position" => {
                let (target, json) = split2(value, '=', "UID/SPLIT=JSON")?;
                let (uid, split) = split2(target, '/', "UID/SPLIT")?;
                let position = serde_json::from_str(json)
                    .with_context(|| format!("{flag} {value}: the position is not JSON"))?;
                Edit::SetPosition {
                    uid: uid.into(),
                    split: split.into(),
                    position,
                }
            }
            "--set-watermark" => {
                let (target, ms) = split2(value, '=', "UID/SPLIT=MILLIS")?;
                let (uid, split) = split2(target, '/', "UID/SPLIT")?;
                let watermark = ms
                    .parse()
                    .with_context(|| format!("{flag} {value}: {ms:?} is not milliseconds"))?;
                Edit::SetWatermark {
                    uid: uid.into(),
                    split: split.into(),
                    watermark,
                }
            }
            "--remove-split" => {
                let (uid, split) = split2(value, '/', "UID/SPLIT")?;
                Edit::RemoveSplit {
                    uid: uid.into(),
                    split: split.into(),
                }
            }
            "--add-split" => {
                let (target, json) = split2(value, '=', "UID/SPLIT=JSON")?;
                let (uid, split) = split2(target, '/', "UID/SPLIT")?;
                let position = serde_json::from_str(json)
                    .with_context(|| format!("{flag} {value}: the position is not JSON"))?;
                Edit::AddSplit {
                    uid: uid.into(),
                    split: SplitEntry {
                        id: split.into(),
                        position,
                        watermark: None,
                    },
                }
            }
            "--drop-state" => {
                let (uid, state) = split2(value, '/', "UID/STATE")?;
                Edit::DropState {
                    uid: uid.into(),
                    state: state.into(),
                }
            }
            "--delete-keys" | "--upsert" => {
                let (target, file) = split2(value, '=', "UID/STATE=FILE")?;
                let (uid, state) = split2(target, '/', "UID/STATE")?;
                // The file is read with the schema of the state as the source has it; an
                // edit that renames the operator first still finds it by its old uid.
                let entry = edits
                    .iter()
                    .rev()
                    .find_map(|e| match e {
                        Edit::RenameOperator { from, to } if to == uid => Some(from.as_str()),
                        _ => None,
                    })
                    .map_or_else(|| source.state(uid, state), |old| source.state(old, state))?;
                let spec = StateSpec::from_entry(entry)?;
                if flag == "--upsert" {
                    let rows = read_rows(file, Some(spec.input_schema()))?;
                    Edit::Upsert {
                        uid: uid.into(),
                        state: state.into(),
                        rows,
                    }
                } else {
                    let key_field = spec
                        .input_schema()
                        .field_with_name("key")
                        .cloned()
                        .context("the state has no keys")?;
                    let schema = Arc::new(Schema::new(vec![Field::new(
                        "key",
                        key_field.data_type().clone(),
                        false,
                    )]));
                    let keys = read_rows(file, Some(schema))?;
                    Edit::DeleteKeys {
                        uid: uid.into(),
                        state: state.into(),
                        keys,
                    }
                }
            }
            other => bail!("unknown edit {other:?}; see rewind edit --help"),
        };
        edits.push(edit);
    }
    Ok(edits)
}
