//! The Treasury file of a run: `treasury/<run>.csv` (one row per action sent to the
//! Treasury Offset Program) and `treasury/<run>-control.json` (counts and dollars per
//! action), both made from the actions as the ledger recorded them ([`files`]). The run's
//! `refer` step ([`crate::runner`]) reads the records after the actions are committed and
//! writes the files atomically; a run with no actions gets no file. See `docs/treasury.md`
//! for the record layout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::ledger::{TreasuryRecord, stamp};
use crate::money::Money;

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

/// Formatting the Treasury file failed.
#[derive(Debug, thiserror::Error)]
pub enum TreasuryFileError {
    /// The control file could not be formatted as JSON.
    #[error("failed to format the Treasury control file of run {run_id}")]
    Control {
        /// The run.
        run_id: i64,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
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

/// `out_dir/treasury/<run>.csv` and its control file.
pub fn paths(out_dir: &Path, run_id: i64) -> (PathBuf, PathBuf) {
    let dir = out_dir.join("treasury");
    (
        dir.join(format!("{run_id}.csv")),
        dir.join(format!("{run_id}-control.json")),
    )
}

/// The Treasury file of run `run_id` from its recorded actions: the CSV and its control
/// file (JSON, with a final line break).
pub fn files(
    run_id: i64,
    records: &[TreasuryRecord],
) -> Result<(Vec<u8>, Vec<u8>), TreasuryFileError> {
    let csv = csv_bytes(run_id, records)?;
    let mut control = serde_json::to_vec_pretty(&control(run_id, records, &csv))
        .map_err(|source| TreasuryFileError::Control { run_id, source })?;
    control.push(b'\n');
    Ok((csv, control))
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
