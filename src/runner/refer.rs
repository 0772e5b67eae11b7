//! The run's **refer** step (its Treasury actions recorded in one transaction, then the
//! Treasury files written from the ledger's records) and its **finish** step
//! (`run-<id>.json` written from the ledger, the run recorded `finished`).

use std::path::Path;

use super::RunError;
use super::record::TreasuryPlan;
use crate::ledger::{Ledger, LetterState, RunInfo, RunStatus};
use crate::produce::{ProduceError, write_atomically};
use crate::treasury_file;

/// **refer**: records the plan's referrals and updates in one transaction, then writes the
/// Treasury files from the ledger: a crash in between loses nothing (the next run writes
/// the missing file). Returns the run's new referrals and its updates, as recorded.
pub(super) fn refer(
    ledger: &mut dyn Ledger,
    run_id: i64,
    treasury: &TreasuryPlan,
    out_dir: &Path,
) -> Result<(usize, usize), RunError> {
    let (actions, deadlines) =
        super::records::treasury_actions(&treasury.referrals, &treasury.updates, &treasury.debtors);
    ledger.record_treasury(run_id, &actions, &deadlines)?;
    write_treasury_files(ledger, run_id, out_dir)?;
    let sent = ledger.treasury_actions(Some(run_id), None)?;
    let new_referrals = sent.iter().filter(|r| r.action.action == "add").count();
    Ok((new_referrals, sent.len() - new_referrals))
}

/// Writes the Treasury file of `run_id` from the ledger, and of every earlier run whose
/// file is missing (a run killed between recording its actions and writing them). Returns
/// the runs whose files were written.
fn write_treasury_files(
    ledger: &dyn Ledger,
    run_id: i64,
    out_dir: &Path,
) -> Result<Vec<i64>, RunError> {
    let mut written = Vec::new();
    for run in ledger.treasury_runs()? {
        let (csv_path, control_path) = treasury_file::paths(out_dir, run);
        if run != run_id && csv_path.is_file() && control_path.is_file() {
            continue;
        }
        let records = ledger.treasury_actions(Some(run), None)?;
        if records.is_empty() {
            continue;
        }
        let dir = out_dir.join("treasury");
        std::fs::create_dir_all(&dir)
            .map_err(|source| ProduceError::Write { path: dir, source })?;
        let (csv, control) = treasury_file::files(run, &records)?;
        write_atomically(&csv_path, &csv)?;
        write_atomically(&control_path, &control)?;
        written.push(run);
    }
    Ok(written)
}

/// **finish**: writes `run-<id>.json` and records the run `finished`; returns it as
/// recorded.
pub(super) fn finish(
    ledger: &mut dyn Ledger,
    run_id: i64,
    out_dir: &Path,
) -> Result<RunInfo, RunError> {
    write_run_summary(ledger, run_id, out_dir)?;
    ledger.finish_run(run_id, RunStatus::Finished)?;
    ledger.run(run_id)?.ok_or(RunError::UnknownRun(run_id))
}

/// Writes `out_dir/run-<id>.json` from the ledger: every letter this run rendered (across
/// resumes of it) and every letter that failed in it, with the reason its last event
/// records. Each run has its own file, so an empty rerun never hides what an earlier run
/// produced.
fn write_run_summary(ledger: &dyn Ledger, run_id: i64, out_dir: &Path) -> Result<(), RunError> {
    let letters: Vec<serde_json::Value> = ledger
        .letters_of_run(run_id, Some(LetterState::Rendered))?
        .into_iter()
        .map(|l| {
            serde_json::json!({
                "key": l.key, "file": l.file, "pages": l.pages, "sha256": l.file_sha256,
                "template": l.template, "template_sha256": l.template_sha256,
            })
        })
        .collect();
    let mut failed = Vec::new();
    for letter in ledger.letters_of_run(run_id, Some(LetterState::Failed))? {
        let events = ledger.events_of(&letter.key)?;
        // A failed letter's last event is the one that failed it; a letter always has one.
        let reason = events.last().map(|e| e.detail.clone()).unwrap_or_default();
        failed.push(serde_json::json!({ "key": letter.key, "message": reason }));
    }
    let doc = serde_json::json!({ "run_id": run_id, "letters": letters, "failed": failed });
    let mut bytes =
        serde_json::to_vec_pretty(&doc).map_err(|source| RunError::Summary { run_id, source })?;
    bytes.push(b'\n');
    write_atomically(&out_dir.join(format!("run-{run_id}.json")), &bytes)?;
    Ok(())
}
