//! What was sent to the Treasury Offset Program: the `treasury_actions` table.
//!
//! Each run records its referrals (`add`) and updates (`decrease`, `delete`) in one
//! transaction, together with the compatible `referrals` row of an add. What TOP holds for
//! a referral (notice key + liabilities) is the latest action's `amount_after`: the run
//! passes that to `decide`, so a rerun on the same data sends nothing twice.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, Row, params};
use serde::Serialize;

use super::rows::{ids_at, ids_json, money_at, time_at};
use super::writes::{now, require_run};
use super::{LedgerError, stamp};
use crate::account::TopReferral;
use crate::letter::LetterKey;
use crate::money::Money;

/// One line of the Treasury file: what is sent to TOP about one referral.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreasuryAction {
    /// `add`, `decrease` or `delete`.
    pub action: String,
    /// The account.
    pub account_id: String,
    /// The intent to offset the referral is made under.
    pub notice_key: LetterKey,
    /// The referral's liabilities, sorted.
    pub liability_ids: Vec<String>,
    /// What TOP held before (`0.00` for an add).
    pub amount_before: Money,
    /// What TOP holds afterwards (`0.00` for a delete).
    pub amount_after: Money,
    /// Why: `deadline_passed` for an add, else the update's reason.
    pub reason: String,
    /// The debtor's name as on the account.
    pub debtor_name: String,
    /// The last four digits of the debtor's TIN (the agency's TOP interface joins the rest).
    pub tin_last4: String,
    /// Why, in words.
    pub why: String,
}

impl TreasuryAction {
    /// The dollars the control totals count for it: the amount of an add, what a decrease
    /// takes off, what a delete withdraws (letters.md, Treasury updates).
    pub fn dollars(&self) -> Money {
        match self.action.as_str() {
            "add" => self.amount_after,
            "delete" => self.amount_before,
            _ => self.amount_before - self.amount_after,
        }
    }
}

/// A referral to record: the liabilities of an intent to offset whose deadline passed,
/// referred to the Treasury Offset Program (one per notice, ever).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReferral {
    /// The account.
    pub account_id: String,
    /// The liabilities referred, sorted.
    pub liability_ids: Vec<String>,
    /// Their referable amount.
    pub amount: Money,
    /// The intent to offset the referral is made under.
    pub notice_key: LetterKey,
    /// The notice's deadline that passed.
    pub deadline_passed: NaiveDate,
}

/// A Treasury action as recorded, with its run and time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreasuryRecord {
    /// Increasing id: the order actions were recorded in.
    pub id: i64,
    /// The run that sent it.
    pub run_id: i64,
    /// When (UTC; stored and printed as RFC 3339 with milliseconds).
    #[serde(serialize_with = "stamp::serialize")]
    pub at: DateTime<Utc>,
    /// The action.
    #[serde(flatten)]
    pub action: TreasuryAction,
}

const COLUMNS: &str = "id, run_id, at, action, account_id, notice_key, liability_ids, \
     amount_before, amount_after, reason, debtor_name, tin_last4, why";

fn record_from_row(row: &Row<'_>) -> rusqlite::Result<TreasuryRecord> {
    let key: String = row.get(5)?;
    Ok(TreasuryRecord {
        id: row.get(0)?,
        run_id: row.get(1)?,
        at: time_at(row, 2)?,
        action: TreasuryAction {
            action: row.get(3)?,
            account_id: row.get(4)?,
            notice_key: LetterKey::from_text(&key),
            liability_ids: ids_at(row, 6)?,
            amount_before: money_at(row, 7)?,
            amount_after: money_at(row, 8)?,
            reason: row.get(9)?,
            debtor_name: row.get(10)?,
            tin_last4: row.get(11)?,
            why: row.get(12)?,
        },
    })
}

/// Records a run's Treasury actions in one transaction (an add also in `referrals`, the
/// record `history` and older tools read); an action already recorded for the run is
/// skipped. Returns how many were new.
pub(super) fn record(
    conn: &mut Connection,
    run_id: i64,
    actions: &[TreasuryAction],
    deadlines: &HashMap<LetterKey, NaiveDate>,
) -> Result<usize, LedgerError> {
    let failed = |source| LedgerError::Run {
        action: format!("record the Treasury actions of run {run_id}"),
        source,
    };
    let at = now();
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(failed)?;
    require_run(&tx, run_id, "record Treasury actions")?;
    let mut new = 0;
    for a in actions {
        let write = || -> rusqlite::Result<usize> {
            let ids = ids_json(&a.liability_ids)?;
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO treasury_actions (run_id, at, action, account_id, notice_key,
                         liability_ids, amount_before, amount_after, reason, debtor_name,
                         tin_last4, why)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                     ON CONFLICT (run_id, notice_key, liability_ids, action) DO NOTHING",
                )?
                .execute(params![
                    run_id,
                    at,
                    a.action,
                    a.account_id,
                    a.notice_key.as_str(),
                    ids,
                    a.amount_before.plain(),
                    a.amount_after.plain(),
                    a.reason,
                    a.debtor_name,
                    a.tin_last4,
                    a.why,
                ])?;
            if inserted == 1
                && a.action == "add"
                && let Some(deadline) = deadlines.get(&a.notice_key)
            {
                let referral = NewReferral {
                    account_id: a.account_id.clone(),
                    liability_ids: a.liability_ids.clone(),
                    amount: a.amount_after,
                    notice_key: a.notice_key.clone(),
                    deadline_passed: *deadline,
                };
                insert_referral(&tx, &referral, &ids, run_id, &at)?;
            }
            Ok(inserted)
        };
        new += write().map_err(|source| LedgerError::Referral {
            key: a.notice_key.clone(),
            source,
        })?;
    }
    tx.commit().map_err(failed)?;
    Ok(new)
}

/// Inserts the first referral of a notice into `referrals` (a later one under the same
/// notice is only in `treasury_actions`); returns 1 when inserted.
pub(super) fn insert_referral(
    conn: &Connection,
    referral: &NewReferral,
    ids_json: &str,
    run_id: i64,
    at: &str,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "INSERT INTO referrals (notice_key, account_id, liability_ids, amount,
             deadline_passed, run_id, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (notice_key) DO NOTHING",
    )?
    .execute(params![
        referral.notice_key.as_str(),
        referral.account_id,
        ids_json,
        referral.amount.plain(),
        referral.deadline_passed.to_string(),
        run_id,
        at,
    ])
}

/// Recorded actions, oldest first: of one run, of one account, or all.
pub(super) fn list(
    conn: &Connection,
    run_id: Option<i64>,
    account_id: Option<&str>,
) -> rusqlite::Result<Vec<TreasuryRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM treasury_actions
         WHERE (?1 IS NULL OR run_id = ?1) AND (?2 IS NULL OR account_id = ?2)
         ORDER BY id"
    ))?;
    let rows = stmt.query_map(params![run_id, account_id], record_from_row)?;
    rows.collect()
}

/// Runs that sent at least one action, oldest first.
pub(super) fn runs_with_actions(conn: &Connection) -> rusqlite::Result<Vec<i64>> {
    let mut stmt =
        conn.prepare_cached("SELECT DISTINCT run_id FROM treasury_actions ORDER BY run_id")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

/// What TOP holds per referral (notice + liabilities), by account: the latest action's
/// amount (zero after a delete), as `decide` takes it.
pub(super) fn holdings(conn: &Connection) -> rusqlite::Result<HashMap<String, Vec<TopReferral>>> {
    let mut latest: HashMap<(LetterKey, Vec<String>), (TreasuryRecord, NaiveDate)> = HashMap::new();
    for record in list(conn, None, None)? {
        let a = &record.action;
        let key = (a.notice_key.clone(), a.liability_ids.clone());
        let first_on = latest
            .get(&key)
            .map_or(record.at.date_naive(), |(_, on)| *on);
        latest.insert(key, (record, first_on));
    }
    let mut out: HashMap<String, Vec<TopReferral>> = HashMap::new();
    for ((notice_key, liability_ids), (record, referred_on)) in latest {
        out.entry(record.action.account_id.clone())
            .or_default()
            .push(TopReferral {
                notice_key,
                liability_ids,
                referred_on,
                amount: record.action.amount_after,
                updated_on: (record.action.action != "add").then(|| record.at.date_naive()),
            });
    }
    for list in out.values_mut() {
        list.sort_by(|a, b| {
            (&a.notice_key, &a.liability_ids).cmp(&(&b.notice_key, &b.liability_ids))
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::prelude::*;
    use super::super::tests::{date, ledger, start};
    use super::*;
    use crate::decide::{Referral, TreasuryUpdate, UpdateAction, UpdateReason};
    use crate::runner::records::{treasury_add, treasury_update};

    fn referral(amount: &str) -> Referral {
        Referral {
            account_id: "CT-1".to_owned(),
            liability_ids: vec!["L1".to_owned(), "L2".to_owned()],
            amount: Money::parse(amount).expect("amount"),
            notice_key: LetterKey::intent_to_offset("CT-1", &["L1", "L2"]),
            deadline_passed: date("2026-07-31"),
        }
    }

    fn decrease(before: &str, after: &str) -> TreasuryUpdate {
        TreasuryUpdate {
            account_id: "CT-1".to_owned(),
            notice_key: LetterKey::intent_to_offset("CT-1", &["L1", "L2"]),
            action: UpdateAction::Decrease,
            reason: UpdateReason::Reduced,
            amount_before: Money::parse(before).expect("amount"),
            amount_after: Money::parse(after).expect("amount"),
            liability_ids: vec!["L1".to_owned(), "L2".to_owned()],
            why: "payments".to_owned(),
        }
    }

    #[test]
    fn what_top_holds_is_the_latest_action_and_a_run_records_each_action_once() {
        let (_dir, mut ledger) = ledger();
        let run = start(&mut ledger);
        let r = referral("1040.00");
        let deadlines = HashMap::from([(r.notice_key.clone(), r.deadline_passed)]);
        let add = treasury_add(&r, "Ann Lee", "1234");
        assert_eq!(
            ledger
                .record_treasury(run.id, std::slice::from_ref(&add), &deadlines)
                .expect("add"),
            1
        );
        // The same run again (a resume): nothing new.
        assert_eq!(
            ledger
                .record_treasury(run.id, &[add], &deadlines)
                .expect("again"),
            0
        );
        let held = ledger.top_holdings().expect("holdings");
        assert_eq!(held["CT-1"][0].amount, Money::parse("1040.00").expect("m"));
        assert_eq!(ledger.referrals().expect("referrals").len(), 1);

        let later = start(&mut ledger);
        let down = treasury_update(&decrease("1040.00", "960.00"), "Ann Lee", "1234");
        assert_eq!(down.dollars(), Money::parse("80.00").expect("m"));
        ledger
            .record_treasury(later.id, &[down], &HashMap::new())
            .expect("decrease");
        let held = ledger.top_holdings().expect("holdings");
        assert_eq!(held["CT-1"].len(), 1);
        assert_eq!(held["CT-1"][0].amount, Money::parse("960.00").expect("m"));
        assert!(held["CT-1"][0].updated_on.is_some());
        assert_eq!(ledger.treasury_runs().expect("runs"), [run.id, later.id]);
        assert_eq!(
            ledger
                .treasury_actions(Some(later.id), None)
                .expect("actions")
                .len(),
            1
        );
    }

    #[test]
    fn treasury_actions_are_append_only() {
        let (_dir, mut ledger) = ledger();
        let run = start(&mut ledger);
        let r = referral("1040.00");
        ledger
            .record_treasury(
                run.id,
                &[treasury_add(&r, "Ann Lee", "1234")],
                &HashMap::new(),
            )
            .expect("add");
        let conn = ledger.connection();
        assert!(
            conn.execute("UPDATE treasury_actions SET amount_after = '1.00'", [])
                .is_err()
        );
        assert!(conn.execute("DELETE FROM treasury_actions", []).is_err());
    }
}
