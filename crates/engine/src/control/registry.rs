//! The job registry: a directory with one small JSON file per job (`<id>.json`), written by
//! the job itself and readable only by its owner, because it holds the job's secret.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{EngineError, Result};

/// Version of the registry entry's layout.
const ENTRY_VERSION: u32 = 1;

/// Finished jobs stay listed this long; [`JobRegistry::prune`] removes older entries.
pub const KEEP_FINISHED: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Where jobs register: `$REWIND_HOME/jobs`, else `~/.rewind/jobs`.
#[derive(Debug, Clone)]
pub struct JobRegistry {
    dir: PathBuf,
}

/// What a job's registry entry says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Processing.
    Running,
    /// Its bounded input ended and everything was committed.
    Finished,
    /// Stopped with a savepoint.
    Stopped,
    /// Cancelled: output since its last checkpoint was dropped.
    Cancelled,
    /// Ended with an error (see [`JobEntry::error`]).
    Failed,
}

impl JobStatus {
    /// The word `rewind list` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Running => "running",
            JobStatus::Finished => "finished",
            JobStatus::Stopped => "stopped",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Failed => "failed",
        }
    }
}

/// A checkpoint or savepoint as the registry records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRef {
    /// Checkpoint id.
    pub id: u64,
    /// Where it is (a path or URL).
    pub location: String,
    /// A savepoint rather than a periodic checkpoint.
    pub savepoint: bool,
    /// When it completed (RFC 3339).
    pub completed_at: String,
}

impl From<&crate::CompletedCheckpoint> for CheckpointRef {
    fn from(c: &crate::CompletedCheckpoint) -> Self {
        CheckpointRef {
            id: c.id,
            location: c.location.clone(),
            savepoint: c.savepoint,
            completed_at: humantime::format_rfc3339_seconds(c.completed_at).to_string(),
        }
    }
}

/// One job's registry entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobEntry {
    /// Layout version of this entry.
    pub version: u32,
    /// The job id (32 hex digits).
    pub id: String,
    /// The job's name.
    pub name: String,
    /// The application that runs it.
    pub app: String,
    /// Its process.
    pub pid: u32,
    /// The control endpoint, `127.0.0.1:PORT`.
    pub address: String,
    /// The secret every control request must carry.
    pub secret: String,
    /// Status as the job last wrote it.
    pub status: JobStatus,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// When it ended (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    /// The savepoint or checkpoint it was restored from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<String>,
    /// Its last completed checkpoint or savepoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checkpoint: Option<CheckpointRef>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl JobEntry {
    pub(crate) fn new(id: String, name: String, address: String, secret: String) -> JobEntry {
        JobEntry {
            version: ENTRY_VERSION,
            id,
            name,
            app: std::env::args().next().unwrap_or_default(),
            pid: std::process::id(),
            address,
            secret,
            status: JobStatus::Running,
            started_at: now(),
            ended_at: None,
            restored_from: None,
            last_checkpoint: None,
            error: None,
        }
    }

    /// Whether the job's process still exists (a registry entry that says `running` for a
    /// process that is gone is stale: the job crashed or was killed).
    pub fn process_alive(&self) -> bool {
        process_alive(self.pid)
    }
}

pub(crate) fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

impl JobRegistry {
    /// The registry of this user: `$REWIND_HOME/jobs`, else `$HOME/.rewind/jobs`.
    pub fn open_default() -> Result<JobRegistry> {
        let home = match std::env::var_os("REWIND_HOME").filter(|h| !h.is_empty()) {
            Some(h) => PathBuf::from(h),
            None => std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".rewind"))
                .ok_or_else(|| {
                    EngineError::Control(
                        "neither REWIND_HOME nor HOME is set: no place for the job registry".into(),
                    )
                })?,
        };
        Ok(JobRegistry::at(home.join("jobs")))
    }

    /// A registry in `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> JobRegistry {
        JobRegistry { dir: dir.into() }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where `rewind run -d` sends a job's output: `logs/<id>.log` beside the registry.
    pub fn log_path(&self, id: &str) -> PathBuf {
        let home = self.dir.parent().unwrap_or(&self.dir);
        home.join("logs").join(format!("{id}.log"))
    }

    /// Creates a job's log file, readable by its owner only.
    pub fn create_log(&self, id: &str) -> Result<std::fs::File> {
        let path = self.log_path(id);
        let parent = path.parent().unwrap_or(&self.dir);
        private_dir(parent)
            .and_then(|_| private_file(&path))
            .map_err(|e| EngineError::Control(format!("cannot create {}: {e}", path.display())))
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Writes `entry` atomically (a temporary file renamed over the old one), readable and
    /// writable by its owner only.
    pub(crate) fn write(&self, entry: &JobEntry) -> Result<()> {
        let io = |what: &str, path: &Path, e: std::io::Error| {
            EngineError::Control(format!("job registry: {what} {}: {e}", path.display()))
        };
        private_dir(&self.dir).map_err(|e| io("cannot create", &self.dir, e))?;
        let path = self.path(&entry.id);
        let tmp = self.dir.join(format!(".{}.json.tmp", entry.id));
        let json = serde_json::to_vec_pretty(entry)
            .map_err(|e| EngineError::Internal(format!("registry entry: {e}")))?;
        let mut file = private_file(&tmp).map_err(|e| io("cannot write", &tmp, e))?;
        file.write_all(&json)
            .and_then(|_| file.sync_all())
            .map_err(|e| io("cannot write", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io("cannot write", &path, e))
    }

    /// Every entry, oldest first; files that are not entries are skipped.
    pub fn list(&self) -> Result<Vec<JobEntry>> {
        let dir = match std::fs::read_dir(&self.dir) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(EngineError::Control(format!(
                    "job registry {}: {e}",
                    self.dir.display()
                )));
            }
        };
        let mut entries: Vec<JobEntry> = dir
            .flatten()
            .filter(|f| f.file_name().to_string_lossy().ends_with(".json"))
            .filter_map(|f| std::fs::read(f.path()).ok())
            .filter_map(|bytes| serde_json::from_slice::<JobEntry>(&bytes).ok())
            .collect();
        entries.sort_by(|a, b| (&a.started_at, &a.id).cmp(&(&b.started_at, &b.id)));
        Ok(entries)
    }

    /// The job whose id is `id` or starts with it; an error names what is wrong (no such
    /// job, or a prefix that several jobs share).
    pub fn find(&self, id: &str) -> Result<JobEntry> {
        let all = self.list()?;
        if let Some(exact) = all.iter().find(|e| e.id == id) {
            return Ok(exact.clone());
        }
        let matching: Vec<&JobEntry> = all
            .iter()
            .filter(|e| !id.is_empty() && e.id.starts_with(id))
            .collect();
        match matching.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(EngineError::Control(format!(
                "no job {id} in the registry {} (see `rewind list`)",
                self.dir.display()
            ))),
            many => Err(EngineError::Control(format!(
                "job id {id} is ambiguous: {}",
                many.iter()
                    .map(|e| e.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Removes a job's entry.
    pub fn remove(&self, id: &str) -> Result<()> {
        match std::fs::remove_file(self.path(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(EngineError::Control(format!(
                    "job registry: cannot remove {}: {e}",
                    self.path(id).display()
                )))
            }
            _ => Ok(()),
        }
    }

    /// Removes entries of jobs that ended longer than `keep` ago; returns their ids.
    pub fn prune(&self, keep: std::time::Duration) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for entry in self.list()? {
            let ended = entry
                .ended_at
                .as_deref()
                .and_then(|t| humantime::parse_rfc3339(t).ok());
            let old = ended
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > keep);
            if entry.status != JobStatus::Running && old {
                self.remove(&entry.id)?;
                removed.push(entry.id);
            }
        }
        Ok(removed)
    }
}

#[cfg(unix)]
fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::create(path)
}

#[cfg(target_os = "linux")]
fn process_alive(pid: u32) -> bool {
    // A zombie (exited, not yet reaped by its parent) is gone for our purposes.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

#[cfg(all(unix, not(target_os = "linux")))]
fn process_alive(pid: u32) -> bool {
    std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(not(unix))]
fn process_alive(_pid: u32) -> bool {
    // Unknown: the control endpoint's answer decides.
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> JobEntry {
        JobEntry::new(id.into(), "job".into(), "127.0.0.1:1".into(), "s".into())
    }

    #[test]
    fn entries_round_trip_and_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let registry = JobRegistry::at(dir.path().join("jobs"));
        let e = entry("abc123");
        registry.write(&e).unwrap();
        assert_eq!(registry.list().unwrap(), vec![e.clone()]);
        assert_eq!(registry.find("abc").unwrap(), e);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&registry.dir().join("abc123.json")), 0o600);
            assert_eq!(mode(registry.dir()), 0o700);
        }
    }

    #[test]
    fn find_names_missing_and_ambiguous_ids() {
        let dir = tempfile::tempdir().unwrap();
        let registry = JobRegistry::at(dir.path());
        registry.write(&entry("ab01")).unwrap();
        registry.write(&entry("ab02")).unwrap();
        let missing = registry.find("ff").unwrap_err().to_string();
        assert!(missing.contains("no job ff in the registry"), "{missing}");
        let ambiguous = registry.find("ab").unwrap_err().to_string();
        assert!(ambiguous.contains("ambiguous: ab01, ab02"), "{ambiguous}");
        assert_eq!(registry.find("ab02").unwrap().id, "ab02");
    }

    #[test]
    fn prune_removes_only_old_ended_entries() {
        let dir = tempfile::tempdir().unwrap();
        let registry = JobRegistry::at(dir.path());
        let mut old = entry("old");
        old.status = JobStatus::Finished;
        old.ended_at = Some("2000-01-01T00:00:00Z".into());
        let mut recent = entry("recent");
        recent.status = JobStatus::Cancelled;
        recent.ended_at = Some(now());
        let running = entry("running");
        for e in [&old, &recent, &running] {
            registry.write(e).unwrap();
        }
        assert_eq!(
            registry.prune(KEEP_FINISHED).unwrap(),
            vec!["old".to_string()]
        );
        let left: Vec<String> = registry.list().unwrap().into_iter().map(|e| e.id).collect();
        assert_eq!(left.len(), 2);
    }

    #[test]
    fn this_process_is_alive_and_a_free_pid_is_not() {
        assert!(process_alive(std::process::id()));
        #[cfg(target_os = "linux")]
        assert!(!process_alive(u32::MAX - 1));
    }
}
