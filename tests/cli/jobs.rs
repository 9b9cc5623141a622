//! The savepoint walkthrough with real processes: `rewind run -d`, `list`, `savepoint`,
//! `cancel`, `run -s` with the next version, `stop --savepoint`; the control endpoint's
//! security; and the errors of job commands.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rewind_post_analytics::{Action, EventSpec, WINDOW};
use rewind_tests::{Run, app_bin, rewind_at};

const PACKAGE: &str = "rewind-post-analytics";

pub(crate) fn post_events(out: &Path, first: u64, events: u64) {
    let status = Command::new(app_bin(PACKAGE, "post-events"))
        .args(["--out", out.to_str().unwrap()])
        .args([
            "--first",
            &first.to_string(),
            "--events",
            &events.to_string(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
}

pub(crate) fn ok(run: Run) -> String {
    assert_eq!(
        run.code, 0,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    run.stdout.trim().to_string()
}

pub(crate) fn list_json(home: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(rewind_at(home, &["list", "--json"]))).unwrap()
}

pub(crate) fn job_view(home: &Path, id: &str) -> serde_json::Value {
    let list = list_json(home);
    assert_eq!(list["json_version"], 1);
    list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("job {id} not listed: {list}"))
}

/// Polls `rewind list` until the job has read `n` records.
pub(crate) fn wait_for_records(home: &Path, id: &str, n: u64) {
    let started = Instant::now();
    loop {
        let job = job_view(home, id);
        assert_eq!(job["status"], "running", "{job}");
        if job["records_read"].as_u64() == Some(n) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{job}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Committed output lines (pending files excluded), parsed.
pub(crate) fn committed(dir: &Path) -> Vec<serde_json::Value> {
    let location = rewind_savepoint::Location::parse(dir.to_str().unwrap()).unwrap();
    rewind_engine::read_committed(&location)
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// (views, clicks, paid views, paid clicks) per (post, window start) of events `range`.
pub(crate) fn expected(range: std::ops::Range<u64>) -> BTreeMap<(i64, i64), [u64; 4]> {
    let spec = EventSpec::default();
    let size = WINDOW.as_millis() as i64;
    let mut all: BTreeMap<(i64, i64), [u64; 4]> = BTreeMap::new();
    for i in range {
        let (_, e) = spec.event(i);
        let c = all
            .entry((e.post, e.ts - e.ts.rem_euclid(size)))
            .or_default();
        let click = usize::from(e.action == Action::Click);
        c[click] += 1;
        if e.paid {
            c[2 + click] += 1;
        }
    }
    all
}

pub(crate) fn window(line: &serde_json::Value) -> (i64, i64) {
    (
        line["post"].as_i64().unwrap(),
        line["start"].as_i64().unwrap(),
    )
}

pub(crate) fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn walkthrough_upgrade_with_a_savepoint() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let p = |name: &str| dir.path().join(name);
    let (events, out1, out2, out_ab) = (p("events"), p("out-v1"), p("out-v2"), p("out-v1-b"));
    const PHASE_1: u64 = 20_000;
    const PHASE_2: u64 = 15_000;
    post_events(&events, 0, PHASE_1);

    // v1, detached, with periodic checkpoints.
    let v1 = ok(rewind_at(
        &home,
        &[
            "run",
            "-d",
            "-p",
            "2",
            "--checkpoint-dir",
            s(&p("chk")),
            "--checkpoint-interval",
            "300ms",
            "post-analytics-v1",
            "--",
            "--input",
            s(&events),
            "--output",
            s(&out1),
        ],
    ));
    assert_eq!(v1.len(), 32, "a job id: {v1}");
    wait_for_records(&home, &v1, PHASE_1);
    let table = ok(rewind_at(&home, &["list"]));
    assert!(
        table.contains(&v1) && table.contains("post-analytics"),
        "{table}"
    );
    assert!(
        table.contains(&format!("running ({PHASE_1} records read)")),
        "{table}"
    );

    // The registry entry holds the secret: only its owner may read it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let entry = home.join("jobs").join(format!("{v1}.json"));
        let mode = std::fs::metadata(&entry).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let jobs = std::fs::metadata(home.join("jobs"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(jobs & 0o777, 0o700);
    }

    // A savepoint mid-stream (windows are open); a prefix of the id is enough.
    let sp1 = p("sp-v1");
    assert_eq!(
        ok(rewind_at(&home, &["savepoint", &v1[..8], s(&sp1)])),
        s(&sp1)
    );
    ok(rewind_at(&home, &["validate", s(&sp1)]));
    // Checkpoints go on, and the list names the latest.
    let started = Instant::now();
    while job_view(&home, &v1)["last_checkpoint"]["savepoint"] != false {
        assert!(started.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        ok(rewind_at(&home, &["cancel", &v1])),
        format!("job {v1} cancelled")
    );
    let cancelled = job_view(&home, &v1);
    assert_eq!(cancelled["status"], "cancelled");
    assert!(
        cancelled["last_checkpoint"]["location"]
            .as_str()
            .unwrap()
            .contains("chk-")
    );

    // More events arrive while the job is down; the dry run shows what v2 restores.
    post_events(&events, PHASE_1, PHASE_2);
    let plan = ok(rewind_at(
        &home,
        &[
            "run",
            "-s",
            s(&sp1),
            "--dry-run",
            "post-analytics-v2",
            "--",
            "--input",
            s(&events),
            "--output",
            s(&out2),
        ],
    ));
    assert!(plan.contains("post-stats"), "{plan}");
    let v2 = ok(rewind_at(
        &home,
        &[
            "run",
            "-d",
            "-s",
            s(&sp1),
            "-p",
            "3",
            "post-analytics-v2",
            "--",
            "--input",
            s(&events),
            "--output",
            s(&out2),
        ],
    ));
    assert_eq!(job_view(&home, &v2)["restored_from"], s(&sp1));
    wait_for_records(&home, &v2, PHASE_2);
    let sp2 = p("sp-v2");
    assert_eq!(
        ok(rewind_at(
            &home,
            &["stop", &v2, "--savepoint", s(&sp2), "--drain"]
        )),
        s(&sp2)
    );
    assert_eq!(job_view(&home, &v2)["status"], "stopped");

    // A/B: the same savepoint also starts v1 again, in the foreground, to the end.
    ok(rewind_at(
        &home,
        &[
            "run",
            "-s",
            s(&sp1),
            "post-analytics-v1",
            "--",
            "--input",
            s(&events),
            "--output",
            s(&out_ab),
            "--bounded",
        ],
    ));

    // Every window exactly once across v1 and v2, with the counts of the events.
    let all = expected(0..PHASE_1 + PHASE_2);
    let after = expected(PHASE_1..PHASE_1 + PHASE_2);
    let (lines1, lines2, lines_ab) = (committed(&out1), committed(&out2), committed(&out_ab));
    for (name, second) in [("v2", &lines2), ("v1 again", &lines_ab)] {
        let mut seen = BTreeMap::new();
        for line in lines1.iter().chain(second.iter()) {
            let w = window(line);
            assert!(seen.insert(w, ()).is_none(), "{name}: {w:?} twice");
            assert_eq!(line["views"].as_u64(), Some(all[&w][0]), "{name}: {line}");
            assert_eq!(line["clicks"].as_u64(), Some(all[&w][1]), "{name}: {line}");
        }
        assert_eq!(seen.len(), all.len(), "{name}: every window once");
    }
    let mut restored = 0;
    for line in &lines2 {
        let w = window(line);
        let paid = if line["split_complete"] == true {
            [all[&w][2], all[&w][3]]
        } else {
            restored += 1;
            let a = after.get(&w).copied().unwrap_or_default();
            [a[2], a[3]]
        };
        assert_eq!(line["paid"]["views"].as_u64(), Some(paid[0]), "{line}");
        assert_eq!(line["paid"]["clicks"].as_u64(), Some(paid[1]), "{line}");
    }
    assert!(restored > 0);

    // The final savepoint: child of the first, every split read to its end, no window open.
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(rewind_at(&home, &["inspect", s(&sp2), "--json"]))).unwrap();
    assert_eq!(inspect["lineage"]["parent_location"], s(&sp1), "{inspect}");
    let splits = inspect["source_splits"].as_array().unwrap();
    assert_eq!(splits.len(), std::fs::read_dir(&events).unwrap().count());
    for split in splits {
        assert_eq!(split["operator"], "post-events");
        let file = events.join(split["split"].as_str().unwrap());
        let size = std::fs::metadata(&file).unwrap().len();
        assert_eq!(split["position"]["offset"].as_u64(), Some(size), "{split}");
    }
    let open = ok(rewind_at(
        &home,
        &[
            "state",
            s(&sp2),
            "post-stats",
            "windows",
            "--format",
            "json",
        ],
    ));
    assert_eq!(open, "", "no window is open after a drain");
    let open_at_upgrade = ok(rewind_at(
        &home,
        &[
            "state",
            s(&sp1),
            "post-stats",
            "windows",
            "--format",
            "json",
        ],
    ));
    assert_eq!(open_at_upgrade.lines().count(), restored);
}

/// A detached job that runs until stopped, for the tests below.
fn start_long_job(home: &Path, dir: &Path) -> String {
    let events = dir.join("events");
    post_events(&events, 0, 1000);
    ok(rewind_at(
        home,
        &[
            "run",
            "-d",
            "post-analytics-v1",
            "--",
            "--input",
            s(&events),
            "--output",
            s(&dir.join("out")),
        ],
    ))
}

fn send(address: &str, line: &str) -> serde_json::Value {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.write_all(line.as_bytes()).unwrap();
    stream.write_all(b"\n").unwrap();
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).unwrap();
    serde_json::from_str(&reply).unwrap()
}

#[test]
fn control_requests_without_the_secret_are_refused_and_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let id = start_long_job(&home, dir.path());
    let entry: serde_json::Value = serde_json::from_slice(
        &std::fs::read(home.join("jobs").join(format!("{id}.json"))).unwrap(),
    )
    .unwrap();
    let address = entry["address"].as_str().unwrap();
    assert!(address.starts_with("127.0.0.1:"), "{address}");
    let refused = serde_json::json!({
        "reply": "error", "message": "refused: wrong or missing secret"
    });
    for request in [
        r#"{"version":1,"secret":"wrong","command":"cancel"}"#,
        r#"{"version":1,"command":"cancel"}"#,
        r#"{"version":1,"secret":"","command":"status"}"#,
    ] {
        assert_eq!(send(address, request), refused, "{request}");
    }
    let status = send(
        address,
        &format!(
            r#"{{"version":1,"secret":"{}","command":"status"}}"#,
            entry["secret"].as_str().unwrap()
        ),
    );
    assert_eq!(status["reply"], "status");
    assert_eq!(
        job_view(&home, &id)["status"],
        "running",
        "refused cancels did nothing"
    );

    // A savepoint that cannot be written fails with one line; the job keeps running.
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, "not a directory").unwrap();
    let bad = rewind_at(&home, &["savepoint", &id, s(&blocker.join("sp"))]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(
        bad.stderr.starts_with("rewind: error: job "),
        "{}",
        bad.stderr
    );
    assert_eq!(bad.stderr.trim().lines().count(), 1, "{}", bad.stderr);
    let stop = rewind_at(&home, &["stop", &id, "--savepoint", s(&blocker.join("sp"))]);
    assert_eq!(stop.code, 2, "{stop:?}");
    assert!(
        stop.stderr.contains("cannot write a savepoint to"),
        "{}",
        stop.stderr
    );
    assert_eq!(job_view(&home, &id)["status"], "running");
    let good = dir.path().join("sp");
    assert_eq!(
        ok(rewind_at(&home, &["savepoint", &id, s(&good)])),
        s(&good)
    );
    // No target and no --savepoint-dir: said so.
    let none = rewind_at(&home, &["savepoint", &id]);
    assert_eq!(none.code, 2);
    assert!(none.stderr.contains("no target given"), "{}", none.stderr);

    ok(rewind_at(&home, &["cancel", &id]));
    let dead = rewind_at(&home, &["savepoint", &id, s(&dir.path().join("sp2"))]);
    assert_eq!(dead.code, 2);
    assert!(
        dead.stderr
            .contains(&format!("job {id} is not running: it cancelled at")),
        "{}",
        dead.stderr
    );
    let unknown = rewind_at(
        &home,
        &["savepoint", "0123abcd", s(&dir.path().join("sp3"))],
    );
    assert_eq!(unknown.code, 2);
    assert!(
        unknown
            .stderr
            .starts_with("rewind: error: no job 0123abcd in the registry"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn a_job_whose_process_is_gone_is_listed_as_lost_then_removed() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let jobs = home.join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    // The pid of a process that has ended.
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let id = "feedfacefeedfacefeedfacefeedface";
    let entry = serde_json::json!({
        "version": 1, "id": id, "name": "crashed", "app": "x", "pid": pid,
        "address": "127.0.0.1:9", "secret": "s", "status": "running",
        "started_at": "2026-01-01T00:00:00Z",
        "last_checkpoint": {"id": 7, "location": "/tmp/chk-7", "savepoint": false,
                            "completed_at": "2026-01-01T00:01:00Z"}
    });
    std::fs::write(jobs.join(format!("{id}.json")), entry.to_string()).unwrap();
    let gone = rewind_at(&home, &["savepoint", id, s(&dir.path().join("sp"))]);
    assert_eq!(gone.code, 2);
    assert!(
        gone.stderr.contains(&format!(
            "job {id} is gone: its process {pid} no longer exists (last checkpoint: /tmp/chk-7)"
        )),
        "{}",
        gone.stderr
    );
    let job = job_view(&home, id);
    assert_eq!(job["status"], "lost");
    assert_eq!(job["last_checkpoint"]["location"], "/tmp/chk-7");
    assert!(!jobs.join(format!("{id}.json")).exists(), "cleaned up");
    assert_eq!(
        ok(rewind_at(&home, &["list", "--json"])),
        "{\n  \"json_version\": 1,\n  \"jobs\": []\n}"
    );
}
