//! Helpers for the end-to-end tests: run the real `rewind` binary, find and copy fixtures,
//! and inject faults into object-store requests.

pub mod faulty;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// `fixtures/` in the repository.
pub fn fixtures_dir() -> PathBuf {
    repo_root().join("fixtures")
}

/// The `rewind` binary, built once per test process with the same cargo that runs the tests.
pub fn rewind_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "rewind-cli", "--bin", "rewind"])
            .current_dir(repo_root())
            .status()
            .unwrap_or_else(|e| panic!("cannot run cargo to build rewind: {e}"));
        assert!(status.success(), "building rewind failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target"));
        target.join("debug").join("rewind")
    })
}

/// What a `rewind` run printed and how it exited.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `rewind ARGS...` with a clean environment for output (no terminal, no color), and
/// a job registry of this test process (`REWIND_HOME`), never the user's.
pub fn rewind(args: &[&str]) -> Run {
    rewind_at(test_home(), args)
}

/// [`rewind`] with the job registry and logs under `home`.
pub fn rewind_at(home: &Path, args: &[&str]) -> Run {
    let output = Command::new(rewind_bin())
        .args(args)
        .env("NO_COLOR", "1")
        .env("REWIND_HOME", home)
        .output()
        .unwrap_or_else(|e| panic!("cannot run rewind: {e}"));
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A `REWIND_HOME` for this test process, removed by nobody (it is in the temp folder).
pub fn test_home() -> &'static Path {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    HOME.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("rewind-tests-home-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        dir
    })
}

/// An application binary of `package`, built once and found beside `rewind` (where
/// `rewind run NAME` looks for it).
pub fn app_bin(package: &str, name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let rewind = rewind_bin();
    if !built.iter().any(|p| p == package) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", package, "--bins"])
            .current_dir(repo_root())
            .status()
            .unwrap_or_else(|e| panic!("cannot run cargo to build {package}: {e}"));
        assert!(status.success(), "building {package} failed");
        built.push(package.to_string());
    }
    rewind.with_file_name(name)
}

/// Copies a directory tree (fixtures are opened from a copy, never in place).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("mkdir {}: {e}", to.display()));
    let entries =
        std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()));
    for entry in entries.flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
        }
    }
}

/// A temporary copy of `fixtures/<relative>`; returns the guard and the copy's path.
pub fn fixture_copy(relative: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let to = dir.path().join(relative.replace('/', "_"));
    copy_dir(&fixtures_dir().join(relative), &to);
    (dir, to)
}

/// Replaces a temporary path in output with a stable placeholder for snapshots.
pub fn redact(text: &str, path: &Path) -> String {
    text.replace(&path.display().to_string(), "[SAVEPOINT]")
}

/// The rows of state `uid/state` of the savepoint `sp`, as `rewind state --format json`
/// prints them (one JSON object per row; the key hash left out).
pub fn state_rows(sp: &str, uid: &str, state: &str) -> Vec<serde_json::Value> {
    let run = rewind(&["state", sp, uid, state, "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}
