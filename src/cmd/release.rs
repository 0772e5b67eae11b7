//! `missive release BATCH`: the operator records that a printed batch went to the mail.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use missive::config::Config;
use missive::ledger::stamp;

/// Options of `missive release`.
#[derive(Args)]
pub(crate) struct ReleaseArgs {
    /// The batch, as named in `control.json` and by its file: `7-certified-1` (a file
    /// name `7-certified-1.pdf` works too).
    #[arg(value_name = "BATCH")]
    pub(crate) batch: String,
    /// A SQLite file or `postgres://user@host:port/db` (default: `[ledger] url`, else
    /// `out/missive.db`).
    #[arg(long, value_name = "FILE|URL")]
    pub(crate) ledger: Option<PathBuf>,
    /// A note recorded with each letter's `released` event (who, which printer, …).
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub(crate) note: String,
}

/// Marks the batch and each of its letters `released`, under the run lock.
pub(crate) fn release(config: &Config, args: ReleaseArgs) -> Result<ExitCode> {
    let default = std::path::Path::new("out/missive.db");
    let (location, _) = super::ledger_location(args.ledger.as_deref(), config, default, false)?;
    let (mut ledger, _lock) = missive::ledger::open_locked(&location)?;
    let ledger = &mut *ledger;
    let name = args.batch.strip_suffix(".pdf").unwrap_or(&args.batch);
    let batch = ledger.release_batch(name, &args.note)?;
    if let Some(run) = ledger.run(batch.run_id)? {
        missive::runner::write_control(ledger, &run)?;
    }
    eprintln!(
        "batch {}: {} letters released ({} pages, {} sheets) at {}",
        batch.name,
        batch.pieces,
        batch.pages,
        batch.sheets,
        batch
            .released_at
            .as_ref()
            .map_or_else(|| "?".to_owned(), stamp::text)
    );
    Ok(ExitCode::SUCCESS)
}
