//! `rewind analyze`: exact findings on savepoints built with a planted hot key, a planted
//! skew and a state that grew; the same rows per state on a Flink sample and its import.

use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Int64Builder, ListBuilder};
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use rewind_savepoint::format::{hash_keys, subtask_for_hash};
use rewind_savepoint::{Location, SavepointInfo, SavepointWriter, StateSpec};
use rewind_tests::{fixture_copy, rewind};

/// `n` keys `PREFIX-i` whose hashes fall in `subtask` of 4.
fn keys_in(prefix: &str, subtask: u32, n: usize) -> Vec<String> {
    let candidates: Vec<String> = (0..100_000).map(|i| format!("{prefix}-{i}")).collect();
    let hashes = hash_keys(&StringArray::from(candidates.clone())).unwrap();
    candidates
        .into_iter()
        .zip(hashes)
        .filter(|(_, h)| subtask_for_hash(*h, 4) == subtask)
        .map(|(k, _)| k)
        .take(n)
        .collect()
}

/// `n` keys spread evenly over 4 subtasks.
fn even(prefix: &str, n: usize) -> Vec<String> {
    (0..4).flat_map(|s| keys_in(prefix, s, n / 4)).collect()
}

fn list_batch(keys: &[String], len: impl Fn(usize) -> usize) -> RecordBatch {
    let mut values = ListBuilder::new(Int64Builder::new());
    for i in 0..keys.len() {
        for j in 0..len(i) {
            values.values().append_value(j as i64);
        }
        values.append(true);
    }
    let values = values.finish();
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", values.data_type().clone(), true),
        ])),
        vec![
            Arc::new(StringArray::from(keys.to_vec())) as ArrayRef,
            Arc::new(values),
        ],
    )
    .unwrap()
}

/// A savepoint of three operators at parallelism 4: `profile/recent` (100 keys, lists of
/// `recent` elements), `clicks/events` (100 keys, one of them "hot" with 10,000 elements, the
/// rest 2) and `orders/total` (1,000 keys, 800 of them in subtask 0).
async fn write(dir: &Path, recent: usize) {
    let loc = Location::parse(dir.to_str().unwrap()).unwrap();
    let w = SavepointWriter::create(loc, SavepointInfo::new("shop", "generate"))
        .await
        .unwrap();
    for uid in ["profile", "clicks", "orders"] {
        w.add_operator(uid, uid, 4).unwrap();
    }
    w.add_state(
        "profile",
        StateSpec::list("recent", DataType::Utf8, DataType::Int64),
    )
    .unwrap();
    w.add_state(
        "clicks",
        StateSpec::list("events", DataType::Utf8, DataType::Int64),
    )
    .unwrap();
    w.add_state(
        "orders",
        StateSpec::value("total", DataType::Utf8, DataType::Int64),
    )
    .unwrap();
    let users = even("user", 100);
    w.write_keyed("profile", "recent", vec![list_batch(&users, |_| recent)])
        .await
        .unwrap();
    let mut clicks = even("visitor", 96);
    clicks.extend(keys_in("hot", 0, 1));
    clicks.extend((1..4).flat_map(|s| keys_in("other", s, 1)));
    let hot = clicks.iter().position(|k| k.starts_with("hot")).unwrap();
    w.write_keyed(
        "clicks",
        "events",
        vec![list_batch(&clicks, |i| if i == hot { 10_000 } else { 2 })],
    )
    .await
    .unwrap();
    let mut orders = keys_in("order", 0, 800);
    for s in 1..4 {
        orders.extend(keys_in("order", s, [0, 67, 67, 66][s as usize]));
    }
    let totals = Int64Array::from_iter_values((0..orders.len() as i64).map(|i| i * 10));
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Int64, true),
        ])),
        vec![
            Arc::new(StringArray::from(orders)) as ArrayRef,
            Arc::new(totals),
        ],
    )
    .unwrap();
    w.write_keyed("orders", "total", vec![batch]).await.unwrap();
    w.commit().await.unwrap();
}

fn analyze_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["analyze"];
    all.extend(args);
    all.push("--json");
    let run = rewind(&all);
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

#[tokio::test]
async fn findings_name_the_planted_hot_key_skew_and_growth() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("old"), dir.path().join("new"));
    write(&old, 3).await;
    write(&new, 30).await;
    let v = analyze_json(&[new.to_str().unwrap(), "--baseline", old.to_str().unwrap()]);
    assert_eq!(v["json_version"], 1);
    let findings: Vec<(String, String)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let hot = v["states"][1]["top_keys"][0]["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(hot.starts_with("hot-"), "{hot}");
    assert_eq!(
        findings,
        vec![
            (
                "growth".to_string(),
                "`profile/recent`: 100% of keys grew, mean list length 3.0 -> 30.0; it looks unbounded (a list nobody trims, a map without TTL?)".to_string()
            ),
            (
                "hot_key".to_string(),
                format!("`clicks/events`: key {hot} holds 10000 elements, 98x the mean of 102.0")
            ),
            (
                "skew".to_string(),
                "`orders/total`: subtask 0 holds 80% of the rows (largest/mean 3.2 over 4 subtasks); its keys spread over the hash space: rescaling to more subtasks spreads it".to_string()
            ),
        ]
    );
    let orders = &v["states"][2];
    let rows: Vec<u64> = orders["subtasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rows"].as_u64().unwrap())
        .collect();
    assert_eq!(rows, [800, 67, 67, 66]);
    assert_eq!(orders["slices"].as_array().unwrap().len(), 64);
    let total = &orders["fields"][0];
    assert_eq!(
        (total["min"].as_f64(), total["max"].as_f64()),
        (Some(0.0), Some(9990.0))
    );
    let recent = &v["states"][0];
    assert_eq!(recent["growth"]["keys_grew"], 1.0);
    assert_eq!(recent["growth"]["rows_before"], 100);
    assert_eq!(recent["mean_size"], 30.0);

    // Without a baseline: no growth; the terminal output says the same.
    let text = rewind(&["analyze", new.to_str().unwrap()]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.contains("98x the mean of 102.0"),
        "{}",
        text.stdout
    );
    assert!(!text.stdout.contains("grew"), "{}", text.stdout);
}

#[test]
fn a_flink_savepoint_and_its_import_have_the_same_rows_per_state() {
    let (_guard, copy) = fixture_copy("flink/rich-state-A");
    let sp = copy.join("savepoint-46a48f-b5c105e0343a");
    let work = tempfile::tempdir().unwrap();
    let imported = work.path().join("imported");
    let run = rewind(&[
        "import-flink",
        sp.to_str().unwrap(),
        imported.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = |v: serde_json::Value| -> Vec<(String, u64)> {
        v["states"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    format!(
                        "{}/{}",
                        s["operator"].as_str().unwrap(),
                        s["state"].as_str().unwrap()
                    ),
                    s["rows"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let v = analyze_json(&[sp.to_str().unwrap()]);
    let direct = rows(v.clone());
    assert_eq!(direct, rows(analyze_json(&[imported.to_str().unwrap()])));
    assert!(
        direct.contains(&("profile/by_kind".into(), 3000)),
        "{direct:?}"
    );
    // The 5 open session windows (README of the sample) and their timers.
    let state = |name: &str| {
        v["states"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["state"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        state("window-contents")["windows"],
        serde_json::json!([{"start": 10340, "rows": 5}])
    );
    let timers = &state("timers-window-timers")["timers"];
    assert_eq!(
        (timers["event_time"].as_u64(), timers["earliest"].as_i64()),
        (Some(5), Some(10349))
    );
}

/// Debian's Chromium, when installed (scripts/chromium-env.sh; `scripts/test.sh` installs
/// it and sets REWIND_REQUIRE_CHROMIUM=1 so that its absence fails instead of skipping).
fn chromium() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("chromium"))
            .find(|p| p.is_file())
    });
    if found.is_none() && std::env::var_os("REWIND_REQUIRE_CHROMIUM").is_some() {
        panic!("REWIND_REQUIRE_CHROMIUM is set but chromium is not on PATH");
    }
    found
}

#[tokio::test]
async fn the_html_report_is_self_contained_and_renders_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("old"), dir.path().join("new"));
    write(&old, 3).await;
    write(&new, 30).await;
    let report = dir.path().join("report.html");
    let run = rewind(&[
        "analyze",
        new.to_str().unwrap(),
        "--baseline",
        old.to_str().unwrap(),
        "--html",
        report.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let html = std::fs::read_to_string(&report).unwrap();
    // Nothing to fetch when opened: no URL, no script, no external stylesheet or image.
    for needle in [
        "http:", "https:", "<script", "<link", "<img", "@import", "url(",
    ] {
        assert!(!html.contains(needle), "the report contains {needle:?}");
    }
    assert!(html.matches("<svg").count() > 10);
    let Some(chromium) = chromium() else {
        eprintln!("chromium not installed: the report was not opened in a browser");
        return;
    };
    let browse = |extra: &[&str]| {
        let mut args = vec![
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            // No network at all: a report that needed one would show it.
            "--host-resolver-rules=MAP * ~NOTFOUND",
        ];
        args.extend_from_slice(extra);
        let url = format!("file://{}", report.display());
        args.push(&url);
        let out = std::process::Command::new(&chromium)
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // The DOM Chromium built: the findings with their numbers, the charts.
    let dom = browse(&["--dump-dom"]);
    assert!(
        dom.contains("`profile/recent`: 100% of keys grew, mean list length 3.0 -&gt; 30.0"),
        "{dom}"
    );
    assert!(dom.contains("98x the mean of 102.0"));
    assert!(dom.contains("subtask 0 holds 80% of the rows"));
    assert!(dom.matches("<svg").count() > 10);
    // And a laptop-sized screenshot of it.
    let png = dir.path().join("report.png");
    let shot = format!("--screenshot={}", png.display());
    browse(&[&shot, "--window-size=1366,900"]);
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
        "{} bytes",
        bytes.len()
    );
    // And printed.
    let pdf = dir.path().join("report.pdf");
    let print = format!("--print-to-pdf={}", pdf.display());
    browse(&[&print, "--no-pdf-header-footer"]);
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(
        bytes.starts_with(b"%PDF") && bytes.len() > 10_000,
        "{} bytes",
        bytes.len()
    );
}

/// An incremental checkpoint is analyzed as the state it holds: its delta layers merged
/// (deleted keys gone, a key's newest row counted once), so every figure but the stored
/// bytes equals that of the same checkpoint compacted into a self-contained savepoint.
#[test]
fn an_incremental_checkpoint_is_analyzed_as_its_merged_state() {
    let (_guard, copy) = fixture_copy("v1.1/incremental-chain");
    let chain = copy.join("savepoint");
    let compacted = copy.join("compacted");
    let run = rewind(&[
        "compact",
        chain.to_str().unwrap(),
        compacted.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let figures = |sp: &Path| -> Vec<serde_json::Value> {
        let v = analyze_json(&[sp.to_str().unwrap()]);
        v["states"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let subtask_rows: Vec<&serde_json::Value> = s["subtasks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| &t["rows"])
                    .collect();
                serde_json::json!({
                    "state": s["state"], "rows": s["rows"], "keys": s["keys"],
                    "mean_size": s["mean_size"], "sizes": s["sizes"],
                    "top_keys": s["top_keys"], "fields": s["fields"],
                    "subtask_rows": subtask_rows,
                })
            })
            .collect()
    };
    let merged = figures(&chain);
    assert_eq!(merged, figures(&compacted));
    // The layers as the manifest lists them: the base and the first delta in files of the
    // earlier checkpoints, the second delta the checkpoint's own; none once compacted.
    let layers = |sp: &Path| -> Vec<serde_json::Value> {
        analyze_json(&[sp.to_str().unwrap(), "--state", "count"])["states"][0]["layers"]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|l| {
                        let shared = l["shared_bytes"].as_u64().unwrap();
                        let all = l["bytes"].as_u64().unwrap();
                        serde_json::json!([
                            l["layer"],
                            l["shards"],
                            l["rows"],
                            shared == all,
                            shared == 0
                        ])
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        layers(&chain),
        [
            serde_json::json!([0, 2, 12, true, false]),
            serde_json::json!([1, 2, 3, true, false]),
            serde_json::json!([2, 2, 3, false, true]),
        ]
    );
    assert!(layers(&compacted).is_empty());
    let text = rewind(&["analyze", chain.to_str().unwrap(), "--state", "count"]);
    assert!(
        text.stdout.contains("| delta 2 | 2      | 3           |"),
        "{}",
        text.stdout
    );
    let rows: Vec<u64> = merged.iter().map(|s| s["rows"].as_u64().unwrap()).collect();
    // As `rewind state` reads them (fixtures/v1.1/incremental-chain/state-*.jsonl).
    assert_eq!(rows, [11, 11]);
}
