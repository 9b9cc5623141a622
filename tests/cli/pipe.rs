//! `rewind ... | head`: a reader that goes away early is not an error. Every command exits
//! 0 with nothing on stderr, as ripgrep does, never `Broken pipe (os error 32)` or a panic.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use rewind_tests::{fixture_copy, rewind, rewind_bin, test_home};

/// Runs `rewind ARGS` with stdout a pipe whose reader reads `read` bytes (0: none) and
/// then closes it; asserts a silent exit 0.
fn reader_closes_after(read: usize, args: &[&str]) {
    let mut child = Command::new(rewind_bin())
        .args(args)
        .env("NO_COLOR", "1")
        .env("REWIND_HOME", test_home())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run rewind: {e}"));
    let mut stdout = child.stdout.take().unwrap();
    let mut first = vec![0; read];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{args:?}: {stderr}");
    assert_eq!(stderr, "", "{args:?}");
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Output far past a pipe's buffer (64 KiB on Linux), so the writes after the reader left
/// fail whatever the timing.
#[test]
fn rows_and_differences_past_the_pipe_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for (at, seed) in [(&a, "1"), (&b, "2")] {
        let run = rewind(&["generate", s(at), "--keys", "20000", "--seed", seed]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let state = ["state", s(&a), "op-0", "state"];
    for format in [
        ["--limit", "20000"],
        ["--format", "json"],
        ["--format", "csv"],
    ] {
        reader_closes_after(1, &[&state[..], &format[..]].concat());
    }
    // Every key differs: diff's exit 1 (a finding) becomes 0 once nobody reads it.
    let diff = ["diff", s(&a), s(&b), "--examples", "20000"];
    reader_closes_after(1, &diff);
    reader_closes_after(1, &[&diff[..], &["--json"]].concat());
}

/// Smaller outputs, with the reader gone before the first write or after the first byte
/// (then the rest may fit in the pipe's buffer: exit 0 either way).
#[test]
fn documents_and_help() {
    let (_guard, copy) = fixture_copy("v1/struct-list-map");
    let sp = copy.join("savepoint");
    let sp = s(&sp);
    let commands: [&[&str]; 7] = [
        &["inspect", sp],
        &["inspect", sp, "--json"],
        &["list", "--json"],
        &["--help"],
        &["validate", sp, "--json"],
        &["analyze", sp, "--json"],
        &["log", s(copy.parent().unwrap()), "--json"],
    ];
    for args in commands {
        reader_closes_after(0, args);
        reader_closes_after(1, args);
    }
}
