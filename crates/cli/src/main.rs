//! `rewind`: inspect, check and generate stream-processing savepoints.
//!
//! Glue only: each subcommand parses its arguments and calls `rewind-savepoint`.

mod cli;
mod commands;
mod files;
mod json;
mod json_rows;
mod output;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;

/// Exit status: the command did what was asked and found nothing to report.
pub const EXIT_OK: u8 = 0;
/// Exit status: a finding (validate found problems).
pub const EXIT_FINDING: u8 = 1;
/// Exit status: an error (bad input, unreadable savepoint, storage failure).
pub const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    quiet_decoder_panics();
    let cli = Cli::parse();
    // The libraries' messages (a job's, a restore's) reach stderr through `tracing`.
    rewind_engine::init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rewind: error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let stdout = std::io::stdout();
    let mut out = output::PipeWatch::new(stdout.lock());
    let result = runtime.block_on(commands::run(cli, &mut out));
    let result = result.and_then(|code| {
        out.flush()?;
        Ok(code)
    });
    match result {
        Ok(code) => ExitCode::from(code),
        // `rewind ... | head` closing the pipe early is not an error (as in ripgrep).
        Err(_) if out.reader_gone() => ExitCode::from(EXIT_OK),
        Err(e) => {
            eprintln!("rewind: error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// A panic inside the Parquet decoder on a malformed shard is caught by the reader and
/// reported as that shard's one-line error; the standard panic message would only repeat
/// it, less clearly. Every other panic prints as usual.
fn quiet_decoder_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !rewind_savepoint::decoding_guarded() {
            default(info);
        }
    }));
}
