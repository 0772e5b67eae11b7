//! Rendered print letters that wait for a batch: which of them may be batched (exactly as
//! rendered), and batching those of earlier runs, so that no run leaves mail waiting.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use super::batch::{BatchReport, FromPlan};
use super::record::{PlannedAccounts, PrintLetter, fall_back_to_print, plan_accounts};
use super::records::plan_sha256;
use super::{Run, RunError};
use crate::account::Notice;
use crate::ledger::{Ledger, LetterState, notice_of};
use crate::letter::LetterKey;
use crate::load;

/// The print letters of `print` that run `run_id` rendered exactly as they stand: same
/// plan data and same template version as recorded. A batch prints a letter's own file,
/// but a file without marks is composed again for its print copy, so a letter whose data
/// or template changed since its PDF was made is never batched (its manifest row would not
/// describe the PDF on record); it waits, named by the run.
pub(super) fn as_rendered<'p>(
    ledger: &dyn Ledger,
    hashes: &BTreeMap<String, String>,
    run_id: i64,
    print: &'p [PrintLetter],
) -> Result<Vec<&'p PrintLetter>, RunError> {
    let mut same = Vec::with_capacity(print.len());
    // Read a slice of letters at a time: one call each, never every record at once.
    for slice in print.chunks(super::work::OTHERS_READ) {
        let keys: Vec<LetterKey> = slice.iter().map(|l| l.entry.key.clone()).collect();
        let records = ledger.letters(&keys)?;
        for letter in slice {
            let Some(record) = records.get(&letter.entry.key) else {
                continue;
            };
            if record.run_id == run_id
                && record.data_sha256 == letter.data_sha256
                && record.template.as_deref() == Some(letter.template.as_str())
                && record.template_sha256.as_ref() == hashes.get(&letter.template)
            {
                same.push(letter);
            }
        }
    }
    Ok(same)
}

/// A run batches every rendered print letter that is in no batch, whatever run rendered
/// it (a run killed between rendering and batching, a `--no-batches` run): for each such
/// earlier run, its letters are planned again from that run's own accounts, dates and
/// output directory (as `run --resume` would) and batched under that run's name. What
/// cannot be batched (accounts unreadable, data or template changed since, a batch that
/// fails) stays in `report.left_over`, with the reasons known in `report.problems`; the
/// command reports both as errors. The current run's own work stands either way.
pub(super) fn batch_earlier_runs(
    run: &Run<'_, '_>,
    ledger: &mut dyn Ledger,
    current: i64,
    report: &mut BatchReport,
) -> Result<(), RunError> {
    let earlier: Vec<i64> = report
        .left_over
        .iter()
        .map(|(run, _)| *run)
        .filter(|run| *run != current)
        .collect();
    for run_id in earlier {
        let Some(old) = ledger.run(run_id)? else {
            continue;
        };
        let records = match load::records(Path::new(&old.accounts)) {
            Ok(records) => records,
            Err(err) => {
                report
                    .problems
                    .push(format!("run {run_id}: its accounts cannot be read: {err}"));
                continue;
            }
        };
        let mut prior = ledger.prior_notices()?;
        forget_own_unbatched(ledger, run_id, &mut prior)?;
        let holdings = ledger.top_holdings()?;
        let PlannedAccounts { mut plan, accounts } = plan_accounts(
            run.config,
            records,
            &prior,
            &holdings,
            old.as_of,
            old.mail_date,
        );
        fall_back_to_print(ledger, &mut plan)?;
        let mut print = Vec::new();
        for letter in &plan.letters {
            if let Some(account) = accounts.get(&letter.account_id)
                && let Some(entry) = PrintLetter::of(letter, account, plan_sha256(letter)?, false)
            {
                print.push(entry);
            }
        }
        let hashes = run.producer.composer.template_hashes();
        let batchable = as_rendered(&*ledger, hashes, run_id, &print)?;
        if batchable.is_empty() {
            continue;
        }
        let source = FromPlan {
            letters: plan.letters.iter().map(|l| (&l.key, l)).collect(),
            accounts: &accounts,
        };
        let out_dir = Path::new(&old.out_dir);
        match run.make_batches(ledger, &old, &batchable, &source, out_dir) {
            Ok(done) => report.written.extend(done.written),
            Err(err) => report.problems.push(format!(
                "run {run_id}: its letters could not be batched: {}",
                super::error_chain(&err)
            )),
        }
    }
    let mut left_over: HashMap<i64, usize> = HashMap::new();
    for (_, run) in ledger.unbatched_letters()? {
        *left_over.entry(run).or_default() += 1;
    }
    report.left_over = left_over.into_iter().collect();
    report.left_over.sort();
    Ok(())
}

/// A resumed run whose letters were rendered but not batched (it died in between) plans
/// them again from the same data, so that they can be batched: their notices are left
/// out of what decide sees as already sent. The ledger still never renders them twice
/// (`record_planned` skips a letter that counts as sent).
pub(super) fn forget_own_unbatched(
    ledger: &dyn Ledger,
    run_id: i64,
    prior: &mut HashMap<String, Vec<Notice>>,
) -> Result<(), RunError> {
    let open: HashSet<LetterKey> = ledger
        .unbatched_letters()?
        .into_iter()
        .filter(|(_, run)| *run == run_id)
        .map(|(key, _)| key)
        .collect();
    if open.is_empty() {
        return Ok(());
    }
    for letter in ledger.letters_of_run(run_id, Some(LetterState::Rendered))? {
        if !open.contains(&letter.key) {
            continue;
        }
        if let (Some(notice), Some(list)) = (notice_of(&letter)?, prior.get_mut(&letter.account_id))
            && let Some(at) = list.iter().position(|n| *n == notice)
        {
            list.remove(at);
        }
    }
    Ok(())
}
