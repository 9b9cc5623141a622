use super::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct List {
    json_version: u32,
    jobs: Vec<Job>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Job {
    id: String,
    name: String,
    status: String,
    pid: u32,
    started_at: String,
    ended_at: Option<String>,
    restored_from: Option<String>,
    last_checkpoint: Option<Checkpoint>,
    records_read: Option<u64>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Checkpoint {
    id: u64,
    location: String,
    savepoint: bool,
    completed_at: String,
}

#[test]
fn ended_and_lost_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let jobs = home.join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    // The pid of a process that has ended.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let entry = |id: &str, extra: Value| {
        let mut e = serde_json::json!({
            "version": 1, "id": id, "name": "n", "app": "x", "pid": pid,
            "address": "127.0.0.1:9", "secret": "s",
            "started_at": "2026-01-01T00:00:00Z",
        });
        e.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        std::fs::write(jobs.join(format!("{id}.json")), e.to_string()).unwrap();
    };
    // Ended in the future, so it is never old enough to be pruned.
    entry(
        "aaaa",
        serde_json::json!({
            "status": "failed", "ended_at": "2999-01-01T00:00:00Z", "error": "boom",
            "restored_from": "/tmp/sp",
        }),
    );
    entry(
        "bbbb",
        serde_json::json!({
            "status": "running",
            "last_checkpoint": {"id": 7, "location": "/tmp/chk-7", "savepoint": false,
                                "completed_at": "2026-01-01T00:01:00Z"},
        }),
    );
    let run = rewind_at(home, &["list", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: List = parse(&run.stdout);
    assert_eq!(v.json_version, 1);
    let summary: Vec<_> = v
        .jobs
        .iter()
        .map(|j| {
            (
                j.id.as_str(),
                j.status.as_str(),
                j.error.as_deref(),
                j.records_read,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("aaaa", "failed", Some("boom"), None),
            ("bbbb", "lost", None, None)
        ]
    );
    assert_eq!(v.jobs[0].restored_from.as_deref(), Some("/tmp/sp"));
    let chk = v.jobs[1].last_checkpoint.as_ref().unwrap();
    assert_eq!(
        (chk.id, chk.location.as_str(), chk.savepoint),
        (7, "/tmp/chk-7", false)
    );
}
