//! The letters and their events in PostgreSQL.

use std::collections::HashMap;

use super::PgLedger;
use super::rows::{LETTER_COLUMNS, all, event_from_row, letter_from_row, load_letter};
use super::typed::{Param, Typed};
use super::writes::{move_letter, now, plan_all, render_all, require_run};
use crate::account::Notice;
use crate::ledger::rules;
use crate::ledger::{
    DbError, Event, LedgerError, LetterRecord, LetterState, LetterStore, PlannedLetter,
    RenderedFile,
};
use crate::letter::LetterKey;

impl PgLedger {
    /// The letters a query returns, or a read error naming `what`.
    pub(super) fn read_letters(
        &self,
        what: impl Fn() -> String,
        sql: &str,
        args: &[&dyn Param],
    ) -> Result<Vec<LetterRecord>, LedgerError> {
        self.read(what, |c| all(c.query_t(sql, args)?, letter_from_row))
    }
}

impl LetterStore for PgLedger {
    fn record_planned(
        &mut self,
        run_id: i64,
        letters: &[PlannedLetter],
    ) -> Result<Vec<LetterKey>, LedgerError> {
        let failed = super::writes::letters_failed(run_id, "planned");
        let at = now();
        self.in_tx(&failed, |tx| {
            require_run(tx, run_id, "record planned letters")?;
            plan_all(tx, run_id, letters, &at)
        })
    }

    fn record_rendered(&mut self, run_id: i64, files: &[RenderedFile]) -> Result<(), LedgerError> {
        let failed = super::writes::letters_failed(run_id, "rendered");
        let at = now();
        self.in_tx(&failed, |tx| {
            require_run(tx, run_id, "record rendered letters")?;
            render_all(tx, run_id, files, &at)
        })
    }

    fn set_state(
        &mut self,
        key: &LetterKey,
        to: LetterState,
        run_id: Option<i64>,
        detail: &str,
    ) -> Result<LetterRecord, LedgerError> {
        let failed = |source: DbError| LedgerError::Record {
            key: key.clone(),
            state: to,
            source,
        };
        let at = now();
        let mut tx = self
            .client
            .get_mut()
            .transaction()
            .map_err(|e| failed(e.into()))?;
        move_letter(&mut tx, key, to, run_id, &at, detail)?;
        let updated = load_letter(&mut tx, key, false)
            .map_err(failed)?
            .ok_or_else(|| LedgerError::UnknownLetter { key: key.clone() })?;
        tx.commit().map_err(|e| failed(e.into()))?;
        Ok(updated)
    }

    fn letter(&self, key: &LetterKey) -> Result<Option<LetterRecord>, LedgerError> {
        load_letter(&mut *self.client.borrow_mut(), key, false).map_err(|source| {
            LedgerError::Read {
                what: format!("letter `{key}`"),
                source,
            }
        })
    }

    fn letters(&self, keys: &[LetterKey]) -> Result<HashMap<LetterKey, LetterRecord>, LedgerError> {
        let texts: Vec<&str> = keys.iter().map(LetterKey::as_str).collect();
        let found = self.read_letters(
            || format!("{} letters", keys.len()),
            &format!("SELECT {LETTER_COLUMNS} FROM letters WHERE key = ANY($1)"),
            &[&texts],
        )?;
        Ok(found.into_iter().map(|l| (l.key.clone(), l)).collect())
    }

    fn letters_of_account(&self, account_id: &str) -> Result<Vec<LetterRecord>, LedgerError> {
        self.read_letters(
            || format!("the letters of account `{account_id}`"),
            &format!("SELECT {LETTER_COLUMNS} FROM letters WHERE account_id = $1 ORDER BY key"),
            &[&account_id],
        )
    }

    fn letters_of_run(
        &self,
        run_id: i64,
        state: Option<LetterState>,
    ) -> Result<Vec<LetterRecord>, LedgerError> {
        self.read_letters(
            || match state {
                Some(state) => format!("the {state} letters of run {run_id}"),
                None => format!("the letters of run {run_id}"),
            },
            &format!(
                "SELECT {LETTER_COLUMNS} FROM letters
                 WHERE run_id = $1 AND ($2::TEXT IS NULL OR state = $2) ORDER BY key"
            ),
            &[&run_id, &state.map(LetterState::as_str)],
        )
    }

    fn letters_of_run_after(
        &self,
        run_id: i64,
        state: Option<LetterState>,
        after: Option<&LetterKey>,
        limit: usize,
    ) -> Result<Vec<LetterRecord>, LedgerError> {
        self.read_letters(
            || format!("a page of the letters of run {run_id}"),
            &format!(
                "SELECT {LETTER_COLUMNS} FROM letters
                 WHERE run_id = $1 AND ($2::TEXT IS NULL OR state = $2)
                   AND ($3::TEXT IS NULL OR key > $3)
                 ORDER BY key LIMIT $4"
            ),
            &[
                &run_id,
                &state.map(LetterState::as_str),
                &after.map(LetterKey::as_str),
                &i64::try_from(limit).unwrap_or(i64::MAX),
            ],
        )
    }

    fn events_of(&self, key: &LetterKey) -> Result<Vec<Event>, LedgerError> {
        self.read(
            || format!("the events of `{key}`"),
            |c| {
                let rows = c.query_t(
                    "SELECT id, key, run_id, from_state, to_state, at, detail
                     FROM events WHERE key = $1 ORDER BY id",
                    &[&key.as_str()],
                )?;
                all(rows, event_from_row)
            },
        )
    }

    fn prior_notices(&self) -> Result<HashMap<String, Vec<Notice>>, LedgerError> {
        let states: Vec<&str> = LetterState::ALL
            .into_iter()
            .filter(|s| s.counts_as_sent() || *s == LetterState::Returned)
            .map(LetterState::as_str)
            .collect();
        let letters = self.read_letters(
            || "the letters already produced".to_owned(),
            &format!(
                "SELECT {LETTER_COLUMNS} FROM letters WHERE state = ANY($1)
                 ORDER BY account_id, letter_date, key"
            ),
            &[&states],
        )?;
        rules::notices_by_account(&letters)
    }
}
