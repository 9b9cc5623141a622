use super::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inspect {
    pub json_version: u32,
    pub id: String,
    pub kind: String,
    pub created_at: String,
    pub format_version: String,
    pub reader_features: Vec<String>,
    pub writer_features: Vec<String>,
    #[serde(default)]
    pub extensions: Vec<String>,
    pub writer: String,
    pub job: Job,
    pub checkpoint_id: u64,
    pub lineage: Lineage,
    pub operators: Vec<Operator>,
    pub source_splits: Vec<Split>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    pub name: String,
    pub app_version: Option<String>,
    pub job_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lineage {
    pub operation: String,
    pub parent_id: Option<String>,
    pub parent_location: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operator {
    pub uid: String,
    pub name: String,
    pub parallelism: u32,
    pub rows: u64,
    pub bytes: u64,
    pub states: Vec<State>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub name: String,
    pub kind: String,
    pub key_type: Option<String>,
    pub namespace_type: Option<String>,
    pub user_key_type: Option<String>,
    pub value_type: Option<String>,
    pub redistribution: Option<String>,
    pub shards: u64,
    pub rows: u64,
    pub bytes: u64,
    #[serde(default)]
    pub delta_layers: u64,
    #[serde(default)]
    pub delta_shards: u64,
    #[serde(default)]
    pub shared_bytes: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Split {
    pub operator: String,
    pub split: String,
    pub position: Value,
    pub watermark: Option<i64>,
}

#[test]
fn a_rewind_savepoint() {
    let (_guard, copy) = fixture_copy("v1/operator-state-sources");
    let v: Inspect = document(0, &["inspect", s(&copy.join("savepoint")), "--json"]);
    assert_eq!(v.json_version, 1);
    assert_eq!(v.id, "e0f5b237-ce86-455f-95a3-eb6a3f19a182");
    assert_eq!((v.kind.as_str(), v.checkpoint_id), ("savepoint", 42));
    assert_eq!(v.job.job_id.as_deref(), Some("log-reader-fixture"));
    assert_eq!(v.lineage.operation, "bootstrap");
    assert_eq!(v.operators[0].parallelism, 3);
    let modes: Vec<_> = v.operators[0]
        .states
        .iter()
        .map(|st| st.redistribution.as_deref().unwrap_or("-"))
        .collect();
    assert_eq!(modes, ["split", "union", "broadcast"]);
    assert_eq!(v.source_splits.len(), 5);
    assert!(v.source_splits.iter().any(|sp| sp.watermark.is_none()));
}

#[test]
fn an_incremental_checkpoint_with_extensions_and_layers() {
    let (_guard, copy) = fixture_copy("v1.1/incremental-chain");
    let v: Inspect = document(0, &["inspect", s(&copy.join("savepoint")), "--json"]);
    assert_eq!(v.format_version, "1.1");
    assert_eq!(
        v.reader_features,
        ["lean_keyed_shards", "incremental_checkpoints"]
    );
    let states = v.operators.iter().flat_map(|o| &o.states);
    assert!(
        states
            .clone()
            .any(|st| st.delta_layers == 2 && st.shared_bytes > 0),
        "{v:?}"
    );
    let (_guard, copy) = fixture_copy("v1.1/flink-import");
    let v: Inspect = document(0, &["inspect", s(&copy.join("savepoint")), "--json"]);
    assert_eq!(v.extensions, ["flink"]);
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Flink {
    json_version: u32,
    kind: String,
    location: String,
    metadata_version: i32,
    checkpoint_id: i64,
    format: Option<String>,
    total_bytes: u64,
    files: u64,
    operators: Vec<FlinkOperator>,
    missing_files: Vec<String>,
    absolute_paths: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlinkOperator {
    id: String,
    uid: Option<String>,
    name: Option<String>,
    parallelism: i32,
    max_parallelism: i32,
    coordinator_state_bytes: i64,
    fully_finished: bool,
    subtasks: Vec<FlinkSubtask>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlinkSubtask {
    index: i32,
    finished: bool,
    keyed: Option<FlinkKeyed>,
    operator_states: Vec<FlinkOperatorState>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlinkKeyed {
    handle: String,
    first_key_group: i32,
    last_key_group: i32,
    location: String,
    inline: bool,
    bytes: i64,
    offsets: Vec<i64>,
    files: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlinkOperatorState {
    name: String,
    mode: String,
    elements: u64,
    location: String,
    inline: bool,
}

fn flink(sample: &str) -> Flink {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixtures_dir().join("flink").join(sample), dir.path());
    let sp = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("_metadata").exists())
        .unwrap_or_else(|| panic!("{sample}: no savepoint folder"));
    let v: Flink = document(0, &["inspect", s(&sp), "--json"]);
    assert_eq!(v.location, s(&sp));
    v
}

#[test]
fn a_flink_savepoint() {
    let v = flink("rich-state-A");
    assert_eq!(v.json_version, 1);
    assert_eq!(v.kind, "flink-savepoint");
    assert_eq!(v.format.as_deref(), Some("CANONICAL"));
    assert!(v.missing_files.is_empty() && v.absolute_paths.is_empty());
    assert!(v.files > 0 && v.total_bytes > 0);
    let keyed: Vec<&FlinkKeyed> = v
        .operators
        .iter()
        .flat_map(|o| &o.subtasks)
        .filter_map(|st| st.keyed.as_ref())
        .collect();
    assert!(keyed.iter().all(|k| k.handle == "canonical savepoint"));
    assert!(keyed.iter().all(|k| k.first_key_group <= k.last_key_group));
    assert!(
        v.operators
            .iter()
            .flat_map(|o| &o.subtasks)
            .any(|st| !st.operator_states.is_empty())
    );

    let native = flink("java-rocksdb-native-n100000");
    assert!(
        native
            .operators
            .iter()
            .flat_map(|o| &o.subtasks)
            .filter_map(|st| st.keyed.as_ref())
            .any(|k| k.handle == "native (RocksDB files)" && !k.files.is_empty()),
        "{native:?}"
    );
}
