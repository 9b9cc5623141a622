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
environment variables (AWS_ACCESS_KEY_ID, AWS_ENDPOINT, GOOGLE_APPLICATION_CREDENTIALS, ...).
A canonical Apache Flink savepoint (its directory or `_metadata`) is read wherever a savepoint
is read (inspect, state, diff, validate, rescale, edit, migrate, export-flink): through the
importer, in memory, nothing written.";

/// Inspect, check, diff, rescale and edit stream-processing savepoints, and run the jobs
/// that write them.
///
/// A Rewind savepoint is a _manifest.json plus plain Parquet files, one per state shard,
/// on local disk or object storage. `rewind demo` walks through upgrading a running job.
#[derive(Debug, Parser)]
#[command(name = "rewind", version, after_help = EXIT_CODES, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log more on stderr: -v adds debug messages and each message's fields (uid,
    /// checkpoint, path), -vv trace messages, -vvv those of every library. RUST_LOG (e.g.
    /// rewind_engine=debug) replaces the default filter.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Inspect(InspectArgs),
    State(StateArgs),
    Validate(ValidateArgs),
    Generate(GenerateArgs),
    Rescale(RescaleArgs),
    Compact(CompactArgs),
    Diff(DiffArgs),
    Analyze(AnalyzeArgs),
    Edit(EditArgs),
    Migrate(MigrateArgs),
    ImportFlink(ImportFlinkArgs),
    ExportFlink(ExportFlinkArgs),
    Bootstrap(BootstrapArgs),
    Log(LogArgs),
    Rm(RmArgs),
    Run(RunArgs),
    List(ListArgs),
    Savepoint(SavepointArgs),
    Stop(StopArgs),
    Cancel(CancelArgs),
    Demo(DemoArgs),
}

/// Show a savepoint's job, lineage, operators, states and source positions.
///
/// Reads only the manifest, so it is as fast for a terabyte of state as for a kilobyte.
/// Also shows Apache Flink savepoints (a directory with `_metadata`, or the file), read
/// without a JVM.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct InspectArgs {
    /// The savepoint: a path or URL.
    pub savepoint: String,
    /// Print JSON instead of tables (a versioned wire format: docs/json.md).
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
    /// Also print each row's key hash (the key_hash column that places a key in a shard),
    /// first.
    #[arg(long)]
    pub with_hash: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateFormat {
    /// A table for people.
    Table,
    /// One JSON object per row (JSON lines), the state's columns as fields.
    Json,
    /// CSV with a header row; lists, structs and maps as text like the table shows them.
    Csv,
}

/// Check a savepoint: every file's size and CRC-32C, Parquet schema and row counts against
/// the manifest, key hashes inside each shard's range, full coverage of the hash space by
/// each keyed state, column values (no null keys; timer domains event_time or
/// processing_time), the parent of a derived savepoint, and files the manifest does not
/// list.
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
    /// Print JSON instead of a table (a versioned wire format: docs/json.md).
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
/// Keyed state is re-cut at the new hash-range boundaries into one shard per new subtask: a
/// shard whose range is exactly a new subtask's is copied whole (server-side where the store
/// can); otherwise the new shard is made of the row groups of the shards it overlaps,
/// copied without decoding, re-encoding only the row groups that hold a boundary.
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

/// Write a self-contained savepoint from any checkpoint or savepoint.
///
/// An incremental checkpoint lists files that earlier checkpoints of its job wrote and
/// delta layers of changed and deleted keys; it reads only while those files are kept,
/// and only tools that know format 1.1's `incremental_checkpoints` read it. DEST holds
/// all of its state in its own folder, one plain layer per state: shared files are
/// copied, delta layers merged into new shards, everything else copied byte for byte
/// (server-side where the store can). Parallelism and source positions are unchanged.
/// DEST is a savepoint (kind `savepoint`) that records SRC as its parent, so engine
/// retention never deletes it; SRC is never modified.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct CompactArgs {
    /// The checkpoint or savepoint to compact: a path or URL.
    pub src: String,
    /// Where to write the result (must not hold a savepoint yet): a path or URL.
    pub dest: String,
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
    /// Print JSON lines instead of tables: one object per difference, then a summary
    /// object (a versioned wire format: docs/json.md).
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

/// Write a copy of a savepoint with state values migrated to new types, or in the current
/// format version.
///
/// For the changes a restoring job cannot make alone (it adapts added, removed and
/// reordered fields and widened numbers itself). FIELD is a dotted path into the value's
/// struct (acc.views), or `value` for the whole value. Per state, the changes apply in
/// this order: --schema, --rename-field, --default, --cast (so a field added with a
/// default can then be given its type). Keys never change type.
/// Untouched states are copied whole; SRC is never modified; DEST records SRC as parent
/// and lists the changes. Timers with the domains `event`/`processing`, as
/// `rewind import-flink` 0.1.0 wrote them, are always repaired to `event_time`/
/// `processing_time` (so `--to-format-version 1.0` alone repairs such a savepoint).
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct MigrateArgs {
    /// The savepoint to migrate: a path or URL.
    pub src: String,
    /// Where to write the result (must not hold a savepoint yet); not needed with --dry-run.
    #[arg(required_unless_present = "dry_run")]
    pub dest: Option<String>,
    /// Make a state's value type the one in FILE: a JSON string with a type as
    /// `rewind inspect` prints it ("struct<views: int64, clicks: int64>"), or
    /// {"value": "..."}. Fields are matched by name and converted as by --cast; fields the
    /// savepoint lacks are added as null; others are dropped.
    #[arg(long, value_name = "UID/STATE=FILE")]
    pub schema: Vec<String>,
    /// Rename a struct field.
    #[arg(long, value_name = "UID/STATE:FIELD=NEW")]
    pub rename_field: Vec<String>,
    /// Convert a field to another type (int32, float64, utf8, ...). A value that does not
    /// fit is an error naming its key, unless --lossy.
    #[arg(long, value_name = "UID/STATE:FIELD=TYPE")]
    pub cast: Vec<String>,
    /// Give a field a value (JSON: number, string or boolean) where it is null; adds the
    /// field when the value has none.
    #[arg(long, value_name = "UID/STATE:FIELD=JSON")]
    pub default: Vec<String>,
    /// Values that do not fit a conversion become null instead of failing.
    #[arg(long)]
    pub lossy: bool,
    /// The format version to write: 1.1 (keyed shards lean, without the stored key hash) or
    /// 1.0 (keyed shards with key_hash and no extensions, for readers of format 1.0).
    /// Default: the source's version and layout.
    #[arg(long, value_name = "VERSION")]
    pub to_format_version: Option<String>,
    /// Read everything, report what would change and how many rows, write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Convert a canonical Apache Flink savepoint into a Rewind savepoint, with no JVM.
///
/// Keyed value, list, map, aggregating and reducing state and timers whose serializers are
/// Flink's built-in ones (Long, Integer, String, Boolean, Double, Float, Short, Byte,
/// Character, byte[], arrays, tuples, rows, POJOs, lists and maps of those) become typed
/// columns under the same uid and state name, keyed by Rewind's key hash. Operator state
/// is carried as binary elements. What Flink needs to restore the state again (operator
/// ids, serializer snapshots, max parallelism, coordinator and master state) is kept in
/// the manifest's `flink` extension, so `rewind export-flink` writes it back. Native
/// (RocksDB) savepoints are refused: take a canonical one (`flink savepoint --type
/// canonical`).
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct ImportFlinkArgs {
    /// The Flink savepoint: its directory or its `_metadata` file (a path or URL).
    pub src: String,
    /// Where to write the Rewind savepoint (a path or URL).
    pub dest: String,
    /// Import what can be decoded; record the states that cannot (with their serializer
    /// class) in the lineage instead of failing.
    #[arg(long)]
    pub skip_undecodable: bool,
    /// A uid of the job's operators (repeatable). Flink 1.x records only operator ids,
    /// each the hash of its uid: the operator whose id is the hash of UID is imported
    /// under UID (else under its id), and export writes the uid back.
    #[arg(long = "uid", value_name = "UID")]
    pub uids: Vec<String>,
}

/// Write a Rewind savepoint as a canonical Apache Flink savepoint that Flink 2.x
/// restores, with no JVM.
///
/// Keyed state is laid out in Flink's key groups for the target max parallelism (the
/// way past a frozen max parallelism: --max-parallelism 4096), with Flink's own
/// assignment of keys (murmur hash of the key's Java hashCode: Long, Integer, Short, Byte,
/// Boolean, Double, Float, Character, String and Tuple keys; POJO keys go back into the key
/// groups the import kept, at the max parallelism they came with). A savepoint imported with
/// `rewind import-flink` goes back with Flink's own operator ids, serializer snapshots,
/// operator, coordinator and master state; state made or changed in Rewind (bootstrap,
/// edit, migrate, the engine) gets serializers generated from its Arrow types. Operators
/// renamed in Rewind get the operator id Flink derives from the new uid. The directory is
/// relocatable; `_metadata` is written last and never over an existing savepoint.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct ExportFlinkArgs {
    /// The Rewind savepoint (a path or URL).
    pub src: String,
    /// The new Flink savepoint directory (a path or URL); must not hold a savepoint.
    pub dest: String,
    /// Max parallelism (number of key groups) of every operator, 1 to 32768 and at least
    /// the parallelism [default: as imported, else Flink's default for the parallelism].
    #[arg(long, value_name = "N")]
    pub max_parallelism: Option<u32>,
    /// Parallelism of every operator [default: the savepoint's].
    #[arg(long, value_name = "N")]
    pub parallelism: Option<u32>,
    /// Parallelism of one operator, over --parallelism (repeatable).
    #[arg(long = "operator", value_name = "UID=N")]
    pub operators: Vec<String>,
    /// The Java class of a struct-typed state's values, which Flink restores as a POJO
    /// (repeatable), e.g. `--pojo profile/stats=com.example.Stats`.
    #[arg(long = "pojo", value_name = "UID/STATE=CLASS")]
    pub pojos: Vec<String>,
    /// Compress keyed state with Snappy, as Flink does with
    /// `execution.checkpointing.snapshot-compression: true` (which Flink reads either way).
    #[arg(long)]
    pub compress: bool,
}

/// Why is the state so big: sizes, skew, hot keys, overdue timers and growth.
///
/// Per state: rows, bytes on storage and bytes by column (from the Parquet footers), bytes
/// per key; rows and bytes per subtask and the skew (largest / mean), and rows in 64 slices
/// of the hash space (whether more subtasks would spread the state); the largest keys (list
/// length, map entries or value bytes) and the keys by size; value statistics per field;
/// timers by domain, earliest, latest and how many are behind the recorded watermark; an
/// incremental checkpoint's layers (the other figures are of the merged state). With
/// --baseline, growth per state and subtask and the keys that grew most. Findings first.
/// Reads Flink savepoints directly too. Nothing is written.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct AnalyzeArgs {
    /// The savepoint (a path or URL).
    pub savepoint: String,
    /// An older savepoint of the same job, to show growth against.
    #[arg(long, value_name = "OLDER")]
    pub baseline: Option<String>,
    /// How many of the largest keys to list per state.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,
    /// Only this operator.
    #[arg(long, value_name = "UID")]
    pub operator: Option<String>,
    /// Only this state.
    #[arg(long, value_name = "NAME")]
    pub state: Option<String>,
    /// Also write the analysis as one self-contained HTML file (styles and SVG charts
    /// inline, nothing loaded from the network; printable).
    #[arg(long, value_name = "FILE")]
    pub html: Option<std::path::PathBuf>,
    /// Print JSON instead of tables (a versioned wire format: docs/json.md): findings,
    /// states with columns, subtasks, slices, top_keys, sizes, fields, timers, growth.
    #[arg(long)]
    pub json: bool,
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
    /// Print JSON instead of a tree (a versioned wire format: docs/json.md).
    #[arg(long, conflicts_with = "dot")]
    pub json: bool,
    /// Print a Graphviz DOT graph instead of a tree.
    #[arg(long, conflicts_with = "latest")]
    pub dot: bool,
    /// Print only the newest completed savepoint or checkpoint: the highest checkpoint id
    /// (on a tie, the later written), never by wall-clock time alone; its location on one
    /// line, or its entry with --json. `rewind run -s` given a directory that holds no
    /// savepoint itself picks the same one.
    #[arg(long)]
    pub latest: bool,
}

/// Dispose of a savepoint: delete exactly the files its manifest lists, manifest first, so
/// a half-deleted savepoint never looks valid.
///
/// Every file is listed on stdout before it is deleted. Refuses a location that is not a
/// savepoint. On a file sink's output folder, `--orphans` deletes the staged output that no
/// committed checkpoint or savepoint lists (left by a crash or cancel), never committed
/// output and never a chunk a committed checkpoint lists.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct RmArgs {
    /// The savepoint: a path or URL.
    pub savepoint: String,
    /// Also delete files under it that the manifest does not list (left by a crashed
    /// writer); with no manifest at all, delete such leftovers only. On a sink folder: its
    /// staged chunks that no committed checkpoint lists.
    #[arg(long)]
    pub orphans: bool,
    /// On a sink folder, leave staged files younger than this (a running job's checkpoint
    /// may be in progress).
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub min_age: humantime::Duration,
    /// List what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

const JOB_NOTES: &str = "\
Jobs register in $REWIND_HOME/jobs (default ~/.rewind/jobs): one file per job, readable only
by its owner, with the job's loopback control address and secret. A job id may be shortened
to any unique prefix.

Exit status:
  0  success
  2  an error: no such job, the job is not running, the savepoint failed (the job keeps
     running), bad arguments. One line on stderr says what is wrong.";

/// Start an application built on rewind-engine, optionally from a savepoint.
///
/// APP is a path, or the name of a program next to `rewind` or on PATH. rewind passes the
/// engine's standard options on to it (--from-savepoint, --parallelism, ...), then
/// APP_ARGS. The job registers and listens for `rewind savepoint`, `stop` and `cancel`.
/// In the foreground, rewind exits when the job does (0 when it succeeded, 2 otherwise).
/// SIGTERM or Ctrl-C (to rewind in the foreground, or to a detached job's pid) stops the
/// job with a savepoint into its --savepoint-dir, like `rewind stop`; a second one cancels
/// it at once; a job without a savepoint dir, or whose savepoint fails, says why and is
/// cancelled.
#[derive(Debug, Args)]
#[command(after_help = JOB_NOTES)]
pub struct RunArgs {
    /// Detach: start the job in the background (output to $REWIND_HOME/logs/ID.log), print
    /// its id and return once it runs.
    #[arg(short = 'd', long)]
    pub detached: bool,
    /// Restore from this savepoint or checkpoint (a path or URL); a checkpoint directory
    /// means its newest completed checkpoint, by checkpoint id (see `rewind log --latest`).
    #[arg(short = 's', long = "from-savepoint", value_name = "SAVEPOINT")]
    pub savepoint: Option<String>,
    /// Start even when the savepoint holds state of operators the job no longer has (that
    /// state is dropped).
    #[arg(short = 'n', long)]
    pub allow_non_restored_state: bool,
    /// Parallelism of every operator that does not set its own.
    #[arg(short = 'p', long, value_name = "N")]
    pub parallelism: Option<u32>,
    /// Where periodic checkpoints go (a path or URL).
    #[arg(long, value_name = "URL")]
    pub checkpoint_dir: Option<String>,
    /// How often to checkpoint [default with --checkpoint-dir: 10s].
    #[arg(long, value_name = "DURATION")]
    pub checkpoint_interval: Option<String>,
    /// Where savepoints go when `rewind savepoint` or `stop` names no target
    /// [default: $REWIND_SAVEPOINT_DIR].
    #[arg(long, value_name = "URL")]
    pub savepoint_dir: Option<String>,
    /// With -s: print which operator gets which state, and exit without running.
    #[arg(long)]
    pub dry_run: bool,
    /// The application.
    pub app: String,
    /// The application's own arguments.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "APP_ARGS"
    )]
    pub app_args: Vec<String>,
}

/// List running and recently finished jobs.
///
/// Shows each job's id, name, status, start time, last checkpoint and the savepoint it
/// was restored from. A job registered as running whose process is gone is shown as
/// "lost" (with its last checkpoint, to restore from) and then removed from the registry;
/// entries of jobs that ended more than 24 hours ago are removed.
#[derive(Debug, Args)]
#[command(after_help = JOB_NOTES)]
pub struct ListArgs {
    /// Print JSON instead of a table (a versioned wire format: docs/json.md).
    #[arg(long)]
    pub json: bool,
}

/// Take a savepoint of a running job and print its path; the job keeps running.
#[derive(Debug, Args)]
#[command(after_help = JOB_NOTES)]
pub struct SavepointArgs {
    /// The job's id (or a unique prefix).
    pub job_id: String,
    /// Where to write it (a path or URL) [default: a new folder under the job's
    /// --savepoint-dir].
    pub target: Option<String>,
    /// Give up waiting after this long (the savepoint may still complete).
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    pub timeout: humantime::Duration,
}

/// Stop a job with a savepoint, for a new version to start from; print the savepoint's path.
///
/// Open windows and timers stay in the savepoint. With --drain, event time first advances
/// to the end: every window fires and its output is committed, for a job that will not
/// resume. A target that holds a savepoint or cannot be written is refused before the job
/// stops. The sources pause at the stop until the savepoint is written; if writing it fails
/// (disk full, store down), the job reads on and the error is reported (with --drain, whose
/// event time has already run to the end, the job ends).
#[derive(Debug, Args)]
#[command(after_help = JOB_NOTES)]
pub struct StopArgs {
    /// The job's id (or a unique prefix).
    pub job_id: String,
    /// Where to write the savepoint (a path or URL) [default: a new folder under the job's
    /// --savepoint-dir].
    #[arg(long, value_name = "TARGET")]
    pub savepoint: Option<String>,
    /// Fire every window and timer before the savepoint.
    #[arg(long)]
    pub drain: bool,
    /// Give up waiting after this long.
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    pub timeout: humantime::Duration,
}

/// Cancel a job at once, without a savepoint.
///
/// Output not yet committed by a checkpoint is dropped; restore from the last checkpoint
/// (`rewind list` shows it) to go on exactly once.
#[derive(Debug, Args)]
#[command(after_help = JOB_NOTES)]
pub struct CancelArgs {
    /// The job's id (or a unique prefix).
    pub job_id: String,
}

/// Walk through upgrading a running job with a savepoint, with real jobs on local disk.
///
/// Generates post events, runs post-analytics-v1, takes a savepoint mid-stream, cancels
/// v1, starts post-analytics-v2 from the savepoint, lets it catch up, stops it with a
/// savepoint, and shows the results side by side with the savepoints' lineage. Each step
/// prints the command that does it by hand.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// A new folder for the events, results and savepoints [default: a fresh temporary one].
    pub dir: Option<String>,
    /// Events before the upgrade; as many again arrive during it.
    #[arg(long, default_value_t = 200_000)]
    pub events: u64,
}
