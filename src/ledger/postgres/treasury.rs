//! The `treasury_actions` and `referrals` tables in PostgreSQL.

use std::collections::HashMap;

use chrono::NaiveDate;
use postgres::{GenericClient, Row};

use super::PgLedger;
use super::rows::{Db, all, get, ids_at, ids_json, key_at, money_at, referral_from_row, time_at};
use super::typed::Typed;
use super::writes::{now, require_run};
use crate::account::TopReferral;
use crate::ledger::rules;
use crate::ledger::{
    LedgerError, NewReferral, ReferralRecord, TreasuryAction, TreasuryLog, TreasuryRecord,
};
use crate::letter::LetterKey;

const COLUMNS: &str = "id, run_id, at, action, account_id, notice_key, liability_ids, \
     amount_before, amount_after, reason, debtor_name, tin_last4, why";

fn record_from_row(row: &Row) -> Db<TreasuryRecord> {
    Ok(TreasuryRecord {
        id: get(row, 0)?,
        run_id: get(row, 1)?,
        at: time_at(row, 2)?,
        action: TreasuryAction {
            action: get(row, 3)?,
            account_id: get(row, 4)?,
            notice_key: key_at(row, 5)?,
            liability_ids: ids_at(row, 6)?,
            amount_before: money_at(row, 7)?,
            amount_after: money_at(row, 8)?,
            reason: get(row, 9)?,
            debtor_name: get(row, 10)?,
            tin_last4: get(row, 11)?,
            why: get(row, 12)?,
        },
    })
}

/// Inserts one Treasury action unless the run recorded it already, with the first
/// referral of an add; returns 1 when inserted.
fn insert_action(
    conn: &mut impl GenericClient,
    run_id: i64,
    a: &TreasuryAction,
    deadlines: &HashMap<LetterKey, NaiveDate>,
    at: &str,
) -> Db<usize> {
    let ids = ids_json(&a.liability_ids)?;
    let inserted = conn.execute_t(
        "INSERT INTO treasury_actions (run_id, at, action, account_id, notice_key,
             liability_ids, amount_before, amount_after, reason, debtor_name, tin_last4, why)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (run_id, notice_key, liability_ids, action) DO NOTHING",
        &[
            &run_id,
            &at,
            &a.action,
            &a.account_id,
            &a.notice_key.as_str(),
            &ids,
            &a.amount_before.plain(),
            &a.amount_after.plain(),
            &a.reason,
            &a.debtor_name,
            &a.tin_last4,
            &a.why,
        ],
    )?;
    if inserted == 1
        && a.action == "add"
        && let Some(deadline) = deadlines.get(&a.notice_key)
    {
        insert_referral(conn, &a.referral(*deadline), run_id, at)?;
    }
    Ok(usize::try_from(inserted).unwrap_or(usize::MAX))
}

/// Inserts the first referral of a notice; returns true when inserted.
fn insert_referral(
    conn: &mut impl GenericClient,
    referral: &NewReferral,
    run_id: i64,
    at: &str,
) -> Db<bool> {
    let inserted = conn.execute_t(
        "INSERT INTO referrals (notice_key, account_id, liability_ids, amount,
             deadline_passed, run_id, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (notice_key) DO NOTHING",
        &[
            &referral.notice_key.as_str(),
            &referral.account_id,
            &ids_json(&referral.liability_ids)?,
            &referral.amount.plain(),
            &referral.deadline_passed.to_string(),
            &run_id,
            &at,
        ],
    )?;
    Ok(inserted == 1)
}

/// Recorded actions, oldest first: of one run, of one account, or all.
fn list(
    conn: &mut impl GenericClient,
    run_id: Option<i64>,
    account_id: Option<&str>,
) -> Db<Vec<TreasuryRecord>> {
    let rows = conn.query_t(
        &format!(
            "SELECT {COLUMNS} FROM treasury_actions
             WHERE ($1::BIGINT IS NULL OR run_id = $1) AND ($2::TEXT IS NULL OR account_id = $2)
             ORDER BY id"
        ),
        &[&run_id, &account_id],
    )?;
    all(rows, record_from_row)
}

impl PgLedger {
    fn read_referrals(
        &self,
        what: String,
        filter: &str,
        account_id: Option<&str>,
    ) -> Result<Vec<ReferralRecord>, LedgerError> {
        self.read(
            || what.clone(),
            |c| {
                let sql = format!(
                    "SELECT notice_key, account_id, liability_ids, amount, deadline_passed,
                         run_id, at
                     FROM referrals WHERE ($1::TEXT IS NULL OR account_id = $1) {filter}"
                );
                all(c.query_t(&sql, &[&account_id])?, referral_from_row)
            },
        )
    }
}

impl TreasuryLog for PgLedger {
    fn record_referrals(
        &mut self,
        run_id: i64,
        referrals: &[NewReferral],
    ) -> Result<Vec<NewReferral>, LedgerError> {
        let failed = |source| LedgerError::Run {
            action: format!("record the referrals of run {run_id}"),
            source,
        };
        let at = now();
        self.in_tx(&failed, |tx| {
            require_run(tx, run_id, "record referrals")?;
            let mut new = Vec::new();
            for referral in referrals {
                let inserted = insert_referral(tx, referral, run_id, &at).map_err(|source| {
                    LedgerError::Referral {
                        key: referral.notice_key.clone(),
                        source,
                    }
                })?;
                if inserted {
                    new.push(referral.clone());
                }
            }
            Ok(new)
        })
    }

    fn record_treasury(
        &mut self,
        run_id: i64,
        actions: &[TreasuryAction],
        deadlines: &HashMap<LetterKey, NaiveDate>,
    ) -> Result<usize, LedgerError> {
        let failed = |source| LedgerError::Run {
            action: format!("record the Treasury actions of run {run_id}"),
            source,
        };
        let at = now();
        self.in_tx(&failed, |tx| {
            require_run(tx, run_id, "record Treasury actions")?;
            let mut new = 0;
            for a in actions {
                new += insert_action(tx, run_id, a, deadlines, &at).map_err(|source| {
                    LedgerError::Referral {
                        key: a.notice_key.clone(),
                        source,
                    }
                })?;
            }
            Ok(new)
        })
    }

    fn treasury_actions(
        &self,
        run_id: Option<i64>,
        account_id: Option<&str>,
    ) -> Result<Vec<TreasuryRecord>, LedgerError> {
        self.read(
            || "the Treasury actions".to_owned(),
            |c| list(c, run_id, account_id),
        )
    }

    fn treasury_runs(&self) -> Result<Vec<i64>, LedgerError> {
        self.read(
            || "the runs with Treasury actions".to_owned(),
            |c| {
                let rows = c.query_t(
                    "SELECT DISTINCT run_id FROM treasury_actions ORDER BY run_id",
                    &[],
                )?;
                all(rows, |row| get(row, 0))
            },
        )
    }

    fn top_holdings(&self) -> Result<HashMap<String, Vec<TopReferral>>, LedgerError> {
        self.read(
            || "what the Treasury Offset Program holds".to_owned(),
            |c| Ok(rules::holdings(list(c, None, None)?)),
        )
    }

    fn referrals(&self) -> Result<Vec<ReferralRecord>, LedgerError> {
        self.read_referrals(
            "every referral".to_owned(),
            "ORDER BY run_id, notice_key",
            None,
        )
    }

    fn referrals_of_account(&self, account_id: &str) -> Result<Vec<ReferralRecord>, LedgerError> {
        self.read_referrals(
            format!("the referrals of account `{account_id}`"),
            "ORDER BY notice_key",
            Some(account_id),
        )
    }
}
