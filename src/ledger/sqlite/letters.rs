//! The letters and their events in SQLite.

use crate::ledger::DbError;
use std::collections::{HashMap, HashSet};

use rusqlite::params;

use super::SqliteLedger;
use super::rows::{LETTER_COLUMNS, event_from_row, load_letter};
use super::writes::{append_event, now, plan_one, render_one, require_run};
use crate::account::Notice;
use crate::ledger::rules::{self, Planned};
use crate::ledger::{
    Event, LedgerError, LetterRecord, LetterState, LetterStore, PlannedLetter, RenderedFile,
};
use crate::letter::LetterKey;

impl LetterStore for SqliteLedger {
    fn record_planned(
        &mut self,
        run_id: i64,
        letters: &[PlannedLetter],
    ) -> Result<Vec<LetterKey>, LedgerError> {
        let begin_failed = |source| LedgerError::Run {
            action: format!("record the planned letters of run {run_id}"),
            source: DbError::from(source),
        };
        let at = now();
        let tx = self.write_tx().map_err(begin_failed)?;
        require_run(&tx, run_id, "record planned letters")?;
        let mut planned = Vec::with_capacity(letters.len());
        let mut seen = HashSet::with_capacity(letters.len());
        for letter in letters {
            let failed = |source| LedgerError::Record {
                key: letter.key.clone(),
                state: LetterState::Planned,
                source: DbError::from(source),
            };
            match plan_one(&tx, run_id, letter, &at).map_err(failed)? {
                Planned::Skipped => continue,
                Planned::Unchanged => {}
                Planned::Changed(from, detail) => {
                    append_event(
                        &tx,
                        &letter.key,
                        Some(run_id),
                        from,
                        LetterState::Planned,
                        &at,
                        &detail,
                    )
                    .map_err(failed)?;
                }
            }
            if seen.insert(&letter.key) {
                planned.push(letter.key.clone());
            }
        }
        tx.commit().map_err(begin_failed)?;
        Ok(planned)
    }

    fn record_rendered(&mut self, run_id: i64, files: &[RenderedFile]) -> Result<(), LedgerError> {
        let begin_failed = |source| LedgerError::Run {
            action: format!("record the rendered letters of run {run_id}"),
            source: DbError::from(source),
        };
        let at = now();
        let tx = self.write_tx().map_err(begin_failed)?;
        require_run(&tx, run_id, "record rendered letters")?;
        for file in files {
            let outcome =
                render_one(&tx, run_id, file, &at).map_err(|source| LedgerError::Record {
                    key: file.key.clone(),
                    state: LetterState::Rendered,
                    source: DbError::from(source),
                })?;
            if let Some(refused) = rules::render_refusal(outcome, &file.key, run_id) {
                return Err(refused);
            }
        }
        tx.commit().map_err(begin_failed)
    }

    fn set_state(
        &mut self,
        key: &LetterKey,
        to: LetterState,
        run_id: Option<i64>,
        detail: &str,
    ) -> Result<LetterRecord, LedgerError> {
        let failed = |source| LedgerError::Record {
            key: key.clone(),
            state: to,
            source: DbError::from(source),
        };
        let at = now();
        let tx = self.write_tx().map_err(failed)?;
        let current = load_letter(&tx, key)
            .map_err(failed)?
            .ok_or_else(|| LedgerError::UnknownLetter { key: key.clone() })?;
        if !rules::check_move(key, current.state, to)? {
            return Ok(current);
        }
        if let Some(run_id) = run_id {
            require_run(&tx, run_id, &format!("record `{key}` as {to}"))?;
        }
        let sql = if to == LetterState::Planned {
            "UPDATE letters SET state = ?2, run_id = COALESCE(?3, run_id), updated_at = ?4,
                 template = NULL, template_sha256 = NULL, file = NULL, file_sha256 = NULL,
                 pages = NULL
             WHERE key = ?1"
        } else {
            "UPDATE letters SET state = ?2, run_id = COALESCE(?3, run_id), updated_at = ?4
             WHERE key = ?1"
        };
        tx.execute(sql, params![key.as_str(), to.as_str(), run_id, at])
            .map_err(failed)?;
        append_event(&tx, key, run_id, Some(current.state), to, &at, detail).map_err(failed)?;
        let updated = load_letter(&tx, key)
            .map_err(failed)?
            .ok_or_else(|| LedgerError::UnknownLetter { key: key.clone() })?;
        tx.commit().map_err(failed)?;
        Ok(updated)
    }

    fn letter(&self, key: &LetterKey) -> Result<Option<LetterRecord>, LedgerError> {
        load_letter(&self.conn, key).map_err(|source| LedgerError::Read {
            what: format!("letter `{key}`"),
            source: DbError::from(source),
        })
    }

    fn letters_of_account(&self, account_id: &str) -> Result<Vec<LetterRecord>, LedgerError> {
        self.read_letters(
            || format!("the letters of account `{account_id}`"),
            &format!("SELECT {LETTER_COLUMNS} FROM letters WHERE account_id = ?1 ORDER BY key"),
            [account_id],
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
                 WHERE run_id = ?1 AND (?2 IS NULL OR state = ?2) ORDER BY key"
            ),
            params![run_id, state.map(LetterState::as_str)],
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
                 WHERE run_id = ?1 AND (?2 IS NULL OR state = ?2) AND (?3 IS NULL OR key > ?3)
                 ORDER BY key LIMIT ?4"
            ),
            params![
                run_id,
                state.map(LetterState::as_str),
                after.map(LetterKey::as_str),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
        )
    }

    fn events_of(&self, key: &LetterKey) -> Result<Vec<Event>, LedgerError> {
        let read = || -> rusqlite::Result<Vec<Event>> {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, key, run_id, from_state, to_state, at, detail
                 FROM events WHERE key = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([key.as_str()], event_from_row)?;
            rows.collect()
        };
        read().map_err(|source| LedgerError::Read {
            what: format!("the events of `{key}`"),
            source: DbError::from(source),
        })
    }

    fn prior_notices(&self) -> Result<HashMap<String, Vec<Notice>>, LedgerError> {
        let states: Vec<String> = LetterState::ALL
            .into_iter()
            .filter(|s| s.counts_as_sent() || *s == LetterState::Returned)
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        let letters = self.read_letters(
            || "the letters already produced".to_owned(),
            &format!(
                "SELECT {LETTER_COLUMNS} FROM letters WHERE state IN ({})
                 ORDER BY account_id, letter_date, key",
                states.join(", ")
            ),
            [],
        )?;
        rules::notices_by_account(&letters)
    }
}
