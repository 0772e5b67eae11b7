//! Printing what `missive run` did (stderr), and its exit status.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use missive::report::escape;
use missive::review::short_hash;
use missive::runner::RunReport;

/// Prints the run's report in the order its steps ran, then the error a step after the
/// run stopped on (exit 2), else exit 0 for a clean run and 1 otherwise.
pub(crate) fn print(mut report: RunReport, ledger_path: &Path) -> Result<ExitCode> {
    let ledger = ledger_path.display();
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
            "\nhint: look at them with `missive preview KIND [--language es]` or `missive serve --ledger {ledger}`, then approve each with:"
        );
        for held in &report.held {
            let lang = missive::compose::template_language(&held.template);
            let language = if lang == missive::language::Language::En {
                String::new()
            } else {
                format!(" --language {lang}")
            };
            eprintln!(
                "  missive approve {}{language} --reviewer NAME --ledger {ledger}",
                held.kind,
            );
        }
    }
    let already = report.plan.already_sent;
    eprintln!(
        "run {}: {} letters planned, {} rendered, {} failed, {} new referrals, {} Treasury updates; {} liabilities already covered; ledger `{ledger}`",
        report.run.id,
        report.planned,
        report.rendered,
        report.failed.len(),
        report.new_referrals,
        report.treasury_updates,
        already,
    );
    if let Some(batches) = &report.batches {
        for batch in &batches.written {
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
    super::send::print_recovered(&report.recovered_sends);
    if let Some(send) = &report.send {
        super::send::print_summary(send, &report.recovered_sends);
    }
    if let Some(err) = report.stopped.take() {
        return Err(err.into());
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
