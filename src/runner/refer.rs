//! The run's **refer** step (its Treasury actions recorded in one transaction, then the
//! Treasury files written from the ledger's records) and its **finish** step
//! (`run-<id>.json` written from the ledger, the run recorded `finished`).

use std::cell::RefCell;
use std::io::Write;
use std::path::Path;

use serde::Serialize;
use serde::ser::SerializeSeq;

use super::RunError;
use super::record::TreasuryPlan;
use crate::ledger::{Ledger, LedgerError, LetterState, RunInfo, RunStatus};
use crate::letter::LetterKey;
use crate::produce::{ProduceError, write_atomically, write_atomically_with};
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
/// produced. The rendered letters are read and written [`SUMMARY_PAGE`] at a time.
fn write_run_summary(ledger: &dyn Ledger, run_id: i64, out_dir: &Path) -> Result<(), RunError> {
    let mut failed = Vec::new();
    for letter in ledger.letters_of_run(run_id, Some(LetterState::Failed))? {
        let events = ledger.events_of(&letter.key)?;
        // A failed letter's last event is the one that failed it; a letter always has one.
        let message = events.last().map(|e| e.detail.clone()).unwrap_or_default();
        failed.push(FailedEntry {
            key: letter.key,
            message,
        });
    }
    let summary = Summary {
        failed,
        letters: RenderedPages {
            ledger,
            run_id,
            error: RefCell::new(None),
        },
        run_id,
    };
    let path = out_dir.join(format!("run-{run_id}.json"));
    let written = write_atomically_with(&path, |file| {
        let mut out = std::io::BufWriter::new(file);
        serde_json::to_writer_pretty(&mut out, &summary).map_err(std::io::Error::other)?;
        out.write_all(b"\n")?;
        out.flush()
    });
    // A ledger error met while writing is the error to report, not the one it caused.
    if let Some(err) = summary.letters.error.take() {
        return Err(err.into());
    }
    written?;
    Ok(())
}

/// Letters of a run summary read from the ledger at a time.
const SUMMARY_PAGE: usize = 1024;

/// `run-<id>.json`: its keys in this order are what `serde_json` gave the same document
/// built as a `Value` (sorted), so the file is the same as before it was streamed.
#[derive(Serialize)]
struct Summary<'a> {
    failed: Vec<FailedEntry>,
    letters: RenderedPages<'a>,
    run_id: i64,
}

/// A letter of the run that failed, and why.
#[derive(Serialize)]
struct FailedEntry {
    key: LetterKey,
    message: String,
}

/// A rendered letter as the summary lists it (keys sorted, as above).
#[derive(Serialize)]
struct RenderedEntry<'a> {
    file: &'a Option<String>,
    key: &'a LetterKey,
    pages: &'a Option<u32>,
    sha256: &'a Option<String>,
    template: &'a Option<String>,
    template_sha256: &'a Option<String>,
}

/// The run's rendered letters, serialized a page at a time as read from the ledger; a
/// ledger error stops the serialization and is kept in `error`.
struct RenderedPages<'a> {
    ledger: &'a dyn Ledger,
    run_id: i64,
    error: RefCell<Option<LedgerError>>,
}

impl Serialize for RenderedPages<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        let mut after: Option<LetterKey> = None;
        loop {
            let page = self.ledger.letters_of_run_after(
                self.run_id,
                Some(LetterState::Rendered),
                after.as_ref(),
                SUMMARY_PAGE,
            );
            let page = match page {
                Ok(page) => page,
                Err(err) => {
                    let message = err.to_string();
                    *self.error.borrow_mut() = Some(err);
                    return Err(serde::ser::Error::custom(message));
                }
            };
            let Some(last) = page.last() else { break };
            after = Some(last.key.clone());
            for l in &page {
                seq.serialize_element(&RenderedEntry {
                    file: &l.file,
                    key: &l.key,
                    pages: &l.pages,
                    sha256: &l.file_sha256,
                    template: &l.template,
                    template_sha256: &l.template_sha256,
                })?;
            }
        }
        seq.end()
    }
}
