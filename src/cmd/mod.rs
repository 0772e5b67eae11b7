//! What the commands share: account and asset options, loading templates and fonts,
//! the progress bar, and the decision context.

pub(crate) mod approve;
pub(crate) mod check;
pub(crate) mod history;
pub(crate) mod plan;
pub(crate) mod preview;
pub(crate) mod release;
pub(crate) mod render;
pub(crate) mod run;
mod run_args;
mod run_report;
pub(crate) mod send;
pub(crate) mod serve;

use std::path::{Path, PathBuf};

use anyhow::Result;
use chrono::NaiveDate;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use missive::calendar::HolidayCalendar;
use missive::compose::Composer;
use missive::config::Config;
use missive::decide::DecideContext;
use missive::load;
use missive::produce::Producer;
use missive::render::Renderer;
use missive::runner::{Progress, Step};

/// Options every command that reads accounts shares.
#[derive(Args)]
pub(crate) struct BatchArgs {
    /// A directory of `*.json` accounts (recursive), a `.jsonl` file, or one `.json` file.
    #[arg(long, value_name = "PATH")]
    pub(crate) accounts: PathBuf,
    /// The date the data is taken to be true (YYYY-MM-DD; default: today).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub(crate) as_of: Option<NaiveDate>,
    /// The date letters are mailed (YYYY-MM-DD; default: first business day on or after
    /// the as-of date).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub(crate) mail_date: Option<NaiveDate>,
}

/// Where templates and fonts come from.
#[derive(Args)]
pub(crate) struct AssetArgs {
    /// Templates directory (default: ./templates, else the one missive was built with).
    #[arg(long, value_name = "DIR")]
    pub(crate) templates: Option<PathBuf>,
    /// Fonts directory (default: ./fonts, else the one missive was built with).
    #[arg(long, value_name = "DIR")]
    pub(crate) fonts: Option<PathBuf>,
    /// Render threads (default: all cores).
    #[arg(long, value_name = "N")]
    pub(crate) jobs: Option<usize>,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    /// Aligned columns for people.
    Table,
    /// The JSON of interface.md, for machines.
    Json,
}

pub(crate) fn parse_date(text: &str) -> Result<NaiveDate, String> {
    load::parse_iso_date(text).ok_or_else(|| format!("`{text}` is not a date: write YYYY-MM-DD"))
}

/// Templates, fonts and thread count, loaded once per command.
pub(crate) struct Assets {
    pub(crate) composer: Composer,
    pub(crate) renderer: Renderer,
    pub(crate) jobs: usize,
}

impl Assets {
    pub(crate) fn load(config: &Config, args: AssetArgs) -> Result<Assets> {
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

    /// A producer for `run` (keeps replaced mailed copies, large chunks for fewer ledger
    /// commits) or for `render` (small chunks, less memory).
    pub(crate) fn producer<'a>(&'a self, config: &Config, for_run: bool) -> Producer<'a> {
        Producer {
            composer: &self.composer,
            renderer: &self.renderer,
            author: config.agency.name.clone(),
            jobs: self.jobs,
            keep_replaced: for_run,
            chunk: if for_run {
                missive::produce::RUN_CHUNK
            } else {
                missive::produce::RENDER_CHUNK
            },
        }
    }
}

/// The progress of a run or send as the user sees it: one bar per step that takes time
/// (planning, rendering, batching, sending), named by the step; the other steps show none.
/// Bars are drawn on standard error only when it is a terminal, and never when `quiet`.
#[derive(Default)]
pub(crate) struct Bars {
    quiet: bool,
    bar: std::cell::RefCell<Option<ProgressBar>>,
}

impl Bars {
    /// Bars, or none at all with `quiet` (`--quiet`).
    pub(crate) fn new(quiet: bool) -> Self {
        Self {
            quiet,
            bar: std::cell::RefCell::new(None),
        }
    }
}

impl Progress for Bars {
    fn start(&self, step: Step, total: usize) {
        let name = match step {
            Step::Plan => "planning",
            Step::Produce => "rendering",
            Step::Batch => "batching",
            Step::Send => "sending",
            Step::Record | Step::Refer | Step::Finish | Step::Release => return,
        };
        *self.bar.borrow_mut() = Some(progress_bar(name, total as u64, self.quiet));
    }
    fn advance(&self, n: usize) {
        if let Some(bar) = self.bar.borrow().as_ref() {
            bar.inc(n as u64);
        }
    }
    fn finish(&self) {
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.finish_and_clear();
        }
    }
}

/// A bar named `step` over `len` units on standard error (a spinner when `len` is 0: the
/// work is not counted ahead); hidden when `quiet` or when standard error is not a
/// terminal.
pub(crate) fn progress_bar(step: &str, len: u64, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let (bar, template) = if len == 0 {
        (
            ProgressBar::new_spinner(),
            "{prefix:>9} {spinner} {pos} {elapsed}",
        )
    } else {
        (
            ProgressBar::new(len),
            "{prefix:>9} {bar:40} {pos}/{len} {elapsed}",
        )
    };
    let bar = bar.with_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(step.to_owned());
    if len == 0 {
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
    }
    bar
}

/// `name` in the working directory if it exists there, else beside the crate's sources.
pub(crate) fn project_dir(explicit: Option<PathBuf>, name: &str) -> PathBuf {
    explicit.unwrap_or_else(|| {
        let local = PathBuf::from(name);
        if local.is_dir() {
            local
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
        }
    })
}

/// The decision context for a batch: `--as-of` (default today) and `--mail-date`
/// (default the first business day on or after the as-of date).
pub(crate) fn context<'a>(
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

/// A `--language CODE` argument: a language missive has letters in.
pub(crate) fn language_arg(code: &str) -> anyhow::Result<missive::language::Language> {
    missive::language::Language::from_tag(code).ok_or_else(|| {
        anyhow::anyhow!(
            "--language `{code}`: missive has letters in {} only",
            missive::language::Language::ALL
                .map(|l| l.as_str())
                .join(", ")
        )
    })
}

/// The ledger a command uses and how to name it: `--ledger` (a SQLite file or a
/// `postgres://user@host:port/db` URL) when given, else `[ledger] url`, else `default` (the
/// SQLite file beside the output). The PostgreSQL password comes from the environment
/// variable `[ledger] password_env` names. With `create_dir`, a SQLite file's directory is
/// created when missing (commands that may create a new ledger).
pub(crate) fn ledger_location(
    arg: Option<&Path>,
    config: &Config,
    default: &Path,
    create_dir: bool,
) -> Result<(missive::ledger::Location, PathBuf)> {
    let chosen = match (arg, &config.ledger.url) {
        (Some(arg), _) => arg.to_owned(),
        (None, Some(url)) => PathBuf::from(url),
        (None, None) => default.to_owned(),
    };
    let location = match chosen.to_str() {
        Some(text) => {
            missive::ledger::Location::parse(text, config.ledger.password_env.as_deref())?
        }
        None => missive::ledger::Location::File(chosen.clone()),
    };
    if let missive::ledger::Location::File(path) = &location
        && create_dir
        && let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.exists()
    {
        // A new SQLite ledger is created where asked, its directory too.
        std::fs::create_dir_all(parent)
            .map_err(|e| anyhow::anyhow!("failed to create `{}`: {e}", parent.display()))?;
    }
    Ok((location, chosen))
}
