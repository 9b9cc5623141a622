//! Offline migration: a new savepoint whose states' values have changed type in ways that
//! need a decision (a rename, a default, a narrowing conversion, a target schema), or in
//! the current format version. Safe changes (fields added, removed, reordered, numbers
//! widened) need no migration: the engine adapts them on restore.

mod timers;
mod transform;

use std::collections::BTreeMap;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use futures::TryStreamExt;
use rewind_format::{FormatVersion, ShardEntry, StateEntry, StateKind};

use crate::columns;
use crate::{
    Error, Location, Result, SavepointInfo, SavepointReader, SavepointWriter, StateSpec,
    WriterOptions,
};
use transform::{Change, Failure};

/// One change to the values of one state.
#[derive(Debug, Clone, PartialEq)]
pub enum Migration {
    /// Make the value type `value_type`: struct fields matched by name and converted as by
    /// [`Migration::Cast`], fields the savepoint lacks added as null (they must be
    /// nullable), others dropped.
    Schema {
        /// Operator uid.
        uid: String,
        /// State name.
        state: String,
        /// The new value type.
        value_type: DataType,
    },
    /// Rename a struct field (a dotted path into the value, e.g. `acc.views`).
    RenameField {
        /// Operator uid.
        uid: String,
        /// State name.
        state: String,
        /// The field's path.
        field: String,
        /// Its new name.
        to: String,
    },
    /// Give a field a value where it is null, adding the field when the value lacks it.
    Default {
        /// Operator uid.
        uid: String,
        /// State name.
        state: String,
        /// The field's path, or `value`.
        field: String,
        /// A number, string or boolean, converted to the field's type.
        value: serde_json::Value,
    },
    /// Convert a field (or `value`, the whole value) to another type. A value that does
    /// not fit is an error naming its key, unless the migration is lossy.
    Cast {
        /// Operator uid.
        uid: String,
        /// State name.
        state: String,
        /// The field's path, or `value`.
        field: String,
        /// The new type.
        to: DataType,
    },
}

impl Migration {
    fn target(&self) -> (&str, &str) {
        match self {
            Migration::Schema { uid, state, .. }
            | Migration::RenameField { uid, state, .. }
            | Migration::Default { uid, state, .. }
            | Migration::Cast { uid, state, .. } => (uid, state),
        }
    }

    fn change(&self) -> Change {
        match self {
            Migration::Schema { value_type, .. } => Change::Conform {
                to: value_type.clone(),
            },
            Migration::RenameField { field, to, .. } => Change::Rename {
                field: field.clone(),
                to: to.clone(),
            },
            Migration::Default { field, value, .. } => Change::Default {
                field: field.clone(),
                value: value.clone(),
            },
            Migration::Cast { field, to, .. } => Change::Cast {
                field: field.clone(),
                to: to.clone(),
            },
        }
    }

    /// How the lineage and the dry run name it.
    pub fn describe(&self) -> String {
        let (uid, state) = self.target();
        match self {
            Migration::Schema { value_type, .. } => {
                format!("schema {uid}/{state}={}", transform::type_name(value_type))
            }
            Migration::RenameField { field, to, .. } => {
                format!("rename-field {uid}/{state}:{field}={to}")
            }
            Migration::Default { field, value, .. } => {
                format!("default {uid}/{state}:{field}={value}")
            }
            Migration::Cast { field, to, .. } => {
                format!("cast {uid}/{state}:{field}={}", transform::type_name(to))
            }
        }
    }
}

/// How to migrate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrateOptions {
    /// Values that do not fit a conversion become null instead of failing the migration.
    pub lossy: bool,
    /// The format version to write (default and, in this release, only: the current one).
    pub to_format_version: Option<FormatVersion>,
}

/// What a migration changes in one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateMigration {
    /// Operator uid.
    pub uid: String,
    /// State name.
    pub state: String,
    /// Its value type before.
    pub from_type: String,
    /// Its value type after.
    pub to_type: String,
    /// Its rows.
    pub rows: u64,
    /// Per migration (as [`Migration::describe`] names it), the rows it changed.
    pub affected: Vec<(String, u64)>,
}

/// What a migration did (or, in a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// The format version of the source.
    pub from_format_version: FormatVersion,
    /// The format version written.
    pub to_format_version: FormatVersion,
    /// The states whose values change, in manifest order.
    pub states: Vec<StateMigration>,
    /// Shards copied unchanged.
    pub shards_copied: usize,
    /// Shards rewritten.
    pub shards_rewritten: usize,
    /// Keyed shards re-encoded in the other layout (lean for 1.1, with `key_hash` for 1.0).
    pub shards_relayout: u64,
    /// Whether the source's extensions were left out (format 1.0 has none).
    pub extensions_dropped: bool,
    /// Timers whose domain was repaired: `event`/`processing`, as `rewind import-flink`
    /// 0.1.0 wrote them, become `event_time`/`processing_time`.
    pub timer_domains_repaired: u64,
    /// The new savepoint's id (none in a dry run).
    pub id: Option<String>,
}

/// Reads every row the migrations touch and reports what would change; writes nothing.
/// Fails as the migration would (a value that does not fit, a field that is missing).
pub async fn plan_migration(
    source: &SavepointReader,
    migrations: &[Migration],
    options: &MigrateOptions,
) -> Result<MigrationReport> {
    run(source, None, migrations, options).await
}

/// Writes `dest`: `source` with `migrations` applied, per state in the order given, in the
/// current format version. Shards of untouched states are copied as they are, except
/// timers shards holding the legacy domains `event`/`processing`, which are repaired. `source` is
/// never modified; the result names it as parent with operation `migrate`.
pub async fn migrate(
    source: &SavepointReader,
    dest: Location,
    migrations: &[Migration],
    options: &MigrateOptions,
) -> Result<MigrationReport> {
    run(source, Some(dest), migrations, options).await
}

/// The plan, then (unless a dry run) the new savepoint: declared, its shards migrated or
/// carried, committed.
async fn run(
    source: &SavepointReader,
    dest: Option<Location>,
    migrations: &[Migration],
    options: &MigrateOptions,
) -> Result<MigrationReport> {
    let manifest = source.manifest();
    let layout = choose_layout(source, options)?;
    let mut plans = plan_states(source, migrations, options.lossy)?;
    let writer = match dest {
        Some(dest) => {
            Some(create_writer(source, dest, migrations, options, &layout, &plans).await?)
        }
        None => None,
    };
    let mut report = MigrationReport {
        from_format_version: manifest.version,
        to_format_version: layout.version,
        states: Vec::new(),
        shards_copied: 0,
        shards_rewritten: 0,
        timer_domains_repaired: 0,
        shards_relayout: 0,
        extensions_dropped: layout.drop_extensions && has_extensions(manifest),
        id: None,
    };
    let to = Destination {
        writer: writer.as_ref(),
        layout: &layout,
        lossy: options.lossy,
    };
    for op in &manifest.operators {
        for st in &op.states {
            let plan = plans.get_mut(&(op.uid.clone(), st.name.clone()));
            write_state(source, &to, &op.uid, st, plan, &mut report).await?;
        }
    }
    if let Some(w) = writer {
        report.id = Some(w.commit().await?.id);
    }
    Ok(report)
}

/// What the new savepoint is written as.
struct Layout {
    /// Its format version.
    version: FormatVersion,
    /// Whether its keyed shards are lean.
    lean: bool,
    /// Whether keyed shards change layout (lean to full or back), so none is copied as is.
    relayout: bool,
    /// Whether the source's extensions are left out (format 1.0 has none).
    drop_extensions: bool,
}

/// Where migrated shards go: the writer (none in a dry run) and how they are written.
struct Destination<'a> {
    writer: Option<&'a SavepointWriter>,
    layout: &'a Layout,
    lossy: bool,
}

/// Picks the format version and keyed-shard layout to write, refusing what it cannot hold.
fn choose_layout(source: &SavepointReader, options: &MigrateOptions) -> Result<Layout> {
    let manifest = source.manifest();
    let version = check_version(manifest.version, options.to_format_version)?;
    if version < FormatVersion::V1_1 && crate::layers::is_incremental(manifest) {
        return Err(Error::InvalidInput(format!(
            "{} is an incremental checkpoint (delta layers or files shared with other \
             checkpoints), which format 1.0 cannot hold; write a self-contained copy with \
             `rewind compact` first and migrate that",
            source.location()
        )));
    }
    // The keyed-shard layout written: lean when 1.1 is asked for, full for 1.0 (its readers
    // need `key_hash`), else the source's; shards in the other layout are re-encoded.
    let source_lean = crate::lean::allowed(manifest);
    let lean = match options.to_format_version {
        Some(v) => v >= FormatVersion::V1_1,
        None => source_lean,
    };
    Ok(Layout {
        version,
        lean,
        relayout: lean != source_lean,
        // Format 1.0 has no extensions: going down drops them (and says so).
        drop_extensions: version < FormatVersion::V1_1,
    })
}

/// Per state, its changes in order; checked on an empty column first, so a bad request
/// fails before anything is read or written.
fn plan_states(
    source: &SavepointReader,
    migrations: &[Migration],
    lossy: bool,
) -> Result<BTreeMap<(String, String), StatePlan>> {
    let mut plans: BTreeMap<(String, String), StatePlan> = BTreeMap::new();
    for m in migrations {
        let (uid, state) = m.target();
        let entry = find_state(source, uid, state)?;
        let plan = plans
            .entry((uid.to_string(), state.to_string()))
            .or_insert_with(|| StatePlan::new(entry));
        plan.changes.push((m.describe(), m.change()));
    }
    for plan in plans.values_mut() {
        plan.new_type = plan.check(lossy)?;
    }
    Ok(plans)
}

/// Starts the new savepoint and declares every operator and state, with the new value
/// types.
async fn create_writer(
    source: &SavepointReader,
    dest: Location,
    migrations: &[Migration],
    options: &MigrateOptions,
    layout: &Layout,
    plans: &BTreeMap<(String, String), StatePlan>,
) -> Result<SavepointWriter> {
    let manifest = source.manifest();
    let mut info = SavepointInfo::derived_from(source, "migrate");
    info.kind = manifest.kind;
    info.min_version = layout.version;
    if layout.drop_extensions {
        info.extensions.clear();
    }
    info.lineage.parameters = Some(serde_json::json!({
        "migrations": migrations.iter().map(Migration::describe).collect::<Vec<_>>(),
        "lossy": options.lossy,
        "from_format_version": manifest.version.to_string(),
    }));
    let writer_options = WriterOptions {
        lean_keyed_shards: layout.lean,
        ..WriterOptions::default()
    };
    let w = SavepointWriter::create_with_options(dest, info, writer_options).await?;
    for op in &manifest.operators {
        w.add_operator(&op.uid, &op.name, op.parallelism)?;
        if let Some(s) = &op.source {
            w.set_source_splits(&op.uid, s.splits.clone())?;
        }
        for st in &op.states {
            let mut spec = StateSpec::from_entry(st)?;
            if let Some(plan) = plans.get(&(op.uid.clone(), st.name.clone())) {
                spec = spec.with_value_type(plan.new_type.clone());
            }
            if layout.drop_extensions {
                spec = spec.without_extensions();
            }
            w.add_state(&op.uid, spec)?;
        }
    }
    if !layout.drop_extensions {
        w.carry_operator_extensions(manifest, &|uid| uid.to_string())?;
    }
    Ok(w)
}

/// Migrates (with a plan) or carries (without) every shard of one state, and adds what
/// it did to `report`.
async fn write_state(
    source: &SavepointReader,
    to: &Destination<'_>,
    uid: &str,
    st: &StateEntry,
    mut plan: Option<&mut StatePlan>,
    report: &mut MigrationReport,
) -> Result<()> {
    for shard in &st.shards {
        match &mut plan {
            Some(plan) => {
                migrate_shard(source, to, uid, st, shard, plan).await?;
                report.shards_rewritten += 1;
            }
            None => carry_shard(source, to, uid, st, shard, report).await?,
        }
    }
    if let Some(plan) = plan {
        report.states.push(StateMigration {
            uid: uid.to_string(),
            state: st.name.clone(),
            from_type: st.value_type.clone().unwrap_or_default(),
            to_type: transform::type_name(&plan.new_type),
            rows: st.shards.iter().map(|s| s.rows).sum(),
            affected: plan
                .changes
                .iter()
                .map(|(d, _)| d.clone())
                .zip(plan.affected.iter().copied())
                .collect(),
        });
    }
    Ok(())
}

/// A shard no migration touches: copied as it is, or rewritten when it holds legacy timer
/// domains or its keyed layout changes.
async fn carry_shard(
    source: &SavepointReader,
    to: &Destination<'_>,
    uid: &str,
    st: &StateEntry,
    shard: &ShardEntry,
    report: &mut MigrationReport,
) -> Result<()> {
    let legacy = match st.kind {
        StateKind::Timers => timers::legacy_rows(source, shard).await?,
        _ => 0,
    };
    let relayout = to.layout.relayout;
    let rewrite = legacy > 0 || (relayout && shard.hash_range.is_some());
    match to.writer {
        Some(w) if rewrite => timers::rewrite_keyed_shard(source, w, uid, st, shard).await?,
        Some(w) => w.copy_shard(source, uid, &st.name, shard).await?,
        None => {}
    }
    if rewrite {
        report.shards_rewritten += 1;
        report.timer_domains_repaired += legacy;
        report.shards_relayout += u64::from(relayout && legacy == 0);
    } else {
        report.shards_copied += 1;
    }
    Ok(())
}

/// The format version to write: the source's, or the one asked for if this build writes
/// it (down to 1.0 too: full shards and no extensions, for older readers).
fn check_version(from: FormatVersion, to: Option<FormatVersion>) -> Result<FormatVersion> {
    let current = FormatVersion::CURRENT;
    match to {
        None => Ok(from.min(current)),
        Some(v) if v.major == current.major && v <= current => Ok(v),
        Some(v) => Err(Error::InvalidInput(format!(
            "this build writes format versions {} to {current}, not {v}",
            FormatVersion::V1_0
        ))),
    }
}

/// Whether the manifest records anything in `extensions`, at any level.
fn has_extensions(manifest: &rewind_format::Manifest) -> bool {
    !manifest.extensions.is_empty()
        || manifest
            .operators
            .iter()
            .any(|o| !o.extensions.is_empty() || o.states.iter().any(|s| !s.extensions.is_empty()))
}

fn find_state<'a>(source: &'a SavepointReader, uid: &str, state: &str) -> Result<&'a StateEntry> {
    let manifest = source.manifest();
    let op = manifest
        .operator(uid)
        .ok_or_else(|| Error::UnknownOperator {
            uid: uid.to_string(),
            known: manifest.operators.iter().map(|o| o.uid.clone()).collect(),
        })?;
    let entry = op
        .states
        .iter()
        .find(|s| s.name == state)
        .ok_or_else(|| Error::UnknownState {
            uid: uid.to_string(),
            state: state.to_string(),
            known: op.states.iter().map(|s| s.name.clone()).collect(),
        })?;
    if entry.kind == StateKind::Timers || entry.value_type.is_none() {
        return Err(Error::InvalidInput(format!(
            "{uid}/{state}: {} state has no values to migrate",
            entry.kind.as_str()
        )));
    }
    Ok(entry)
}

struct StatePlan {
    uid_state: String,
    old_type: DataType,
    new_type: DataType,
    changes: Vec<(String, Change)>,
    affected: Vec<u64>,
}

impl StatePlan {
    fn new(entry: &StateEntry) -> StatePlan {
        let old_type = entry
            .value_type
            .as_deref()
            .and_then(|t| rewind_format::parse_type(t).ok())
            .unwrap_or(DataType::Null);
        StatePlan {
            uid_state: entry.name.clone(),
            new_type: old_type.clone(),
            old_type,
            changes: Vec::new(),
            affected: Vec::new(),
        }
    }

    /// The value type after every change, found by migrating an empty column.
    fn check(&mut self, lossy: bool) -> Result<DataType> {
        self.affected = vec![0; self.changes.len()];
        let mut column = arrow_array::new_empty_array(&self.old_type);
        for (described, change) in &self.changes {
            column = transform::apply(&column, change, lossy)
                .map_err(|f| match f {
                    Failure::Invalid(m) => Error::InvalidInput(format!("{described}: {m}")),
                    Failure::DoesNotFit { .. } => Error::Internal("no rows to fit".into()),
                })?
                .0;
        }
        rewind_format::type_name(column.data_type()).map_err(|e| {
            Error::InvalidInput(format!(
                "{}: the result has no format type: {e}",
                self.uid_state
            ))
        })?;
        Ok(column.data_type().clone())
    }

    /// One batch's value column migrated; counts the rows each change touched.
    fn apply(
        &mut self,
        uid: &str,
        state: &str,
        batch: &RecordBatch,
        lossy: bool,
    ) -> Result<ArrayRef> {
        let mut column = batch
            .column_by_name(columns::VALUE)
            .cloned()
            .ok_or_else(|| Error::Internal(format!("{uid}/{state}: no value column")))?;
        for (i, (described, change)) in self.changes.iter().enumerate() {
            let (out, n) = transform::apply(&column, change, lossy).map_err(|f| match f {
                Failure::Invalid(m) => Error::InvalidInput(format!("{described}: {m}")),
                Failure::DoesNotFit {
                    field,
                    row,
                    value,
                    to,
                } => Error::ValueDoesNotFit(Box::new(crate::error::ValueDoesNotFit {
                    uid: uid.to_string(),
                    state: state.to_string(),
                    field,
                    key: match batch.column_by_name(columns::KEY) {
                        Some(key) => format!("key {}", transform::display(key.as_ref(), row)),
                        None => format!("element {row}"),
                    },
                    value,
                    to,
                })),
            })?;
            self.affected[i] += n;
            column = out;
        }
        Ok(column)
    }
}

/// Reads one shard, migrates its values, and writes it (unless a dry run) with the same
/// range or subtask.
async fn migrate_shard(
    source: &SavepointReader,
    to: &Destination<'_>,
    uid: &str,
    st: &StateEntry,
    shard: &ShardEntry,
    plan: &mut StatePlan,
) -> Result<()> {
    let mut out = match to.writer {
        None => None,
        Some(w) => Some(w.shard_like(uid, &st.name, shard)?),
    };
    let mut batches = source.read_whole_shard(uid, &st.name, shard).await?;
    while let Some(batch) = batches.try_next().await? {
        let value = plan.apply(uid, &st.name, &batch, to.lossy)?;
        let Some(out) = out.as_mut() else { continue };
        let schema = batch.schema();
        let mut fields: Vec<Field> = Vec::new();
        let mut cols: Vec<ArrayRef> = Vec::new();
        for (f, c) in schema.fields().iter().zip(batch.columns()) {
            if f.name() == columns::VALUE {
                fields.push(Field::new(columns::VALUE, value.data_type().clone(), true));
                cols.push(value.clone());
            } else {
                fields.push(f.as_ref().clone());
                cols.push(c.clone());
            }
        }
        let migrated = RecordBatch::try_new(std::sync::Arc::new(Schema::new(fields)), cols)
            .map_err(|e| Error::Internal(e.to_string()))?;
        if shard.hash_range.is_some() {
            out.write_with_hashes(migrated).await?;
        } else {
            out.write(&migrated).await?;
        }
    }
    if let Some(out) = out {
        out.finish().await?;
    }
    Ok(())
}
