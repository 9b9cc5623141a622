//! The command line: every `///` comment here is `--help` text.

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit status:
  0  success (validate: the savepoint is valid; diff: no differences)
  1  a finding (validate: problems were found; diff: the savepoints differ)
  2  an error: bad arguments, not a savepoint, unreadable or unsupported manifest,
     storage failure. One line on stderr names the file and the problem.

Savepoints are named by a local path or a URL: file://, memory://, s3://BUCKET/PREFIX,
gs://BUCKET/PREFIX, az://CONTAINER/PREFIX. Cloud credentials come from the standard
environment variables (AWS_ACCESS_KEY_ID, AWS_ENDPOINT, GOOGLE_APPLICATION_CREDENTIALS, ...).";

/// Inspect, check and generate stream-processing savepoints.
///
/// A Rewind savepoint is a _manifest.json plus plain Parquet files, one per state shard,
/// on local disk or object storage.
#[derive(Debug, Parser)]
#[command(name = "rewind", version, after_help = EXIT_CODES, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Inspect(InspectArgs),
    State(StateArgs),
    Validate(ValidateArgs),
    Generate(GenerateArgs),
    Rescale(RescaleArgs),
    Diff(DiffArgs),
    Edit(EditArgs),
    Bootstrap(BootstrapArgs),
    Log(LogArgs),
    Rm(RmArgs),
}

/// Show a savepoint's job, lineage, operators, states and source positions.
///
/// Reads only the manifest, so it is as fast for a terabyte of state as for a kilobyte.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct InspectArgs {
    /// The savepoint: a path or URL.
    pub savepoint: String,
    /// Print JSON (a documented, versioned wire format) instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Print the rows of one state, with keys and values decoded.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct StateArgs {
    /// The savepoint: a path or URL.
    pub savepoint: String,
    /// The operator's uid.
    pub uid: String,
    /// The state's name.
    pub state: String,
    /// Only this key (repeatable). Written as JSON (42, "user-7", {"a": 1}); a bare word is
    /// taken as a string. Only the shards and row groups that can hold it are read.
    #[arg(long = "key", value_name = "K", allow_hyphen_values = true)]
    pub keys: Vec<String>,
    /// Print at most N rows [default: 20 for tables, all for json and csv].
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = StateFormat::Table)]
    pub format: StateFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateFormat {
    /// A table for people.
    Table,
    /// One JSON object per row (JSON lines).
    Json,
    /// CSV with a header row; lists, structs and maps as text like the table shows them.
    Csv,
}

/// Check a savepoint: every file's size and CRC-32C, Parquet schema and row counts against
/// the manifest, key hashes inside each shard's range, full coverage of the hash space by
/// each keyed state, and files the manifest does not list.
///
/// Exits 0 when valid, 1 when problems were found (each listed), 2 when the savepoint
/// cannot be read at all.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct ValidateArgs {
    /// The savepoint: a path or URL.
    pub savepoint: String,
    /// Also decode every key and check its stored hash and the sort order.
    #[arg(long)]
    pub deep: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Write a synthetic, valid savepoint for demos, benchmarks and tests.
///
/// Job "synthetic": a source operator with one split per subtask, and keyed operators
/// op-0, op-1, ... each with a value state "state" keyed by int64 keys 0..N.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct GenerateArgs {
    /// Where to write it (must not hold a savepoint yet): a path or URL.
    pub dest: String,
    /// Distinct keys per keyed operator.
    #[arg(long, value_name = "N")]
    pub keys: u64,
    /// Parallelism of every operator.
    #[arg(long, value_name = "P", default_value_t = 1)]
    pub parallelism: u32,
    /// Number of keyed operators.
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub operators: u32,
    /// Bytes of payload per value; 0 makes each value a plain int64.
    #[arg(long, value_name = "B", default_value_t = 0)]
    pub value_bytes: usize,
    /// Seed of the generated values.
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,
}

/// Write a copy of a savepoint with new operator parallelism, offline.
///
/// Keyed state is re-cut at the new hash-range boundaries: shards inside one new range are
/// copied whole (server-side where the store can), shards across a boundary are split by
/// copying their row groups and re-encoding only the row groups that hold the boundary.
/// Operator state is re-dealt by its mode (split, union, broadcast); source positions stay.
/// SRC is never modified; DEST records SRC as its parent.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct RescaleArgs {
    /// The savepoint to rescale: a path or URL.
    pub src: String,
    /// Where to write the result (must not hold a savepoint yet): a path or URL.
    pub dest: String,
    /// New parallelism of every operator not named by --operator.
    #[arg(long, value_name = "N", required_unless_present = "operators")]
    pub parallelism: Option<u32>,
    /// New parallelism of one operator (repeatable).
    #[arg(long = "operator", value_name = "UID=N", value_parser = parse_operator_parallelism)]
    pub operators: Vec<(String, u32)>,
    /// Print what would be copied, split or rewritten, and the bytes each costs; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

fn parse_operator_parallelism(text: &str) -> Result<(String, u32), String> {
    let (uid, n) = text
        .rsplit_once('=')
        .ok_or_else(|| format!("{text:?} is not UID=N"))?;
    let n = n.parse().map_err(|e| format!("{text:?}: {e}"))?;
    Ok((uid.to_string(), n))
}

/// Show what differs between savepoints A and B: operators, parallelism, states, schemas,
/// source positions and watermarks, and per state the keys only in A, only in B, and with
/// changed values (with examples).
///
/// Compares logical content, so savepoints with different parallelism or shard layout
/// compare equal when their rows do (a different parallelism alone is reported but is not
/// a difference). Shards identical on both sides are not read. Exits 0 when identical, 1
/// when different, 2 on error, like diff(1).
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct DiffArgs {
    /// Savepoint A (the "old" side): a path or URL.
    pub a: String,
    /// Savepoint B (the "new" side): a path or URL.
    pub b: String,
    /// Only this operator.
    #[arg(long, value_name = "UID")]
    pub operator: Option<String>,
    /// Only this state.
    #[arg(long, value_name = "NAME")]
    pub state: Option<String>,
    /// Examples to show per state and kind of difference.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub examples: usize,
    /// Counts only, no examples.
    #[arg(long)]
    pub stat: bool,
    /// JSON lines: one object per difference, then a summary object.
    #[arg(long)]
    pub json: bool,
}

const EDITS: &str = "\
Edits (repeatable, applied in the order given):
  --remove-operator UID          remove an operator and all its state
  --rename-operator OLD=NEW      give an operator a new uid
  --set-position UID/SPLIT=JSON  set a source split's position, e.g. '{\"offset\": 0}'
  --set-watermark UID/SPLIT=MS   set a source split's watermark (ms since the epoch)
  --remove-split UID/SPLIT       remove a source split
  --add-split UID/SPLIT=JSON     add a source split with this position
  --drop-state UID/STATE         drop one state
  --delete-keys UID/STATE=FILE   delete every row of the keys in FILE (a `key` column)
  --upsert UID/STATE=FILE        insert or replace rows from FILE (the state's columns)
FILE is CSV with a header (.csv), JSON lines (.jsonl, .json, .ndjson) or Parquet (.parquet).";

/// Write a copy of a savepoint with edits applied: remove or rename operators, move source
/// positions and watermarks, drop state, delete keys or upsert rows.
///
/// Every edit is checked before anything is written. Untouched shards are copied whole;
/// only shards holding edited keys are rewritten. SRC is never modified; DEST records SRC
/// as parent and lists the edits.
#[derive(Debug, Args)]
#[command(after_help = format!("{EDITS}\n\n{EXIT_CODES}"))]
pub struct EditArgs {
    /// The savepoint to edit: a path or URL.
    pub src: String,
    /// Where to write the result (must not hold a savepoint yet): a path or URL.
    pub dest: String,
    /// The edits, as listed below.
    #[arg(
        value_name = "EDIT",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true
    )]
    pub edits: Vec<String>,
}

/// Create a savepoint from data files, for a new job to start from state computed
/// elsewhere (a backfill, a migration from another system).
///
/// Each --state file holds a keyed state: a `key` column and a `value` column (value
/// state), or `key`, `user_key` and `value` (map state); column types come from the file
/// (Parquet) or are inferred (CSV, JSON lines).
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct BootstrapArgs {
    /// Where to write it (must not hold a savepoint yet): a path or URL.
    pub dest: String,
    /// The job's name.
    #[arg(long, value_name = "NAME")]
    pub job: String,
    /// A state of an operator from a file (repeatable): UID/STATE=FILE.
    #[arg(long = "state", value_name = "UID/STATE=FILE", required = true)]
    pub states: Vec<String>,
    /// Parallelism of every operator.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub parallelism: u32,
    /// The application version to record.
    #[arg(long, value_name = "VERSION")]
    pub app_version: Option<String>,
}

/// Find every savepoint and checkpoint under a prefix and draw their lineage as a tree:
/// which was derived from which (rescale, edit, ...), with the operation, time and job.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct LogArgs {
    /// The prefix to search: a path or URL.
    pub root: String,
    /// Print JSON instead of a tree.
    #[arg(long, conflicts_with = "dot")]
    pub json: bool,
    /// Print a Graphviz DOT graph instead of a tree.
    #[arg(long)]
    pub dot: bool,
}

/// Dispose of a savepoint: delete exactly the files its manifest lists, manifest first, so
/// a half-deleted savepoint never looks valid.
///
/// Every file is listed on stdout before it is deleted. Refuses a location that is not a
/// savepoint.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct RmArgs {
    /// The savepoint: a path or URL.
    pub savepoint: String,
    /// Also delete files under it that the manifest does not list (left by a crashed
    /// writer); with no manifest at all, delete such leftovers only.
    #[arg(long)]
    pub orphans: bool,
    /// List what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}
