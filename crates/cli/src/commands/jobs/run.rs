//! `rewind run`: start an application, in the foreground or detached.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rewind_engine::JobStatus;

use super::{absolute, registry};
use crate::cli::RunArgs;

/// How long a detached job may take to start (restore included) before rewind gives up.
const START_TIMEOUT: Duration = Duration::from_secs(300);

pub fn run(args: RunArgs, verbosity: u8, out: &mut dyn Write) -> Result<u8> {
    let app = find_app(&args.app)?;
    let id = uuid_like_id();
    let mut command = Command::new(&app);
    command.args(engine_args(&args, &id)).args(&args.app_args);
    pass_verbosity(
        &mut command,
        verbosity,
        std::env::var_os("RUST_LOG").is_some(),
    );
    if !args.detached || args.dry_run {
        let status = if args.dry_run {
            command.status().map_err(anyhow::Error::from)
        } else {
            eprintln!("rewind: job {id} ({})", app.display());
            foreground(command)
        }
        .with_context(|| format!("cannot start {}", app.display()))?;
        return Ok(if status.success() {
            crate::EXIT_OK
        } else {
            crate::EXIT_ERROR
        });
    }
    let registry = registry()?;
    let log_path = registry.log_path(&id);
    let log = registry.create_log(&id)?;
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // Its own process group: a Ctrl-C in this terminal later does not reach the job.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {}", app.display()))?;
    let started = Instant::now();
    loop {
        if let Ok(entry) = registry.find(&id) {
            if entry.status == JobStatus::Failed {
                bail!(
                    "job {id} failed: {}",
                    entry.error.unwrap_or_else(|| "no reason recorded".into())
                );
            }
            writeln!(out, "{id}")?;
            eprintln!(
                "rewind: job {id} {} (pid {}), output in {}",
                entry.status.as_str(),
                entry.pid,
                log_path.display()
            );
            return Ok(crate::EXIT_OK);
        }
        if let Some(status) = child.try_wait()? {
            if registry.find(&id).is_ok() {
                continue; // registered just before it ended
            }
            bail!(
                "{} exited ({status}) before the job started: {}",
                app.display(),
                last_line(&log_path).unwrap_or_else(|| "no output".into())
            );
        }
        if started.elapsed() > START_TIMEOUT {
            bail!(
                "job {id} has not started after {}s; see {}",
                START_TIMEOUT.as_secs(),
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The engine options rewind passes on, before the application's own arguments.
fn engine_args(args: &RunArgs, id: &str) -> Vec<String> {
    let mut out = vec!["--job-id".to_string(), id.to_string()];
    let mut pass = |flag: &str, value: Option<String>| {
        if let Some(v) = value {
            out.push(flag.to_string());
            out.push(v);
        }
    };
    pass("--from-savepoint", args.savepoint.as_deref().map(absolute));
    pass("--parallelism", args.parallelism.map(|p| p.to_string()));
    pass(
        "--checkpoint-dir",
        args.checkpoint_dir.as_deref().map(absolute),
    );
    pass("--checkpoint-interval", args.checkpoint_interval.clone());
    pass(
        "--savepoint-dir",
        args.savepoint_dir.as_deref().map(absolute),
    );
    if args.allow_non_restored_state {
        out.push("--allow-non-restored-state".into());
    }
    if args.dry_run {
        out.push("--dry-run".into());
    }
    out
}

/// APP as a path, else a program of that name next to `rewind`, else on PATH.
/// Runs the job in the foreground, forwarding SIGTERM and SIGINT to it: in its own process
/// group, so that a Ctrl-C reaches it once, through rewind (a first signal stops the job
/// with a savepoint into its savepoint dir, a second cancels it), and rewind waits for it.
fn foreground(mut command: Command) -> Result<std::process::ExitStatus> {
    use nix::sys::signal::Signal;
    use nix::unistd::Pid;
    // Watched before the job starts, so that no signal can end rewind and orphan the job;
    // one that comes before the job has a pid is passed on once it has.
    let job: Arc<Mutex<(Option<Pid>, Option<Signal>)>> = Arc::default();
    let forward = job.clone();
    rewind_engine::watch_stop_signals(move |name| {
        let signal = if name == "SIGTERM" {
            Signal::SIGTERM
        } else {
            Signal::SIGINT
        };
        if let Ok(mut job) = forward.lock() {
            match job.0 {
                // Fails only when the job has ended: nothing left to tell.
                Some(pid) => {
                    let _ = nix::sys::signal::kill(pid, signal);
                }
                None => job.1 = Some(signal),
            }
        }
    })?;
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command.spawn()?;
    let pid = Pid::from_raw(child.id() as i32);
    if let Ok(mut job) = job.lock() {
        job.0 = Some(pid);
        if let Some(early) = job.1.take() {
            let _ = nix::sys::signal::kill(pid, early);
        }
    }
    Ok(child.wait()?)
}

fn find_app(app: &str) -> Result<PathBuf> {
    let path = Path::new(app);
    if path.components().count() > 1 {
        if path.is_file() {
            return Ok(path.to_path_buf());
        }
        bail!("{app}: no such application");
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(app)));
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(app)).collect())
        .unwrap_or_default();
    beside
        .into_iter()
        .chain(on_path)
        .find(|p| p.is_file())
        .with_context(|| format!("{app}: no such application next to rewind or on PATH"))
}

/// A new job id: 32 hex digits.
fn uuid_like_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn last_line(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(str::to_string)
}

/// `rewind -v run APP`: the application logs as verbosely as rewind would; a `RUST_LOG`
/// the user set reaches it unchanged (the child inherits it).
fn pass_verbosity(command: &mut Command, verbosity: u8, rust_log_set: bool) {
    if verbosity > 0 && !rust_log_set {
        command.env("RUST_LOG", rewind_engine::log_filter(verbosity));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rust_log(command: &Command) -> Option<String> {
        command
            .get_envs()
            .find(|(k, _)| *k == "RUST_LOG")
            .and_then(|(_, v)| v.map(|v| v.to_string_lossy().into_owned()))
    }

    #[test]
    fn verbosity_reaches_the_application_unless_rust_log_is_set() {
        let mut quiet = Command::new("app");
        pass_verbosity(&mut quiet, 0, false);
        assert_eq!(rust_log(&quiet), None);
        let mut verbose = Command::new("app");
        pass_verbosity(&mut verbose, 1, false);
        assert_eq!(rust_log(&verbose).as_deref(), Some("info,rewind=debug"));
        let mut set = Command::new("app");
        pass_verbosity(&mut set, 2, true);
        assert_eq!(rust_log(&set), None);
    }
}
