//! Timers and state under event time: timers set before a savepoint fire once after the
//! restore, processing-time timers fire, list and map state survive a savepoint.

use rewind_engine::{
    CollectSink, Context, GeneratedEvent, GeneratorSource, Job, JobBuilder, KeyedProcessFunction,
    ListState, MapState, RunOptions, StateDecl, TimeDomain, Timer, ValueState, run,
};
use rewind_savepoint::format::StateKind;
use rewind_savepoint::{ValidateOptions, validate};

mod common;
use common::event_time::{BOUND, event_time, stop_and_restore};
use common::{block_on, sorted};

/// Sets one event-time timer per key when it first appears, due at a time that depends on
/// the key only (3 s + 50 ms per key), and emits when it fires.
struct Reminder {
    first: ValueState<i64>,
}

impl KeyedProcessFunction for Reminder {
    type Key = i64;
    type In = GeneratedEvent;
    type Out = (i64, i64);
    fn states(&self) -> Vec<StateDecl<i64>> {
        vec![self.first.decl()]
    }
    fn uses_timers(&self) -> bool {
        true
    }
    fn process(&self, _: GeneratedEvent, ctx: &mut Context<'_, i64, (i64, i64)>) {
        if self.first.get(ctx).is_none() {
            let ts = ctx.timestamp().unwrap();
            self.first.set(ctx, ts);
            let due = 3000 + *ctx.key() * 50;
            ctx.register_timer(TimeDomain::EventTime, due);
        }
    }
    fn on_timer(&self, timer: Timer, ctx: &mut Context<'_, i64, (i64, i64)>) {
        assert_eq!(timer.domain, TimeDomain::EventTime);
        assert!(ctx.watermark().unwrap() >= timer.timestamp);
        let key = *ctx.key();
        ctx.emit((key, timer.timestamp));
    }
}

fn reminders(source: GeneratorSource, p: u32, sink: CollectSink) -> Job {
    JobBuilder::new("reminders")
        .source("Generator", source)
        .assign_timestamps(|e: &GeneratedEvent| event_time(e.seq), BOUND)
        .uid("events")
        .parallelism(2)
        .key_by(|e: &GeneratedEvent| e.key)
        .process(
            "Reminder",
            Reminder {
                first: ValueState::new("first"),
            },
        )
        .uid("reminder")
        .parallelism(p)
        .sink("output", sink)
}

#[test]
fn timers_set_before_a_savepoint_fire_once_after_restore() {
    let dir = tempfile::tempdir().unwrap();
    // 1000 keys over 80 s of event time, timers due between 3 s and 53 s: at a stop after
    // about a quarter of the input, many are pending.
    let source = GeneratorSource {
        keys: 1000,
        events: 8000,
        seed: 3,
        splits: 2,
        rate_per_split: Some(20_000),
    };
    let run = stop_and_restore(reminders, &source, 2, 3, 60, dir.path());
    let keys: std::collections::BTreeSet<i64> = (0..8000).map(|s| source.key_of(s)).collect();
    assert_eq!(run.whole.len(), keys.len(), "one reminder per key");
    let timers = run
        .manifest
        .operator("reminder")
        .unwrap()
        .state("timers")
        .unwrap();
    assert!(timers.rows() > 0, "no timer was pending at the savepoint");
    assert_eq!(run.both, run.whole);
}

/// Processing-time timers fire on the wall clock.
#[test]
fn processing_time_timers_fire() {
    struct Ping {
        seen: ValueState<bool>,
    }
    impl KeyedProcessFunction for Ping {
        type Key = i64;
        type In = GeneratedEvent;
        type Out = i64;
        fn states(&self) -> Vec<StateDecl<i64>> {
            vec![self.seen.decl()]
        }
        fn uses_timers(&self) -> bool {
            true
        }
        fn process(&self, _: GeneratedEvent, ctx: &mut Context<'_, i64, i64>) {
            if self.seen.get(ctx).is_none() {
                self.seen.set(ctx, true);
                let now = ctx.processing_time();
                ctx.register_timer(TimeDomain::ProcessingTime, now);
            }
        }
        fn on_timer(&self, timer: Timer, ctx: &mut Context<'_, i64, i64>) {
            assert_eq!(timer.domain, TimeDomain::ProcessingTime);
            let key = *ctx.key();
            ctx.emit(key);
        }
    }
    let sink = CollectSink::default();
    let job = JobBuilder::new("ping")
        .source(
            "Generator",
            GeneratorSource {
                keys: 50,
                events: 2000,
                seed: 1,
                splits: 1,
                rate_per_split: Some(20_000),
            },
        )
        .uid("events")
        .key_by(|e: &GeneratedEvent| e.key)
        .process(
            "Ping",
            Ping {
                seen: ValueState::new("seen"),
            },
        )
        .uid("ping")
        .sink("output", sink.clone());
    run(job, RunOptions::default()).unwrap().wait().unwrap();
    assert_eq!(
        sorted(sink.lines()),
        sorted((0..50).map(|k| k.to_string()).collect())
    );
}

/// Keeps the last three sequence numbers per key (list state) and counts even and odd ones
/// (map state); emits both after every record.
struct Recent {
    recent: ListState<u64>,
    parity: MapState<String, u64>,
}

impl KeyedProcessFunction for Recent {
    type Key = i64;
    type In = GeneratedEvent;
    type Out = (i64, Vec<u64>, Vec<(String, u64)>);
    fn states(&self) -> Vec<StateDecl<i64>> {
        vec![self.recent.decl(), self.parity.decl()]
    }
    fn process(&self, e: GeneratedEvent, ctx: &mut Context<'_, i64, Self::Out>) {
        let mut recent = self.recent.get(ctx).to_vec();
        recent.push(e.seq);
        if recent.len() > 3 {
            recent.remove(0);
        }
        self.recent.update(ctx, recent.clone());
        let parity = if e.seq % 2 == 0 { "even" } else { "odd" }.to_string();
        let n = self.parity.get(ctx, &parity).copied().unwrap_or(0) + 1;
        self.parity.insert(ctx, parity, n);
        let entries = self
            .parity
            .entries(ctx)
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let key = *ctx.key();
        ctx.emit((key, recent, entries));
    }
}

fn recent(source: GeneratorSource, p: u32, sink: CollectSink) -> Job {
    JobBuilder::new("recent")
        .source("Generator", source)
        .uid("events")
        // One split: each key's records arrive in sequence order in every run.
        .key_by(|e: &GeneratedEvent| e.key)
        .process(
            "Recent",
            Recent {
                recent: ListState::new("recent"),
                parity: MapState::new("parity"),
            },
        )
        .uid("recent")
        .parallelism(p)
        .sink("output", sink)
}

#[test]
fn list_and_map_state_survive_a_savepoint() {
    let dir = tempfile::tempdir().unwrap();
    let source = GeneratorSource {
        keys: 40,
        events: 5000,
        seed: 8,
        splits: 1,
        rate_per_split: Some(40_000),
    };
    let run = stop_and_restore(recent, &source, 2, 5, 40, dir.path());
    let op = run.manifest.operator("recent").unwrap();
    assert_eq!(op.state("recent").unwrap().kind, StateKind::List);
    assert_eq!(op.state("parity").unwrap().kind, StateKind::Map);
    assert!(op.state("parity").unwrap().rows() > 0);
    let report = block_on(validate(&run.location, ValidateOptions::default())).unwrap();
    assert!(report.is_valid(), "{report:?}");
    assert_eq!(run.both, run.whole);
}
