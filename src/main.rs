//! The `missive` command line: parses arguments, calls the library, maps outcomes to exit
//! statuses (0 all planned, 1 some accounts or letters had errors, 2 nothing could run).

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};

use missive::config::Config;
use missive::decide::DecideContext;
use missive::plan::{PriorNotices, plan_batch};
use missive::{load, report};

/// Notices for a state revenue department's refund-offset program.
#[derive(Parser)]
#[command(name = "missive", version, about, propagate_version = true)]
struct Cli {
    /// Configuration file (default: ./missive.toml if present, else the built-in one).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decide which letters are due and print the plan; writes nothing.
    Plan(PlanArgs),
}

/// Options every command that reads accounts shares.
#[derive(Args)]
struct BatchArgs {
    /// A directory of `*.json` accounts (recursive), a `.jsonl` file, or one `.json` file.
    #[arg(long, value_name = "PATH")]
    accounts: PathBuf,
    /// The date the data is taken to be true (YYYY-MM-DD; default: today).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    as_of: Option<NaiveDate>,
    /// The date letters are mailed (YYYY-MM-DD; default: first business day on or after
    /// the as-of date).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    mail_date: Option<NaiveDate>,
}

#[derive(Args)]
struct PlanArgs {
    #[command(flatten)]
    batch: BatchArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// Aligned columns for people.
    Table,
    /// The JSON of interface.md, for machines.
    Json,
}

fn parse_date(text: &str) -> Result<NaiveDate, String> {
    load::parse_iso_date(text).ok_or_else(|| format!("`{text}` is not a date: write YYYY-MM-DD"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let loaded = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Plan(args) => plan(&loaded.config, args),
    }
}

fn plan(config: &Config, args: PlanArgs) -> Result<ExitCode> {
    let calendar = config.holiday_calendar();
    let as_of = args
        .batch
        .as_of
        .unwrap_or_else(|| chrono::Local::now().date_naive());
    let mail_date = args
        .batch
        .mail_date
        .unwrap_or_else(|| calendar.next_business_day_on_or_after(as_of));
    let ctx = DecideContext {
        as_of,
        mail_date,
        policy: &config.policy,
        calendar: &calendar,
    };
    let records = load::records(&args.batch.accounts)?;
    let plan = plan_batch(records, &PriorNotices::new(), &ctx, |_| {});

    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match args.format {
        Format::Json => report::write_json(&plan, &mut out),
        Format::Table => report::write_table(&plan, &mut out),
    }
    .and_then(|()| out.flush())
    .context("failed to write the plan to standard output")?;
    if matches!(args.format, Format::Table) {
        for err in &plan.errors {
            eprintln!("error: {err}");
        }
    }
    Ok(if plan.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
