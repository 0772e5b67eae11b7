//! `missive plan`: decide and print; writes nothing.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use missive::config::Config;
use missive::plan::{PriorNotices, plan_batch};
use missive::{load, report};

use super::{BatchArgs, Format, context};

/// Options of `missive plan`.
#[derive(Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    pub(crate) batch: BatchArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
}

/// Plans the batch and prints it; exit 1 when some accounts or letters had errors.
pub(crate) fn plan(config: &Config, args: PlanArgs) -> Result<ExitCode> {
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
