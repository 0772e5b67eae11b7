//! The `missive` command line: parses arguments, calls the library, maps outcomes to exit
//! statuses (0 all planned, 1 some accounts or letters had errors, 2 nothing could run).

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};

use indicatif::{ProgressBar, ProgressStyle};
use missive::calendar::HolidayCalendar;
use missive::compose::Composer;
use missive::config::{Config, LoadedConfig};
use missive::decide::SuppressReason;
use missive::decide::{DecideContext, DueLetter};
use missive::ledger::{Ledger, LetterState, SqliteLedger};
use missive::letter::LetterKey;
use missive::letter::LetterKind;
use missive::plan::{PriorNotices, plan_batch};
use missive::produce::{ProduceError, Producer};
use missive::render::Renderer;
use missive::runner::{self, RunRequest};
use missive::{load, report};

/// glibc's allocator spends ~40% of `plan`'s time in malloc/free across threads;
/// mimalloc roughly halves that (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Plan, then write one PDF per planned letter and `render.json` into `--out`.
    Render(RenderArgs),
    /// A production run: plan against the ledger, record and render every due letter
    /// once, write referrals. Safe to kill and rerun.
    Run(RunArgs),
    /// Every letter and state change of an account (or one letter) from the ledger.
    History(HistoryArgs),
    /// Record that a letter came back undeliverable, or was pulled by the mailroom.
    Mark(MarkArgs),
}

/// Where templates and fonts come from.
#[derive(Args)]
struct AssetArgs {
    /// Templates directory (default: ./templates, else the one missive was built with).
    #[arg(long, value_name = "DIR")]
    templates: Option<PathBuf>,
    /// Fonts directory (default: ./fonts, else the one missive was built with).
    #[arg(long, value_name = "DIR")]
    fonts: Option<PathBuf>,
    /// Render threads (default: all cores).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
}

#[derive(Args)]
struct RunArgs {
    /// A directory of `*.json` accounts (recursive), a `.jsonl` file, or one `.json` file.
    #[arg(long, value_name = "PATH", required_unless_present = "resume")]
    accounts: Option<PathBuf>,
    /// Directory for the PDFs, `render.json` and `referrals.csv`.
    #[arg(long, value_name = "DIR", required_unless_present = "resume")]
    out: Option<PathBuf>,
    /// The date the data is taken to be true (YYYY-MM-DD; default: today).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    as_of: Option<NaiveDate>,
    /// The date letters are mailed (YYYY-MM-DD; default: first business day on or after
    /// the as-of date). Deadlines always count from it.
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    mail_date: Option<NaiveDate>,
    /// Ledger file (default: `missive.db` in the output directory).
    #[arg(long, value_name = "FILE")]
    ledger: Option<PathBuf>,
    /// Finish an interrupted run with its own dates, accounts and output directory.
    #[arg(long, value_name = "RUN_ID", conflicts_with_all = ["accounts", "as_of", "mail_date"])]
    resume: Option<i64>,
    /// Allow a mail date before today (letters dated in the past).
    #[arg(long)]
    allow_past_mail_date: bool,
    #[command(flatten)]
    assets: AssetArgs,
}

#[derive(Args)]
struct HistoryArgs {
    /// The account whose letters to show.
    #[arg(value_name = "ACCOUNT_ID", required_unless_present = "key")]
    account_id: Option<String>,
    /// Show one letter instead (its full key).
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
    /// Ledger file.
    #[arg(long, value_name = "FILE", default_value = "out/missive.db")]
    ledger: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Args)]
struct MarkArgs {
    /// The letter's key, e.g. `CT-0001001/intent_to_offset/L1`.
    #[arg(value_name = "KEY")]
    key: String,
    /// What happened to it.
    #[arg(value_enum, value_name = "STATE")]
    state: MarkState,
    /// A note for the history (who, why).
    #[arg(long, default_value = "")]
    note: String,
    /// Ledger file.
    #[arg(long, value_name = "FILE", default_value = "out/missive.db")]
    ledger: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum MarkState {
    /// Came back undeliverable: the next plan treats it as not delivered and reissues it.
    Returned,
    /// Pulled by the mailroom before mailing: the next plan treats it as not sent.
    Cancelled,
}

#[derive(Args)]
struct RenderArgs {
    #[command(flatten)]
    batch: BatchArgs,
    /// Directory for the PDFs and `render.json` (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Render only letters of this kind.
    #[arg(long, value_name = "KIND")]
    only: Option<LetterKind>,
    #[command(flatten)]
    assets: AssetArgs,
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
        Command::Render(args) => render(&loaded.config, args),
        Command::Run(args) => run_command(&loaded, args),
        Command::History(args) => history(args),
        Command::Mark(args) => mark(args),
    }
}

/// Templates, fonts and thread count, loaded once per command.
struct Assets {
    composer: Composer,
    renderer: Renderer,
    jobs: usize,
}

impl Assets {
    fn load(config: &Config, args: AssetArgs) -> Result<Assets> {
        let templates = project_dir(args.templates, "templates");
        let fonts = project_dir(args.fonts, "fonts");
        Ok(Assets {
            composer: Composer::load(&templates, config)?,
            renderer: Renderer::new(&fonts, &templates.join("typst"))?,
            jobs: args
                .jobs
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)),
        })
    }

    fn producer<'a>(&'a self, config: &Config, keep_replaced: bool) -> Producer<'a> {
        Producer {
            composer: &self.composer,
            renderer: &self.renderer,
            author: config.agency.name.clone(),
            jobs: self.jobs,
            keep_replaced,
        }
    }
}

fn progress_bar(len: u64) -> ProgressBar {
    ProgressBar::new(len).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} letters {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    )
}

fn run_command(loaded: &LoadedConfig, args: RunArgs) -> Result<ExitCode> {
    let config = &loaded.config;
    let assets = Assets::load(config, args.assets)?;
    let calendar = config.holiday_calendar();
    let today = chrono::Local::now().date_naive();
    let as_of = args.as_of.unwrap_or(today);
    let mail_date = args
        .mail_date
        .unwrap_or_else(|| calendar.next_business_day_on_or_after(as_of));
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
    let bar = progress_bar(0);
    let report = runner::run(
        &mut ledger,
        loaded,
        &assets.producer(config, true),
        request,
        args.resume,
        today,
        args.allow_past_mail_date,
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
        eprintln!("error: letter `{}`: {}", failed.key, failed.message);
    }
    let already = report
        .plan
        .suppressed
        .iter()
        .filter(|s| s.reason == SuppressReason::AlreadySent)
        .count();
    eprintln!(
        "run {}: {} letters planned, {} rendered, {} failed, {} new referrals; {} liabilities already covered; ledger `{}`",
        report.run.id,
        report.planned,
        report.written.len(),
        report.failed.len(),
        report.new_referrals,
        already,
        ledger_path.display()
    );
    Ok(
        if report.plan.errors.is_empty() && report.failed.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        },
    )
}

fn history(args: HistoryArgs) -> Result<ExitCode> {
    if !args.ledger.is_file() {
        anyhow::bail!(
            "no ledger at `{}`\n\nhint: pass --ledger with the `missive.db` of your output directory",
            args.ledger.display()
        );
    }
    let ledger = SqliteLedger::open(&args.ledger)?;
    let letters = match (&args.key, &args.account_id) {
        (Some(key), _) => ledger
            .letter(&LetterKey::from_text(key))?
            .into_iter()
            .collect::<Vec<_>>(),
        (None, Some(account)) => ledger.letters_of_account(account)?,
        (None, None) => Vec::new(),
    };
    let referrals = match &args.account_id {
        Some(account) => ledger.referrals_of_account(account)?,
        None => Vec::new(),
    };
    let mut entries = Vec::with_capacity(letters.len());
    for letter in letters {
        let events = ledger.events_of(&letter.key)?;
        entries.push((letter, events));
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match args.format {
        Format::Json => {
            let letters: Vec<serde_json::Value> = entries
                .iter()
                .map(|(letter, events)| {
                    let mut value = serde_json::to_value(letter).unwrap_or_default();
                    if let Some(map) = value.as_object_mut() {
                        map.insert(
                            "events".into(),
                            serde_json::to_value(events).unwrap_or_default(),
                        );
                    }
                    value
                })
                .collect();
            let doc = serde_json::json!({
                "account_id": args.account_id,
                "letters": letters,
                "referrals": referrals,
            });
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
        Format::Table => report::write_history(&mut out, &entries, &referrals)?,
    }
    out.flush()?;
    Ok(if entries.is_empty() && referrals.is_empty() {
        eprintln!("no letters found in `{}`", args.ledger.display());
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn mark(args: MarkArgs) -> Result<ExitCode> {
    if !args.ledger.is_file() {
        anyhow::bail!("no ledger at `{}`", args.ledger.display());
    }
    let mut ledger = SqliteLedger::open(&args.ledger)?;
    // A run in progress owns the ledger: marking a letter it is rendering would stop it.
    let _lock = ledger.lock_for_run()?;
    let key = LetterKey::from_text(&args.key);
    let state = match args.state {
        MarkState::Returned => LetterState::Returned,
        MarkState::Cancelled => LetterState::Cancelled,
    };
    if ledger.letter(&key)?.is_none() {
        anyhow::bail!("no letter `{key}` in `{}`", args.ledger.display());
    }
    let record = ledger.set_state(&key, state, None, &args.note)?;
    eprintln!("`{key}` is now {}", record.state.as_str());
    Ok(ExitCode::SUCCESS)
}

/// `name` in the working directory if it exists there, else beside the crate's sources.
fn project_dir(explicit: Option<PathBuf>, name: &str) -> PathBuf {
    explicit.unwrap_or_else(|| {
        let local = PathBuf::from(name);
        if local.is_dir() {
            local
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
        }
    })
}

fn render(config: &Config, args: RenderArgs) -> Result<ExitCode> {
    let assets = Assets::load(config, args.assets)?;
    let calendar = config.holiday_calendar();
    let ctx = context(config, &calendar, &args.batch);
    let records = load::records(&args.batch.accounts)?;
    let mut accounts = HashMap::new();
    let plan = plan_batch(records, &PriorNotices::new(), &ctx, |planned| {
        if !planned.decision.letters.is_empty() {
            accounts.insert(planned.account.account_id.clone(), planned.account.clone());
        }
    });
    for err in &plan.errors {
        eprintln!("error: {err}");
    }
    let letters: Vec<DueLetter> = plan
        .letters
        .into_iter()
        .filter(|l| args.only.is_none_or(|kind| l.kind == kind))
        .collect();
    let producer = assets.producer(config, false);
    let bar = progress_bar(letters.len() as u64);
    let summary = producer.produce(
        &letters,
        &accounts,
        &args.out,
        "render.json",
        |written, failed| {
            bar.inc((written.len() + failed.len()) as u64);
            Ok::<(), ProduceError>(())
        },
    )?;
    bar.finish_and_clear();
    for failed in &summary.failed {
        eprintln!("error: letter `{}`: {}", failed.key, failed.message);
    }
    eprintln!(
        "wrote {} letters to `{}` ({} failed)",
        summary.letters.len(),
        args.out.display(),
        summary.failed.len()
    );
    Ok(if plan.errors.is_empty() && summary.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The decision context for a batch: `--as-of` (default today) and `--mail-date`
/// (default the first business day on or after the as-of date).
fn context<'a>(
    config: &'a Config,
    calendar: &'a HolidayCalendar,
    batch: &BatchArgs,
) -> DecideContext<'a> {
    let as_of = batch
        .as_of
        .unwrap_or_else(|| chrono::Local::now().date_naive());
    let mail_date = batch
        .mail_date
        .unwrap_or_else(|| calendar.next_business_day_on_or_after(as_of));
    DecideContext {
        as_of,
        mail_date,
        policy: &config.policy,
        calendar,
    }
}

fn plan(config: &Config, args: PlanArgs) -> Result<ExitCode> {
    let calendar = config.holiday_calendar();
    let ctx = context(config, &calendar, &args.batch);
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
