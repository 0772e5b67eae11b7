//! `missive send`: send the queued email letters, exactly once (also `run --send`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use missive::config::Config;
use missive::dispatch::{self, SendOptions, SendReport, SmtpMailer};
use missive::letter::LetterKey;
use missive::runner::{self, SendSummary};

use super::Bars;

/// Options of `missive send`.
#[derive(Args)]
pub(crate) struct SendArgs {
    /// A SQLite file or `postgres://user@host:port/db` (default: `[ledger] url`, else
    /// `out/missive.db`).
    #[arg(long, value_name = "FILE|URL")]
    pub(crate) ledger: Option<PathBuf>,
    /// Only the letters of this run.
    #[arg(long = "run", value_name = "RUN_ID")]
    pub(crate) run_id: Option<i64>,
    /// Also resend emails whose earlier outcome is unknown (the server may have them
    /// already; the Message-ID is the same, so it can drop a duplicate).
    #[arg(long)]
    pub(crate) resend_uncertain: bool,
    /// A letter the server refuses for good (5xx) is planned as first-class mail by the
    /// next run.
    #[arg(long)]
    pub(crate) fallback_print: bool,
    /// Dry run: write each email as DIR/<key>.eml instead of sending; the ledger is not
    /// changed.
    #[arg(long, value_name = "DIR")]
    pub(crate) to_dir: Option<PathBuf>,
    /// Show no progress bar (one shows only when standard error is a terminal).
    #[arg(long)]
    pub(crate) quiet: bool,
}

/// Sends (or writes) the queued emails of the ledger: the library's send step, printed.
pub(crate) fn send(config: &Config, args: SendArgs) -> Result<ExitCode> {
    let default = std::path::Path::new("out/missive.db");
    let (location, name) = super::ledger_location(args.ledger.as_deref(), config, default, false)?;
    if let missive::ledger::Location::File(path) = &location
        && !path.is_file()
    {
        anyhow::bail!(
            "no ledger at `{}`\n\nhint: pass --ledger with the `missive.db` of your output directory",
            name.display()
        );
    }
    let (mut ledger, _lock) = missive::ledger::open_locked(&location)?;
    let ledger = &mut *ledger;
    let options = SendOptions {
        run_id: args.run_id,
        resend_uncertain: args.resend_uncertain,
        fallback_print: args.fallback_print,
    };
    if let Some(dir) = &args.to_dir {
        let (written, skipped) = runner::write_eml_dir(ledger, config, options, dir)?;
        for (key, reason) in &skipped {
            eprintln!("error: email for `{key}`: {reason}");
        }
        eprintln!(
            "dry run: {} emails written to `{}`, {} could not be built; nothing sent",
            written.len(),
            dir.display(),
            skipped.len()
        );
        return Ok(if skipped.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let recovered = runner::recover_sends(ledger)?;
    print_recovered(&recovered);
    let mailer = SmtpMailer::from_env(&config.email, &dispatch::agency_host(config))?;
    let summary = runner::send(ledger, config, &mailer, options, &Bars::new(args.quiet))?;
    print_summary(&summary, &recovered);
    Ok(if summary.all_sent() && recovered.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Warns of each email an earlier send left `sending`, now uncertain.
pub(crate) fn print_recovered(recovered: &[LetterKey]) {
    for key in recovered {
        eprintln!(
            "warning: `{key}` was being sent when an earlier send stopped: now uncertain, not resent\n\nhint: check with the mail server, then `missive send --resend-uncertain` or `missive mark`"
        );
    }
}

/// Prints what a send did and every email still uncertain in the ledger.
pub(crate) fn print_summary(summary: &SendSummary, recovered: &[LetterKey]) {
    let report = &summary.report;
    print_report(report);
    // Uncertain emails wait for a person however old they are: every send says so.
    let uncertain = &summary.uncertain;
    if !uncertain.is_empty() {
        let earlier: Vec<_> = uncertain
            .iter()
            .filter(|k| {
                !report.uncertain.iter().any(|(key, _)| key == *k) && !recovered.contains(k)
            })
            .collect();
        for key in &earlier {
            eprintln!("error: `{key}`: outcome unknown since an earlier send, not resent");
        }
        eprintln!(
            "error: {} emails uncertain in the ledger ({} from earlier sends): the server may or may not have them\n\nhint: check the mail server's log for each, then `missive mark KEY sent --note WHO` or `missive mark KEY failed --note WHO`, or resend them all with `missive send --resend-uncertain`",
            uncertain.len(),
            earlier.len()
        );
    }
}

fn print_report(report: &SendReport) {
    // Server replies and addresses are not ours: escaped like any input.
    use missive::report::escape;
    for (key, reason) in &report.failed {
        eprintln!(
            "error: `{key}`: refused by the mail server: {}",
            escape(reason)
        );
    }
    for (key, reason) in &report.uncertain {
        eprintln!(
            "error: `{key}`: outcome unknown, not resent: {}",
            escape(reason)
        );
    }
    for (key, reason) in &report.not_sent {
        eprintln!(
            "error: `{key}`: not delivered, still queued: {}",
            escape(reason)
        );
    }
    for (key, reason) in &report.skipped {
        eprintln!(
            "error: `{key}`: not attempted, still queued: {}",
            escape(reason)
        );
    }
    eprintln!(
        "send: {} sent, {} refused, {} uncertain, {} still queued",
        report.sent.len(),
        report.failed.len(),
        report.uncertain.len(),
        report.not_sent.len() + report.skipped.len()
    );
}
