//! `missive run`: the nightly production run against the ledger.

use std::process::ExitCode;

use anyhow::Result;
use missive::config::LoadedConfig;
use missive::dispatch::{EmailComposer, Mailer, SmtpMailer, agency_host};
use missive::ledger::Location;
use missive::mailroom::Mailroom;
use missive::runner::Run;

pub(crate) use super::run_args::RunArgs;
use super::{Assets, Bars, project_dir};

/// Opens the ledger, takes the run lock, runs (or resumes) a production run and prints
/// what it did.
pub(crate) fn run_command(loaded: &LoadedConfig, args: RunArgs) -> Result<ExitCode> {
    let config = &loaded.config;
    let templates = project_dir(args.assets.templates.clone(), "templates");
    let emails = EmailComposer::load(&templates, config)?;
    let today = chrono::Local::now().date_naive();
    // Templates and fonts are checked before the arguments' dates, as they always were.
    let options = args.options(config, today);
    let batch_size = args.batch_size.map(|n| n as usize);
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
    let run = Run {
        config: loaded,
        producer: &assets.producer(config, true),
        emails: &emails,
        mailroom: &Mailroom::from_config(config, batch_size),
        mailer: &make_mailer,
        progress: &Bars::new(args.quiet),
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
