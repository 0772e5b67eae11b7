//! The arguments of `missive run`, and what they ask of a run ([`RunOptions`]).

use std::path::PathBuf;

use anyhow::Result;
use chrono::NaiveDate;
use clap::Args;
use missive::config::Config;
use missive::dispatch::SendOptions;
use missive::runner::{self, BatchOptions, NewRunSpec, RunOptions, Start};

use super::{AssetArgs, parse_date};

/// Options of `missive run`.
#[derive(Args)]
pub(crate) struct RunArgs {
    /// A directory of `*.json` accounts (recursive), a `.jsonl` file, or one `.json` file.
    #[arg(long, value_name = "PATH", required_unless_present_any = ["resume", "worker"])]
    pub(crate) accounts: Option<PathBuf>,
    /// Directory for the PDFs, `run-<id>.json`, the ledger and `treasury/<run>.csv`.
    #[arg(long, value_name = "DIR", required_unless_present_any = ["resume", "worker"])]
    pub(crate) out: Option<PathBuf>,
    /// The date the data is taken to be true (YYYY-MM-DD; default: today).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub(crate) as_of: Option<NaiveDate>,
    /// The date letters are mailed (YYYY-MM-DD; default: first business day on or after
    /// the as-of date). Deadlines always count from it.
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub(crate) mail_date: Option<NaiveDate>,
    /// Ledger file (default: `missive.db` in the output directory).
    #[arg(long, value_name = "FILE")]
    pub(crate) ledger: Option<PathBuf>,
    /// Finish an interrupted run with its own dates, accounts and output directory.
    #[arg(long, value_name = "RUN_ID", conflicts_with_all = ["accounts", "as_of", "mail_date"])]
    pub(crate) resume: Option<i64>,
    /// Allow a mail date before today (letters dated in the past).
    #[arg(long)]
    pub(crate) allow_past_mail_date: bool,
    /// Letters per print batch PDF (default: `mail.batch_size` of the configuration, 500).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) batch_size: Option<u32>,
    /// Record the batches written by this run as released to the mailroom at once (the
    /// same as `missive release BATCH` for each).
    #[arg(long, conflicts_with = "no_batches")]
    pub(crate) release: bool,
    /// Render and record the letters but make no print batches now; the next run (or
    /// `missive run --resume RUN_ID`) batches them.
    #[arg(long)]
    pub(crate) no_batches: bool,
    /// After rendering, send the queued email letters (as `missive send`).
    #[arg(long)]
    pub(crate) send: bool,
    /// With --send: a letter the mail server refuses for good is planned as first-class
    /// mail by the next run.
    #[arg(long, requires = "send")]
    pub(crate) fallback_print: bool,
    /// Show no progress bars (they show only when standard error is a terminal).
    #[arg(long)]
    pub(crate) quiet: bool,
    /// Also start N worker processes (`run --worker`) that render the run's letters with
    /// this one; a worker that dies leaves its letters to the others after its lease.
    #[arg(long, value_name = "N", conflicts_with = "worker")]
    pub(crate) workers: Option<usize>,
    /// Be a worker: join the ledger's running run and render the letters it can claim,
    /// until none is planned (never plans, batches, refers or sends). Needs only the
    /// ledger, the run's configuration, templates and fonts, and its output directory.
    #[arg(long, conflicts_with_all = ["resume", "accounts", "as_of", "mail_date", "release", "no_batches", "send"])]
    pub(crate) worker: bool,
    /// With --worker: how long to wait for a running run before leaving (seconds).
    #[arg(long, value_name = "SECS", default_value_t = 60, requires = "worker")]
    pub(crate) wait: u64,
    /// How long a claim on a chunk of letters lasts (seconds): a process that dies
    /// leaves its chunk to the others after it (default 300; at most a day).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(crate) lease: Option<u64>,
    /// Letters claimed and rendered at a time (default 256).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) chunk: Option<u32>,
    #[command(flatten)]
    pub(crate) assets: AssetArgs,
}

impl RunArgs {
    /// The run these arguments ask for on `today`, and the ledger file. A new run's past
    /// mail date is refused here, before anything is created (the run checks again, and
    /// for `--resume` against the run's own date).
    pub(crate) fn options(
        &self,
        config: &Config,
        today: NaiveDate,
    ) -> Result<(RunOptions, PathBuf)> {
        let as_of = self.as_of.unwrap_or(today);
        let mail_date = self.mail_date.unwrap_or_else(|| {
            config
                .holiday_calendar()
                .next_business_day_on_or_after(as_of)
        });
        let start = match (self.resume, &self.accounts, &self.out) {
            (Some(id), _, _) => Start::Resume(id),
            (None, Some(accounts), Some(out_dir)) => {
                runner::check_mail_date(mail_date, today, self.allow_past_mail_date)?;
                Start::New(NewRunSpec {
                    accounts: accounts.clone(),
                    out_dir: out_dir.clone(),
                    as_of,
                    mail_date,
                })
            }
            _ => anyhow::bail!("--accounts and --out are required without --resume"),
        };
        let ledger = match (&self.ledger, &self.out) {
            (Some(path), _) => path.clone(),
            (None, Some(out)) => out.join("missive.db"),
            // `[ledger] url` names it; `ledger_location` takes it from there.
            (None, None) if config.ledger.url.is_some() => PathBuf::new(),
            (None, None) => anyhow::bail!(
                "--resume needs --ledger, --out or `[ledger] url` in the configuration to find the ledger"
            ),
        };
        let options = RunOptions {
            start,
            today,
            allow_past_mail_date: self.allow_past_mail_date,
            batches: (!self.no_batches).then_some(BatchOptions {
                release: self.release,
            }),
            send: self.send.then_some(SendOptions {
                fallback_print: self.fallback_print,
                ..SendOptions::default()
            }),
            work: self.work_options(),
        };
        Ok((options, ledger))
    }

    /// How this process claims letters: `--chunk` and `--lease`, else the defaults.
    pub(crate) fn work_options(&self) -> runner::WorkOptions {
        let defaults = runner::WorkOptions::default();
        runner::WorkOptions {
            chunk: self.chunk.map_or(defaults.chunk, |n| n as usize),
            lease: self
                .lease
                .map_or(defaults.lease, std::time::Duration::from_secs),
            ..defaults
        }
    }

    /// The ledger a worker joins: `--ledger`, else `missive.db` in `--out`.
    pub(crate) fn worker_ledger(&self, configured: bool) -> Result<PathBuf> {
        match (&self.ledger, &self.out) {
            (Some(path), _) => Ok(path.clone()),
            (None, Some(out)) => Ok(out.join("missive.db")),
            // `[ledger] url` names it; `ledger_location` takes it from there.
            (None, None) if configured => Ok(PathBuf::new()),
            (None, None) => anyhow::bail!(
                "--worker needs --ledger (or --out, or `[ledger] url` in the configuration) to find the run"
            ),
        }
    }
}
