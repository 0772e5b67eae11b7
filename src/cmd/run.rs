//! `missive run`: the nightly production run against the ledger.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use clap::Args;
use missive::config::LoadedConfig;
use missive::decide::SuppressReason;
use missive::ledger::SqliteLedger;
use missive::ledger::prelude::*;
use missive::mailroom::Mailroom;
use missive::report::escape;
use missive::review::short_hash;
use missive::runner::{self, RunRequest};

use missive::dispatch::{EmailComposer, SendOptions};

use super::{AssetArgs, Assets, parse_date, progress_bar, project_dir};

/// Options of `missive run`.
#[derive(Args)]
pub(crate) struct RunArgs {
    /// A directory of `*.json` accounts (recursive), a `.jsonl` file, or one `.json` file.
    #[arg(long, value_name = "PATH", required_unless_present = "resume")]
    pub(crate) accounts: Option<PathBuf>,
    /// Directory for the PDFs, `run-<id>.json`, the ledger and `treasury/<run>.csv`.
    #[arg(long, value_name = "DIR", required_unless_present = "resume")]
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
    #[command(flatten)]
    pub(crate) assets: AssetArgs,
}

/// Opens the ledger, takes the run lock and runs (or resumes) a production run.
pub(crate) fn run_command(loaded: &LoadedConfig, args: RunArgs) -> Result<ExitCode> {
    let config = &loaded.config;
    let emails = EmailComposer::load(
        &project_dir(args.assets.templates.clone(), "templates"),
        config,
    )?;
    let assets = Assets::load(config, args.assets)?;
    let calendar = config.holiday_calendar();
    let today = chrono::Local::now().date_naive();
    let as_of = args.as_of.unwrap_or(today);
    let mail_date = args
        .mail_date
        .unwrap_or_else(|| calendar.next_business_day_on_or_after(as_of));
    // Refuse a past mail date before creating anything (the runner checks again, and for
    // `--resume` against the run's own date).
    if args.resume.is_none() {
        runner::check_mail_date(mail_date, today, args.allow_past_mail_date)?;
    }
    let out = args.out.clone().unwrap_or_default();
    let ledger_path = match (&args.ledger, &args.out) {
        (Some(path), _) => path.clone(),
        (None, Some(out)) => out.join("missive.db"),
        (None, None) => anyhow::bail!("--resume needs --ledger or --out to find the ledger"),
    };
    if let Some(parent) = ledger_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("failed to create `{}`", parent.display()))?;
    }
    let mut ledger = SqliteLedger::open(&ledger_path)?;
    let _lock = ledger.lock_for_run()?;
    let request = RunRequest {
        accounts: args.accounts.clone().unwrap_or_default(),
        out_dir: out,
        as_of,
        mail_date,
    };
    let mailroom = Mailroom {
        composer: &assets.composer,
        renderer: &assets.renderer,
        author: config.agency.name.clone(),
        mail: &config.mail,
        batch_size: args
            .batch_size
            .map_or(config.mail.batch_size, |n| n as usize),
        sender: {
            let address = &config.agency.return_address;
            let mut block = address.block();
            // The first configured line is the agency's name, printed apart.
            if !address.lines.is_empty() {
                block.remove(0);
            }
            (config.agency.name.clone(), block)
        },
    };
    let bar = progress_bar(0);
    let report = runner::run(
        &mut ledger,
        loaded,
        &assets.producer(config, true),
        &emails,
        request,
        args.resume,
        today,
        args.allow_past_mail_date,
        (!args.no_batches).then_some(&mailroom),
        |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )?;
    bar.finish_and_clear();
    for err in &report.plan.errors {
        eprintln!("error: {err}");
    }
    for failed in &report.failed {
        eprintln!(
            "error: letter `{}`: {}",
            failed.key,
            escape(&failed.message)
        );
    }
    for held in &report.held {
        eprintln!(
            "error: template `{}` (version {}) is not approved: {} {} letters not rendered",
            held.template,
            short_hash(&held.template_sha256),
            held.letters,
            held.kind
        );
    }
    if !report.held.is_empty() {
        eprintln!(
            "\nhint: look at them with `missive preview KIND [--language es]` or `missive serve --ledger {ledger}`, then approve each with:",
            ledger = ledger_path.display()
        );
        for held in &report.held {
            let lang = missive::compose::template_language(&held.template);
            let language = if lang == missive::language::Language::En {
                String::new()
            } else {
                format!(" --language {lang}")
            };
            eprintln!(
                "  missive approve {}{language} --reviewer NAME --ledger {}",
                held.kind,
                ledger_path.display()
            );
        }
    }
    let already = report
        .plan
        .suppressed
        .iter()
        .filter(|s| s.reason == SuppressReason::AlreadySent)
        .count();
    eprintln!(
        "run {}: {} letters planned, {} rendered, {} failed, {} new referrals, {} Treasury updates; {} liabilities already covered; ledger `{}`",
        report.run.id,
        report.planned,
        report.written.len(),
        report.failed.len(),
        report.new_referrals,
        report.treasury_updates,
        already,
        ledger_path.display()
    );
    if let Some(batches) = &report.batches {
        for batch in &batches.written {
            let batch = if args.release {
                ledger.release_batch(&batch.name, "released by `run --release`")?
            } else {
                batch.clone()
            };
            eprintln!(
                "batch {}: {} letters, {} pages, {} sheets, amount due {}; {}",
                batch.name,
                batch.pieces,
                batch.pages,
                batch.sheets,
                batch.amount_due.dollars(),
                batch.state
            );
        }
        for problem in &batches.problems {
            eprintln!("error: {}", escape(problem));
        }
        for (run_id, count) in &batches.left_over {
            eprintln!(
                "error: {count} rendered print letters of run {run_id} are in no batch: its accounts cannot be read, or their data or template changed since run {run_id} rendered them\n\nhint: `missive history ACCOUNT_ID` shows them; `missive mark KEY cancelled` lets the next run reissue one with today's data"
            );
        }
        if args.release && !batches.written.is_empty() {
            missive::mailroom::write_control(&ledger, &report.run)?;
        }
        if let Some(control) = &batches.control_file {
            eprintln!("control totals: `{}`", control.display());
        }
    }
    for failed in &report.email_errors {
        eprintln!(
            "error: email copy of `{}`: {}",
            failed.key,
            escape(&failed.message)
        );
    }
    let sent_all = if args.send {
        super::send::send_queued(
            &mut ledger,
            config,
            SendOptions {
                run_id: None,
                resend_uncertain: false,
                fallback_print: args.fallback_print,
            },
        )?
    } else {
        true
    };
    Ok(
        if report.plan.errors.is_empty()
            && report.failed.is_empty()
            && report.held.is_empty()
            && report.email_errors.is_empty()
            && report
                .batches
                .as_ref()
                .is_none_or(|b| b.left_over.is_empty())
            && sent_all
        {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        },
    )
}
