//! SIGTERM and Ctrl-C on running jobs: a detached job and a foreground `rewind run` stop
//! with a savepoint into their savepoint dir, `rewind list` shows it, and restoring it
//! continues exactly once.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rewind_tests::{rewind_at, rewind_bin};

use crate::jobs::{committed, expected, job_view, ok, post_events, s, wait_for_records, window};

const FIRST: u64 = 20_000;
const MORE: u64 = 15_000;

fn signal(pid: u64, name: &str) {
    let status = Command::new("kill")
        .args(["-s", name, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -s {name} {pid}");
}

/// Waits until the job's status is `status`, and returns its view.
fn wait_for_status(home: &Path, id: &str, status: &str) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let job = job_view(home, id);
        if job["status"] == status {
            return job;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{job}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The stopped job's savepoint: listed as its last checkpoint, in the savepoint dir, valid.
fn the_savepoint(home: &Path, id: &str, savepoint_dir: &Path) -> String {
    let job = wait_for_status(home, id, "stopped");
    let last = &job["last_checkpoint"];
    assert_eq!(last["savepoint"], true, "{job}");
    let location = last["location"].as_str().unwrap().to_string();
    assert!(location.starts_with(s(savepoint_dir)), "{location}");
    let table = ok(rewind_at(home, &["list"]));
    assert!(table.contains(id) && table.contains("stopped"), "{table}");
    ok(rewind_at(home, &["validate", &location, "--deep"]));
    location
}

/// Restores `savepoint` after more events arrived, runs to the end of the input, and checks
/// that the output of both runs holds every window exactly once with the right counts.
fn resumes_exactly_once(home: &Path, events: &Path, out: &Path, savepoint: &str) {
    post_events(events, FIRST, MORE);
    ok(rewind_at(
        home,
        &[
            "run",
            "-s",
            savepoint,
            "post-analytics-v1",
            "--",
            "--input",
            s(events),
            "--output",
            s(out),
            "--bounded",
        ],
    ));
    let all = expected(0..FIRST + MORE);
    let mut seen = BTreeMap::new();
    for line in committed(out) {
        let w = window(&line);
        assert!(seen.insert(w, ()).is_none(), "{w:?} twice");
        assert_eq!(line["views"].as_u64(), Some(all[&w][0]), "{line}");
        assert_eq!(line["clicks"].as_u64(), Some(all[&w][1]), "{line}");
    }
    assert_eq!(seen.len(), all.len(), "every window once");
}

#[test]
fn sigterm_stops_a_detached_job_with_a_savepoint() {
    let dir = tempfile::tempdir().unwrap();
    let (home, events, out, spd) = (
        dir.path().join("home"),
        dir.path().join("events"),
        dir.path().join("out"),
        dir.path().join("savepoints"),
    );
    post_events(&events, 0, FIRST);
    let id = ok(rewind_at(
        &home,
        &[
            "run",
            "-d",
            "--savepoint-dir",
            s(&spd),
            "post-analytics-v1",
            "--",
            "--input",
            s(&events),
            "--output",
            s(&out),
        ],
    ));
    wait_for_records(&home, &id, FIRST);
    let pid = job_view(&home, &id)["pid"].as_u64().unwrap();
    signal(pid, "TERM");
    let savepoint = the_savepoint(&home, &id, &spd);
    resumes_exactly_once(&home, &events, &out, &savepoint);
}

#[test]
fn ctrl_c_stops_a_foreground_run_with_a_savepoint() {
    let dir = tempfile::tempdir().unwrap();
    let (home, events, out, spd) = (
        dir.path().join("home"),
        dir.path().join("events"),
        dir.path().join("out"),
        dir.path().join("savepoints"),
    );
    post_events(&events, 0, FIRST);
    let log = dir.path().join("stderr.log");
    let mut cli = Command::new(rewind_bin())
        .args(["run", "--savepoint-dir", s(&spd), "post-analytics-v1", "--"])
        .args(["--input", s(&events), "--output", s(&out)])
        .env("NO_COLOR", "1")
        .env("REWIND_HOME", &home)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // The job registers under the id `rewind run` chose; find it once it runs.
    let started = Instant::now();
    let id = loop {
        let list: serde_json::Value =
            serde_json::from_str(&ok(rewind_at(&home, &["list", "--json"]))).unwrap();
        if let Some(job) = list["jobs"].as_array().and_then(|j| j.first()) {
            break job["id"].as_str().unwrap().to_string();
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{list}");
        std::thread::sleep(Duration::from_millis(100));
    };
    wait_for_records(&home, &id, FIRST);
    // A Ctrl-C in the terminal reaches `rewind run` (the job has its own process group).
    signal(u64::from(cli.id()), "INT");
    let status = wait_within(&mut cli, Duration::from_secs(120));
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("SIGINT: stopping job"), "{stderr}");
    let savepoint = the_savepoint(&home, &id, &spd);
    resumes_exactly_once(&home, &events, &out, &savepoint);
}

/// Waits for the process, up to `limit`.
fn wait_within(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(started.elapsed() < limit, "still running after {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sigterm_without_a_savepoint_dir_says_why_and_cancels() {
    let dir = tempfile::tempdir().unwrap();
    let (home, events, out) = (
        dir.path().join("home"),
        dir.path().join("events"),
        dir.path().join("out"),
    );
    post_events(&events, 0, 1000);
    let id = ok(rewind_at(
        &home,
        &[
            "run",
            "-d",
            "post-analytics-v1",
            "--",
            "--input",
            s(&events),
            "--output",
            s(&out),
        ],
    ));
    wait_for_records(&home, &id, 1000);
    let pid = job_view(&home, &id)["pid"].as_u64().unwrap();
    signal(pid, "TERM");
    wait_for_status(&home, &id, "cancelled");
    let log = std::fs::read_to_string(home.join("logs").join(format!("{id}.log"))).unwrap();
    assert!(
        log.contains("SIGTERM: job") && log.contains("has no savepoint dir"),
        "{log}"
    );
}
