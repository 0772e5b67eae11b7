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
use missive::config::Config;
use missive::decide::{DecideContext, DueLetter};
use missive::letter::LetterKind;
use missive::plan::{PriorNotices, plan_batch};
use missive::produce::Producer;
use missive::render::Renderer;
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
    /// Render threads (default: all cores).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Templates directory (default: ./templates, else the one missive was built with).
    #[arg(long, value_name = "DIR")]
    templates: Option<PathBuf>,
    /// Fonts directory (default: ./fonts, else the one missive was built with).
    #[arg(long, value_name = "DIR")]
    fonts: Option<PathBuf>,
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
    }
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
    let templates = project_dir(args.templates, "templates");
    let fonts = project_dir(args.fonts, "fonts");
    let composer = Composer::load(&templates, config)?;
    let renderer = Renderer::new(&fonts, &templates.join("typst"))?;
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
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let producer = Producer {
        composer: &composer,
        renderer: &renderer,
        author: config.agency.name.clone(),
        jobs,
    };
    let bar = ProgressBar::new(letters.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} letters {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let summary = producer.produce(&letters, &accounts, &args.out, |n| bar.inc(n as u64))?;
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
