//! `rewind demo`: the savepoint walkthrough with real jobs, each step printed as the
//! command that does it by hand and then run exactly as printed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rewind_engine::{ControlCommand, ControlReply, JobRegistry, JobStatus};

use crate::cli::DemoArgs;

/// How long a demo job may take to read its events.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(600);

pub fn run(args: DemoArgs, out: &mut dyn Write) -> Result<u8> {
    let dir = demo_dir(args.dir.as_deref())?;
    let mut demo = Demo {
        out,
        dir: dir.clone(),
        rewind: std::env::current_exe().context("cannot find the rewind program")?,
        started: Vec::new(),
    };
    let result = demo.tell(args.events);
    demo.cancel_leftovers();
    result?;
    Ok(crate::EXIT_OK)
}

struct Demo<'a> {
    out: &'a mut dyn Write,
    dir: PathBuf,
    rewind: PathBuf,
    /// Jobs this demo started, cancelled if it stops half way.
    started: Vec<String>,
}

impl Demo<'_> {
    fn tell(&mut self, events: u64) -> Result<()> {
        let d = |name: &str| self.dir.join(name).to_string_lossy().into_owned();
        let (log, chk, sps) = (d("events"), d("checkpoints"), d("savepoints"));
        let (res1, res2) = (d("results-v1"), d("results-v2"));
        let n = events.to_string();
        self.say(&format!(
            "The savepoint walkthrough, with real jobs, in {}.\n\
             A social network logs views and clicks of its posts, organic and paid.\n\
             post-analytics-v1 counts them per post and minute; v2 also splits organic from\n\
             paid. We run v1, take a savepoint, upgrade to v2 from it, and lose nothing.",
            self.dir.display()
        ))?;

        self.step("1. Write the first events into a partitioned log (4 partitions).")?;
        self.exec("post-events", &["--out", &log, "--events", &n])?;

        self.step("2. Start v1, detached, with periodic checkpoints.")?;
        let v1 = self.start_job(
            None,
            "post-analytics-v1",
            &[&log, &chk, &sps, &res1],
            events,
        )?;

        self.step("3. Take a savepoint of the running job (into its --savepoint-dir).")?;
        let sp1 = self.exec("rewind", &["savepoint", &v1])?;
        self.exec("rewind", &["inspect", &sp1])?;

        self.step("4. Cancel v1. Output since its last checkpoint is dropped, not lost:\n   v2 will produce it again from the savepoint.")?;
        self.exec("rewind", &["cancel", &v1])?;

        self.step("5. Events keep arriving while no job runs.")?;
        self.exec(
            "post-events",
            &["--out", &log, "--first", &n, "--events", &n],
        )?;

        self.step("6. What would v2 restore from the savepoint? (same uids: everything)")?;
        self.exec(
            "rewind",
            &[
                "run",
                "-s",
                &sp1,
                "--dry-run",
                "post-analytics-v2",
                "--",
                "--input",
                &log,
                "--output",
                &res2,
            ],
        )?;

        self.step("7. Start v2 from the savepoint; it catches up on the new events.")?;
        let v2 = self.start_job(
            Some(&sp1),
            "post-analytics-v2",
            &[&log, &chk, &sps, &res2],
            events,
        )?;

        self.step("8. Stop v2 with a final savepoint; --drain fires every open window.")?;
        let sp2 = self.exec("rewind", &["stop", &v2, "--drain"])?;

        self.step("9. The results, per minute of event time, side by side.")?;
        let table = results_table(Path::new(&res1), Path::new(&res2))?;
        writeln!(self.out, "{table}")?;

        self.step(
            "10. The savepoints and their lineage: v2's final savepoint descends from v1's.",
        )?;
        self.exec("rewind", &["validate", &sp2])?;
        self.exec("rewind", &["log", &sps])?;
        self.say(&format!(
            "Done. Everything is in {}; the commands above repeat each step by hand\n\
             (post-events and the post-analytics programs are next to rewind).",
            self.dir.display()
        ))?;
        Ok(())
    }

    /// `rewind run -d [-s SAVEPOINT] APP`, reading `log` into `output`; waits until the job
    /// has read `events`, then lists the jobs. `dirs` = [log, checkpoints, savepoints, output].
    fn start_job(
        &mut self,
        savepoint: Option<&str>,
        app: &str,
        dirs: &[&str; 4],
        events: u64,
    ) -> Result<String> {
        let [log, chk, sps, output] = *dirs;
        let mut args = vec!["run", "-d"];
        if let Some(sp) = savepoint {
            args.extend(["-s", sp]);
        }
        args.extend(["--checkpoint-dir", chk, "--savepoint-dir", sps, app]);
        args.extend(["--", "--input", log, "--output", output]);
        let id = self.exec("rewind", &args)?;
        self.started.push(id.clone());
        self.wait_for_records(&id, events)?;
        self.exec("rewind", &["list"])?;
        Ok(id)
    }

    fn say(&mut self, text: &str) -> Result<()> {
        writeln!(self.out, "{text}\n")?;
        self.out.flush()?;
        Ok(())
    }

    fn step(&mut self, text: &str) -> Result<()> {
        writeln!(self.out, "\n{text}")?;
        Ok(())
    }

    /// Prints `$ program args`, runs it, prints its output; returns its trimmed stdout.
    fn exec(&mut self, program: &str, args: &[&str]) -> Result<String> {
        writeln!(self.out, "$ {program} {}", args.join(" "))?;
        self.out.flush()?;
        let path = if program == "rewind" {
            self.rewind.clone()
        } else {
            self.rewind.with_file_name(program)
        };
        let output = Command::new(&path)
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .with_context(|| {
                format!(
                    "cannot run {} (build it with `cargo build --bins`)",
                    path.display()
                )
            })?;
        self.out.write_all(&output.stdout)?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        // Detached jobs say where their output goes: worth showing.
        for line in stderr.lines().filter(|l| l.starts_with("rewind: job ")) {
            writeln!(self.out, "{line}")?;
        }
        if !output.status.success() {
            bail!("`{program} {}` failed: {}", args.join(" "), stderr.trim());
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// Waits until job `id` has read `n` records.
    fn wait_for_records(&mut self, id: &str, n: u64) -> Result<()> {
        writeln!(self.out, "(waiting until job {id} has read {n} events)")?;
        self.out.flush()?;
        let job = JobRegistry::open_default()?.find(id)?;
        let started = Instant::now();
        loop {
            match job.request(ControlCommand::Status, Duration::from_secs(5))? {
                ControlReply::Status(report) if report.records_read >= n => return Ok(()),
                _ if started.elapsed() > CATCH_UP_TIMEOUT => {
                    bail!("job {id} has not read {n} events in {CATCH_UP_TIMEOUT:?}")
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Cancels the jobs this demo started that still run (after a failure).
    fn cancel_leftovers(&mut self) {
        let Ok(registry) = JobRegistry::open_default() else {
            return;
        };
        for id in &self.started {
            if let Ok(job) = registry.find(id) {
                if job.status == JobStatus::Running && job.process_alive() {
                    let _ = job.request(ControlCommand::Cancel, Duration::from_secs(5));
                }
            }
        }
    }
}

/// A new, empty demo folder: never reuses one with content (nothing is overwritten).
fn demo_dir(dir: Option<&str>) -> Result<PathBuf> {
    let dir = match dir {
        Some(d) => std::path::absolute(d)?,
        None => std::env::temp_dir().join(format!(
            "rewind-demo-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        )),
    };
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!("{}: the demo needs a new or empty folder", dir.display());
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Per window (minute): which version emitted it and the sums over all posts.
#[derive(Default)]
struct Minute {
    version: &'static str,
    views: u64,
    clicks: u64,
    paid: Option<(u64, u64)>,
    split_complete: bool,
}

fn results_table(v1: &Path, v2: &Path) -> Result<String> {
    let mut minutes: BTreeMap<i64, Minute> = BTreeMap::new();
    for (dir, version) in [(v1, "v1"), (v2, "v2")] {
        let location = rewind_savepoint::Location::parse(&dir.to_string_lossy())?;
        for line in rewind_engine::read_committed(&location)? {
            let v: serde_json::Value = serde_json::from_str(&line)
                .with_context(|| format!("{}: not a result line: {line}", dir.display()))?;
            let m = minutes
                .entry(v["start"].as_i64().unwrap_or_default())
                .or_default();
            m.version = version;
            m.views += v["views"].as_u64().unwrap_or_default();
            m.clicks += v["clicks"].as_u64().unwrap_or_default();
            if version == "v2" {
                if m.paid.is_none() {
                    m.split_complete = true;
                }
                let paid = m.paid.get_or_insert((0, 0));
                paid.0 += v["paid"]["views"].as_u64().unwrap_or_default();
                paid.1 += v["paid"]["clicks"].as_u64().unwrap_or_default();
                // A minute is complete when every post's window in it is.
                m.split_complete &= v["split_complete"] == true;
            }
        }
    }
    let mut table = crate::output::table(&[
        "minute (event time)",
        "emitted by",
        "views",
        "clicks",
        "paid views",
        "paid clicks",
    ]);
    let rows: Vec<(&i64, &Minute)> = minutes.iter().collect();
    // First and last minutes of each version, and every window open at the upgrade.
    let keep = |i: usize| {
        let (_, m) = rows[i];
        let first_of_version = i == 0 || rows[i - 1].1.version != m.version;
        let last_of_version = i + 1 == rows.len() || rows[i + 1].1.version != m.version;
        let after_restored =
            i > 0 && rows[i - 1].1.version == "v2" && !rows[i - 1].1.split_complete;
        let near_edge = (i > 0 && first_of_version) || last_of_version || i < 2 || after_restored;
        near_edge || (m.version == "v2" && !m.split_complete) || rows.len() <= 12
    };
    let mut skipped = false;
    for (i, (start, m)) in rows.iter().enumerate() {
        if !keep(i) {
            if !skipped {
                table.add_row(vec!["...", "", "", "", "", ""]);
            }
            skipped = true;
            continue;
        }
        skipped = false;
        let minute = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(**start).unwrap_or(0)),
        )
        .to_string();
        let by = match (m.version, m.split_complete) {
            ("v2", false) => "v2 (window restored from v1)".to_string(),
            (v, _) => v.to_string(),
        };
        let (pv, pc) = match (m.paid, m.split_complete) {
            (Some((v, c)), true) => (v.to_string(), c.to_string()),
            (Some((v, c)), false) => (format!("{v} since upgrade"), format!("{c} since upgrade")),
            (None, _) => ("-".into(), "-".into()),
        };
        table.add_row(vec![
            minute,
            by,
            m.views.to_string(),
            m.clicks.to_string(),
            pv,
            pc,
        ]);
    }
    Ok(table.to_string())
}
