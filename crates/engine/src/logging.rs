//! The stderr log of Rewind's programs (the `rewind` CLI and engine applications): the
//! library crates emit `tracing` events, and a program installs this subscriber to show
//! them, one plain line each: `rewind-engine: warning: <message>`.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Installs the log of a Rewind program on stderr: by default the info, warning and error
/// events of Rewind's own crates, as `<crate>: <message>` (warnings and errors say so);
/// `verbosity` 1 (`-v`) adds debug events and every event's fields (uid, checkpoint,
/// path, ...), 2 trace events, 3 everything of every crate. A `RUST_LOG` filter
/// (`rewind_engine=debug`, ...) replaces the default and shows the fields too. Does
/// nothing when the program has a subscriber already.
pub fn init_logging(verbosity: u8) {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let fields = verbosity > 0 || from_env.is_some();
    let filter =
        EnvFilter::builder().parse_lossy(from_env.as_deref().unwrap_or(directives(verbosity)));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .event_format(PlainLine { fields })
        .try_init();
}

/// The `RUST_LOG` filter that `verbosity` stands for: what `rewind -v run APP` hands the
/// application, so its log shows what rewind's own would.
pub fn log_filter(verbosity: u8) -> &'static str {
    directives(verbosity)
}

/// What each `-v` shows: Rewind's crates (whose targets all start with `rewind`) one level
/// further than the rest.
fn directives(verbosity: u8) -> &'static str {
    match verbosity {
        0 => "rewind=info",
        1 => "info,rewind=debug",
        2 => "debug,rewind=trace",
        _ => "trace",
    }
}

/// One line per event, without time or level column: `rewind-engine: <message>`, with
/// `warning: `, `error: `, `debug: ` or `trace: ` before the message except at info,
/// and, when `fields`, the event's fields after it.
struct PlainLine {
    fields: bool,
}

impl<S, N> FormatEvent<S, N> for PlainLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Line::default();
        event.record(&mut line);
        // `rewind_engine::runtime::worker` comes from the crate rewind-engine.
        let source = meta.target().split("::").next().unwrap_or_default();
        let level = match *meta.level() {
            Level::ERROR => "error: ",
            Level::WARN => "warning: ",
            Level::INFO => "",
            Level::DEBUG => "debug: ",
            Level::TRACE => "trace: ",
        };
        write!(
            writer,
            "{}: {level}{}",
            source.replace('_', "-"),
            line.message
        )?;
        if self.fields {
            writer.write_str(&line.fields)?;
        }
        writeln!(writer)
    }
}

/// An event's message, and its other fields as ` name=value`.
#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// What `emit` logs through the plain format with `filter`.
    fn logged(filter: &str, fields: bool, emit: impl FnOnce()) -> String {
        let out = Arc::new(Mutex::new(Vec::new()));
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new(filter))
            .with_writer(move || Shared(writer.clone()))
            .event_format(PlainLine { fields })
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = out.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_names_the_crate_and_says_warnings_and_errors() {
        let text = logged(directives(0), false, || {
            tracing::info!(uid = "counter", "restoring from /sp");
            tracing::warn!(checkpoint = 3u64, "checkpoint 3 failed: disk full");
            tracing::error!("the final checkpoint failed");
            tracing::debug!("not shown by default");
        });
        assert_eq!(
            text,
            "rewind-engine: restoring from /sp\n\
             rewind-engine: warning: checkpoint 3 failed: disk full\n\
             rewind-engine: error: the final checkpoint failed\n"
        );
    }

    #[test]
    fn verbose_lines_show_debug_events_and_fields() {
        let text = logged(directives(1), true, || {
            let path = "/tmp/chk";
            tracing::debug!(checkpoint = 7u64, %path, uid = "counter", "written");
        });
        assert_eq!(
            text,
            "rewind-engine: debug: written checkpoint=7 path=/tmp/chk uid=\"counter\"\n"
        );
    }

    #[test]
    fn by_default_other_crates_are_quiet() {
        let text = logged(directives(0), false, || {
            tracing::warn!(target: "hyper::client", "connection reset");
            tracing::warn!(target: "rewind_savepoint::reader", "slow read");
        });
        assert_eq!(text, "rewind-savepoint: warning: slow read\n");
        let everything = logged(directives(3), false, || {
            tracing::trace!(target: "hyper::client", "connection reset");
        });
        assert_eq!(everything, "hyper: trace: connection reset\n");
    }
}
