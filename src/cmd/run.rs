//! `missive run`: the nightly production run against the ledger, with `--workers N`
//! worker processes, or one worker itself (`run --worker`).

use std::cell::RefCell;
use std::ffi::OsString;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::Result;
use missive::config::LoadedConfig;
use missive::dispatch::{EmailComposer, Mailer, SmtpMailer, agency_host};
use missive::ledger::Location;
use missive::mailroom::Mailroom;
use missive::runner::{NoWorkers, Run, Workers, work_as_worker};

pub(crate) use super::run_args::RunArgs;
use super::{AssetArgs, Assets, Bars, project_dir};

/// Opens the ledger, takes the run lock, runs (or resumes) a production run and prints
/// what it did; or, with `--worker`, works on the ledger's running run.
pub(crate) fn run_command(loaded: &LoadedConfig, args: RunArgs) -> Result<ExitCode> {
    if args.worker {
        return worker_command(loaded, args);
    }
    let config = &loaded.config;
    let templates = project_dir(args.assets.templates.clone(), "templates");
    let emails = EmailComposer::load(&templates, config)?;
    let today = chrono::Local::now().date_naive();
    // Templates and fonts are checked before the arguments' dates, as they always were.
    let options = args.options(config, today);
    let batch_size = args.batch_size.map(|n| n as usize);
    let worker_args = args.workers.map(|n| (n, child_args(loaded, &args)));
    let assets = Assets::load(config, args.assets)?;
    let (options, ledger_path) = options?;
    // `--ledger`, else `[ledger] url`, else `OUT/missive.db`.
    let (location, ledger_path) =
        super::ledger_location(args.ledger.as_deref(), config, &ledger_path, true)?;
    let (mut ledger, _lock) = missive::ledger::open_locked(&location)?;
    let make_mailer = || -> Result<Box<dyn Mailer>, _> {
        Ok(Box::new(SmtpMailer::from_env(
            &config.email,
            &agency_host(config),
        )?))
    };
    let children =
        worker_args.map(|(count, args)| ChildWorkers::new(count, args, &location, &ledger_path));
    let run = Run {
        config: loaded,
        producer: &assets.producer(config, true),
        emails: &emails,
        mailroom: &Mailroom::from_config(config, batch_size),
        mailer: &make_mailer,
        progress: &Bars::new(args.quiet),
        workers: children.as_ref().map_or(&NoWorkers as &dyn Workers, |c| c),
    };
    let report = run.run(&mut *ledger, &options).map_err(|err| {
        // A ledger server that goes away mid-run is named, whatever was being recorded.
        match &location {
            Location::Postgres(pg) => anyhow::Error::from(err).context(format!(
                "the run stopped using the ledger on `{}`",
                pg.server
            )),
            Location::File(_) => err.into(),
        }
    })?;
    super::run_report::print(report, &ledger_path)
}

/// `run --worker`: joins the ledger's running run (waiting up to `--wait` for one),
/// renders what it can claim, and exits 0 once the run has no planned letter left.
fn worker_command(loaded: &LoadedConfig, args: RunArgs) -> Result<ExitCode> {
    let default = args.worker_ledger(loaded.config.ledger.url.is_some())?;
    let (location, ledger_path) =
        super::ledger_location(args.ledger.as_deref(), &loaded.config, &default, false)?;
    let work = args.work_options();
    let wait = Duration::from_secs(args.wait);
    let progress = Bars::new(true);
    let assets = Assets::load(&loaded.config, args.assets)?;
    let mut ledger = missive::ledger::open(&location)?;
    let producer = assets.producer(&loaded.config, true);
    let report = work_as_worker(&mut *ledger, loaded, &producer, &work, wait, &progress)?;
    for failed in &report.failed {
        eprintln!(
            "error: letter `{}`: {}",
            failed.key,
            missive::report::escape(&failed.message)
        );
    }
    let runs: Vec<String> = report.runs.iter().map(i64::to_string).collect();
    if runs.is_empty() {
        eprintln!(
            "worker {}: no run was running in `{}` within {}s; nothing to do",
            work.worker,
            ledger_path.display(),
            args.wait
        );
    } else {
        eprintln!(
            "worker {}: {} letters rendered, {} failed (run {}); ledger `{}`",
            work.worker,
            report.written.len(),
            report.failed.len(),
            runs.join(", "),
            ledger_path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The arguments a coordinator gives its workers: the same configuration, templates,
/// fonts, jobs, lease and chunk (the ledger is added when they start).
fn child_args(loaded: &LoadedConfig, args: &RunArgs) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::new();
    if let Some(path) = &loaded.path {
        out.extend(["--config".into(), path.clone().into_os_string()]);
    }
    out.extend(["run".into(), "--worker".into(), "--quiet".into()]);
    let AssetArgs {
        templates,
        fonts,
        jobs,
    } = &args.assets;
    if let Some(dir) = templates {
        out.extend(["--templates".into(), dir.clone().into_os_string()]);
    }
    if let Some(dir) = fonts {
        out.extend(["--fonts".into(), dir.clone().into_os_string()]);
    }
    let numbers = [
        ("--jobs", jobs.map(|n| n.to_string())),
        ("--lease", args.lease.map(|n| n.to_string())),
        ("--chunk", args.chunk.map(|n| n.to_string())),
    ];
    for (flag, value) in numbers {
        if let Some(value) = value {
            out.extend([flag.into(), value.into()]);
        }
    }
    // The run is already running when they start; a short wait covers a slow start.
    out.extend(["--wait".into(), "10".into()]);
    out
}

/// `run --workers N`: worker processes of this executable, started once the run's
/// letters are recorded and waited for at the end of the produce step.
struct ChildWorkers {
    count: usize,
    args: Vec<OsString>,
    children: RefCell<Vec<Child>>,
}

impl ChildWorkers {
    /// Workers of the ledger at `location`, named to them as `ledger`: a SQLite file by its
    /// absolute path (they may start elsewhere), a server by its URL as given.
    fn new(
        count: usize,
        mut args: Vec<OsString>,
        location: &Location,
        ledger: &Path,
    ) -> ChildWorkers {
        let ledger = match location {
            Location::File(path) => std::path::absolute(path).unwrap_or_else(|_| path.to_owned()),
            Location::Postgres(_) => ledger.to_owned(),
        };
        args.extend(["--ledger".into(), ledger.into_os_string()]);
        ChildWorkers {
            count,
            args,
            children: RefCell::new(Vec::new()),
        }
    }
}

impl Workers for ChildWorkers {
    fn start(&self, _run_id: i64) {
        let exe = match std::env::current_exe() {
            Ok(exe) => exe,
            Err(err) => {
                eprintln!(
                    "warning: cannot start workers ({err}); this process renders every letter"
                );
                return;
            }
        };
        for n in 1..=self.count {
            match Command::new(&exe)
                .args(&self.args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
            {
                Ok(child) => self.children.borrow_mut().push(child),
                Err(err) => eprintln!(
                    "warning: cannot start worker {n} ({err}); the others and this process render its letters"
                ),
            }
        }
    }

    fn wait(&self) {
        for mut child in self.children.borrow_mut().drain(..) {
            let pid = child.id();
            match child.wait() {
                Ok(status) if status.success() => {}
                Ok(status) => eprintln!(
                    "warning: worker (pid {pid}) {status}; its claimed letters were taken over when their lease ran out"
                ),
                Err(err) => eprintln!("warning: cannot wait for worker (pid {pid}): {err}"),
            }
        }
    }
}
