//! The manifest: `_manifest.json`, the description of a whole savepoint.

use std::collections::{BTreeMap, HashSet};

use arrow_schema::DataType;
use serde::{Deserialize, Serialize};

use crate::FormatError;
use crate::hash::KEY_HASH_ALGORITHM;
use crate::path::{check_name, check_relative_path};
use crate::range::{CoverageProblem, HashRange, coverage_problems};
use crate::types::{is_key_type, parse_type};
use crate::version::{FORMAT_MARKER, FormatVersion, missing_from};

/// A parsed and checked manifest. Every value of this type obeys the per-field rules of
/// spec/FORMAT.md: names, paths, types and state kinds are valid. Rules that span the whole
/// savepoint (hash-space coverage) are reported by [`Manifest::problems`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ManifestRaw", into = "ManifestRaw")]
pub struct Manifest {
    /// Format version of this manifest.
    pub version: FormatVersion,
    /// Reader features the savepoint needs (none in format 1.0).
    pub reader_features: Vec<String>,
    /// Writer features the savepoint uses (none in format 1.0).
    pub writer_features: Vec<String>,
    /// Unique id of this savepoint.
    pub id: String,
    /// Savepoint (user-owned) or checkpoint (engine-owned).
    pub kind: SavepointKind,
    /// When it was committed, RFC 3339 in UTC.
    pub created_at: String,
    /// The program that wrote it.
    pub writer: WriterInfo,
    /// The job it is a snapshot of.
    pub job: JobInfo,
    /// The checkpoint number in the job's sequence (0 where there is none).
    pub checkpoint_id: u64,
    /// Where it came from.
    pub lineage: Lineage,
    /// The key-hash algorithm (`xxh3_64` in format 1.0).
    pub key_hash: String,
    /// The operators, in the order the writer listed them.
    pub operators: Vec<OperatorEntry>,
    /// What other systems need to know about the whole savepoint (format 1.1).
    pub extensions: Extensions,
}

/// Information for other systems, by system name (e.g. `flink`): readers of the format
/// ignore it, tools carry it into derived savepoints (spec: "Extensions").
pub type Extensions = BTreeMap<String, serde_json::Value>;

/// `null` reads as an absent (empty) extensions object, as for every optional member.
fn extensions_or_null<'de, D>(d: D) -> Result<Extensions, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::<Extensions>::deserialize(d)?.unwrap_or_default())
}

/// Whether a savepoint belongs to the user or to the engine's checkpoint retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SavepointKind {
    /// Triggered by a user; never deleted by the engine.
    Savepoint,
    /// Periodic; the engine keeps the last N.
    Checkpoint,
}

impl SavepointKind {
    /// The name used in JSON and in command output.
    pub fn as_str(self) -> &'static str {
        match self {
            SavepointKind::Savepoint => "savepoint",
            SavepointKind::Checkpoint => "checkpoint",
        }
    }
}

/// The program that wrote a savepoint, so a later reader can work around a writer's bug.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterInfo {
    /// Program name, e.g. `rewind`.
    pub name: String,
    /// Program version, e.g. `0.1.0`.
    pub version: String,
}

/// The job a savepoint belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct JobInfo {
    /// Job name.
    pub name: String,
    /// Version of the application that ran the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    /// Id of the running job instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
}

/// How a savepoint came to be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    /// The operation that wrote it: `engine`, `generate`, `rescale`, `edit`, `migrate`,
    /// `bootstrap` or `import`. Readers show unknown operations as they are.
    pub operation: String,
    /// The savepoint it was derived from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentRef>,
    /// Operation-specific parameters (e.g. the new parallelism of a rescale).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<serde_json::Value>,
}

/// A reference to a parent savepoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentRef {
    /// The parent's `id`.
    pub id: String,
    /// Where the parent was when this savepoint was written (a URL or path).
    pub location: String,
}

/// One operator of the job and its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorEntry {
    /// Stable id that matches state to operators across job versions.
    pub uid: String,
    /// Display name.
    pub name: String,
    /// Number of parallel subtasks when the savepoint was taken.
    pub parallelism: u32,
    /// The operator's states.
    #[serde(default)]
    pub states: Vec<StateEntry>,
    /// Present on source operators: their splits and positions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceEntry>,
    /// What other systems need to know about this operator (format 1.1).
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "extensions_or_null"
    )]
    pub extensions: Extensions,
}

impl OperatorEntry {
    /// The state called `name`.
    pub fn state(&self, name: &str) -> Option<&StateEntry> {
        self.states.iter().find(|s| s.name == name)
    }
}

/// A source operator's read positions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceEntry {
    /// Every split of the source (a log partition, a file), assigned or not.
    pub splits: Vec<SplitEntry>,
}

/// One split of a source: where reading resumes and how far event time has come.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitEntry {
    /// Split id, unique within the operator, e.g. `partition-3`.
    pub id: String,
    /// Source-specific position, e.g. `{"offset": 1234}`.
    pub position: serde_json::Value,
    /// Event-time watermark in milliseconds since the Unix epoch, if the source has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<i64>,
}

/// The kinds of state (spec: "State kinds").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateKind {
    /// Keyed: one value per key (and namespace).
    Value,
    /// Keyed: a list per key (and namespace), stored as one `list<T>` value.
    List,
    /// Keyed: a map per key (and namespace), stored as one row per entry.
    Map,
    /// Keyed: timers, one row per registered timer.
    Timers,
    /// Non-keyed: a list of elements per subtask, redistributed on rescale.
    OperatorList,
}

impl StateKind {
    /// Whether the state is partitioned by key hash.
    pub fn is_keyed(self) -> bool {
        !matches!(self, StateKind::OperatorList)
    }

    /// The name used in JSON and in command output.
    pub fn as_str(self) -> &'static str {
        match self {
            StateKind::Value => "value",
            StateKind::List => "list",
            StateKind::Map => "map",
            StateKind::Timers => "timers",
            StateKind::OperatorList => "operator_list",
        }
    }
}

/// How operator list state is dealt out to subtasks when parallelism changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Redistribution {
    /// The elements of all subtasks are dealt out evenly.
    Split,
    /// Every subtask receives the elements of all subtasks.
    Union,
    /// Every subtask receives one copy of subtask 0's elements.
    Broadcast,
}

impl Redistribution {
    /// The name used in JSON and in command output.
    pub fn as_str(self) -> &'static str {
        match self {
            Redistribution::Split => "split",
            Redistribution::Union => "union",
            Redistribution::Broadcast => "broadcast",
        }
    }
}

/// One state of an operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateEntry {
    /// State name, unique within its operator.
    pub name: String,
    /// Kind of state.
    pub kind: StateKind,
    /// Type of the `key` column (keyed kinds only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_type: Option<String>,
    /// Type of the `namespace` column, when the state is namespaced (e.g. by window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_type: Option<String>,
    /// Type of the `user_key` column (map state only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_key_type: Option<String>,
    /// Type of the `value` column (all kinds but timers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_type: Option<String>,
    /// Redistribution mode (operator list state only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redistribution: Option<Redistribution>,
    /// The files holding the state.
    pub shards: Vec<ShardEntry>,
    /// What other systems need to know about this state (format 1.1).
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "extensions_or_null"
    )]
    pub extensions: Extensions,
}

impl StateEntry {
    /// Total rows over all shards.
    pub fn rows(&self) -> u64 {
        self.shards.iter().map(|s| s.rows).sum()
    }

    /// Total bytes over all shards.
    pub fn bytes(&self) -> u64 {
        self.shards.iter().map(|s| s.bytes).sum()
    }
}

/// One Parquet file of a state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// Path relative to the savepoint root.
    pub path: String,
    /// The key hashes the shard may hold (keyed states only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_range: Option<HashRange>,
    /// The subtask that wrote it (operator state only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtask: Option<u32>,
    /// Number of rows in the file.
    pub rows: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
    /// CRC-32C (Castagnoli) of the whole file, 8 lowercase hex digits.
    pub crc32c: String,
    /// The folder next to the savepoint's root that holds the file, when another
    /// checkpoint of the job wrote it (reader feature `incremental_checkpoints`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sibling: Option<String>,
    /// 0 for a base shard; a delta shard's layer applies over the layers below it
    /// (reader feature `incremental_checkpoints`; keyed states only).
    #[serde(
        default,
        skip_serializing_if = "is_base_layer",
        deserialize_with = "layer_or_null"
    )]
    pub layer: u32,
}

fn is_base_layer(layer: &u32) -> bool {
    *layer == 0
}

/// `null` reads as an absent layer (0), as for every optional member.
fn layer_or_null<'de, D>(d: D) -> Result<u32, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::<u32>::deserialize(d)?.unwrap_or_default())
}

impl ShardEntry {
    /// Where the file is, as one string unique within a manifest: the path, after the
    /// sibling folder when there is one (`sibling/path`).
    pub fn file_key(&self) -> String {
        match &self.sibling {
            Some(s) => format!("{s}/{}", self.path),
            None => self.path.clone(),
        }
    }

    /// Whether the shard is a delta (layer above 0) rather than a base shard.
    pub fn is_delta(&self) -> bool {
        self.layer > 0
    }
}

/// A problem with a manifest as a whole, found by [`Manifest::problems`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestProblem {
    /// Operator uid.
    pub operator: String,
    /// State name.
    pub state: String,
    /// What is wrong.
    pub message: String,
}

impl Manifest {
    /// The least watermark of the source splits, where any split has one: where event
    /// time stands for a job restored from this savepoint.
    pub fn least_watermark(&self) -> Option<i64> {
        self.operators
            .iter()
            .filter_map(|o| o.source.as_ref())
            .flat_map(|s| s.splits.iter().filter_map(|s| s.watermark))
            .min()
    }

    /// Parses and checks a manifest, in the order a user needs the answer: not JSON, not a
    /// savepoint, too new (or needs unknown features), then breaks a rule.
    pub fn from_json(bytes: &[u8]) -> Result<Manifest, FormatError> {
        Self::from_json_supporting(bytes, crate::version::SUPPORTED_READER_FEATURES)
    }

    /// [`from_json`](Self::from_json) as a reader implementing only the reader features
    /// `supported` would parse it (the tests use it to play a 1.0 reader).
    pub(crate) fn from_json_supporting(
        bytes: &[u8],
        supported: &[&str],
    ) -> Result<Manifest, FormatError> {
        check_json(bytes)?;
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(json_error)?;
        let Some(object) = value.as_object() else {
            return Err(FormatError::NotASavepoint {
                reason: "the manifest is not a JSON object".into(),
            });
        };
        match object.get("format").and_then(|f| f.as_str()) {
            Some(FORMAT_MARKER) => {}
            Some(other) => {
                return Err(FormatError::NotASavepoint {
                    reason: format!("format is {other:?}, expected {FORMAT_MARKER:?}"),
                });
            }
            None => {
                return Err(FormatError::NotASavepoint {
                    reason: format!("no \"format\": {FORMAT_MARKER:?} field"),
                });
            }
        }
        let version: FormatVersion = object
            .get("version")
            .and_then(|v| v.as_str())
            .ok_or_else(|| FormatError::invalid("version", "missing or not a string"))?
            .parse()?;
        let features: Vec<String> = match object.get("reader_features") {
            None => Vec::new(),
            Some(f) => serde_json::from_value(f.clone()).map_err(|e| {
                FormatError::invalid("reader_features", format!("not a list of strings: {e}"))
            })?,
        };
        let missing = missing_from(&features, supported);
        if !version.is_readable() || !missing.is_empty() {
            return Err(FormatError::Unsupported {
                version,
                missing_features: missing,
            });
        }
        // Deserialize the wire form first so that rule errors keep their own kind
        // (an escaping path stays InvalidPath) instead of becoming serde messages.
        let raw: ManifestRaw = serde_json::from_slice(bytes).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => FormatError::invalid(
                format!("line {}, column {}", e.line(), e.column()),
                strip_position(&e.to_string()),
            ),
            _ => json_error(e),
        })?;
        Manifest::try_from(raw)
    }

    /// The manifest as pretty JSON, as writers store it.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// The operator with this uid.
    pub fn operator(&self, uid: &str) -> Option<&OperatorEntry> {
        self.operators.iter().find(|o| o.uid == uid)
    }

    /// Every shard with its operator and state, in manifest order.
    pub fn shards(&self) -> impl Iterator<Item = (&OperatorEntry, &StateEntry, &ShardEntry)> {
        self.operators.iter().flat_map(|op| {
            op.states
                .iter()
                .flat_map(move |st| st.shards.iter().map(move |sh| (op, st, sh)))
        })
    }

    /// Rules that span a whole state: each keyed state's shards tile the hash space
    /// exactly once; operator state has at most one shard per subtask.
    pub fn problems(&self) -> Vec<ManifestProblem> {
        let mut out = Vec::new();
        for op in &self.operators {
            for st in &op.states {
                let mut problem = |message: String| {
                    out.push(ManifestProblem {
                        operator: op.uid.clone(),
                        state: st.name.clone(),
                        message,
                    })
                };
                if st.kind.is_keyed() {
                    // The base tiles the hash space; a delta layer may leave gaps (where
                    // nothing changed) but no hash is in two of its shards.
                    let mut layers: std::collections::BTreeSet<u32> =
                        st.shards.iter().map(|s| s.layer).collect();
                    layers.insert(0);
                    for layer in layers {
                        let ranges: Vec<HashRange> = st
                            .shards
                            .iter()
                            .filter(|s| s.layer == layer)
                            .filter_map(|s| s.hash_range)
                            .collect();
                        let of = if layer == 0 {
                            String::new()
                        } else {
                            format!(" of layer {layer}")
                        };
                        for p in coverage_problems(&ranges) {
                            match p {
                                CoverageProblem::Gap(r) if layer == 0 => {
                                    problem(format!("no shard covers key hashes {r}"))
                                }
                                CoverageProblem::Gap(_) => {}
                                CoverageProblem::Overlap(r) => {
                                    problem(format!("several shards{of} cover key hashes {r}"))
                                }
                            }
                        }
                    }
                } else {
                    let mut seen = HashSet::new();
                    for s in &st.shards {
                        if let Some(t) = s.subtask {
                            if !seen.insert(t) {
                                problem(format!("subtask {t} has more than one shard"));
                            }
                        }
                    }
                }
            }
        }
        out
    }
}

pub(crate) fn json_error(e: serde_json::Error) -> FormatError {
    FormatError::Json {
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    }
}

/// serde_json appends " at line L column C"; the error carries those as fields.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// The manifest as it is on the wire; converted to [`Manifest`] only after checking.
#[derive(Serialize, Deserialize)]
struct ManifestRaw {
    format: String,
    version: String,
    #[serde(default)]
    reader_features: Vec<String>,
    #[serde(default)]
    writer_features: Vec<String>,
    id: String,
    kind: SavepointKind,
    created_at: String,
    writer: WriterInfo,
    job: JobInfo,
    #[serde(default)]
    checkpoint_id: u64,
    lineage: Lineage,
    key_hash: String,
    operators: Vec<OperatorEntry>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "extensions_or_null"
    )]
    extensions: Extensions,
}

impl From<Manifest> for ManifestRaw {
    fn from(m: Manifest) -> Self {
        ManifestRaw {
            format: FORMAT_MARKER.to_string(),
            version: m.version.to_string(),
            reader_features: m.reader_features,
            writer_features: m.writer_features,
            id: m.id,
            kind: m.kind,
            created_at: m.created_at,
            writer: m.writer,
            job: m.job,
            checkpoint_id: m.checkpoint_id,
            lineage: m.lineage,
            key_hash: m.key_hash,
            operators: m.operators,
            extensions: m.extensions,
        }
    }
}

impl TryFrom<ManifestRaw> for Manifest {
    type Error = FormatError;

    fn try_from(raw: ManifestRaw) -> Result<Self, Self::Error> {
        if raw.format != FORMAT_MARKER {
            return Err(FormatError::NotASavepoint {
                reason: format!("format is {:?}, expected {FORMAT_MARKER:?}", raw.format),
            });
        }
        let version: FormatVersion = raw.version.parse()?;
        check_id(&raw.id).map_err(|m| FormatError::invalid("id", m))?;
        check_counts(&raw)?;
        if raw.key_hash != KEY_HASH_ALGORITHM {
            return Err(FormatError::invalid(
                "key_hash",
                format!(
                    "unknown algorithm {:?}, expected {KEY_HASH_ALGORITHM:?}",
                    raw.key_hash
                ),
            ));
        }
        if raw.job.name.is_empty() {
            return Err(FormatError::invalid("job.name", "empty job name"));
        }
        let incremental = raw
            .reader_features
            .iter()
            .any(|f| f == crate::version::INCREMENTAL_CHECKPOINTS);
        let mut uids = HashSet::new();
        let mut paths = HashSet::new();
        let mut folded_paths = HashSet::new();
        for (i, op) in raw.operators.iter().enumerate() {
            let at = format!("operators[{i}]");
            check_name("operator uid", &op.uid).map_err(|m| FormatError::invalid(&at, m))?;
            if !uids.insert(op.uid.as_str()) {
                return Err(FormatError::invalid(
                    &at,
                    format!("duplicate uid {:?}", op.uid),
                ));
            }
            if op.parallelism == 0 {
                return Err(FormatError::invalid(&at, "parallelism must be at least 1"));
            }
            check_operator(op, &at, incremental, &mut paths, &mut folded_paths)?;
        }
        Ok(Manifest {
            version,
            reader_features: raw.reader_features,
            writer_features: raw.writer_features,
            id: raw.id,
            kind: raw.kind,
            created_at: raw.created_at,
            writer: raw.writer,
            job: raw.job,
            checkpoint_id: raw.checkpoint_id,
            lineage: raw.lineage,
            key_hash: raw.key_hash,
            operators: raw.operators,
            extensions: raw.extensions,
        })
    }
}

fn check_operator(
    op: &OperatorEntry,
    at: &str,
    incremental: bool,
    paths: &mut HashSet<String>,
    folded_paths: &mut HashSet<String>,
) -> Result<(), FormatError> {
    let mut names = HashSet::new();
    for (j, st) in op.states.iter().enumerate() {
        let at = format!("{at}.states[{j}]");
        check_name("state name", &st.name).map_err(|m| FormatError::invalid(&at, m))?;
        if !names.insert(st.name.as_str()) {
            return Err(FormatError::invalid(
                &at,
                format!("duplicate state {:?}", st.name),
            ));
        }
        check_state_types(st).map_err(|m| FormatError::invalid(&at, m))?;
        for (k, sh) in st.shards.iter().enumerate() {
            let at = format!("{at}.shards[{k}]");
            check_relative_path(&sh.path)?;
            if let Some(sibling) = &sh.sibling {
                check_sibling(sibling)?;
            }
            if (sh.sibling.is_some() || sh.is_delta()) && !incremental {
                return Err(FormatError::invalid(
                    &at,
                    format!(
                        "a shard with a sibling or a layer needs the reader feature {:?}",
                        crate::version::INCREMENTAL_CHECKPOINTS
                    ),
                ));
            }
            let file = sh.file_key();
            if !paths.insert(file.clone()) {
                return Err(FormatError::invalid(
                    &at,
                    format!("path {file:?} listed twice"),
                ));
            }
            // One file on a case-insensitive file system (macOS, Windows).
            if !folded_paths.insert(file.to_ascii_lowercase()) {
                return Err(FormatError::invalid(
                    &at,
                    format!("path {file:?} differs from another shard's only in letter case"),
                ));
            }
            check_shard(st.kind, op.parallelism, sh).map_err(|m| FormatError::invalid(&at, m))?;
        }
    }
    if let Some(source) = &op.source {
        let mut ids = HashSet::new();
        for (j, split) in source.splits.iter().enumerate() {
            if split.id.is_empty() || !ids.insert(split.id.as_str()) {
                return Err(FormatError::invalid(
                    format!("{at}.source.splits[{j}]"),
                    format!("split id {:?} is empty or repeated", split.id),
                ));
            }
        }
    }
    Ok(())
}

fn check_shard(kind: StateKind, parallelism: u32, sh: &ShardEntry) -> Result<(), String> {
    if sh.crc32c.len() != 8
        || !sh
            .crc32c
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(format!(
            "crc32c {:?} is not 8 lowercase hex digits",
            sh.crc32c
        ));
    }
    if sh.is_delta() && !kind.is_keyed() {
        return Err(format!(
            "layer {}: only keyed states have delta layers",
            sh.layer
        ));
    }
    match (kind.is_keyed(), sh.hash_range, sh.subtask) {
        (true, Some(_), None) => Ok(()),
        (true, _, _) => Err("a keyed shard needs a hash_range and no subtask".into()),
        (false, None, Some(t)) if t < parallelism => Ok(()),
        (false, None, Some(t)) => Err(format!(
            "subtask {t} is not below parallelism {parallelism}"
        )),
        (false, _, _) => Err("an operator state shard needs a subtask and no hash_range".into()),
    }
}

/// A sibling folder name: one portable path segment (spec: "Incremental checkpoints").
fn check_sibling(sibling: &str) -> Result<(), FormatError> {
    check_relative_path(sibling)?;
    if sibling.contains('/') || sibling == crate::path::MANIFEST_FILE {
        return Err(FormatError::InvalidPath {
            path: sibling.to_string(),
            reason: "a sibling is one folder name",
        });
    }
    Ok(())
}

fn parse_field(name: &str, text: &Option<String>) -> Result<Option<DataType>, String> {
    text.as_deref()
        .map(parse_type)
        .transpose()
        .map_err(|e| format!("{name}: {e}"))
}

fn check_state_types(st: &StateEntry) -> Result<(), String> {
    let key = parse_field("key_type", &st.key_type)?;
    let namespace = parse_field("namespace_type", &st.namespace_type)?;
    let user_key = parse_field("user_key_type", &st.user_key_type)?;
    let value = parse_field("value_type", &st.value_type)?;
    let kind = st.kind.as_str();
    if st.kind.is_keyed() {
        match &key {
            None => return Err(format!("{kind} state needs a key_type")),
            Some(k) if !is_key_type(k) => {
                return Err(format!(
                    "key_type {:?} cannot be hashed",
                    st.key_type.as_deref().unwrap_or_default()
                ));
            }
            Some(_) => {}
        }
        if let Some(ns) = &namespace {
            if !is_key_type(ns) {
                return Err("namespace_type must be a key type".into());
            }
        }
        if st.redistribution.is_some() {
            return Err("redistribution is for operator_list state only".into());
        }
    } else {
        if key.is_some() || namespace.is_some() || user_key.is_some() {
            return Err("operator_list state has no key, namespace or user key".into());
        }
        if st.redistribution.is_none() {
            return Err("operator_list state needs a redistribution".into());
        }
    }
    match st.kind {
        StateKind::Map if user_key.is_none() => {
            return Err("map state needs a user_key_type".into());
        }
        StateKind::Map => {}
        _ if user_key.is_some() => return Err(format!("{kind} state has no user_key_type")),
        _ => {}
    }
    match (st.kind, &value) {
        (StateKind::Timers, None) => Ok(()),
        (StateKind::Timers, Some(_)) => Err("timers state has no value_type".into()),
        (_, None) => Err(format!("{kind} state needs a value_type")),
        (StateKind::List, Some(v)) if !matches!(v, DataType::List(_)) => {
            Err("list state needs a value_type of list<...>".into())
        }
        _ => Ok(()),
    }
}

mod limits;
#[cfg(test)]
mod tests;

pub use limits::{
    MAX_ID_LEN, MAX_LAYERS, MAX_MANIFEST_BYTES, MAX_OPERATORS, MAX_SHARDS, MAX_SPLITS, MAX_STATES,
};
use limits::{check_counts, check_id, check_json};
