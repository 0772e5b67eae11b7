//! The `treasury_actions` and `referrals` tables.
//!
//! Each run records its referrals (`add`) and updates (`decrease`, `delete`) in one
//! transaction, together with the compatible `referrals` row of an add.

use crate::ledger::DbError;
use std::collections::HashMap;

use chrono::NaiveDate;
use rusqlite::{Connection, Row, params};

use super::SqliteLedger;
use super::rows::{ids_at, ids_json, money_at, time_at};
use super::writes::{now, require_run};
use crate::account::TopReferral;
use crate::ledger::rules;
use crate::ledger::{
    LedgerError, NewReferral, ReferralRecord, TreasuryAction, TreasuryLog, TreasuryRecord,
};
use crate::letter::LetterKey;

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
        source: DbError::from(source),
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
                let referral = a.referral(*deadline);
                insert_referral(&tx, &referral, &ids, run_id, &at)?;
            }
            Ok(inserted)
        };
        new += write().map_err(|source| LedgerError::Referral {
            key: a.notice_key.clone(),
            source: DbError::from(source),
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

/// What TOP holds per referral, by account (see [`rules::holdings`]).
pub(super) fn holdings(conn: &Connection) -> rusqlite::Result<HashMap<String, Vec<TopReferral>>> {
    Ok(rules::holdings(list(conn, None, None)?))
}

impl TreasuryLog for SqliteLedger {
    fn record_referrals(
        &mut self,
        run_id: i64,
        referrals: &[NewReferral],
    ) -> Result<Vec<NewReferral>, LedgerError> {
        let begin_failed = |source| LedgerError::Run {
            action: format!("record the referrals of run {run_id}"),
            source: DbError::from(source),
        };
        let at = now();
        let tx = self.write_tx().map_err(begin_failed)?;
        require_run(&tx, run_id, "record referrals")?;
        let mut new = Vec::new();
        for referral in referrals {
            let insert = || -> rusqlite::Result<usize> {
                insert_referral(
                    &tx,
                    referral,
                    &ids_json(&referral.liability_ids)?,
                    run_id,
                    &at,
                )
            };
            let inserted = insert().map_err(|source| LedgerError::Referral {
                key: referral.notice_key.clone(),
                source: DbError::from(source),
            })?;
            if inserted == 1 {
                new.push(referral.clone());
            }
        }
        tx.commit().map_err(begin_failed)?;
        Ok(new)
    }

    fn record_treasury(
        &mut self,
        run_id: i64,
        actions: &[TreasuryAction],
        deadlines: &std::collections::HashMap<crate::letter::LetterKey, chrono::NaiveDate>,
    ) -> Result<usize, LedgerError> {
        record(&mut self.conn, run_id, actions, deadlines)
    }

    fn treasury_actions(
        &self,
        run_id: Option<i64>,
        account_id: Option<&str>,
    ) -> Result<Vec<TreasuryRecord>, LedgerError> {
        list(&self.conn, run_id, account_id).map_err(|source| LedgerError::Read {
            what: "the Treasury actions".to_owned(),
            source: DbError::from(source),
        })
    }

    fn treasury_runs(&self) -> Result<Vec<i64>, LedgerError> {
        runs_with_actions(&self.conn).map_err(|source| LedgerError::Read {
            what: "the runs with Treasury actions".to_owned(),
            source: DbError::from(source),
        })
    }

    fn top_holdings(
        &self,
    ) -> Result<std::collections::HashMap<String, Vec<crate::account::TopReferral>>, LedgerError>
    {
        holdings(&self.conn).map_err(|source| LedgerError::Read {
            what: "what the Treasury Offset Program holds".to_owned(),
            source: DbError::from(source),
        })
    }

    fn referrals(&self) -> Result<Vec<ReferralRecord>, LedgerError> {
        self.read_referrals(
            "every referral".to_owned(),
            "ORDER BY run_id, notice_key",
            [],
        )
    }

    fn referrals_of_account(&self, account_id: &str) -> Result<Vec<ReferralRecord>, LedgerError> {
        self.read_referrals(
            format!("the referrals of account `{account_id}`"),
            "WHERE account_id = ?1 ORDER BY notice_key",
            [account_id],
        )
    }
}
