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
use missive::plan::{PriorHoldings, PriorNotices, plan_chunks, sort_letters};
use missive::produce::SummaryStream;

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
///
/// Planning and rendering are streamed: each chunk of accounts is decided, its letters
/// rendered and written, and only their summary entries kept, so memory does not grow
/// with the plan or the accounts. The output (files, `render.json`, the messages) is what
/// planning the whole batch first would give: the plan's errors are reported when
/// planning ends, before the letters that failed.
pub(crate) fn render(config: &Config, args: RenderArgs) -> Result<ExitCode> {
    let assets = Assets::load(config, args.assets)?;
    let calendar = config.holiday_calendar();
    let ctx = context(config, &calendar, &args.batch);
    let records = load::records(&args.batch.accounts)?;
    let producer = assets.producer(config, false);
    let mut summary = SummaryStream::create(&args.out)?;
    // A bar, not a spinner: its length grows as planning finds each chunk's letters.
    let bar = progress_bar("rendering", 1, args.quiet);
    bar.set_length(0);
    let tally = plan_chunks(
        records,
        &PriorNotices::new(),
        &PriorHoldings::new(),
        &ctx,
        missive::plan::STREAM_CHUNK,
        |chunk| {
            let mut accounts = HashMap::new();
            let mut letters: Vec<DueLetter> = Vec::new();
            for planned in chunk {
                let before = letters.len();
                letters.extend(
                    planned
                        .decision
                        .letters
                        .into_iter()
                        .filter(|l| args.only.is_none_or(|kind| l.kind == kind)),
                );
                if letters.len() > before {
                    accounts.insert(planned.account.account_id.clone(), planned.account);
                }
            }
            sort_letters(&mut letters);
            bar.inc_length(letters.len() as u64);
            producer.produce_streamed(&letters, &accounts, &args.out, &mut summary, |done| {
                bar.inc(done as u64);
            })
        },
    )?;
    let summary = summary.write(&args.out.join("render.json"), producer.chunk)?;
    bar.finish_and_clear();
    for err in &tally.errors {
        eprintln!("error: {err}");
    }
    for failed in &summary.failed {
        eprintln!(
            "error: letter `{}`: {}",
            failed.key,
            missive::report::escape(&failed.message)
        );
    }
    eprintln!(
        "wrote {} letters to `{}` ({} failed)",
        summary.letters,
        args.out.display(),
        summary.failed.len()
    );
    Ok(if tally.errors.is_empty() && summary.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
