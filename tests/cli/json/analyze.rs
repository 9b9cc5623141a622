use super::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Analysis {
    json_version: u32,
    id: String,
    baseline_id: Option<String>,
    elapsed_seconds: Option<f64>,
    findings: Vec<Finding>,
    states: Vec<State>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Finding {
    kind: String,
    operator: String,
    state: String,
    value: f64,
    message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    operator: String,
    state: String,
    kind: String,
    rows: u64,
    bytes: u64,
    keys: Option<u64>,
    bytes_per_key: Option<f64>,
    columns: Vec<ColumnBytes>,
    subtasks: Vec<Share>,
    skew: f64,
    slices: Vec<u64>,
    slice_skew: f64,
    size_unit: Option<String>,
    mean_size: Option<f64>,
    sizes: Vec<u64>,
    top_keys: Vec<KeySize>,
    fields: Vec<FieldStats>,
    timers: Option<Timers>,
    windows: Vec<WindowRows>,
    growth: Option<Growth>,
    #[serde(default)]
    layers: Vec<Layer>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ColumnBytes {
    column: String,
    bytes: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Share {
    subtask: u32,
    rows: u64,
    bytes: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeySize {
    key: String,
    size: u64,
    before: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldStats {
    field: String,
    data_type: String,
    nulls: u64,
    min: Option<f64>,
    max: Option<f64>,
    mean: Option<f64>,
    histogram: Vec<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Timers {
    event_time: u64,
    processing_time: u64,
    earliest: Option<i64>,
    latest: Option<i64>,
    watermark: Option<i64>,
    behind_watermark: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowRows {
    start: i64,
    rows: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Growth {
    rows_before: u64,
    bytes_before: u64,
    keys_before: u64,
    keys_grew: f64,
    mean_size_before: Option<f64>,
    subtask_rows_before: Vec<u64>,
    top_growth: Vec<KeySize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Layer {
    layer: u32,
    shards: u64,
    rows: u64,
    bytes: u64,
    shared_bytes: u64,
}

#[test]
fn growth_against_a_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("old"), dir.path().join("new"));
    for (at, keys, bytes) in [(&old, "50", "8"), (&new, "60", "64")] {
        let args = ["generate", s(at), "--keys", keys, "--value-bytes", bytes];
        let run = rewind(&args);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let v: Analysis = document(0, &["analyze", s(&new), "--baseline", s(&old), "--json"]);
    assert_eq!(v.json_version, 1);
    assert!(v.baseline_id.is_some() && v.elapsed_seconds.is_some());
    let st = v.states.iter().find(|st| st.operator == "op-0").unwrap();
    assert_eq!((st.rows, st.keys), (60, Some(60)));
    assert_eq!(st.subtasks.len(), 1);
    assert_eq!(st.slices.len(), 64);
    let growth = st.growth.as_ref().unwrap();
    assert_eq!((growth.rows_before, growth.keys_before), (50, 50));
    assert_eq!(growth.subtask_rows_before, [50]);
    assert!(v.findings.iter().all(|f| !f.message.is_empty()));
    assert!(st.layers.is_empty());
}

#[test]
fn timers_windows_and_layers() {
    let (_guard, copy) = fixture_copy("v1/struct-list-map");
    let v: Analysis = document(0, &["analyze", s(&copy.join("savepoint")), "--json"]);
    assert!(v.baseline_id.is_none() && v.elapsed_seconds.is_none());
    assert!(v.states.iter().any(|st| st.timers.is_some()));
    assert!(v.states.iter().any(|st| !st.fields.is_empty()));
    let (_guard, copy) = fixture_copy("v1-edge/namespaces-and-maps");
    let v: Analysis = document(0, &["analyze", s(&copy.join("savepoint")), "--json"]);
    let counts = v.states.iter().find(|st| st.state == "counts").unwrap();
    assert_eq!(counts.windows.len(), 3);
    let (_guard, copy) = fixture_copy("v1.1/incremental-chain");
    let v: Analysis = document(0, &["analyze", s(&copy.join("savepoint")), "--json"]);
    let layers: Vec<u32> = v.states[0].layers.iter().map(|l| l.layer).collect();
    assert_eq!(layers, [0, 1, 2]);
}
