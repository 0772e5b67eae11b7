//! The `treasury_actions` and `referrals` tables in PostgreSQL, a call's rows written in
//! one statement each.

use std::collections::{HashMap, HashSet};

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
use crate::money::Money;

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

/// Inserts a run's Treasury actions in one statement, each unless the run recorded it
/// already, with the first referral of each new add that has a deadline; returns how many
/// actions were new. Ids follow the order given, as if inserted one by one.
fn insert_actions(
    conn: &mut impl GenericClient,
    run_id: i64,
    actions: &[TreasuryAction],
    deadlines: &HashMap<LetterKey, NaiveDate>,
    at: &str,
) -> Db<usize> {
    if actions.is_empty() {
        return Ok(0);
    }
    let ids = actions
        .iter()
        .map(|a| ids_json(&a.liability_ids))
        .collect::<Db<Vec<String>>>()?;
    let text = |f: fn(&TreasuryAction) -> &str| -> Vec<&str> { actions.iter().map(f).collect() };
    let plain = |f: fn(&TreasuryAction) -> Money| -> Vec<String> {
        actions.iter().map(|a| f(a).plain()).collect()
    };
    let rows = conn.query_t(
        "INSERT INTO treasury_actions (run_id, at, action, account_id, notice_key,
             liability_ids, amount_before, amount_after, reason, debtor_name, tin_last4, why)
         SELECT $11, $12, u.action, u.account_id, u.notice_key, u.liability_ids,
             u.amount_before, u.amount_after, u.reason, u.debtor_name, u.tin_last4, u.why
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
             $7::text[], $8::text[], $9::text[], $10::text[]) WITH ORDINALITY
             AS u(action, account_id, notice_key, liability_ids, amount_before, amount_after,
                 reason, debtor_name, tin_last4, why, n)
         ORDER BY u.n
         ON CONFLICT (run_id, notice_key, liability_ids, action) DO NOTHING
         RETURNING notice_key, liability_ids, action",
        &[
            &text(|a| a.action.as_str()),
            &text(|a| a.account_id.as_str()),
            &text(|a| a.notice_key.as_str()),
            &ids,
            &plain(|a| a.amount_before),
            &plain(|a| a.amount_after),
            &text(|a| a.reason.as_str()),
            &text(|a| a.debtor_name.as_str()),
            &text(|a| a.tin_last4.as_str()),
            &text(|a| a.why.as_str()),
            &run_id,
            &at,
        ],
    )?;
    let mut inserted: HashSet<(String, String, String)> = rows
        .iter()
        .map(|row| Ok((get(row, 0)?, get(row, 1)?, get(row, 2)?)))
        .collect::<Db<_>>()?;
    let new = inserted.len();
    // An action given twice was inserted the first time: its referral goes with that one.
    let referrals: Vec<NewReferral> = actions
        .iter()
        .zip(&ids)
        .filter(|(a, ids)| {
            inserted.remove(&(
                a.notice_key.as_str().to_owned(),
                (*ids).clone(),
                a.action.clone(),
            ))
        })
        .filter(|(a, _)| a.action == "add")
        .filter_map(|(a, _)| deadlines.get(&a.notice_key).map(|d| a.referral(*d)))
        .collect();
    insert_referrals(conn, &referrals, run_id, at)?;
    Ok(new)
}

/// Inserts the first referral of each notice in one statement (a notice referred already,
/// or given twice, keeps its first); returns those inserted, in the order given.
fn insert_referrals(
    conn: &mut impl GenericClient,
    referrals: &[NewReferral],
    run_id: i64,
    at: &str,
) -> Db<Vec<NewReferral>> {
    if referrals.is_empty() {
        return Ok(Vec::new());
    }
    let ids = referrals
        .iter()
        .map(|r| ids_json(&r.liability_ids))
        .collect::<Db<Vec<String>>>()?;
    let rows = conn.query_t(
        "INSERT INTO referrals (notice_key, account_id, liability_ids, amount,
             deadline_passed, run_id, at)
         SELECT u.notice_key, u.account_id, u.liability_ids, u.amount, u.deadline_passed, $6,
             $7
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
             WITH ORDINALITY AS u(notice_key, account_id, liability_ids, amount,
                 deadline_passed, n)
         ORDER BY u.n
         ON CONFLICT (notice_key) DO NOTHING
         RETURNING notice_key",
        &[
            &referrals
                .iter()
                .map(|r| r.notice_key.as_str())
                .collect::<Vec<_>>(),
            &referrals
                .iter()
                .map(|r| r.account_id.as_str())
                .collect::<Vec<_>>(),
            &ids,
            &referrals
                .iter()
                .map(|r| r.amount.plain())
                .collect::<Vec<_>>(),
            &referrals
                .iter()
                .map(|r| r.deadline_passed.to_string())
                .collect::<Vec<_>>(),
            &run_id,
            &at,
        ],
    )?;
    let mut inserted: HashSet<String> = rows.iter().map(|row| get(row, 0)).collect::<Db<_>>()?;
    Ok(referrals
        .iter()
        .filter(|r| inserted.remove(r.notice_key.as_str()))
        .cloned()
        .collect())
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
            insert_referrals(tx, referrals, run_id, &at).map_err(failed)
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
            insert_actions(tx, run_id, actions, deadlines, &at).map_err(failed)
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
