//! What Rewind's tests and benchmarks share, so each exists once: the keyed count
//! job ([`Count`], [`keyed_count`], [`generator`], [`run_to_end`]), record batches built from named columns ([`batch`]),
//! savepoint locations in a test's directory ([`loc`]), the counts a job saved
//! ([`state_counts`]) and the files left in a directory ([`files_under`]). Not published; a dev-dependency
//! of the crates whose tests use it (and a dependency of the benchmarks).
#![deny(missing_docs)]

mod batches;
mod keyed_count;
mod savepoints;

pub use batches::batch;
pub use keyed_count::{Count, generator, keyed_count, keyed_count_with, run_to_end};
pub use savepoints::state_counts;

/// The local location `dir/name`.
///
/// # Panics
/// When the path is not valid UTF-8 or not a usable location (test code).
pub fn loc(dir: &std::path::Path, name: &str) -> rewind_savepoint::Location {
    let path = dir.join(name);
    let text = path
        .to_str()
        .unwrap_or_else(|| panic!("{} is not UTF-8", path.display()));
    rewind_savepoint::Location::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Every file under `dir` (not directories), as paths relative to it, sorted; none when
/// `dir` does not exist.
///
/// # Panics
/// When an entry cannot be read (test code).
pub fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let e = e.unwrap_or_else(|err| panic!("{}: {err}", d.display()));
            // The entry itself, not what a link points to: a link loop never spins.
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            } else if let Ok(rel) = e.path().strip_prefix(dir) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}
