//! State schema evolution on restore: compatible changes of a state's type are applied
//! automatically (values kept, new fields defaulted); others are refused, naming the
//! operator, state and field.

use rewind_engine::{
    CollectSink, Context, GeneratedEvent, GeneratorSource, Job, JobBuilder, KeyedProcessFunction,
    RunOptions, StateDecl, StateValue, ValueState, run,
};
use rewind_savepoint::Location;
use serde::{Deserialize, Serialize};

/// Keeps `make(event)` for the first event of each key, then emits the stored value with
/// every later event (so a restored job shows what it read back).
struct Keep<V> {
    stats: ValueState<V>,
    make: fn(&GeneratedEvent) -> V,
}

impl<V: StateValue + std::fmt::Debug> KeyedProcessFunction for Keep<V> {
    type Key = i64;
    type In = GeneratedEvent;
    type Out = String;
    fn states(&self) -> Vec<StateDecl<i64>> {
        vec![self.stats.decl()]
    }
    fn process(&self, e: GeneratedEvent, ctx: &mut Context<'_, i64, String>) {
        match self.stats.get(ctx) {
            Some(v) => {
                let line = format!("{:?}", v);
                ctx.emit(line);
            }
            None => self.stats.set(ctx, (self.make)(&e)),
        }
    }
}

fn job<V: StateValue + std::fmt::Debug>(
    events: u64,
    make: fn(&GeneratedEvent) -> V,
    sink: CollectSink,
) -> Job {
    JobBuilder::new("stats")
        .source(
            "Generator",
            GeneratorSource {
                keys: 5,
                events,
                seed: 1,
                splits: 1,
                rate_per_split: None,
            },
        )
        .uid("events")
        .key_by(|e: &GeneratedEvent| e.key)
        .process(
            "Stats",
            Keep {
                stats: ValueState::new("stats"),
                make,
            },
        )
        .uid("profile")
        .sink("output", sink)
}

/// Runs v1 over 100 events into a savepoint, then v2 restored from it over 100 more.
fn upgrade<A: StateValue + std::fmt::Debug, B: StateValue + std::fmt::Debug>(
    v1: fn(&GeneratedEvent) -> A,
    v2: fn(&GeneratedEvent) -> B,
) -> Result<Vec<String>, String> {
    upgrade_migrated(v1, &[], v2)
}

/// [`upgrade`], with the savepoint migrated offline in between when `migrations` are given.
fn upgrade_migrated<A: StateValue + std::fmt::Debug, B: StateValue + std::fmt::Debug>(
    v1: fn(&GeneratedEvent) -> A,
    migrations: &[rewind_savepoint::Migration],
    v2: fn(&GeneratedEvent) -> B,
) -> Result<Vec<String>, String> {
    let dir = tempfile::tempdir().unwrap();
    let sp = Location::parse(dir.path().join("sp").to_str().unwrap()).unwrap();
    let options = RunOptions {
        savepoint_on_finish: Some(sp.clone()),
        ..Default::default()
    };
    run(job(100, v1, CollectSink::default()), options)
        .unwrap()
        .wait()
        .unwrap();
    let sp = if migrations.is_empty() {
        sp
    } else {
        let migrated = Location::parse(dir.path().join("migrated").to_str().unwrap()).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let source = rewind_savepoint::SavepointReader::open(sp).await.unwrap();
            let options = rewind_savepoint::MigrateOptions::default();
            rewind_savepoint::migrate(&source, migrated.clone(), migrations, &options)
                .await
                .unwrap();
        });
        migrated
    };
    let sink = CollectSink::default();
    let options = RunOptions {
        from_savepoint: Some(sp),
        ..Default::default()
    };
    let result = run(job(200, v2, sink.clone()), options).and_then(|h| h.wait());
    match result {
        Ok(_) => {
            // The sink writes each String as a JSON string.
            let mut lines: Vec<String> = sink
                .lines()
                .iter()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            lines.sort();
            lines.dedup();
            Ok(lines)
        }
        Err(e) => Err(e.to_string()),
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct V1 {
    clicks: i32,
    ratio: f32,
    note: String,
    dropped: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct V2 {
    note: String,
    clicks: i64,
    ratio: f64,
    added: Option<String>,
    #[serde(default)]
    counter: u64,
}

#[test]
fn compatible_changes_apply_automatically() {
    let lines = upgrade(
        |e| V1 {
            clicks: e.key as i32 * 10,
            ratio: 0.5,
            note: format!("key {}", e.key),
            dropped: true,
        },
        |_| V2 {
            note: "new".into(),
            clicks: -1,
            ratio: -1.0,
            added: Some("new".into()),
            counter: 7,
        },
    )
    .unwrap();
    // Every key restored its v1 values: fields reordered, widened, dropped, added ones
    // defaulted (None and serde's default).
    assert_eq!(lines.len(), 5, "{lines:?}");
    for line in &lines {
        assert!(
            line.contains("ratio: 0.5, added: None, counter: 0"),
            "{line}"
        );
        assert!(!line.contains("\"new\""), "{line}");
    }
    assert!(lines.contains(
        &r#"V2 { note: "key 3", clicks: 30, ratio: 0.5, added: None, counter: 0 }"#.to_string()
    ));
}

#[test]
fn a_widened_plain_value_applies_automatically() {
    let lines = upgrade(|e| e.key as u32, |_| 0u64).unwrap();
    assert_eq!(lines, vec!["0", "1", "2", "3", "4"]);
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Required {
    clicks: i32,
    label: String,
}

#[test]
fn incompatible_changes_are_refused_naming_the_field() {
    #[derive(Clone, Debug, Serialize, Deserialize)]
    struct Narrowed {
        clicks: i16,
        label: String,
    }
    let err = upgrade(
        |e| Required {
            clicks: e.key as i32,
            label: "x".into(),
        },
        |_| Narrowed {
            clicks: 0,
            label: String::new(),
        },
    )
    .unwrap_err();
    assert_eq!(
        err,
        "cannot restore: operator \"profile\", state \"stats\": state type changed at field value.clicks: the savepoint has int32, the job has int16; this change cannot be applied automatically (convert the savepoint with `rewind migrate`)"
    );

    #[derive(Clone, Debug, Serialize, Deserialize)]
    struct NewRequired {
        clicks: i32,
        label: String,
        weight: u64,
    }
    let err = upgrade(
        |e| Required {
            clicks: e.key as i32,
            label: "x".into(),
        },
        |_| NewRequired {
            clicks: 0,
            label: String::new(),
            weight: 1,
        },
    )
    .unwrap_err();
    assert!(
        err.contains("operator \"profile\", state \"stats\""),
        "{err}"
    );
    assert!(err.contains("weight"), "{err}");
}

#[test]
fn a_refused_change_restores_after_rewind_migrate() {
    #[derive(Clone, Debug, Serialize, Deserialize)]
    struct Renamed {
        hits: i16,
        label: String,
        weight: u64,
    }
    let state = |field: &str| {
        (
            String::from("profile"),
            String::from("stats"),
            field.to_string(),
        )
    };
    let (uid, st, _) = state("");
    let migrations = vec![
        rewind_savepoint::Migration::RenameField {
            uid: uid.clone(),
            state: st.clone(),
            field: "clicks".into(),
            to: "hits".into(),
        },
        rewind_savepoint::Migration::Cast {
            uid: uid.clone(),
            state: st.clone(),
            field: "hits".into(),
            to: arrow_schema::DataType::Int16,
        },
        // A new integer field defaults to int64; the job declares u64.
        rewind_savepoint::Migration::Default {
            uid: uid.clone(),
            state: st.clone(),
            field: "weight".into(),
            value: serde_json::json!(7),
        },
        rewind_savepoint::Migration::Cast {
            uid,
            state: st,
            field: "weight".into(),
            to: arrow_schema::DataType::UInt64,
        },
    ];
    let lines = upgrade_migrated(
        |e| Required {
            clicks: e.key as i32,
            label: format!("key {}", e.key),
        },
        &migrations,
        |_| Renamed {
            hits: 0,
            label: String::new(),
            weight: 0,
        },
    )
    .unwrap();
    for key in 0..5 {
        let want = format!("Renamed {{ hits: {key}, label: \"key {key}\", weight: 7 }}");
        assert!(lines.contains(&want), "{want} not in {lines:?}");
    }
}
