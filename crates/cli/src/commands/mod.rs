//! One module per subcommand, each with `run(args, out)` so its output is testable.

mod analyze;
mod bootstrap;
mod compact;
mod demo;
mod diff;
mod edit;
mod flink;
mod generate;
mod inspect;
mod jobs;
mod log;
mod migrate;
mod rescale;
mod rm;
mod state;
mod validate;

use std::io::Write;

use anyhow::Result;
use rewind_savepoint::Location;

use crate::cli::{Cli, Command};

/// Runs the command and returns its exit status.
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<u8> {
    match cli.command {
        Command::Inspect(args) => inspect::run(args, out).await,
        Command::State(args) => state::run(args, out).await,
        Command::Validate(args) => validate::run(args, out).await,
        Command::Generate(args) => generate::run(args, out).await,
        Command::Rescale(args) => rescale::run(args, out).await,
        Command::Compact(args) => compact::run(args, out).await,
        Command::Diff(args) => diff::run(args, out).await,
        Command::Analyze(args) => analyze::run(args, out).await,
        Command::Edit(args) => edit::run(args, out).await,
        Command::Migrate(args) => migrate::run(args, out).await,
        Command::ImportFlink(args) => flink::import(args, out).await,
        Command::ExportFlink(args) => flink::export(args, out).await,
        Command::Bootstrap(args) => bootstrap::run(args, out).await,
        Command::Log(args) => log::run(args, out).await,
        Command::Rm(args) => rm::run(args, out).await,
        Command::Run(args) => jobs::run(args, cli.verbose, out),
        Command::List(args) => jobs::list(args.json, out),
        Command::Savepoint(args) => jobs::savepoint(args, out),
        Command::Stop(args) => jobs::stop(args, out),
        Command::Cancel(args) => jobs::cancel(args, out),
        Command::Demo(args) => demo::run(args, out),
    }
}

fn location(text: &str) -> Result<Location> {
    Ok(Location::parse(text)?)
}

/// Whether `at` is a Flink savepoint; a Rewind manifest wins when both are present.
async fn is_flink(at: &Location) -> bool {
    rewind_flink::is_flink_savepoint(at).await
}

/// A savepoint argument of a reading command: a Rewind savepoint, or a canonical Flink
/// savepoint read through the importer into memory (nothing is written).
async fn savepoint_location(text: &str) -> Result<Location> {
    savepoint_location_naming(text, &[]).await
}

/// [`savepoint_location`], where a Flink savepoint's operators that record no uid (Flink
/// 1.x) and whose id is the hash of one of `uids` are named by it.
async fn savepoint_location_naming(text: &str, uids: &[String]) -> Result<Location> {
    Ok(rewind_flink::readable_location(location(text)?, uids).await?)
}

/// A Rewind savepoint (or a Flink savepoint through the importer) opened for reading.
async fn open_savepoint(text: &str) -> Result<rewind_savepoint::SavepointReader> {
    open_savepoint_naming(text, &[]).await
}

/// [`open_savepoint`], naming Flink 1.x operators by the `uids` the command was given.
async fn open_savepoint_naming(
    text: &str,
    uids: &[String],
) -> Result<rewind_savepoint::SavepointReader> {
    let at = savepoint_location_naming(text, uids).await?;
    Ok(rewind_savepoint::SavepointReader::open(at).await?)
}
