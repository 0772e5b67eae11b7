//! `missive render`: plan, then a PDF per planned letter and `render.json`; no ledger.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use missive::config::Config;
use missive::decide::DueLetter;
use missive::letter::LetterKind;
use missive::load;
use missive::plan::{PriorNotices, plan_batch};
use missive::produce::ProduceError;

use super::{AssetArgs, Assets, BatchArgs, context, progress_bar};

/// Options of `missive render`.
#[derive(Args)]
pub(crate) struct RenderArgs {
    #[command(flatten)]
    pub(crate) batch: BatchArgs,
    /// Directory for the PDFs and `render.json` (created if missing).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Render only letters of this kind.
    #[arg(long, value_name = "KIND")]
    pub(crate) only: Option<LetterKind>,
    /// Show no progress bar (one shows only when standard error is a terminal).
    #[arg(long)]
    pub(crate) quiet: bool,
    #[command(flatten)]
    pub(crate) assets: AssetArgs,
}

/// Plans, then writes a PDF per planned letter and `render.json`; no ledger.
pub(crate) fn render(config: &Config, args: RenderArgs) -> Result<ExitCode> {
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
    let bar = progress_bar("rendering", letters.len() as u64, args.quiet);
    let summary = producer.produce(
        &letters,
        &accounts,
        &args.out,
        Some("render.json"),
        |written, failed| {
            bar.inc((written.len() + failed.len()) as u64);
            Ok::<(), ProduceError>(())
        },
    )?;
    bar.finish_and_clear();
    for failed in &summary.failed {
        eprintln!(
            "error: letter `{}`: {}",
            failed.key,
            missive::report::escape(&failed.message)
        );
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
