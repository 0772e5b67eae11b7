//! The Treasury file of a run: `treasury/<run>.csv` (one row per action sent to the
//! Treasury Offset Program) and `treasury/<run>-control.json` (counts and dollars per
//! action), both written from the ledger, atomically, after the actions are committed.
//! A run with no actions gets no file. See `docs/treasury.md` for the record layout.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::ledger::{LedgerError, TreasuryAction, TreasuryLog, TreasuryRecord, stamp};
use crate::letter::LetterKey;
use crate::money::Money;
use crate::plan::Plan;
use crate::produce::{ProduceError, write_atomically};
use crate::runner::records;

/// The columns of the Treasury file, in order.
pub const HEADER: [&str; 11] = [
    "run_id",
    "action",
    "account_id",
    "notice_key",
    "liability_ids",
    "amount_before",
    "amount_after",
    "reason",
    "debtor_name",
    "tin_last4",
    "recorded_at",
];

/// Writing the Treasury file failed.
#[derive(Debug, thiserror::Error)]
pub enum TreasuryFileError {
    /// Reading the actions from the ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Writing a file failed.
    #[error(transparent)]
    Write(#[from] ProduceError),
    /// The CSV writer failed (in memory: only on a bug).
    #[error("failed to format the Treasury file of run {run_id}")]
    Csv {
        /// The run.
        run_id: i64,
        /// Why.
        #[source]
        source: csv::Error,
    },
}

/// The plan's referrals and Treasury updates as the actions a run records; `debtors` gives
/// each account's name and TIN's last four. Also returns each added referral's deadline.
pub fn actions_of(
    plan: &Plan,
    debtors: &HashMap<String, (String, String)>,
) -> (Vec<TreasuryAction>, HashMap<LetterKey, NaiveDate>) {
    let debtor = |account: &str| {
        debtors
            .get(account)
            .map_or(("", ""), |(name, tin)| (name.as_str(), tin.as_str()))
    };
    let mut actions = Vec::new();
    let mut deadlines = HashMap::new();
    for r in &plan.referrals {
        let (name, tin) = debtor(&r.account_id);
        actions.push(records::treasury_add(r, name, tin));
        deadlines.insert(r.notice_key.clone(), r.deadline_passed);
    }
    for u in &plan.treasury_updates {
        let (name, tin) = debtor(&u.account_id);
        actions.push(records::treasury_update(u, name, tin));
    }
    (actions, deadlines)
}

/// `out_dir/treasury/<run>.csv` and its control file.
pub fn paths(out_dir: &Path, run_id: i64) -> (PathBuf, PathBuf) {
    let dir = out_dir.join("treasury");
    (
        dir.join(format!("{run_id}.csv")),
        dir.join(format!("{run_id}-control.json")),
    )
}

/// Writes the Treasury file of `run_id` from the ledger, and of every earlier run whose
/// file is missing (a run killed between recording its actions and writing them). Returns
/// the runs whose files were written.
pub fn write_files(
    ledger: &dyn TreasuryLog,
    run_id: i64,
    out_dir: &Path,
) -> Result<Vec<i64>, TreasuryFileError> {
    let mut written = Vec::new();
    for run in ledger.treasury_runs()? {
        let (csv_path, control_path) = paths(out_dir, run);
        if run != run_id && csv_path.is_file() && control_path.is_file() {
            continue;
        }
        let records = ledger.treasury_actions(Some(run), None)?;
        if records.is_empty() {
            continue;
        }
        std::fs::create_dir_all(out_dir.join("treasury")).map_err(|source| {
            ProduceError::Write {
                path: out_dir.join("treasury"),
                source,
            }
        })?;
        let csv = csv_bytes(run, &records)?;
        write_atomically(&csv_path, &csv)?;
        let mut control =
            serde_json::to_vec_pretty(&control(run, &records, &csv)).unwrap_or_default();
        control.push(b'\n');
        write_atomically(&control_path, &control)?;
        written.push(run);
    }
    Ok(written)
}

/// The CSV text: a header, then one row per action in the order recorded.
fn csv_bytes(run_id: i64, records: &[TreasuryRecord]) -> Result<Vec<u8>, TreasuryFileError> {
    let fail = |source| TreasuryFileError::Csv { run_id, source };
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(HEADER).map_err(fail)?;
    for r in records {
        let a = &r.action;
        writer
            .write_record([
                r.run_id.to_string().as_str(),
                &a.action,
                &a.account_id,
                a.notice_key.as_str(),
                &a.liability_ids.join("+"),
                &a.amount_before.plain(),
                &a.amount_after.plain(),
                &a.reason,
                &a.debtor_name,
                &a.tin_last4,
                &stamp::text(&r.at),
            ])
            .map_err(fail)?;
    }
    writer
        .into_inner()
        .map_err(|err| fail(csv::Error::from(err.into_error())))
}

/// Counts and dollars per action (add: the amount; decrease: before − after; delete:
/// before), the rows in all, and the CSV's SHA-256.
fn control(run_id: i64, records: &[TreasuryRecord], csv: &[u8]) -> serde_json::Value {
    use sha2::{Digest, Sha256};
    let mut per: BTreeMap<&str, (usize, Money)> = ["add", "decrease", "delete"]
        .into_iter()
        .map(|a| (a, (0, Money::ZERO)))
        .collect();
    for r in records {
        let entry = per
            .entry(r.action.action.as_str())
            .or_insert((0, Money::ZERO));
        entry.0 += 1;
        entry.1 = entry.1 + r.action.dollars();
    }
    let actions: serde_json::Map<String, serde_json::Value> = per
        .iter()
        .map(|(action, (count, dollars))| {
            (
                (*action).to_owned(),
                serde_json::json!({ "count": count, "dollars": dollars.plain() }),
            )
        })
        .collect();
    serde_json::json!({
        "run_id": run_id,
        "file": format!("{run_id}.csv"),
        "file_sha256": crate::config::hex(&Sha256::digest(csv)),
        "rows": records.len(),
        "actions": actions,
    })
}
