//! Shared output helpers: tables, sizes, times, progress bars, a closed pipe noticed.

use std::io::{IsTerminal, Write};
use std::time::{Duration, UNIX_EPOCH};

use comfy_table::{ContentArrangement, Table, presets};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A table: boxed and fitted to the terminal on a tty, plain Markdown otherwise, so output
/// piped to files and snapshot tests does not depend on the terminal.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    if std::io::stdout().is_terminal() {
        t.load_style(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic);
    } else {
        t.load_style(presets::ASCII_MARKDOWN)
            .set_content_arrangement(ContentArrangement::Disabled)
            .force_no_tty();
    }
    t.set_header(header.to_vec());
    t
}

/// `1536` -> `1.5 KiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Milliseconds since the epoch as RFC 3339, with the raw number for exactness.
pub fn millis(ms: i64) -> String {
    let time = if ms >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_millis(ms as u64))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_millis(ms.unsigned_abs()))
    };
    match time {
        Some(t) => format!("{} ({ms})", humantime::format_rfc3339_millis(t)),
        None => ms.to_string(),
    }
}

/// A progress bar on stderr when stderr is a terminal; hidden otherwise.
pub fn progress(total: u64, unit: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let template = match unit {
        "bytes" => {
            "{spinner} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} ({eta})"
        }
        _ => "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} rows ({eta})",
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// Standard output that notices when its reader has gone (`rewind ... | head`): writers
/// above it may wrap the broken pipe in errors of their own (serde_json hides the
/// `io::Error`, arrow-csv keeps only its text), so `main` asks this instead of the error.
pub struct PipeWatch<W> {
    inner: W,
    reader_gone: bool,
}

impl<W: Write> PipeWatch<W> {
    pub fn new(inner: W) -> Self {
        PipeWatch {
            inner,
            reader_gone: false,
        }
    }

    /// Whether a write or flush failed because the reading end was closed.
    pub fn reader_gone(&self) -> bool {
        self.reader_gone
    }

    fn watch<T>(&mut self, result: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &result {
            self.reader_gone |= e.kind() == std::io::ErrorKind::BrokenPipe;
        }
        result
    }
}

impl<W: Write> Write for PipeWatch<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let result = self.inner.write(buf);
        self.watch(result)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let result = self.inner.flush();
        self.watch(result)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{ErrorKind, Write};

    /// Accepts `room` bytes, then fails with `kind`.
    struct Pipe {
        room: usize,
        kind: ErrorKind,
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(self.kind.into());
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_broken_pipe_is_noticed_under_a_wrapping_writer() {
        let mut out = super::PipeWatch::new(Pipe {
            room: 4,
            kind: ErrorKind::BrokenPipe,
        });
        let err = serde_json::to_writer(&mut out, &vec![1, 2, 3, 4]).unwrap_err();
        assert!(err.is_io(), "{err}");
        assert!(out.reader_gone());
    }

    #[test]
    fn other_write_errors_are_not_a_closed_pipe() {
        let mut out = super::PipeWatch::new(Pipe {
            room: 0,
            kind: ErrorKind::StorageFull,
        });
        assert_eq!(
            out.write_all(b"x").unwrap_err().kind(),
            ErrorKind::StorageFull
        );
        assert!(!out.reader_gone());
    }
}
